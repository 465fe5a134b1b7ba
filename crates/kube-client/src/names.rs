//! Names and labels the operator and its clients agree on.

use k8s_openapi::api::core::v1::Pod;
use trainctl_core::ReplicaId;

/// The field manager of the operator's writes.
pub const MANAGER: &str = "trainctl-operator";

/// The ConfigMap that keeps a job's archived logs.
pub fn log_archive_name(job: &str) -> String {
    format!("{job}-logs")
}

/// The key of one attempt's log in the archive: `worker-0.attempt-2.log`.
pub fn log_key(id: ReplicaId, attempt: u32) -> String {
    format!("{id}.attempt-{attempt}.log")
}

/// A label selector for every object of a job.
pub fn job_selector(job: &str) -> String {
    format!("{}={job}", trainctl_kube::render::JOB_NAME)
}

/// Pod label: the attempt of the replica the pod runs (0 is the first).
pub const ATTEMPT_LABEL: &str = "trainctl.dev/attempt";

/// The attempt a pod runs.
pub fn pod_attempt(pod: &Pod) -> u32 {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ATTEMPT_LABEL))
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}
