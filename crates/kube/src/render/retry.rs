//! How a job's restart policy maps onto batch/v1 Jobs: per replica (plain target), or for a
//! whole gang that a JobSet restarts together.

use k8s_openapi::api::batch::v1::{
    PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use trainctl_core::state_machine::PERMANENT_EXIT_CODES;
use trainctl_spec::{RestartPolicy, RunPolicy};

/// The retry settings of one batch/v1 Job and its pod template.
pub struct JobRetry {
    /// The pod template's restartPolicy.
    pub pod_restart_policy: &'static str,
    /// The Job's backoffLimit.
    pub backoff_limit: i32,
    /// The Job's podFailurePolicy.
    pub pod_failure_policy: Option<PodFailurePolicy>,
}

/// Each replica's Job retries by itself: Never fails at once, OnFailure restarts the
/// container in place, ExitCode retries new pods unless the exit code is 1..127.
pub fn per_replica(run: &RunPolicy) -> JobRetry {
    let limit = i32::try_from(run.backoff_limit).unwrap_or(i32::MAX);
    match run.restart_policy {
        RestartPolicy::Never => JobRetry {
            pod_restart_policy: "Never",
            backoff_limit: 0,
            pod_failure_policy: None,
        },
        RestartPolicy::OnFailure => JobRetry {
            pod_restart_policy: "OnFailure",
            backoff_limit: limit,
            pod_failure_policy: None,
        },
        RestartPolicy::ExitCode => JobRetry {
            pod_restart_policy: "Never",
            backoff_limit: limit,
            pod_failure_policy: Some(fatal_exit_codes()),
        },
    }
}

/// A replica's Job fails on its first failed pod, so the JobSet restarts the whole gang
/// (distributed TensorFlow cannot lose one replica and go on); exit codes 1..127 still
/// fail the Job with reason PodFailurePolicy under ExitCode.
pub fn whole_gang(run: &RunPolicy) -> JobRetry {
    JobRetry {
        pod_restart_policy: "Never",
        backoff_limit: 0,
        pod_failure_policy: (run.restart_policy == RestartPolicy::ExitCode).then(fatal_exit_codes),
    }
}

/// The exit codes that are the program's own verdict ([`PERMANENT_EXIT_CODES`]) fail the
/// Job; higher codes (signals, OOM kills) count against backoffLimit and are retried.
fn fatal_exit_codes() -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: "FailJob".into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: PERMANENT_EXIT_CODES.collect(),
            }),
            // Kubernetes before 1.29 requires the field; an empty list means "no pattern".
            on_pod_conditions: Some(Vec::new()),
        }],
    }
}
