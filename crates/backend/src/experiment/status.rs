//! How an experiment looks to users, shaped like Katib's status: counts per trial state,
//! `currentOptimalTrial` and conditions.

use serde_json::{json, Value};
use trainctl_local::store::{ExperimentRow, TrialRow};
use trainctl_spec::ObjectiveType;

pub use trainctl_spec::trial::state;

/// Trials per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// All trials.
    pub trials: usize,
    /// Running.
    pub running: usize,
    /// Succeeded.
    pub succeeded: usize,
    /// Failed.
    pub failed: usize,
    /// Early stopped.
    pub early_stopped: usize,
    /// Metrics unavailable.
    pub metrics_unavailable: usize,
}

impl Counts {
    /// Counts the trials.
    pub fn of(trials: &[TrialRow]) -> Counts {
        let n = |s: &str| trials.iter().filter(|t| t.state == s).count();
        Counts {
            trials: trials.len(),
            running: n(state::RUNNING),
            succeeded: n(state::SUCCEEDED),
            failed: n(state::FAILED),
            early_stopped: n(state::EARLY_STOPPED),
            metrics_unavailable: n(state::METRICS_UNAVAILABLE),
        }
    }
}

/// The succeeded trial with the best objective value.
pub fn best_trial<'a>(exp: &ExperimentRow, trials: &'a [TrialRow]) -> Option<&'a TrialRow> {
    let sign = match exp.spec.spec.objective.direction {
        ObjectiveType::Maximize => -1.0,
        ObjectiveType::Minimize => 1.0,
    };
    trials
        .iter()
        .filter(|t| t.state == state::SUCCEEDED)
        .filter_map(|t| t.value.map(|v| (t, sign * v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t)
}

/// A trial's parameters as `name=value` text.
pub fn assignment_text(t: &TrialRow) -> String {
    t.assignment
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The experiment as a Katib-shaped object (for `-o json|yaml` and `describe`).
pub fn object(exp: &ExperimentRow, trials: &[TrialRow]) -> Value {
    let c = Counts::of(trials);
    let metric = &exp.spec.spec.objective.objective_metric_name;
    let optimal = best_trial(exp, trials).map(|t| {
        let vs = t.intermediate.iter().map(|(_, v)| *v);
        json!({
            "bestTrialName": t.job,
            "parameterAssignments": t.assignment.iter()
                .map(|(n, v)| json!({"name": n, "value": v.to_string()}))
                .collect::<Vec<_>>(),
            "observation": {"metrics": std::iter::once(json!({
                "name": metric,
                "min": vs.clone().reduce(f64::min),
                "max": vs.clone().reduce(f64::max),
                "latest": t.intermediate.last().map(|p| p.1),
                "value": t.value,
            }))
            .chain(t.metrics.iter().map(|m| json!(m)))
            .collect::<Vec<_>>()},
        })
    });
    let mut conditions = vec![json!({"type": "Created", "status": "True"})];
    if exp.phase != "Created" {
        conditions.push(
            json!({"type": "Running", "status": if exp.phase == "Running" {"True"} else {"False"}}),
        );
    }
    if exp.phase == "Succeeded" || exp.phase == "Failed" {
        conditions.push(json!({"type": exp.phase, "status": "True", "reason": exp.reason, "message": exp.message}));
    }
    json!({
        "apiVersion": exp.spec.api_version,
        "kind": "Experiment",
        "metadata": {"name": exp.name},
        "spec": exp.spec.spec,
        "status": {
            "phase": exp.phase,
            "conditions": conditions,
            "currentOptimalTrial": optimal,
            "trials": c.trials,
            "trialsRunning": c.running,
            "trialsPending": 0,
            "trialsSucceeded": c.succeeded,
            "trialsFailed": c.failed,
            "trialsEarlyStopped": c.early_stopped,
            "trialMetricsUnavailable": c.metrics_unavailable,
            "trialList": trials,
        },
    })
}
