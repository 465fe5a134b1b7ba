//! The local engine's public face: create, start, inspect, wait for and delete jobs.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use trainctl_core::plan::is_expired;
use trainctl_core::state_machine::{supervisor_lost, JobPhase};
use trainctl_spec::TrainingJob;

use crate::home::Home;
use crate::process;
use crate::store::{AttemptRow, EventRow, JobRow, ReplicaRow, Store, StoreError};
use crate::{gpus, now};

/// What can go wrong in the local engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// State database or state directory trouble.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No job of that name.
    #[error("job {0:?} not found (trainctl get lists the jobs)")]
    NotFound(String),
    /// The job cannot run here.
    #[error("{0}")]
    Invalid(String),
    /// `wait` gave up.
    #[error("timed out after {0:?} waiting for job {1:?} (phase {2})")]
    Timeout(Duration, String, &'static str),
    /// A file or process operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::Sql(e))
    }
}

/// Everything known about one job, for `describe` and `-o json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    /// The job record.
    pub job: JobRow,
    /// Its replicas' latest attempts.
    pub replicas: Vec<ReplicaRow>,
    /// Every attempt.
    pub attempts: Vec<AttemptRow>,
    /// What happened.
    pub events: Vec<EventRow>,
}

/// The local engine over one state directory.
pub struct LocalEngine {
    home: Home,
    store: Store,
}

impl LocalEngine {
    /// Opens the state directory (creating it on first use).
    pub fn open(home: Home) -> Result<Self, EngineError> {
        let store = Store::open(&home.db_path())?;
        Ok(LocalEngine { home, store })
    }

    /// The state directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The store, for log readers.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records a new job that will run in `workdir`. Refuses a job this machine can never
    /// run (more GPUs than it has) and a name that is taken; nothing is stored then.
    pub fn create(&mut self, job: &TrainingJob, workdir: &Path) -> Result<(), EngineError> {
        let need = job.total_gpus();
        // Asking nvidia-smi takes a while on GPU hosts: only GPU jobs ask.
        let have = if need > 0 {
            gpus::inventory().len() as u32
        } else {
            0
        };
        if need > have {
            return Err(EngineError::Invalid(format!(
                "job {:?} needs {need} GPUs at once but this machine has {have} (from {}); \
                 set TRAINCTL_GPUS=0,1,... to name the devices",
                job.name(),
                gpus::source()
            )));
        }
        if !workdir.is_dir() {
            return Err(EngineError::Invalid(format!(
                "working directory {} does not exist",
                workdir.display()
            )));
        }
        self.tidy()?;
        self.store.insert_job(job, workdir, now())?;
        Ok(())
    }

    /// Starts a detached supervisor for `name`: `program args... NAME` (the trainctl binary's
    /// hidden `supervise` command). It keeps running after this process exits.
    pub fn start_detached(&self, name: &str, program: &[String]) -> Result<(), EngineError> {
        let mut argv = program.to_vec();
        argv.push(name.to_string());
        let env = [(
            "TRAINCTL_HOME".to_string(),
            self.home.root().to_string_lossy().into_owned(),
        )];
        let pid = process::spawn_detached(&argv, &env, &self.home.supervisor_log(name))?;
        self.store
            .set_supervisor(name, pid, process::start_ticks(pid).unwrap_or(0))?;
        Ok(())
    }

    /// Every job, oldest first (after housekeeping).
    pub fn jobs(&mut self) -> Result<Vec<JobRow>, EngineError> {
        self.tidy()?;
        Ok(self.store.jobs()?)
    }

    /// One job.
    pub fn job(&mut self, name: &str) -> Result<JobRow, EngineError> {
        self.tidy()?;
        self.store
            .job(name)?
            .ok_or_else(|| EngineError::NotFound(name.to_string()))
    }

    /// One job with replicas, attempts and events.
    pub fn detail(&mut self, name: &str) -> Result<JobDetail, EngineError> {
        let job = self.job(name)?;
        Ok(JobDetail {
            replicas: self.store.replicas(name)?,
            attempts: self.store.attempts(name)?,
            events: self.store.events(name)?,
            job,
        })
    }

    /// Waits until the job has ended; returns its final phase.
    pub fn wait(&mut self, name: &str, timeout: Option<Duration>) -> Result<JobPhase, EngineError> {
        let start = Instant::now();
        loop {
            let job = self.job(name)?;
            if job.phase.is_terminal() {
                return Ok(job.phase);
            }
            if let Some(t) = timeout {
                if start.elapsed() >= t {
                    return Err(EngineError::Timeout(
                        t,
                        name.to_string(),
                        job.phase.as_str(),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every process of the job (SIGTERM, SIGKILL after `grace`) and removes its
    /// records and files.
    pub fn delete(&mut self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let job = self.job(name)?;
        self.store.set_deleting(name)?;
        let supervised = process::is_same_process(job.supervisor_pid, job.supervisor_start);
        if supervised {
            process::signal_process(job.supervisor_pid, libc::SIGTERM);
            let deadline = Instant::now() + grace + Duration::from_secs(10);
            while process::is_same_process(job.supervisor_pid, job.supervisor_start)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill_replicas(name, grace)?;
        self.store.remove_job(name)?;
        let dir = self.home.job_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    /// Kills whatever is left of a job's replica processes (after a supervisor crash).
    fn kill_replicas(&self, name: &str, grace: Duration) -> Result<(), EngineError> {
        let live: Vec<i32> = self
            .store
            .replicas(name)?
            .into_iter()
            .filter(|r| process::owns_group(r.pid, r.pid_start))
            .map(|r| r.pid)
            .collect();
        for pgid in &live {
            process::signal_group(*pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while live.iter().any(|g| process::group_alive(*g)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pgid in &live {
            process::signal_group(*pgid, libc::SIGKILL);
        }
        Ok(())
    }

    /// Housekeeping on every read: a job whose supervisor died is marked failed (and its
    /// processes killed); a finished job past ttlSecondsAfterFinished is deleted.
    fn tidy(&mut self) -> Result<(), EngineError> {
        let t = now();
        for job in self.store.jobs()? {
            if !job.phase.is_terminal()
                && job.supervisor_pid != 0
                && !process::is_same_process(job.supervisor_pid, job.supervisor_start)
            {
                let lost = supervisor_lost("supervisor.log");
                if self
                    .store
                    .fail_unless_ended(&job.name, &lost.reason, &lost.message, t)?
                {
                    self.kill_replicas(&job.name, Duration::from_secs(1))?;
                    self.store.release(&job.name)?;
                }
            }
            if job.phase.is_terminal() && is_expired(&job.spec, job.finished, t) {
                self.store.remove_job(&job.name)?;
                let _ = std::fs::remove_dir_all(self.home.job_dir(&job.name));
            }
        }
        Ok(())
    }
}
