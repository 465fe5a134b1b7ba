//! Names and labels the operator and the CLI agree on.

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
