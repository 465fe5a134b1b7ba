//! The job state machine: given the spec and what the engine observed, decide the job phase
//! and which replicas to start, restart or stop. Pure: no clocks, no I/O; the engine passes
//! `now` in and carries the actions out, so the same rules drive local processes and pods.
//!
//! Semantics follow Kubeflow training-operator v1 where it defines them: the chief (or master)
//! decides success, else worker 0, or every worker under `AllWorkers`; a failed replica fails
//! the job unless the restart policy restarts it; `ExitCode` retries exit codes >= 128 and
//! fails on 1..=127; `backoffLimit` and `activeDeadlineSeconds` fail the job; when the job
//! ends the replicas still running (parameter servers included) are stopped per
//! `cleanPodPolicy`. A user's stop request and a job the engine can never admit end it too.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use trainctl_spec::trial::EXPERIMENT_LABEL;
use trainctl_spec::{CleanPodPolicy, ReplicaType, RestartPolicy, SuccessPolicy, TrainingJob};

pub use crate::backoff::Backoff;
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

/// Everything the state machine needs to know about the present: what the engine observed,
/// what it recorded before, and what was asked of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// When the job ended, as recorded (for ttlSecondsAfterFinished).
    #[serde(default)]
    pub finished_at: Option<f64>,
    /// The current attempt of each replica, as recorded (absent: 0).
    #[serde(default)]
    pub attempts: BTreeMap<ReplicaId, u32>,
    /// The user asked to stop or delete the job.
    #[serde(default)]
    pub stop_requested: Option<StopRequest>,
    /// Why the engine can never admit the job (say, more GPUs than the machine has).
    #[serde(default)]
    pub unschedulable: Option<String>,
    /// Why the engine cannot write a failed replica's output (its disk is full): a restart
    /// would fail the same way, so the job fails, saying so.
    #[serde(default)]
    pub disk_full: Option<String>,
}

/// A user's request to end a job before it ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopRequest {
    /// Stop the job and keep its records.
    Stop,
    /// Stop the job to delete it.
    Delete,
}

impl StopRequest {
    /// The outcome of a job ended by this request.
    pub fn outcome(self) -> Outcome {
        let reason = match self {
            StopRequest::Stop => "Stopped",
            StopRequest::Delete => "Deleted",
        };
        Outcome {
            phase: JobPhase::Failed,
            reason: reason.into(),
            message: "the job was stopped by the user".into(),
        }
    }
}

/// An outcome: the phase and why (terminal, or `Suspended` for a lost supervisor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Succeeded or Failed (or Suspended, see [`supervisor_lost`]).
    pub phase: JobPhase,
    /// A CamelCase reason such as `BackoffLimitExceeded`.
    pub reason: String,
    /// A sentence for humans.
    pub message: String,
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

/// The exit codes that fail a job for good under `ExitCode`: the program's own verdict.
/// Higher codes (signals, OOM kills: 128+N) are retried.
pub const PERMANENT_EXIT_CODES: RangeInclusive<i32> = 1..=127;

/// The reason of a job whose supervisor was lost ([`supervisor_lost`]).
pub const LOST_REASON: &str = "SupervisorLost";

/// What becomes of a job whose engine lost it: the process that ran its replicas (the local
/// supervisor) is gone, so nothing observed or restarted them since. A job whose restart
/// policy restarts replicas is `Suspended` (reason `SupervisorLost`): its checkpoints stay
/// and `resume` continues it; a `Never` job fails. The engine observes the loss; what it
/// means for the job is decided here. `log` names where the lost process wrote, when it
/// wrote anywhere (a detached supervisor does; `trainctl run` writes to its terminal).
/// An experiment's trial is supervised inside the experiment's process: whatever its
/// restart policy it is `Suspended`, for the experiment's resume to continue it, so the
/// experiment's crash neither fails the trial nor costs a trial of its budget.
pub fn supervisor_lost(job: &TrainingJob, log: Option<&str>) -> Outcome {
    let experiment = job.metadata.labels.get(EXPERIMENT_LABEL);
    let what = match (log, experiment) {
        (Some(log), _) => format!("the supervising process exited unexpectedly (see {log})"),
        (None, Some(exp)) => format!("the process running experiment {exp} exited unexpectedly"),
        (None, None) => "the supervising process (trainctl run) exited unexpectedly".to_string(),
    };
    if let Some(exp) = experiment {
        return Outcome {
            phase: JobPhase::Suspended,
            reason: LOST_REASON.into(),
            message: format!(
                "{what}; its replicas were stopped; `trainctl resume experiment {exp}` \
                 continues this trial from its checkpoints"
            ),
        };
    }
    let (phase, then) = match job.spec.run_policy.restart_policy {
        RestartPolicy::Never => (
            JobPhase::Failed,
            "its replicas were stopped (restartPolicy Never does not resume)",
        ),
        _ => (
            JobPhase::Suspended,
            "its replicas were stopped; `trainctl resume` continues it from its checkpoints",
        ),
    };
    Outcome {
        phase,
        reason: LOST_REASON.into(),
        message: format!("{what}; {then}"),
    }
}

/// Whether an exit code is restarted under `policy`.
pub fn is_retryable(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::ExitCode => exit_code > *PERMANENT_EXIT_CODES.end(),
    }
}

/// The replicas whose success is the job's success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deciders {
    /// One replica: the chief or master when there is one, else worker 0.
    One(ReplicaId),
    /// Every worker (`AllWorkers`, without a chief or master).
    AllWorkers,
}

/// Who decides the job's success. As in Kubeflow v1, a chief or master always decides;
/// `AllWorkers` only applies without one (otherwise the workers finishing would end the job
/// and stop a running chief).
pub fn success_deciders(job: &TrainingJob) -> Deciders {
    let replicas = &job.spec.replicas;
    let leader = [ReplicaType::Chief, ReplicaType::Master]
        .into_iter()
        .find(|r| replicas.count(*r) > 0);
    let all_workers = job.spec.run_policy.success_policy == SuccessPolicy::AllWorkers;
    match leader {
        Some(role) => Deciders::One(ReplicaId::new(role, 0)),
        None if all_workers && replicas.count(ReplicaType::Worker) > 0 => Deciders::AllWorkers,
        None => Deciders::One(ReplicaId::new(ReplicaType::Worker, 0)),
    }
}

/// Decides the job's phase and the actions the engine must take now.
pub fn decide(job: &TrainingJob, obs: &Observation, backoff: Backoff) -> Decision {
    let policy = &job.spec.run_policy;
    if let Some(ended) = &obs.ended {
        return finish(job, obs, ended.clone());
    }
    if let Some(why) = &obs.unschedulable {
        return finish(
            job,
            obs,
            Outcome {
                phase: JobPhase::Failed,
                reason: "Unschedulable".into(),
                message: why.clone(),
            },
        );
    }
    if let Some(request) = obs.stop_requested {
        return finish(job, obs, request.outcome());
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

    if let Some(why) = &obs.disk_full {
        return finish(
            job,
            obs,
            Outcome {
                phase: JobPhase::Failed,
                reason: "DiskFull".into(),
                message: why.clone(),
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
    let succeeded = |id| state_of(obs, id) == Some(ReplicaState::Succeeded);
    match success_deciders(job) {
        Deciders::AllWorkers => {
            let workers = job.spec.replicas.count(ReplicaType::Worker);
            (0..workers)
                .all(|i| succeeded(ReplicaId::new(ReplicaType::Worker, i)))
                .then(|| format!("all {workers} workers succeeded"))
        }
        Deciders::One(decider) => succeeded(decider).then(|| format!("{decider} succeeded")),
    }
}

/// The decision for an ended job: its outcome, and stop actions per cleanPodPolicy (every
/// running replica when the user asked to stop).
fn finish(job: &TrainingJob, obs: &Observation, outcome: Outcome) -> Decision {
    let mut d = Decision::new(outcome.phase, &outcome.reason, outcome.message);
    let clean = job.spec.run_policy.clean_pod_policy != CleanPodPolicy::None;
    if clean || obs.stop_requested.is_some() {
        d.actions = running(obs).map(Action::Stop).collect();
    }
    d
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PyTorch job with the given `replicas:` and `runPolicy:` (flow mappings).
    pub(crate) fn job(replicas: &str, run_policy: &str) -> TrainingJob {
        let yaml = format!(
            "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: j}}\n\
             spec: {{framework: pytorch, command: [t], replicas: {replicas}, \
             runPolicy: {run_policy}}}\n"
        );
        trainctl_spec::parse_job_str("j.yaml", &yaml).expect("valid test job")
    }

    fn running(ids: &[&str]) -> Observation {
        Observation {
            now: 10.0,
            admitted: true,
            replicas: ids
                .iter()
                .map(|r| ReplicaObservation {
                    id: r.parse().unwrap(),
                    state: ReplicaState::Running,
                    finished_at: None,
                })
                .collect(),
            ..Observation::default()
        }
    }

    #[test]
    fn a_job_that_can_never_be_admitted_fails_as_unschedulable() {
        let obs = Observation {
            unschedulable: Some("needs 9 GPUs".into()),
            ..Observation::default()
        };
        let d = decide(&job("{worker: {}}", "{}"), &obs, Backoff::default());
        assert_eq!(
            (d.phase, d.reason.as_str()),
            (JobPhase::Failed, "Unschedulable")
        );
        assert_eq!(d.message, "needs 9 GPUs");
    }

    #[test]
    fn a_replica_that_failed_on_a_full_disk_fails_the_job_without_a_restart() {
        let mut obs = running(&["worker-0"]);
        obs.replicas[0].state = ReplicaState::Failed { exit_code: 1 };
        obs.disk_full = Some("disk full writing the log of worker-0 in /x".into());
        let d = decide(
            &job(
                "{worker: {}}",
                "{restartPolicy: OnFailure, backoffLimit: 5}",
            ),
            &obs,
            Backoff::default(),
        );
        assert_eq!((d.phase, d.reason.as_str()), (JobPhase::Failed, "DiskFull"));
        assert_eq!(d.message, "disk full writing the log of worker-0 in /x");
        assert!(d.actions.is_empty(), "{:?}", d.actions);
    }

    #[test]
    fn a_lost_supervisor_points_at_its_log_only_when_it_has_one() {
        let never = job("{worker: {count: 1}}", "{}");
        assert!(supervisor_lost(&never, Some("/h/supervisor.log"))
            .message
            .contains("(see /h/supervisor.log)"));
        let run = supervisor_lost(&never, None).message;
        assert!(!run.contains("supervisor.log"), "{run}");
        assert!(run.contains("trainctl run"), "{run}");
    }

    #[test]
    fn a_lost_supervisor_suspends_a_job_that_restarts_and_fails_one_that_never_does() {
        let table = [
            ("{}", JobPhase::Failed),
            ("{restartPolicy: Never}", JobPhase::Failed),
            ("{restartPolicy: OnFailure}", JobPhase::Suspended),
            ("{restartPolicy: ExitCode}", JobPhase::Suspended),
        ];
        for (policy, phase) in table {
            let lost = supervisor_lost(&job("{worker: {count: 1}}", policy), None);
            assert_eq!(
                (lost.phase, lost.reason.as_str()),
                (phase, LOST_REASON),
                "{policy}"
            );
            let resumable = lost.message.contains("trainctl resume");
            assert_eq!(resumable, phase == JobPhase::Suspended, "{}", lost.message);
        }
    }

    #[test]
    fn a_lost_trial_is_suspended_for_its_experiment_to_resume_whatever_its_restart_policy() {
        for policy in ["{}", "{restartPolicy: OnFailure}"] {
            let mut trial = job("{worker: {count: 1}}", policy);
            trial
                .metadata
                .labels
                .insert(EXPERIMENT_LABEL.into(), "tune".into());
            let lost = supervisor_lost(&trial, None);
            assert_eq!(
                (lost.phase, lost.reason.as_str()),
                (JobPhase::Suspended, LOST_REASON),
                "{policy}"
            );
            assert!(
                lost.message.contains("experiment tune exited")
                    && lost.message.contains("trainctl resume experiment tune"),
                "{}",
                lost.message
            );
        }
    }

    #[test]
    fn a_stop_after_the_end_keeps_the_outcome_and_stops_what_still_runs() {
        let mut obs = running(&["worker-0"]);
        obs.ended = Some(Outcome {
            phase: JobPhase::Succeeded,
            reason: "Succeeded".into(),
            message: "done".into(),
        });
        obs.stop_requested = Some(StopRequest::Stop);
        let d = decide(
            &job("{worker: {}}", "{cleanPodPolicy: None}"),
            &obs,
            Backoff::default(),
        );
        assert_eq!(
            (d.phase, d.reason.as_str()),
            (JobPhase::Succeeded, "Succeeded")
        );
        assert_eq!(d.actions, [Action::Stop("worker-0".parse().unwrap())]);
    }

    #[test]
    fn a_stop_request_ends_a_queued_job_as_stopped() {
        let obs = Observation {
            stop_requested: Some(StopRequest::Stop),
            ..Observation::default()
        };
        let d = decide(&job("{worker: {}}", "{}"), &obs, Backoff::default());
        assert_eq!((d.phase, d.reason.as_str()), (JobPhase::Failed, "Stopped"));
    }

    #[test]
    fn chief_or_master_decides_success_else_worker_zero_or_all_workers() {
        let one = |s: &str| Deciders::One(s.parse().unwrap());
        let all = "{successPolicy: AllWorkers}";
        assert_eq!(
            success_deciders(&job("{master: {}, worker: {}}", all)),
            one("master-0")
        );
        assert_eq!(
            success_deciders(&job("{worker: {count: 3}}", "{}")),
            one("worker-0")
        );
        assert_eq!(
            success_deciders(&job("{worker: {count: 3}}", all)),
            Deciders::AllWorkers
        );
    }

    #[test]
    fn exit_codes_up_to_127_fail_for_good_under_exit_code() {
        for code in PERMANENT_EXIT_CODES {
            assert!(!is_retryable(RestartPolicy::ExitCode, code), "{code}");
        }
        assert!(is_retryable(RestartPolicy::ExitCode, 128));
        assert!(is_retryable(RestartPolicy::ExitCode, 137));
    }
}
