//! The local engine's public face: create, start, inspect, wait for and delete jobs.
//!
//! Reading (listing, describing, waiting, logs) writes nothing unless housekeeping finds
//! something to record, and works on a full disk: what cannot be recorded is shown as it
//! would have been recorded. `delete` removes a job's files before its records, so on a
//! full disk it frees the space the records need.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use trainctl_core::plan::is_expired;
use trainctl_core::state_machine::{supervisor_lost, JobPhase, Outcome, LOST_REASON};
use trainctl_spec::TrainingJob;

use crate::home::Home;
use crate::store::{
    AttemptRow, EventRow, JobRow, ReplicaRow, ReplicaStatus, Store, StoreError, UnreadableJob,
};
use crate::{gpus, now, process, trash};

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
    /// Jobs found without their supervisor whose end could not be recorded (the disk is
    /// full), with when that was noticed: shown ended all the same.
    unrecorded: BTreeMap<String, f64>,
}

impl LocalEngine {
    /// Opens the state directory (creating it on first use).
    pub fn open(home: Home) -> Result<Self, EngineError> {
        let store = Store::open(&home.db_path())?;
        Ok(LocalEngine {
            home,
            store,
            unrecorded: BTreeMap::new(),
        })
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
        // Until a supervisor takes over, the creating process answers for the job: if it
        // dies first, the job is not left Pending forever.
        let me = std::process::id() as i32;
        let supervisor = (me, process::start_ticks(me).unwrap_or(0));
        self.store.insert_job(job, workdir, now(), supervisor)?;
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

    /// Suspends a job: sets its `runPolicy.suspend`; its supervisor gives every replica
    /// SIGTERM and the grace period, then SIGKILL, gives back its GPUs and ports and exits
    /// with the job `Suspended`. Waits (at most `wait`) until the supervisor is done; returns
    /// the job's phase then (an ended job stays ended).
    pub fn suspend(&mut self, name: &str, wait: Duration) -> Result<JobPhase, EngineError> {
        let job = self.job(name)?;
        if job.phase.is_terminal() {
            return Err(EngineError::Invalid(format!(
                "job {name:?} has ended ({}); only a job that runs or waits can be suspended",
                job.phase.as_str()
            )));
        }
        self.store.suspend(name)?;
        let start = Instant::now();
        loop {
            let job = self.job(name)?;
            let supervised = job.supervisor_pid != 0
                && process::is_same_process(job.supervisor_pid, job.supervisor_start);
            if !supervised || job.phase.is_terminal() {
                return Ok(job.phase);
            }
            if start.elapsed() >= wait {
                return Err(EngineError::Timeout(
                    wait,
                    name.to_string(),
                    job.phase.as_str(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resumes a suspended job (by `suspend`, or after its supervisor was lost): clears
    /// `runPolicy.suspend` and starts a detached supervisor (`program`, as in
    /// [`LocalEngine::start_detached`]); the job queues for its GPUs again and every replica
    /// that had not succeeded starts its next attempt with the same checkpoint directory.
    pub fn resume(&mut self, name: &str, program: &[String]) -> Result<(), EngineError> {
        self.resume_here(name)?;
        self.start_detached(name, program)
    }

    /// Readies a suspended job for a supervisor that the caller runs itself (an experiment
    /// supervising its trials in-process): clears `runPolicy.suspend` and records the resume,
    /// as [`LocalEngine::resume`] does before it starts a detached supervisor.
    pub fn resume_here(&mut self, name: &str) -> Result<(), EngineError> {
        let job = self.job(name)?;
        let message = "resumed: every replica that had not succeeded starts its next attempt \
                       with the same checkpoint directory";
        if !self.store.resume(name, message, now())? {
            let what = if job.phase == JobPhase::Suspended {
                "is still being suspended (its replicas are stopping); try again in a moment"
            } else {
                "is not suspended"
            };
            return Err(EngineError::Invalid(format!(
                "job {name:?} {what} (phase {})",
                job.phase.as_str()
            )));
        }
        Ok(())
    }

    /// Resumes every job suspended because its supervisor was lost (a crash, a reboot);
    /// returns their names.
    pub fn resume_lost(&mut self, program: &[String]) -> Result<Vec<String>, EngineError> {
        let lost: Vec<String> = self
            .jobs()?
            .into_iter()
            .filter(|j| j.phase == JobPhase::Suspended && j.reason == LOST_REASON)
            .map(|j| j.name)
            .collect();
        for name in &lost {
            self.resume(name, program)?;
        }
        Ok(lost)
    }

    /// Every job that reads, oldest first (after housekeeping).
    pub fn jobs(&mut self) -> Result<Vec<JobRow>, EngineError> {
        Ok(self.listing()?.0)
    }

    /// Every job, oldest first (after housekeeping): those that read and those that do not.
    pub fn listing(&mut self) -> Result<(Vec<JobRow>, Vec<UnreadableJob>), EngineError> {
        self.tidy()?;
        let (mut jobs, unreadable) = self.store.listing()?;
        for job in &mut jobs {
            self.show_unrecorded(job);
        }
        Ok((jobs, unreadable))
    }

    /// One job.
    pub fn job(&mut self, name: &str) -> Result<JobRow, EngineError> {
        self.tidy()?;
        let mut job = self
            .store
            .job(name)?
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        self.show_unrecorded(&mut job);
        Ok(job)
    }

    /// One job with replicas, attempts and events.
    pub fn detail(&mut self, name: &str) -> Result<JobDetail, EngineError> {
        let job = self.job(name)?;
        let mut detail = JobDetail {
            replicas: self.store.replicas(name)?,
            attempts: self.store.attempts(name)?,
            events: self.store.events(name)?,
            job,
        };
        if let Some(&at) = self.unrecorded.get(name) {
            for r in &mut detail.replicas {
                if r.state == ReplicaStatus::Running {
                    r.state = ReplicaStatus::Stopped;
                }
            }
            for a in &mut detail.attempts {
                a.finished = a.finished.or(Some(at));
            }
        }
        Ok(detail)
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
    /// files (moved aside at once, unlinked in the background) and its records. Works for a
    /// job whose record does not read, and on a full disk, where the files are removed first
    /// to make the room that removing the records needs.
    pub fn delete(&mut self, name: &str, grace: Duration) -> Result<(), EngineError> {
        self.tidy()?;
        let (pid, start) = self
            .store
            .supervisor(name)?
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let asked = match self.store.set_deleting(name) {
            Ok(()) => true,
            // A detached supervisor also stops on SIGTERM, so a record that cannot be
            // written (the disk is full) does not keep the job running.
            Err(e) if self.cannot_write(&e) => false,
            Err(e) => return Err(e.into()),
        };
        if process::is_same_process(pid, start) {
            // A trial supervised inside its experiment's process stops on the deleting mark
            // alone: a signal would stop the whole experiment. Without the mark (a full disk)
            // its replicas are killed below and its supervisor sees them exit.
            let in_experiment = self.store.drives_experiment(pid, start)?;
            if !in_experiment {
                process::signal_process(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + grace + Duration::from_secs(10);
            while (asked || !in_experiment)
                && self.supervised_by(name, (pid, start))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill_replicas(name, grace);
        let dir = self.home.job_dir(name);
        let aside = dir
            .exists()
            .then(|| trash::move_aside(&self.home, &dir))
            .flatten();
        let remove_now = |path: &Path| {
            std::fs::remove_dir_all(path)
                .map_err(|e| EngineError::Invalid(format!("cannot remove {}: {e}", path.display())))
        };
        if dir.exists() {
            remove_now(&dir)?;
        }
        match self.store.remove_job(name) {
            Err(e) if self.cannot_write(&e) => {
                // The disk is full (or was when the store was opened): free the job's
                // space first, then look again.
                if let Some(aside) = &aside {
                    remove_now(aside)?;
                }
                self.store.reopen()?;
                self.store.remove_job(name)?;
            }
            removed => removed?,
        }
        if let Some(aside) = aside.filter(|a| a.exists()) {
            trash::empty_later(&aside);
        }
        self.unrecorded.remove(name);
        Ok(())
    }

    /// Whether the live process `supervisor` (pid, start ticks) still supervises the job: a
    /// supervisor lets go of a job it has finished with (see `Store::let_go`) before it exits,
    /// and one in an experiment's process does not exit at all.
    fn supervised_by(&self, name: &str, supervisor: (i32, u64)) -> bool {
        self.store.supervisor(name).ok().flatten() == Some(supervisor)
            && process::is_same_process(supervisor.0, supervisor.1)
    }

    /// Kills whatever is left of a job's processes (after a supervisor crash, or a replica
    /// that left its process group): the recorded process groups (SIGTERM, SIGKILL after
    /// `grace`), then any process that still carries the job's checkpoint directory in its
    /// environment. Replicas that cannot be read are left to the second pass.
    fn kill_replicas(&self, name: &str, grace: Duration) {
        let live: Vec<i32> = self
            .store
            .replicas(name)
            .unwrap_or_default()
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
        let marker = format!(
            "TRAINCTL_CHECKPOINT_DIR={}",
            self.home.checkpoint_dir(name).display()
        );
        for pid in process::with_env_entry(&marker) {
            process::signal_process(pid, libc::SIGKILL);
        }
    }

    /// True when `e` says the store cannot be written now (the disk is full, or it was
    /// opened read-only because of that).
    fn cannot_write(&self, e: &StoreError) -> bool {
        self.store.is_read_only() || e.is_disk_full()
    }

    /// What becomes of a job that lost its supervisor (Suspended, or Failed for a `Never`
    /// job): a detached supervisor's log is named.
    fn lost_outcome(&self, job: &JobRow) -> Outcome {
        let log = self.home.supervisor_log(&job.name);
        let log = log.exists().then(|| log.to_string_lossy().into_owned());
        supervisor_lost(&job.spec, log.as_deref())
    }

    /// Shows a job whose loss could not be recorded as it would have been recorded.
    fn show_unrecorded(&self, job: &mut JobRow) {
        if job.phase.is_terminal() {
            return;
        }
        if let Some(&at) = self.unrecorded.get(&job.name) {
            let lost = self.lost_outcome(job);
            job.phase = lost.phase;
            job.reason = lost.reason;
            job.message = lost.message;
            job.finished = lost.phase.is_terminal().then_some(at);
        }
    }

    /// Records that the job lost its supervisor (closing its attempts and replicas; an
    /// unfinished job is suspended, or fails under `Never`) and kills what is left of it. On a full disk it is only
    /// killed, and shown as it would have been recorded.
    fn end_lost(&mut self, job: &JobRow, t: f64) -> Result<(), EngineError> {
        let name = job.name.as_str();
        if self.unrecorded.contains_key(name) {
            return Ok(());
        }
        let lost = self.lost_outcome(job);
        let recorded = if job.phase.is_terminal() {
            // It died while stopping what still ran after the end.
            if !self.store.holds_anything(name)? {
                return Ok(());
            }
            self.store
                .close_after_loss(name, &lost.message, t)
                .map(|()| true)
        } else {
            self.store.lose_unless_ended(name, &lost, t)
        };
        match recorded {
            Ok(false) => Ok(()),
            Ok(true) => {
                self.kill_replicas(name, Duration::from_secs(1));
                Ok(self.store.release(name)?)
            }
            Err(e) if self.cannot_write(&e) => {
                self.kill_replicas(name, Duration::from_secs(1));
                eprintln!(
                    "warning: job {name} lost its supervisor; that cannot be recorded ({e}), \
                     so it is shown as {} without being recorded",
                    lost.phase.as_str().to_lowercase()
                );
                self.unrecorded.insert(name.to_string(), t);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Housekeeping on every read: a job whose supervisor died is marked failed, or if it
    /// had ended, what it left open is closed (and its processes killed); a finished job past ttlSecondsAfterFinished is deleted (later,
    /// when the disk is full).
    fn tidy(&mut self) -> Result<(), EngineError> {
        let t = now();
        for job in self.store.jobs()? {
            if job.supervisor_pid != 0
                && !process::is_same_process(job.supervisor_pid, job.supervisor_start)
            {
                self.end_lost(&job, t)?;
            }
            if job.phase.is_terminal() && is_expired(&job.spec, job.finished, t) {
                match self.store.remove_job(&job.name) {
                    Err(e) if self.cannot_write(&e) => {}
                    removed => {
                        removed?;
                        let _ = std::fs::remove_dir_all(self.home.job_dir(&job.name));
                    }
                }
            }
        }
        Ok(())
    }
}
