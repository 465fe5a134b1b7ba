//! What the pods of a job say, in the state machine's terms.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use trainctl_core::state_machine::{ReplicaObservation, ReplicaState};
use trainctl_core::ReplicaId;

use crate::status::RoleStatus;

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
