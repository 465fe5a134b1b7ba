//! The supervisor of one job: observes its replica processes, asks core for the plan (what
//! to launch and stop), does it, and records everything in the store. It runs in the foreground for
//! `trainctl run`, in a detached process for `trainctl submit`, and on a thread of an
//! experiment's process for each of its trials.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use trainctl_core::backoff::parse_seconds;
use trainctl_core::plan::{plan, resumed_attempt, Plan};
use trainctl_core::state_machine::{
    Backoff, JobPhase, Observation, Outcome, ReplicaObservation, ReplicaState, StopRequest,
};
use trainctl_core::wiring::{replica_argv, replica_env, AttemptContext, Hosts};
use trainctl_core::ReplicaId;
use trainctl_gpu::lease::{busy_without_lease, Lease, LeaseDir, SHARE_BUSY_VAR};
use trainctl_spec::TrainingJob;

use crate::admission::{self, Admission};
use crate::disk::{self, Reserve, RESERVE_BYTES};
use crate::engine::EngineError;
use crate::home::Home;
use crate::process::{self, Launch};
use crate::store::{ReplicaRow, ReplicaStatus, Store, StoreError};
use crate::{gpus, now};

/// Timing knobs of a supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Delay before restarts (`TRAINCTL_RESTART_BACKOFF_SECONDS` sets the base; default 1s,
    /// doubling, at most 60s).
    pub backoff: Backoff,
    /// Time between SIGTERM and SIGKILL when stopping a replica of a job without
    /// `runPolicy.terminationGracePeriodSeconds` (`TRAINCTL_STOP_GRACE_SECONDS`, default 10).
    pub grace: f64,
    /// How often the queue and the delete flag are checked.
    pub poll: Duration,
}

impl SupervisorConfig {
    /// Defaults, overridden by the environment.
    pub fn from_env() -> Self {
        SupervisorConfig {
            backoff: Backoff::from_lookup(|k| std::env::var(k).ok()),
            grace: std::env::var("TRAINCTL_STOP_GRACE_SECONDS")
                .ok()
                .as_deref()
                .and_then(parse_seconds)
                .unwrap_or(10.0),
            poll: Duration::from_millis(100),
        }
    }
}

/// A replica process that has exited.
struct Exit {
    id: ReplicaId,
    attempt: u32,
    code: i32,
    at: f64,
}

/// A replica process that is alive.
struct LiveProcess {
    pgid: i32,
    stop_sent_at: Option<f64>,
    killed: bool,
}

struct ReplicaTrack {
    state: ReplicaState,
    attempt: Option<u32>,
    finished_at: Option<f64>,
    live: Option<LiveProcess>,
    port: u16,
    gpus: Vec<u32>,
}

impl ReplicaTrack {
    /// A replica as this supervisor finds it: never started, succeeded (it stays so), or
    /// ended by a suspension or a lost supervisor, to resume with its next attempt.
    fn taken_over(row: &ReplicaRow) -> ReplicaTrack {
        let last = u32::try_from(row.attempt).ok();
        let (state, attempt) = match last {
            Some(a) if row.state == ReplicaStatus::Succeeded => (ReplicaState::Succeeded, Some(a)),
            last => (ReplicaState::NotStarted, last.map(resumed_attempt)),
        };
        ReplicaTrack {
            state,
            attempt,
            finished_at: None,
            live: None,
            port: row.port,
            gpus: row.gpus.clone(),
        }
    }
}

struct Supervisor<'a> {
    home: &'a Home,
    store: Store,
    job: TrainingJob,
    workdir: PathBuf,
    cfg: &'a SupervisorConfig,
    replicas: BTreeMap<ReplicaId, ReplicaTrack>,
    exits: (Sender<Exit>, Receiver<Exit>),
    admitted: bool,
    started_at: Option<f64>,
    restarts: u32,
    ended: Option<Outcome>,
    shown: Option<(JobPhase, String, String)>,
    /// Machine-wide leases on the GPUs granted, held until the job lets them go.
    leases: Vec<Lease>,
    /// GPUs seen busy with someone else's processes, and when.
    busy: Option<(Instant, Vec<u32>)>,
    /// Given back when the disk is full, to record how the job ends.
    reserve: Reserve,
    /// Set when a replica failed and its log cannot grow.
    disk_full: Option<String>,
    /// `suspend` was asked for (kept until this supervisor exits).
    user_suspend: bool,
    /// The jobs the queue preempts this one for, while it is being suspended for them.
    preemptor: Option<String>,
    /// When the queue was last asked whether it preempts this job.
    preempt_checked: Option<Instant>,
    /// The jobs this one waits to preempt, as last noted in an event.
    preempting_noted: Vec<String>,
}

/// How often a running preemptible job asks the queue whether it is preempted.
const PREEMPT_CHECK: Duration = Duration::from_millis(500);

/// How long a reading of busy GPUs holds while a job waits.
const BUSY_RECHECK: Duration = Duration::from_secs(10);

/// Drives job `name` until it has ended and none of its processes is left. `stop` (set by a
/// signal handler or by `delete`) stops every replica and ends the job as Failed/Stopped.
/// Returns the final phase. On an error (the state database cannot be written) every
/// replica is stopped before it is returned.
pub fn supervise(
    home: &Home,
    name: &str,
    cfg: &SupervisorConfig,
    stop: &AtomicBool,
) -> Result<JobPhase, EngineError> {
    let store = Store::open(&home.db_path())?;
    let row = store
        .job(name)?
        .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
    let me = std::process::id() as i32;
    store.set_supervisor(name, me, process::start_ticks(me).unwrap_or(0))?;
    let _ = std::fs::create_dir_all(home.job_dir(name));
    let reserve = Reserve::claim(&home.reserve(name), RESERVE_BYTES);
    let replicas = store
        .replicas(name)?
        .into_iter()
        .map(|r| (r.replica, ReplicaTrack::taken_over(&r)))
        .collect();
    let mut sup = Supervisor {
        home,
        job: row.spec,
        workdir: row.workdir,
        admitted: row.admitted,
        restarts: row.restarts,
        started_at: row.started,
        store,
        cfg,
        replicas,
        exits: channel(),
        ended: None,
        shown: None,
        leases: Vec::new(),
        busy: None,
        reserve,
        disk_full: None,
        user_suspend: false,
        preemptor: None,
        preempt_checked: None,
        preempting_noted: Vec::new(),
    };
    let result = sup.run(stop);
    if result.is_err() {
        sup.abandon();
    }
    result
}

impl Supervisor<'_> {
    fn name(&self) -> String {
        self.job.name().to_string()
    }

    fn event(&mut self, warning: bool, reason: &str, message: &str) {
        let name = self.name();
        let _ = self.write(|s| s.add_event(&name, now(), warning, reason, message));
    }

    /// Runs a store write; on a full disk, gives back the reserved space and tries again.
    fn write(
        &mut self,
        f: impl Fn(&mut Store) -> Result<(), StoreError>,
    ) -> Result<(), EngineError> {
        match f(&mut self.store) {
            Err(e) if e.is_disk_full() && self.reserve.release() => Ok(f(&mut self.store)?),
            written => Ok(written?),
        }
    }

    /// After an error that ends supervision: stops every replica (SIGKILL after the grace
    /// period), so none outlives its supervisor. Nothing is recorded.
    fn abandon(&mut self) {
        let ids: Vec<ReplicaId> = self.replicas.keys().copied().collect();
        for id in ids {
            self.stop(id, now());
        }
        let deadline = Instant::now() + Duration::from_secs_f64(self.grace());
        while self.replicas.values().any(|r| r.live.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(exit) = self.exits.1.recv_timeout(left) else {
                break;
            };
            if let Some(r) = self.replicas.get_mut(&exit.id) {
                if r.attempt == Some(exit.attempt) {
                    r.live = None;
                }
            }
        }
        for live in self.replicas.values().filter_map(|r| r.live.as_ref()) {
            process::signal_group(live.pgid, libc::SIGKILL);
        }
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<JobPhase, EngineError> {
        let need = self.job.total_gpus();
        let inventory = if need > 0 {
            gpus::inventory()
        } else {
            Vec::new()
        };
        let unschedulable = (need as usize > inventory.len()).then(|| {
            format!(
                "the job needs {need} GPUs at once but this machine has {} (from {})",
                inventory.len(),
                gpus::source()
            )
        });
        let mut queued_noted = false;
        loop {
            let t = now();
            let (deleting, suspend) = self
                .store
                .requests(self.job.name())?
                .unwrap_or((true, false));
            let stop_requested = if deleting {
                Some(StopRequest::Delete)
            } else {
                stop.load(Ordering::SeqCst).then_some(StopRequest::Stop)
            };
            // Once suspending, this supervisor finishes the suspension; a resume meanwhile
            // is for the supervisor that `resume` starts after this one has exited.
            self.user_suspend |= suspend;
            self.check_preemption(&inventory, t)?;
            self.job.spec.run_policy.suspend = self.user_suspend || self.preemptor.is_some();
            let decide = |sup: &Self| {
                let obs = Observation {
                    stop_requested,
                    unschedulable: unschedulable.clone(),
                    ..sup.observe(t)
                };
                plan(&sup.job, &obs, sup.cfg.backoff)
            };
            let mut step = decide(self);
            let preempted = step.decision.phase == JobPhase::Suspended && !self.user_suspend;
            if let Some(by) = self.preemptor.as_ref().filter(|_| preempted) {
                step.decision.reason = "Preempted".into();
                step.decision.message = format!(
                    "preempted by {by}: its replicas stop (SIGTERM, the grace period to \
                     checkpoint) to give their GPUs; it resumes when GPUs free up"
                );
            }
            // Pending before admission: the job waits in the GPU queue, and says where.
            let mut waiting = None;
            if !self.admitted && step.decision.phase == JobPhase::Pending {
                waiting = self.try_admit(&inventory, t, &mut queued_noted)?;
                if waiting.is_none() {
                    step = decide(self);
                }
            }
            let decision = &step.decision;
            if self.ended.is_none() {
                self.ended = decision.outcome();
            }
            let message = waiting.as_deref().unwrap_or(&decision.message);
            self.show(decision.phase, &decision.reason, message, t)?;
            self.act(&step, t)?;
            self.escalate(t);

            let live = self.replicas.values().any(|r| r.live.is_some());
            if !live && self.ended.is_none() && step.decision.reason == "Preempted" {
                self.requeue()?;
                continue;
            }
            if !live && (self.ended.is_some() || decision.phase == JobPhase::Suspended) {
                if let Some(o) = self.ended.clone() {
                    self.show(o.phase, &o.reason, &o.message, t)?;
                }
                let name = self.name();
                // The leases go first: until the store releases the GPUs the queue counts
                // them held, so no job is offered a GPU whose lease is still taken.
                self.leases.clear();
                if self.ended.is_some() {
                    self.write(|s| s.release(&name))?;
                } else {
                    self.write(|s| s.park(&name))?;
                }
                self.reserve.release();
                return Ok(self.ended.as_ref().map_or(decision.phase, |o| o.phase));
            }
            let wake = step
                .wake_at
                .unwrap_or(f64::INFINITY)
                .min(t + self.cfg.poll.as_secs_f64());
            let timeout = Duration::from_secs_f64((wake - now()).clamp(0.001, 1.0));
            match self.exits.1.recv_timeout(timeout) {
                Ok(exit) => self.record_exit(exit)?,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
            while let Ok(exit) = self.exits.1.try_recv() {
                self.record_exit(exit)?;
            }
        }
    }

    /// Asks the queue, at most every [`PREEMPT_CHECK`], whether it preempts this running
    /// preemptible job for waiting ones; if so, remembers for whom.
    fn check_preemption(&mut self, inventory: &[u32], t: f64) -> Result<(), EngineError> {
        let asks = self.admitted
            && self.ended.is_none()
            && self.preemptor.is_none()
            && !self.user_suspend
            && self.job.spec.scheduling.preemptible
            && self.job.total_gpus() > 0;
        if !asks
            || self
                .preempt_checked
                .is_some_and(|at| at.elapsed() < PREEMPT_CHECK)
        {
            return Ok(());
        }
        self.preempt_checked = Some(Instant::now());
        self.preemptor = admission::preempted_by(&mut self.store, &self.job, inventory, t)?;
        Ok(())
    }

    /// After a preemption has stopped every replica: gives the GPUs and ports back and
    /// queues the job again; every replica that had not succeeded resumes with its next
    /// attempt once the queue grants GPUs again.
    fn requeue(&mut self) -> Result<(), EngineError> {
        let name = self.name();
        self.leases.clear();
        self.write(|s| s.requeue(&name))?;
        self.admitted = false;
        self.preemptor = None;
        self.job.spec.run_policy.suspend = false;
        for r in self.store.replicas(&name)? {
            self.replicas
                .insert(r.replica, ReplicaTrack::taken_over(&r));
        }
        Ok(())
    }

    /// Asks the GPU queue for the job's resources; notes once that the job is queued.
    /// None when they were granted, else the job's place in the queue and why it waits.
    /// Only GPUs whose machine-wide lease this supervisor could take are offered, so
    /// trainctls of other homes or users never share a GPU.
    fn try_admit(
        &mut self,
        inventory: &[u32],
        t: f64,
        queued_noted: &mut bool,
    ) -> Result<Option<String>, EngineError> {
        let dir = LeaseDir::from_env();
        // Held until this returns: no other trainctl probes the leases meanwhile.
        let _admitting = dir.admission_lock().map_err(EngineError::Invalid)?;
        let mut leases = dir.take_free(inventory).map_err(EngineError::Invalid)?;
        let busy = self.busy_gpus(&leases);
        leases.retain(|l| !busy.contains(&l.index));
        let leased: Vec<u32> = leases.iter().map(|l| l.index).collect();
        match admission::try_admit(&mut self.store, &self.job, &leased, t)? {
            Admission::Granted => {
                self.admitted = true;
                self.reload_allocation()?;
                let granted: Vec<u32> = self
                    .replicas
                    .values()
                    .flat_map(|r| r.gpus.clone())
                    .collect();
                leases.retain(|l| granted.contains(&l.index));
                self.leases = leases;
                self.event(
                    false,
                    "Admitted",
                    "resources granted; starting every replica",
                );
                Ok(None)
            }
            Admission::Preempting(victims) => {
                let why = format!(
                    "preempting {} (suspending them to free their GPUs for this job)",
                    victims.join(", ")
                );
                if self.preempting_noted != victims {
                    self.event(false, "Preempting", &why);
                    self.preempting_noted = victims;
                }
                Ok(Some(why))
            }
            Admission::Wait(why) => {
                if !*queued_noted {
                    *queued_noted = true;
                    let need = self.job.total_gpus();
                    self.event(
                        false,
                        "Queued",
                        &format!("waiting for {need} free GPUs to start the whole job: {why}"),
                    );
                }
                Ok(Some(why))
            }
        }
    }

    /// GPUs among the leased ones that run someone else's processes, read at most every
    /// [`BUSY_RECHECK`] while the job waits; each newly busy one is noted as an event.
    fn busy_gpus(&mut self, leases: &[Lease]) -> Vec<u32> {
        let fresh = self
            .busy
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < BUSY_RECHECK);
        if !fresh {
            let leased: Vec<u32> = leases.iter().map(|l| l.index).collect();
            let busy = busy_without_lease(&leased);
            let before = self.busy.take().map(|(_, b)| b).unwrap_or_default();
            for (_, why) in busy.iter().filter(|(g, _)| !before.contains(g)) {
                self.event(
                    true,
                    "GpuBusy",
                    &format!("{why}; not handing it out ({SHARE_BUSY_VAR}=1 allows it)"),
                );
            }
            self.busy = Some((Instant::now(), busy.into_iter().map(|(g, _)| g).collect()));
        }
        self.busy
            .as_ref()
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }

    /// Carries out the plan: launches and stops, and the restart count and start time.
    fn act(&mut self, plan: &Plan, t: f64) -> Result<(), EngineError> {
        self.restarts = plan.restarts;
        self.started_at = plan.started_at;
        for launch in &plan.launches {
            self.launch(launch.id, launch.attempt, launch.restart, t)?;
        }
        for id in &plan.stops {
            self.stop(*id, t);
        }
        Ok(())
    }

    fn observe(&self, t: f64) -> Observation {
        Observation {
            now: t,
            admitted: self.admitted,
            started_at: self.started_at,
            restarts: self.restarts,
            replicas: self
                .replicas
                .iter()
                .map(|(id, r)| ReplicaObservation {
                    id: *id,
                    state: r.state,
                    finished_at: r.finished_at,
                })
                .collect(),
            ended: self.ended.clone(),
            disk_full: self.disk_full.clone(),
            attempts: self
                .replicas
                .iter()
                .filter_map(|(id, r)| Some((*id, r.attempt?)))
                .collect(),
            ..Observation::default()
        }
    }

    /// Records a phase change (and its event) once.
    fn show(
        &mut self,
        phase: JobPhase,
        reason: &str,
        message: &str,
        t: f64,
    ) -> Result<(), EngineError> {
        let key = (phase, reason.to_string(), message.to_string());
        if self.shown.as_ref() != Some(&key) {
            let name = self.name();
            self.write(|s| s.set_phase(&name, phase, reason, message, t))?;
            // An event per phase and reason; a new message alone (the queue position) is not one.
            let new_reason = self
                .shown
                .as_ref()
                .is_none_or(|(p, r, _)| (*p, r.as_str()) != (phase, reason));
            if new_reason && (phase != JobPhase::Pending || reason != "Starting") {
                self.event(phase == JobPhase::Failed, reason, message);
            }
            self.shown = Some(key);
        }
        Ok(())
    }

    fn reload_allocation(&mut self) -> Result<(), EngineError> {
        for r in self.store.replicas(self.job.name())? {
            if let Some(t) = self.replicas.get_mut(&r.replica) {
                t.port = r.port;
                t.gpus = r.gpus;
            }
        }
        Ok(())
    }

    fn launch(
        &mut self,
        id: ReplicaId,
        attempt: u32,
        is_restart: bool,
        t: f64,
    ) -> Result<(), EngineError> {
        let name = self.name();
        let ports: BTreeMap<ReplicaId, u16> =
            self.replicas.iter().map(|(id, r)| (*id, r.port)).collect();
        let checkpoint_dir = self.home.checkpoint_dir(&name);
        let log_dir = self.home.tensorboard_dir(&name);
        std::fs::create_dir_all(&checkpoint_dir)?;
        std::fs::create_dir_all(&log_dir)?;
        let mut env = replica_env(
            &self.job,
            id,
            &Hosts::Local { ports: &ports },
            &AttemptContext {
                attempt,
                checkpoint_dir: &checkpoint_dir.to_string_lossy(),
                log_dir: &log_dir.to_string_lossy(),
            },
        );
        let gpus = &self.replicas[&id].gpus;
        env.insert(
            "CUDA_VISIBLE_DEVICES".into(),
            gpus.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
        let argv = replica_argv(&self.job, id.role);
        let log = self.home.attempt_log(&name, id, attempt);
        self.write(|s| s.start_attempt(&name, id, attempt, &log, t, is_restart))?;
        let spawned = process::spawn(&Launch {
            argv: &argv,
            env: &env,
            cwd: &self.workdir,
            log: &log,
        });
        let track = self.replicas.get_mut(&id).expect("known replica");
        track.attempt = Some(attempt);
        track.state = ReplicaState::Running;
        track.finished_at = None;
        track.live = None;
        match spawned {
            Ok(sp) => {
                let pid = sp.pid;
                self.write(|s| s.set_attempt_pid(&name, id, attempt, pid, sp.start_ticks))?;
                self.replicas.get_mut(&id).expect("known replica").live = Some(LiveProcess {
                    pgid: pid,
                    stop_sent_at: None,
                    killed: false,
                });
                let tx = self.exits.0.clone();
                let mut child = sp.child;
                std::thread::spawn(move || {
                    process::wait_exited_unreaped(pid);
                    // Like a container: when the main process exits, the rest of its
                    // process group goes too.
                    process::signal_group(pid, libc::SIGKILL);
                    let code = child.wait().map(process::exit_code).unwrap_or(255);
                    let _ = tx.send(Exit {
                        id,
                        attempt,
                        code,
                        at: now(),
                    });
                });
                self.event(
                    false,
                    if is_restart { "Restarted" } else { "Started" },
                    &format!("{id} attempt {attempt} started (pid {pid})"),
                );
            }
            Err(e) => {
                if disk::is_full(&e) {
                    self.note_disk_full(id, &log);
                }
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                {
                    let _ = writeln!(f, "trainctl: {e}");
                }
                let _ = self.exits.0.send(Exit {
                    id,
                    attempt,
                    code: 127,
                    at: t,
                });
                self.event(true, "FailedToStart", &format!("{id}: {e}"));
            }
        }
        Ok(())
    }

    /// Remembers (the first time) that a replica's log cannot be written for lack of space.
    fn note_disk_full(&mut self, id: ReplicaId, log: &std::path::Path) {
        self.disk_full.get_or_insert_with(|| {
            format!("disk full writing the log of {id} in {}", log.display())
        });
    }

    fn record_exit(&mut self, exit: Exit) -> Result<(), EngineError> {
        let name = self.name();
        let Some(track) = self.replicas.get_mut(&exit.id) else {
            return Ok(());
        };
        if track.attempt != Some(exit.attempt) {
            return Ok(());
        }
        let stopped = track
            .live
            .as_ref()
            .is_some_and(|l| l.stop_sent_at.is_some());
        track.live = None;
        track.finished_at = Some(exit.at);
        track.state = if stopped {
            ReplicaState::Stopped
        } else if exit.code == 0 {
            ReplicaState::Succeeded
        } else {
            ReplicaState::Failed {
                exit_code: exit.code,
            }
        };
        let label = ReplicaStatus::from(track.state);
        if label == ReplicaStatus::Failed {
            // A replica that failed on a full disk: say so rather than only its exit code.
            // Asked before anything is written, while the disk is as the replica left it.
            let log = self.home.attempt_log(&name, exit.id, exit.attempt);
            if disk::can_grow(&log).is_err_and(|e| disk::is_full(&e)) {
                self.note_disk_full(exit.id, &log);
            }
        }
        self.write(|s| s.end_attempt(&name, exit.id, exit.attempt, label, exit.code, exit.at))?;
        self.event(
            label == ReplicaStatus::Failed,
            &format!("Replica{}", label.as_str()),
            &format!(
                "{} attempt {} exited with code {}",
                exit.id, exit.attempt, exit.code
            ),
        );
        Ok(())
    }

    /// Sends SIGTERM to a live replica's process group (once).
    fn stop(&mut self, id: ReplicaId, t: f64) {
        if let Some(live) = self.replicas.get_mut(&id).and_then(|r| r.live.as_mut()) {
            if live.stop_sent_at.is_none() {
                live.stop_sent_at = Some(t);
                process::signal_group(live.pgid, libc::SIGTERM);
            }
        }
    }

    /// Seconds between SIGTERM and SIGKILL: the job's `terminationGracePeriodSeconds`, else
    /// the engine's.
    fn grace(&self) -> f64 {
        let policy = &self.job.spec.run_policy;
        policy
            .termination_grace_period_seconds
            .map_or(self.cfg.grace, |s| s as f64)
    }

    /// SIGKILL for replicas that outlived their grace period.
    fn escalate(&mut self, t: f64) {
        let grace = self.grace();
        for r in self.replicas.values_mut() {
            if let Some(live) = r.live.as_mut() {
                if let Some(sent) = live.stop_sent_at {
                    if !live.killed && t - sent >= grace {
                        live.killed = true;
                        process::signal_group(live.pgid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}
