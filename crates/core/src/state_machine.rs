//! The job state machine: given the spec and what the engine observed, decide the job phase
//! and which replicas to start, restart or stop. Pure: no clocks, no I/O; the engine passes
//! `now` in and carries the actions out, so the same rules drive local processes and pods.
//!
//! Semantics follow Kubeflow training-operator v1 where it defines them: the chief (or master)
//! decides success, else worker 0, or every worker under `AllWorkers`; a failed replica fails
//! the job unless the restart policy restarts it; `ExitCode` retries exit codes >= 128 and
//! fails on 1..=127; `backoffLimit` and `activeDeadlineSeconds` fail the job; when the job
//! ends the replicas still running (parameter servers included) are stopped per
//! `cleanPodPolicy`.

use serde::{Deserialize, Serialize};
use trainctl_spec::{CleanPodPolicy, ReplicaType, RestartPolicy, SuccessPolicy, TrainingJob};

use crate::ReplicaId;

/// The phase of a whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobPhase {
    /// Accepted, waiting for resources or for its replicas to start.
    Pending,
    /// Replicas are running.
    Running,
    /// A failed replica is about to be restarted.
    Restarting,
    /// The deciding replicas succeeded.
    Succeeded,
    /// A replica failed for good, the backoff limit or the deadline was reached.
    Failed,
    /// `runPolicy.suspend` is set: no replica runs.
    Suspended,
}

impl JobPhase {
    /// True for Succeeded and Failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobPhase::Succeeded | JobPhase::Failed)
    }

    /// The phase name as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Pending => "Pending",
            JobPhase::Running => "Running",
            JobPhase::Restarting => "Restarting",
            JobPhase::Succeeded => "Succeeded",
            JobPhase::Failed => "Failed",
            JobPhase::Suspended => "Suspended",
        }
    }

    /// Parses a phase name.
    pub fn parse(s: &str) -> Option<JobPhase> {
        [
            JobPhase::Pending,
            JobPhase::Running,
            JobPhase::Restarting,
            JobPhase::Succeeded,
            JobPhase::Failed,
            JobPhase::Suspended,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What the engine observed of one replica's latest attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaState {
    /// Not started yet (or waiting to be restarted).
    NotStarted,
    /// Running.
    Running,
    /// Exited 0.
    Succeeded,
    /// Exited non-zero (a signal N is reported as 128+N).
    Failed {
        /// The exit code.
        exit_code: i32,
    },
    /// Stopped by the engine on the state machine's request.
    Stopped,
}

/// One replica as observed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplicaObservation {
    /// Which replica.
    pub id: ReplicaId,
    /// Its latest attempt's state.
    pub state: ReplicaState,
    /// When the latest attempt ended (seconds, the engine's clock).
    pub finished_at: Option<f64>,
}

/// Everything the state machine needs to know about the present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The engine's clock, in seconds.
    pub now: f64,
    /// The resources were granted (GPUs, ports): replicas may start.
    pub admitted: bool,
    /// When the replicas first started, for activeDeadlineSeconds.
    pub started_at: Option<f64>,
    /// Restarts performed so far over the whole job.
    pub restarts: u32,
    /// Every replica of the job.
    pub replicas: Vec<ReplicaObservation>,
    /// The terminal outcome already recorded, if the job has ended.
    pub ended: Option<Outcome>,
}

/// A terminal outcome: the phase and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Succeeded or Failed.
    pub phase: JobPhase,
    /// A CamelCase reason such as `BackoffLimitExceeded`.
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
}

/// Restart delays: `base * 2^restarts`, capped at `max` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first restart.
    pub base: f64,
    /// Longest delay.
    pub max: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: 1.0,
            max: 60.0,
        }
    }
}

impl Backoff {
    /// The delay before restart number `restarts + 1`.
    pub fn delay(&self, restarts: u32) -> f64 {
        (self.base * 2f64.powi(restarts.min(30) as i32)).min(self.max)
    }
}

/// Something the engine must do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Start the replica's first attempt.
    Start(ReplicaId),
    /// Start a new attempt of a failed replica, not before the given time.
    Restart {
        /// Which replica.
        id: ReplicaId,
        /// Earliest time (engine clock, seconds).
        not_before: f64,
    },
    /// Stop the replica (SIGTERM, then SIGKILL after a grace period; delete the pod).
    Stop(ReplicaId),
}

/// The phase, why, and what to do now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The job's phase after this decision.
    pub phase: JobPhase,
    /// A CamelCase reason.
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
    /// What the engine must do now.
    pub actions: Vec<Action>,
}

impl Decision {
    fn new(phase: JobPhase, reason: &str, message: impl Into<String>) -> Self {
        Decision {
            phase,
            reason: reason.to_string(),
            message: message.into(),
            actions: Vec::new(),
        }
    }

    /// The outcome to record when this decision ends the job.
    pub fn outcome(&self) -> Option<Outcome> {
        self.phase.is_terminal().then(|| Outcome {
            phase: self.phase,
            reason: self.reason.clone(),
            message: self.message.clone(),
        })
    }
}

/// Whether an exit code is restarted under `policy`.
pub fn is_retryable(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::ExitCode => exit_code >= 128,
    }
}

/// Decides the job's phase and the actions the engine must take now.
pub fn decide(job: &TrainingJob, obs: &Observation, backoff: Backoff) -> Decision {
    let policy = &job.spec.run_policy;
    if let Some(ended) = &obs.ended {
        return finish(job, obs, ended.clone());
    }
    if policy.suspend {
        let mut d = Decision::new(JobPhase::Suspended, "Suspended", "the job is suspended");
        d.actions = running(obs).map(Action::Stop).collect();
        return d;
    }
    if !obs.admitted {
        return Decision::new(
            JobPhase::Pending,
            "Queued",
            "waiting for resources (GPUs) to start every replica at once",
        );
    }
    if let (Some(limit), Some(start)) = (policy.active_deadline_seconds, obs.started_at) {
        if obs.now - start >= limit as f64 {
            return finish(
                job,
                obs,
                Outcome {
                    phase: JobPhase::Failed,
                    reason: "DeadlineExceeded".into(),
                    message: format!("the job ran longer than activeDeadlineSeconds ({limit}s)"),
                },
            );
        }
    }
    if let Some(message) = success(job, obs) {
        return finish(
            job,
            obs,
            Outcome {
                phase: JobPhase::Succeeded,
                reason: "Succeeded".into(),
                message,
            },
        );
    }

    let mut restarts = Vec::new();
    for r in &obs.replicas {
        let ReplicaState::Failed { exit_code } = r.state else {
            continue;
        };
        if !is_retryable(policy.restart_policy, exit_code) {
            return finish(
                job,
                obs,
                Outcome {
                    phase: JobPhase::Failed,
                    reason: "ReplicaFailed".into(),
                    message: format!(
                        "{} exited with code {exit_code} (restartPolicy {:?} does not retry it)",
                        r.id, policy.restart_policy
                    ),
                },
            );
        }
        if obs.restarts + restarts.len() as u32 >= policy.backoff_limit {
            return finish(
                job,
                obs,
                Outcome {
                    phase: JobPhase::Failed,
                    reason: "BackoffLimitExceeded".into(),
                    message: format!(
                        "{} exited with code {exit_code} after {} restarts (backoffLimit {})",
                        r.id, obs.restarts, policy.backoff_limit
                    ),
                },
            );
        }
        let not_before = r.finished_at.unwrap_or(obs.now) + backoff.delay(obs.restarts);
        restarts.push(Action::Restart {
            id: r.id,
            not_before,
        });
    }

    let starts: Vec<Action> = obs
        .replicas
        .iter()
        .filter(|r| r.state == ReplicaState::NotStarted)
        .map(|r| Action::Start(r.id))
        .collect();
    let mut d = if !restarts.is_empty() {
        Decision::new(
            JobPhase::Restarting,
            "Restarting",
            format!("restarting {} failed replica(s)", restarts.len()),
        )
    } else if running(obs).next().is_some() {
        Decision::new(JobPhase::Running, "Running", "replicas are running")
    } else {
        Decision::new(JobPhase::Pending, "Starting", "starting replicas")
    };
    d.actions = starts.into_iter().chain(restarts).collect();
    d
}

fn running(obs: &Observation) -> impl Iterator<Item = ReplicaId> + '_ {
    obs.replicas
        .iter()
        .filter(|r| r.state == ReplicaState::Running)
        .map(|r| r.id)
}

fn state_of(obs: &Observation, id: ReplicaId) -> Option<ReplicaState> {
    obs.replicas.iter().find(|r| r.id == id).map(|r| r.state)
}

/// The success message when the success policy is met.
fn success(job: &TrainingJob, obs: &Observation) -> Option<String> {
    let replicas = &job.spec.replicas;
    let workers = replicas.count(ReplicaType::Worker);
    let leader = [ReplicaType::Chief, ReplicaType::Master]
        .into_iter()
        .find(|r| replicas.count(*r) > 0);
    let all_workers = job.spec.run_policy.success_policy == SuccessPolicy::AllWorkers;
    // As in Kubeflow v1, a chief or master always decides; AllWorkers only applies without
    // one (otherwise the workers finishing would end the job and stop a running chief).
    if all_workers && workers > 0 && leader.is_none() {
        let done = (0..workers).all(|i| {
            state_of(obs, ReplicaId::new(ReplicaType::Worker, i)) == Some(ReplicaState::Succeeded)
        });
        return done.then(|| format!("all {workers} workers succeeded"));
    }
    let decider = match leader {
        Some(role) => ReplicaId::new(role, 0),
        None => ReplicaId::new(ReplicaType::Worker, 0),
    };
    (state_of(obs, decider) == Some(ReplicaState::Succeeded))
        .then(|| format!("{decider} succeeded"))
}

/// The decision for an ended job: its outcome, and stop actions per cleanPodPolicy.
fn finish(job: &TrainingJob, obs: &Observation, outcome: Outcome) -> Decision {
    let mut d = Decision::new(outcome.phase, &outcome.reason, outcome.message);
    d.actions = match job.spec.run_policy.clean_pod_policy {
        CleanPodPolicy::Running | CleanPodPolicy::All => running(obs).map(Action::Stop).collect(),
        CleanPodPolicy::None => Vec::new(),
    };
    d
}
