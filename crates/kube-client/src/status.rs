//! The status the operator records on a TrainingJob: phase, conditions, per-role counts,
//! restarts, the attempt of every replica, start and completion times.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trainctl_core::state_machine::{Decision, JobPhase, Outcome};

/// The observed state of a TrainingJob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Pending, Running, Restarting, Succeeded, Failed or Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why the job is in its phase (CamelCase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The same for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Created, Running, Restarting, Succeeded, Failed, Suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<JobCondition>,
    /// Per role: active, succeeded and failed pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replica_statuses: BTreeMap<String, RoleStatus>,
    /// Replicas of the job.
    #[serde(default)]
    pub replicas: u32,
    /// Restarts performed over the whole job.
    #[serde(default)]
    pub restarts: u32,
    /// The current attempt of each replica (`worker-0: 2`); absent means 0.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attempts: BTreeMap<String, u32>,
    /// When the operator first started the job's replicas (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When the job succeeded or failed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// A trial's metrics as the operator read them from its logs (trials of Experiments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<crate::experiment::TrialObservation>,
}

/// One condition, Kubernetes style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCondition {
    /// Created, Running, Restarting, Succeeded, Failed or Suspended.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True" or "False".
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// For humans.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
}

/// Pods of one role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Pending or running.
    pub active: u32,
    /// Exited 0.
    pub succeeded: u32,
    /// Exited non-zero.
    pub failed: u32,
}

/// Conditions that are true only while the job is in that phase.
const TRANSIENT: [&str; 3] = ["Running", "Restarting", "Suspended"];

impl JobStatus {
    /// The recorded phase.
    pub fn job_phase(&self) -> Option<JobPhase> {
        self.phase.as_deref().and_then(JobPhase::parse)
    }

    /// The terminal outcome already recorded.
    pub fn outcome(&self) -> Option<Outcome> {
        let phase = self.job_phase().filter(|p| p.is_terminal())?;
        Some(Outcome {
            phase,
            reason: self.reason.clone().unwrap_or_default(),
            message: self.message.clone().unwrap_or_default(),
        })
    }

    /// Records the decision's phase; conditions change only when the phase does.
    pub fn apply(&mut self, decision: &Decision, now: &str) {
        let phase = decision.phase.as_str();
        if self.conditions.is_empty() {
            self.set_condition(
                "Created",
                "True",
                "Created",
                "the operator accepted the job",
                now,
            );
        }
        if self.phase.as_deref() != Some(phase) {
            for t in TRANSIENT.iter().filter(|t| **t != phase) {
                if self
                    .conditions
                    .iter()
                    .any(|c| c.type_ == *t && c.status == "True")
                {
                    self.set_condition(t, "False", &decision.reason, &decision.message, now);
                }
            }
            if phase != "Pending" {
                self.set_condition(phase, "True", &decision.reason, &decision.message, now);
            }
        }
        self.phase = Some(phase.into());
        self.reason = Some(decision.reason.clone());
        self.message = Some(decision.message.clone());
        if decision.phase.is_terminal() && self.completion_time.is_none() {
            self.completion_time = Some(now.into());
        }
    }

    fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: &str, now: &str) {
        let condition = JobCondition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now.into(),
        };
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => *c = condition,
            None => self.conditions.push(condition),
        }
    }
}
