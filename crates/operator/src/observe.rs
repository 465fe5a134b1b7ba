//! What the pods of a job say, in the state machine's terms.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use trainctl_core::state_machine::{ReplicaObservation, ReplicaState};
use trainctl_core::ReplicaId;

use crate::status::RoleStatus;
pub use trainctl_kube_client::names::{pod_attempt, ATTEMPT_LABEL};

/// Pod finalizer: holds a pod deleted from outside until the operator has counted the
/// attempt as failed and archived its log (as the Job controller's tracking finalizer).
pub const TRACKING_FINALIZER: &str = "trainctl.dev/track-attempt";

/// The exit code a pod deleted, evicted or lost from outside counts as (SIGKILL).
pub const KILLED_EXIT_CODE: i32 = 137;

/// Whether the pod still carries the operator's tracking finalizer.
pub fn is_tracked(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

/// Whether the pod was taken away from outside: deleted (the operator drops its finalizer
/// before it deletes a pod itself, so a tracked pod being deleted was not deleted by it) or
/// evicted. Such a pod's attempt ended with [`KILLED_EXIT_CODE`].
pub fn was_killed_from_outside(pod: &Pod) -> bool {
    let evicted = pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
    evicted || (pod.metadata.deletion_timestamp.is_some() && is_tracked(pod))
}

/// The container's exit code and when it ended, for an ended pod.
fn termination(pod: &Pod) -> Option<(i32, Option<f64>)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let terminated = statuses
        .iter()
        .find_map(|s| s.state.as_ref()?.terminated.as_ref())?;
    let at = terminated
        .finished_at
        .as_ref()
        .map(|t| t.0.as_millisecond() as f64 / 1000.0);
    Some((terminated.exit_code, at))
}

/// The state of a replica whose current attempt is `attempt`, given its pod (if any). A
/// pod of an older attempt is on its way out: the replica waits to be started again.
pub fn replica_state(id: ReplicaId, pod: Option<&Pod>, attempt: u32) -> ReplicaObservation {
    let not_started = ReplicaObservation {
        id,
        state: ReplicaState::NotStarted,
        finished_at: None,
    };
    let Some(pod) = pod.filter(|p| pod_attempt(p) >= attempt) else {
        return not_started;
    };
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let ended = termination(pod);
    if was_killed_from_outside(pod) && phase != Some("Succeeded") {
        let at = ended.and_then(|e| e.1).or_else(|| {
            let deleted = pod.metadata.deletion_timestamp.as_ref()?;
            Some(deleted.0.as_millisecond() as f64 / 1000.0)
        });
        return ReplicaObservation {
            id,
            state: ReplicaState::Failed {
                exit_code: KILLED_EXIT_CODE,
            },
            finished_at: at,
        };
    }
    let (state, finished_at) = match (phase, ended) {
        (Some("Succeeded"), end) => (ReplicaState::Succeeded, end.and_then(|e| e.1)),
        (Some("Failed"), Some((code, at))) => (ReplicaState::Failed { exit_code: code }, at),
        (Some("Failed"), None) => (ReplicaState::Failed { exit_code: 1 }, None),
        _ => (ReplicaState::Running, None),
    };
    ReplicaObservation {
        id,
        state,
        finished_at,
    }
}

/// Active, succeeded and failed replicas per role.
pub fn role_counts(replicas: &[ReplicaObservation]) -> BTreeMap<String, RoleStatus> {
    let mut out: BTreeMap<String, RoleStatus> = BTreeMap::new();
    for r in replicas {
        let counts = out.entry(r.id.role.to_string()).or_default();
        match r.state {
            ReplicaState::Running => counts.active += 1,
            ReplicaState::Succeeded => counts.succeeded += 1,
            ReplicaState::Failed { .. } => counts.failed += 1,
            ReplicaState::NotStarted | ReplicaState::Stopped => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;

    fn pod(phase: &str, reason: Option<&str>, finalizer: bool, deleting: bool) -> Pod {
        let mut pod = Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                reason: reason.map(String::from),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        if finalizer {
            pod.metadata.finalizers = Some(vec![TRACKING_FINALIZER.into()]);
        }
        if deleting {
            pod.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                ));
        }
        pod
    }

    fn state(pod: &Pod) -> ReplicaState {
        let id: ReplicaId = "worker-0".parse().unwrap();
        replica_state(id, Some(pod), 0).state
    }

    #[test]
    fn evicted_or_deleted_from_outside_counts_as_killed() {
        let killed = ReplicaState::Failed {
            exit_code: KILLED_EXIT_CODE,
        };
        assert_eq!(state(&pod("Failed", Some("Evicted"), true, false)), killed);
        assert_eq!(state(&pod("Running", None, true, true)), killed);
        // Deleted by the operator itself: its finalizer was dropped first.
        assert_eq!(
            state(&pod("Running", None, false, true)),
            ReplicaState::Running
        );
        assert_eq!(
            state(&pod("Succeeded", None, true, true)),
            ReplicaState::Succeeded
        );
    }
}
