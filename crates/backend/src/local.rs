//! The verbs on this machine's jobs, over the local engine: a submitted job runs under a
//! detached supervisor (the trainctl binary's hidden `supervise` command).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use trainctl_core::state_machine::Outcome;
use trainctl_kube::Finding;
use trainctl_local::logs::{copy_logs, Selection};
use trainctl_local::process::is_same_process;
use trainctl_local::store::{AttemptRow, UnreadableJob};
use trainctl_local::supervisor::SupervisorConfig;
use trainctl_local::{now, EngineError, Home, JobDetail, LocalEngine};
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::series::Run;
use trainctl_spec::TrainingJob;

use crate::run::{collector, warn};
use crate::view::{
    age, gpu_idle, job_object, list_or_dash, replica_summary, rfc3339, section, unreadable_object,
    GPU_IDLE_REASON,
};
use crate::{Backend, JobSummary, LogRequest, Waited};

/// This machine's jobs.
pub struct LocalBackend {
    engine: LocalEngine,
    /// The command that supervises a submitted job, given its name as the last argument.
    supervisor: Vec<String>,
}

impl LocalBackend {
    /// Opens the state directory; `supervisor` is the command that runs a submitted job.
    pub fn open(home: Home, supervisor: Vec<String>) -> Result<Self> {
        let engine = LocalEngine::open(home).context("cannot open the trainctl state directory")?;
        Ok(LocalBackend { engine, supervisor })
    }
}

/// A job's line in `get`.
fn summary(d: &JobDetail, now: f64) -> JobSummary {
    let job = &d.job;
    let ports: Vec<u16> = d
        .replicas
        .iter()
        .map(|r| r.port)
        .filter(|p| *p != 0)
        .collect();
    let reason = if job.reason.is_empty() {
        "-".into()
    } else {
        job.reason.clone()
    };
    JobSummary {
        name: job.name.clone(),
        phase: match gpu_idle(&d.events) {
            // Like kubectl's `Ready,SchedulingDisabled` for nodes.
            Some(_) => format!("{},{GPU_IDLE_REASON}", job.phase.as_str()),
            None => job.phase.as_str().to_string(),
        },
        replicas: replica_summary(&d.replicas),
        restarts: job.restarts,
        age: now - job.created,
        wide: vec![list_or_dash(&job.gpus), list_or_dash(&ports), reason],
        object: job_object(d),
    }
}

/// The line in `get` of a job whose record does not read.
fn unreadable_summary(u: &UnreadableJob, now: f64) -> JobSummary {
    JobSummary {
        name: u.name.clone(),
        phase: "Unreadable".into(),
        replicas: "-".into(),
        restarts: 0,
        age: u.created.map_or(0.0, |c| now - c),
        wide: vec!["-".into(), "-".into(), "Unreadable".into()],
        object: unreadable_object(u),
    }
}

/// Refuses an `--attempt` that the job (or the chosen replica) does not have, naming those
/// it has (the `logs` verb and the dashboard's log stream).
pub fn check_attempt(job: &str, request: &LogRequest, attempts: &[AttemptRow]) -> Result<()> {
    let Some(asked) = request.attempt else {
        return Ok(());
    };
    let mut have: Vec<u32> = attempts
        .iter()
        .filter(|a| request.replica.is_none_or(|r| r == a.replica))
        .map(|a| a.attempt)
        .collect();
    have.sort_unstable();
    have.dedup();
    if have.contains(&asked) {
        return Ok(());
    }
    let whose = match request.replica {
        Some(r) => format!("{r} of job {job}"),
        None => format!("job {job}"),
    };
    if have.is_empty() {
        bail!("{whose} has no attempt {asked}: no attempt has started yet");
    }
    let list: Vec<String> = have.iter().map(u32::to_string).collect();
    Err(anyhow!(
        "{whose} has no attempt {asked}; it has attempt{} {}",
        if have.len() == 1 { "" } else { "s" },
        list.join(", ")
    ))
}

/// What `describe` prints about a local job.
fn describe(d: &JobDetail) -> Result<String> {
    let j = &d.job;
    let t = now();
    let when = |x: Option<f64>| {
        x.map(|x| format!("{} ({} ago)", rfc3339(x), age(t - x)))
            .unwrap_or_else(|| "-".into())
    };
    let spec = &j.spec.spec;
    let mut s = String::new();
    s += &format!("Name:          {}\n", j.name);
    s += &format!("Phase:         {}\n", j.phase.as_str());
    s += &format!("Reason:        {}\n", j.reason);
    s += &format!("Message:       {}\n", j.message);
    s += &format!(
        "Framework:     {}\n",
        serde_json::to_value(spec.framework)?
            .as_str()
            .unwrap_or("-")
    );
    s += &format!("Command:       {}\n", spec.command.join(" "));
    s += &format!("Working dir:   {}\n", j.workdir.display());
    s += &format!("Created:       {}\n", when(Some(j.created)));
    s += &format!("Started:       {}\n", when(j.started));
    s += &format!("Finished:      {}\n", when(j.finished));
    s += &format!(
        "Restarts:      {} (backoffLimit {}, restartPolicy {:?})\n",
        j.restarts, spec.run_policy.backoff_limit, spec.run_policy.restart_policy
    );
    s += &format!("GPUs:          {}\n", list_or_dash(&j.gpus));
    let dash_if = |zero: bool, v: String| if zero { "-".into() } else { v };
    let rows: Vec<Vec<String>> = d
        .replicas
        .iter()
        .map(|r| {
            vec![
                r.replica.to_string(),
                r.state.as_str().to_string(),
                dash_if(r.attempt < 0, r.attempt.to_string()),
                r.exit_code.map_or("-".into(), |c| c.to_string()),
                dash_if(r.pid == 0, r.pid.to_string()),
                dash_if(r.port == 0, r.port.to_string()),
                list_or_dash(&r.gpus),
            ]
        })
        .collect();
    s += &section(
        "Replicas",
        &["REPLICA", "STATE", "ATTEMPT", "EXIT", "PID", "PORT", "GPUS"],
        &rows,
    );
    let rows: Vec<Vec<String>> = d
        .attempts
        .iter()
        .map(|a| {
            vec![
                a.replica.to_string(),
                a.attempt.to_string(),
                rfc3339(a.started),
                a.finished
                    .map_or("running".into(), |f| format!("{:.1}s", f - a.started)),
                a.exit_code.map_or("-".into(), |c| c.to_string()),
                a.log.display().to_string(),
            ]
        })
        .collect();
    s += &section(
        "Attempts",
        &["REPLICA", "ATTEMPT", "STARTED", "DURATION", "EXIT", "LOG"],
        &rows,
    );
    let rows: Vec<Vec<String>> = d
        .events
        .iter()
        .map(|e| {
            vec![
                age(t - e.time),
                e.kind.clone(),
                e.reason.clone(),
                e.message.clone(),
            ]
        })
        .collect();
    s += &section("Events", &["AGE", "TYPE", "REASON", "MESSAGE"], &rows);
    Ok(s)
}

impl Backend for LocalBackend {
    fn scope(&self) -> String {
        String::new()
    }

    fn wide_columns(&self) -> &'static [&'static str] {
        &["GPUS", "PORTS", "REASON"]
    }

    fn lint(&self, job: &TrainingJob) -> Vec<Finding> {
        trainctl_kube::lint_local(job)
    }

    async fn submit(&mut self, job: &TrainingJob, workdir: &Path) -> Result<()> {
        self.engine.create(job, workdir)?;
        if let Err(e) = self.engine.start_detached(job.name(), &self.supervisor) {
            let _ = self.engine.delete(job.name(), Duration::from_secs(1));
            return Err(e).context("cannot start the job's supervisor");
        }
        Ok(())
    }

    async fn job(&mut self, name: &str) -> Result<TrainingJob> {
        Ok(self.engine.job(name)?.spec)
    }

    async fn list(&mut self, name: Option<&str>) -> Result<Vec<JobSummary>> {
        let (jobs, mut unreadable) = match name {
            Some(n) => (vec![self.engine.job(n)?], Vec::new()),
            None => self.engine.listing()?,
        };
        let t = now();
        let mut summaries = Vec::new();
        for j in &jobs {
            match self.engine.detail(&j.name) {
                Ok(d) => summaries.push(summary(&d, t)),
                // Deleted between the listing and now.
                Err(EngineError::NotFound(_)) => {}
                // Its replicas, attempts or events do not read.
                Err(e) => unreadable.push(UnreadableJob {
                    name: j.name.clone(),
                    created: Some(j.created),
                    problem: e.to_string(),
                }),
            }
        }
        for u in &unreadable {
            eprintln!(
                "warning: job {} cannot be read: {}; `trainctl delete {}` removes it",
                u.name, u.problem, u.name
            );
            summaries.push(unreadable_summary(u, t));
        }
        Ok(summaries)
    }

    async fn describe(&mut self, name: &str) -> Result<String> {
        describe(&self.engine.detail(name)?)
    }

    async fn logs(
        &mut self,
        job: &TrainingJob,
        request: &LogRequest,
        out: &mut dyn Write,
    ) -> Result<()> {
        let selection = Selection {
            prefix: request.replica.is_none(),
            replica: request.replica,
            attempt: request.attempt,
            tail: request.tail,
        };
        let name = job.name();
        check_attempt(name, request, &self.engine.store().attempts(name)?)?;
        copy_logs(
            self.engine.store(),
            name,
            &selection,
            out,
            request.follow,
            &mut |store| {
                // Over once nobody supervises the job any more (it ended, or was deleted).
                Ok(store
                    .job(name)?
                    .is_none_or(|j| !is_same_process(j.supervisor_pid, j.supervisor_start)))
            },
        )?;
        Ok(())
    }

    async fn wait(&mut self, name: &str, timeout: Option<Duration>) -> Result<Waited> {
        match self.engine.wait(name, timeout) {
            Ok(phase) => {
                let j = self.engine.job(name)?;
                Ok(Waited::Ended(Outcome {
                    phase,
                    reason: j.reason,
                    message: j.message,
                }))
            }
            Err(e @ EngineError::Timeout(..)) => Ok(Waited::TimedOut(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&mut self, name: &str, grace: Duration) -> Result<()> {
        Ok(self.engine.delete(name, grace)?)
    }

    async fn set_suspended(&mut self, name: &str, suspended: bool) -> Result<()> {
        if !suspended {
            return Ok(self.engine.resume(name, &self.supervisor)?);
        }
        // The replicas' grace period, and time for the supervisor to record and exit.
        let spec = self.engine.job(name)?.spec;
        let grace = spec
            .spec
            .run_policy
            .termination_grace_period_seconds
            .map_or(SupervisorConfig::from_env().grace, |s| s as f64);
        let wait = Duration::from_secs_f64(grace + 30.0);
        let phase = self.engine.suspend(name, wait)?;
        if phase.is_terminal() {
            bail!(
                "job {name:?} ended ({}) before it was suspended",
                phase.as_str()
            );
        }
        Ok(())
    }

    async fn resume_lost(&mut self) -> Result<Vec<String>> {
        Ok(self.engine.resume_lost(&self.supervisor)?)
    }

    async fn metrics(&mut self, name: &str) -> Result<Vec<(String, Run)>> {
        let home = self.engine.home();
        let (mut c, ended) = collector(home, name)?;
        c.collect(ended)?;
        let mut m = JobMetrics::new(&home.job_dir(name), &home.tensorboard_dir(name));
        warn(&m.poll()?);
        Ok(m.runs()
            .into_iter()
            .map(|(n, r)| (n.to_string(), r.clone()))
            .collect())
    }

    async fn collect(&mut self, _: &str, _: &Path, _: &mut dyn FnMut(usize)) -> Result<()> {
        bail!(
            "trainctl records the metrics of local jobs while they run (see `trainctl metrics JOB`); \
             collect is for cluster jobs: use --kube (or -n/--context)"
        )
    }
}
