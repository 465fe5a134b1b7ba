//! The scenario table (crate `trainctl-scenarios`) on kube-sim: the test plays the kubelet,
//! ending each pod as the row's steps say, and checks the status the operator writes.

use k8s_openapi::jiff::Timestamp;
use trainctl_scenarios::{End, Scenario};

use super::{condition, Cluster};

/// The rows the fault and kill tests run together in one cluster: eight shapes (chief,
/// worker 0, AllWorkers, ExitCode retry and failure, backoffLimit, OnFailure beside others,
/// evaluator).
const UNDER_FAULTS: [&str; 8] = [
    "ps_is_stopped_when_chief_succeeds",
    "ps_is_stopped_when_worker_0_succeeds",
    "all_workers_waits_for_every_worker",
    "exit_code_retries_an_interrupted_replica",
    "exit_code_fails_on_exit_1_and_stops_the_ps",
    "backoff_limit_exceeded_fails_the_job",
    "on_failure_restarts_a_worker_beside_others",
    "exit_code_retries_a_terminated_worker",
];

/// The scenarios the fault and kill tests run together.
pub fn under_faults() -> Vec<&'static Scenario> {
    UNDER_FAULTS
        .into_iter()
        .map(trainctl_scenarios::scenario)
        .collect()
}

/// The job file of a scenario, as a cluster runs it.
fn yaml(s: &Scenario) -> String {
    s.job_yaml(
        &s.job_name(),
        "  image: registry.example.com/train:1\n  command: [python3, train.py]\n",
    )
}

/// Every (job/replica, attempt) that must have had exactly one pod.
pub fn expected_pods(s: &Scenario) -> Vec<(String, u32)> {
    let job = s.job_name();
    s.attempts_run()
        .into_iter()
        .map(|(replica, attempt)| (format!("{job}/{replica}"), attempt))
        .collect()
}

/// Submits the scenario's job, waits for all its pods to run, ends them as the steps say,
/// waits for the job's end and checks the status: phase, reason, message, restarts,
/// attempts, times and condition; the stopped pods gone, the others left as they ended.
pub async fn drive(c: &Cluster, s: &Scenario) {
    let job = s.job_name();
    let pod = |replica: &str| format!("{job}-{replica}");
    c.submit(&yaml(s)).await;
    if !s.steps.is_empty() {
        for replica in s.replica_ids() {
            c.running_pod(&pod(&replica), 0).await;
        }
    }
    for step in s.steps {
        let name = pod(step.replica);
        c.finish(&name, step.attempt, step.end.exit_code().into())
            .await;
        if s.is_restarted_after(step) {
            c.running_pod(&name, step.attempt + 1).await;
        }
    }
    let status = c.wait_phase(&job, s.phase).await;
    assert_eq!(
        (
            status.reason.as_deref(),
            status.message.as_deref(),
            status.restarts
        ),
        (Some(s.reason), Some(s.message), s.restarts),
        "{}: reason, message, restarts",
        s.name
    );
    for replica in s.replica_ids() {
        let recorded = status.attempts.get(&replica).copied().unwrap_or(0);
        assert_eq!(
            recorded,
            s.final_attempt(&replica),
            "{}: attempt of {replica}",
            s.name
        );
    }
    let time = |t: &Option<String>, what: &str| -> Timestamp {
        let text = t
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no {what}", s.name));
        text.parse().expect("an RFC 3339 time")
    };
    let start = time(&status.start_time, "startTime");
    let end = time(&status.completion_time, "completionTime");
    assert!(start <= end, "{}: started {start}, completed {end}", s.name);
    let ended = condition(&status, s.phase).map(|c| c.status.as_str());
    assert_eq!(ended, Some("True"), "{}: condition {}", s.name, s.phase);

    for replica in s.replica_ids() {
        let name = pod(&replica);
        if s.is_stopped(&replica) {
            c.gone(&name).await;
            continue;
        }
        let phase = match s.final_end(&replica) {
            Some(End::Exit(0)) => "Succeeded",
            Some(_) => "Failed",
            None => "Running",
        };
        let left = c.pods_api().get(&name).await;
        let left = left.unwrap_or_else(|e| panic!("{}: pod {name} is not kept: {e}", s.name));
        let left = left.status.and_then(|st| st.phase);
        assert_eq!(left.as_deref(), Some(phase), "{}: pod {name}", s.name);
    }
}
