//! The job state machine driven with hand-built observations: phase, reason, message and the
//! exact actions the engine is told to carry out, where a scenario row cannot say it (restart
//! times, the queue, suspend, a recorded outcome, simultaneous failures, deadline bounds).
//! Who decides success, restart policies, backoffLimit and cleanPodPolicy are rows of the
//! scenario table (`tests/scenarios.rs`).

use trainctl_core::state_machine::{
    decide, is_retryable, Action, Backoff, Decision, JobPhase, Observation, Outcome,
    ReplicaObservation, ReplicaState,
};
use trainctl_core::ReplicaId;
use trainctl_spec::{parse_job_str, RestartPolicy, TrainingJob};

const BACKOFF: Backoff = Backoff {
    base: 1.0,
    max: 60.0,
};

use ReplicaState::{NotStarted, Running, Stopped, Succeeded};

fn failed(exit_code: i32) -> ReplicaState {
    ReplicaState::Failed { exit_code }
}

fn id(s: &str) -> ReplicaId {
    s.parse().unwrap()
}

/// A TensorFlow job with the given `replicas:` and `runPolicy:` bodies (flow mappings).
fn tf_job(replicas: &str, run_policy: &str) -> TrainingJob {
    let yaml = format!(
        "apiVersion: trainctl.dev/v1alpha1\n\
         kind: TrainingJob\n\
         metadata: {{name: j}}\n\
         spec:\n\
         \x20 framework: tensorflow\n\
         \x20 command: [python3, t.py]\n\
         \x20 replicas: {replicas}\n\
         \x20 runPolicy: {run_policy}\n"
    );
    parse_job_str("test.yaml", &yaml).unwrap_or_else(|e| panic!("invalid test job: {e:?}"))
}

const PS_WORKERS: &str = "{ps: {count: 1}, worker: {count: 2}}";
const CHIEF_PS_WORKERS: &str = "{chief: {}, ps: {count: 1}, worker: {count: 2}}";

/// An admitted observation at `now` = 100 s, started at 50 s, with no restarts so far.
fn obs(replicas: &[(&str, ReplicaState)]) -> Observation {
    Observation {
        now: 100.0,
        admitted: true,
        started_at: Some(50.0),
        restarts: 0,
        replicas: replicas
            .iter()
            .map(|(r, state)| ReplicaObservation {
                id: id(r),
                state: *state,
                finished_at: match state {
                    Succeeded | ReplicaState::Failed { .. } | Stopped => Some(90.0),
                    NotStarted | Running => None,
                },
            })
            .collect(),
        ended: None,
        ..Observation::default()
    }
}

/// The decision for `job` on a fresh observation of `replicas` (see [`obs`]).
fn decide_on(job: &TrainingJob, replicas: &[(&str, ReplicaState)]) -> Decision {
    decide(job, &obs(replicas), BACKOFF)
}

fn stops(replicas: &[&str]) -> Vec<Action> {
    replicas.iter().map(|r| Action::Stop(id(r))).collect()
}

fn check(d: &Decision, phase: JobPhase, reason: &str, actions: Vec<Action>) {
    assert_eq!(
        (d.phase, d.reason.as_str(), &d.actions),
        (phase, reason, &actions),
        "message: {}",
        d.message
    );
}

// ---------------------------------------------------------------------------------------------
// Queue and start
// ---------------------------------------------------------------------------------------------

#[test]
fn not_admitted_is_pending_queued_with_no_actions() {
    let job = tf_job(PS_WORKERS, "{}");
    let mut o = obs(&[
        ("ps-0", NotStarted),
        ("worker-0", NotStarted),
        ("worker-1", NotStarted),
    ]);
    o.admitted = false;
    o.started_at = None;
    let d = decide(&job, &o, BACKOFF);
    check(&d, JobPhase::Pending, "Queued", vec![]);
    assert_eq!(d.outcome(), None);
}

#[test]
fn admitted_fresh_job_starts_every_replica() {
    let job = tf_job(CHIEF_PS_WORKERS, "{}");
    let mut o = obs(&[
        ("chief-0", NotStarted),
        ("ps-0", NotStarted),
        ("worker-0", NotStarted),
        ("worker-1", NotStarted),
    ]);
    o.started_at = None;
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Pending,
        "Starting",
        vec![
            Action::Start(id("chief-0")),
            Action::Start(id("ps-0")),
            Action::Start(id("worker-0")),
            Action::Start(id("worker-1")),
        ],
    );
    assert_eq!(d.outcome(), None);
}

#[test]
fn running_job_is_running_and_starts_the_rest() {
    let job = tf_job(PS_WORKERS, "{}");
    let d = decide_on(
        &job,
        &[
            ("ps-0", Running),
            ("worker-0", Running),
            ("worker-1", Running),
        ],
    );
    check(&d, JobPhase::Running, "Running", vec![]);

    let d = decide_on(
        &job,
        &[
            ("ps-0", Running),
            ("worker-0", Running),
            ("worker-1", NotStarted),
        ],
    );
    check(
        &d,
        JobPhase::Running,
        "Running",
        vec![Action::Start(id("worker-1"))],
    );
}

// ---------------------------------------------------------------------------------------------
// Failure and restarts
// ---------------------------------------------------------------------------------------------

#[test]
fn on_failure_restarts_after_the_backoff_delay() {
    let job = tf_job(PS_WORKERS, "{restartPolicy: OnFailure, backoffLimit: 5}");
    let mut o = obs(&[
        ("ps-0", Running),
        ("worker-0", Running),
        ("worker-1", failed(1)),
    ]);
    o.replicas[2].finished_at = Some(97.5);
    o.restarts = 2;
    let d = decide(&job, &o, BACKOFF);
    // delay(2) = 1 * 2^2 = 4 s after the replica exited; the running replicas are left alone.
    check(
        &d,
        JobPhase::Restarting,
        "Restarting",
        vec![Action::Restart {
            id: id("worker-1"),
            not_before: 101.5,
        }],
    );
    assert_eq!(d.message, "restarting 1 failed replica(s)");
    assert_eq!(d.outcome(), None);
}

#[test]
fn restart_delay_counts_from_now_without_a_finish_time() {
    let job = tf_job(PS_WORKERS, "{restartPolicy: OnFailure}");
    let mut o = obs(&[
        ("ps-0", Running),
        ("worker-0", failed(2)),
        ("worker-1", Running),
    ]);
    o.replicas[1].finished_at = None;
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Restarting,
        "Restarting",
        vec![Action::Restart {
            id: id("worker-0"),
            not_before: 101.0,
        }],
    );
}

#[test]
fn restart_delay_is_capped() {
    let job = tf_job(PS_WORKERS, "{restartPolicy: OnFailure, backoffLimit: 100}");
    let mut o = obs(&[
        ("ps-0", Running),
        ("worker-0", Running),
        ("worker-1", failed(1)),
    ]);
    o.restarts = 10;
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Restarting,
        "Restarting",
        vec![Action::Restart {
            id: id("worker-1"),
            not_before: 150.0,
        }],
    );
}

#[test]
fn restarting_also_starts_replicas_not_started_yet() {
    let job = tf_job(PS_WORKERS, "{restartPolicy: OnFailure}");
    let d = decide_on(
        &job,
        &[
            ("ps-0", Running),
            ("worker-0", failed(1)),
            ("worker-1", NotStarted),
        ],
    );
    check(
        &d,
        JobPhase::Restarting,
        "Restarting",
        vec![
            Action::Start(id("worker-1")),
            Action::Restart {
                id: id("worker-0"),
                not_before: 91.0,
            },
        ],
    );
}

#[test]
fn two_failures_at_once_count_against_the_limit_together() {
    let job = tf_job(PS_WORKERS, "{restartPolicy: OnFailure, backoffLimit: 3}");
    let mut o = obs(&[
        ("ps-0", Running),
        ("worker-0", failed(1)),
        ("worker-1", failed(1)),
    ]);
    o.restarts = 2;
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Failed,
        "BackoffLimitExceeded",
        stops(&["ps-0"]),
    );

    o.restarts = 1;
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Restarting,
        "Restarting",
        vec![
            Action::Restart {
                id: id("worker-0"),
                not_before: 92.0,
            },
            Action::Restart {
                id: id("worker-1"),
                not_before: 92.0,
            },
        ],
    );
    assert_eq!(d.message, "restarting 2 failed replica(s)");
}

// ---------------------------------------------------------------------------------------------
// Deadline, suspend, ended
// ---------------------------------------------------------------------------------------------

#[test]
fn active_deadline_passed_fails_the_job() {
    let job = tf_job(PS_WORKERS, "{activeDeadlineSeconds: 60}");
    let mut o = obs(&[
        ("ps-0", Running),
        ("worker-0", Running),
        ("worker-1", Running),
    ]);
    o.started_at = Some(40.0); // now = 100: exactly 60 s
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Failed,
        "DeadlineExceeded",
        stops(&["ps-0", "worker-0", "worker-1"]),
    );
    assert_eq!(
        d.message,
        "the job ran longer than activeDeadlineSeconds (60s)"
    );

    o.started_at = Some(40.5); // 59.5 s
    let d = decide(&job, &o, BACKOFF);
    check(&d, JobPhase::Running, "Running", vec![]);

    o.started_at = None; // never started: no deadline yet
    let d = decide(&job, &o, BACKOFF);
    check(&d, JobPhase::Running, "Running", vec![]);
}

#[test]
fn suspend_stops_running_replicas_and_starts_none() {
    let job = tf_job(PS_WORKERS, "{suspend: true}");
    let d = decide_on(
        &job,
        &[
            ("ps-0", Running),
            ("worker-0", Running),
            ("worker-1", NotStarted),
        ],
    );
    check(
        &d,
        JobPhase::Suspended,
        "Suspended",
        stops(&["ps-0", "worker-0"]),
    );
    assert_eq!(d.outcome(), None);

    let mut o = obs(&[("ps-0", NotStarted), ("worker-0", NotStarted)]);
    o.admitted = false;
    check(
        &decide(&job, &o, BACKOFF),
        JobPhase::Suspended,
        "Suspended",
        vec![],
    );
}

#[test]
fn an_ended_job_keeps_its_outcome_and_stops_what_still_runs() {
    let job = tf_job(CHIEF_PS_WORKERS, "{suspend: true}");
    let ended = Outcome {
        phase: JobPhase::Failed,
        reason: "ReplicaFailed".into(),
        message: "worker-1 exited with code 1".into(),
    };
    let mut o = obs(&[
        ("chief-0", Succeeded),
        ("ps-0", Running),
        ("worker-0", Running),
        ("worker-1", failed(1)),
    ]);
    o.ended = Some(ended.clone());
    let d = decide(&job, &o, BACKOFF);
    check(
        &d,
        JobPhase::Failed,
        "ReplicaFailed",
        stops(&["ps-0", "worker-0"]),
    );
    assert_eq!(d.message, "worker-1 exited with code 1");
    assert_eq!(d.outcome(), Some(ended.clone()));

    // Once nothing runs, there is nothing left to do.
    let mut o = obs(&[
        ("chief-0", Succeeded),
        ("ps-0", Stopped),
        ("worker-0", Stopped),
        ("worker-1", failed(1)),
    ]);
    o.ended = Some(ended);
    check(
        &decide(&job, &o, BACKOFF),
        JobPhase::Failed,
        "ReplicaFailed",
        vec![],
    );
}

#[test]
fn an_ended_job_under_clean_pod_policy_none_stops_nothing() {
    let job = tf_job(PS_WORKERS, "{cleanPodPolicy: None}");
    let mut o = obs(&[
        ("ps-0", Running),
        ("worker-0", Succeeded),
        ("worker-1", Running),
    ]);
    o.ended = Some(Outcome {
        phase: JobPhase::Succeeded,
        reason: "Succeeded".into(),
        message: "worker-0 succeeded".into(),
    });
    check(
        &decide(&job, &o, BACKOFF),
        JobPhase::Succeeded,
        "Succeeded",
        vec![],
    );
}

// ---------------------------------------------------------------------------------------------
// Backoff and retryable exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn backoff_doubles_and_is_capped() {
    let b = BACKOFF;
    let delays: Vec<f64> = (0..8).map(|n| b.delay(n)).collect();
    assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]);
    assert_eq!(b.delay(31), 60.0);
    assert_eq!(b.delay(u32::MAX), 60.0);
    assert_eq!(Backoff::default(), BACKOFF);

    let small = Backoff {
        base: 0.5,
        max: 10.0,
    };
    let delays: Vec<f64> = (0..7).map(|n| small.delay(n)).collect();
    assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
}

#[test]
fn exit_codes_are_retried_as_the_restart_policy_says() {
    use RestartPolicy::{ExitCode, Never, OnFailure};
    let table = [
        // (policy, exit code, retried)
        (Never, 1, false),
        (Never, 137, false),
        (Never, 143, false),
        (OnFailure, 0, false),
        (OnFailure, 1, true),
        (OnFailure, 2, true),
        (OnFailure, 127, true),
        (OnFailure, 137, true),
        (ExitCode, 0, false),
        (ExitCode, 1, false),
        (ExitCode, 2, false),
        (ExitCode, 126, false),
        (ExitCode, 127, false),
        (ExitCode, 128, true),
        (ExitCode, 130, true),
        (ExitCode, 137, true),
        (ExitCode, 143, true),
        (ExitCode, 255, true),
    ];
    for (policy, code, want) in table {
        assert_eq!(is_retryable(policy, code), want, "{policy:?} {code}");
    }
}

#[test]
fn phase_names_round_trip() {
    for (phase, name, terminal) in [
        (JobPhase::Pending, "Pending", false),
        (JobPhase::Running, "Running", false),
        (JobPhase::Restarting, "Restarting", false),
        (JobPhase::Succeeded, "Succeeded", true),
        (JobPhase::Failed, "Failed", true),
        (JobPhase::Suspended, "Suspended", false),
    ] {
        assert_eq!(phase.as_str(), name);
        assert_eq!(JobPhase::parse(name), Some(phase));
        assert_eq!(phase.is_terminal(), terminal, "{name}");
    }
    assert_eq!(JobPhase::parse("running"), None);
}
