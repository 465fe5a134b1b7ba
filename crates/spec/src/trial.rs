//! What the local engine and the operator share about trials: a trial as a TrainingJob (the
//! experiment's template with the trial's parameters merged into its hyperparameters, named
//! `<experiment>-<n>` and labelled with its experiment), the value of a trial that counts,
//! and when an experiment is over.

use trainctl_search::{Assignment, Direction, Value};

use crate::experiment::{Experiment, MetricStrategyType, ObjectiveType};
use crate::types::{HyperValue, ObjectMeta, TrainingJob};

/// Trial states.
pub mod state {
    /// Its job runs.
    pub const RUNNING: &str = "Running";
    /// Ended with the objective metric.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Its job failed.
    pub const FAILED: &str = "Failed";
    /// Stopped by early stopping.
    pub const EARLY_STOPPED: &str = "EarlyStopped";
    /// Succeeded without ever reporting the objective metric.
    pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
    /// Stopped because the experiment ended (goal reached, failed or stopped).
    pub const KILLED: &str = "Killed";
}

/// The label that ties a trial's job to its experiment.
pub const EXPERIMENT_LABEL: &str = "trainctl.dev/experiment";

/// The job name of trial `number`.
pub fn trial_name(experiment: &str, number: u64) -> String {
    format!("{experiment}-{number}")
}

/// A search value as a hyperparameter value.
pub fn to_hyper(v: &Value) -> HyperValue {
    match v {
        Value::Int(i) => HyperValue::Int(*i),
        Value::Float(f) => HyperValue::Float(*f),
        Value::Str(s) => HyperValue::String(s.clone()),
    }
}

/// A stored hyperparameter value back as a search value.
pub fn to_value(v: &HyperValue) -> Value {
    match v {
        HyperValue::Int(i) => Value::Int(*i),
        HyperValue::Float(f) => Value::Float(*f),
        HyperValue::String(s) => Value::Str(s.clone()),
        HyperValue::Bool(b) => Value::Str(b.to_string()),
    }
}

/// The job of trial `number` with `assignment`.
pub fn trial_job(exp: &Experiment, number: u64, assignment: &Assignment) -> TrainingJob {
    let mut spec = exp.spec.trial_template.spec.clone();
    for (name, value) in assignment {
        spec.hyperparameters.insert(name.clone(), to_hyper(value));
    }
    let mut labels = exp.metadata.labels.clone();
    labels.insert(EXPERIMENT_LABEL.into(), exp.name().into());
    TrainingJob {
        api_version: exp.api_version.clone(),
        kind: "TrainingJob".into(),
        metadata: ObjectMeta {
            name: trial_name(exp.name(), number),
            labels,
            ..exp.metadata.clone()
        },
        spec,
    }
}

/// The value that counts: by the objective metric's strategy (default `max` when maximizing,
/// `min` when minimizing); `latest` is the value at the last step.
pub fn counted_value(exp: &Experiment, values: &[(u64, f64)]) -> Option<f64> {
    let objective = &exp.spec.objective;
    let strategy = objective
        .metric_strategies
        .iter()
        .find(|s| s.name == objective.objective_metric_name)
        .map(|s| s.value)
        .unwrap_or(match objective.direction {
            ObjectiveType::Maximize => MetricStrategyType::Max,
            ObjectiveType::Minimize => MetricStrategyType::Min,
        });
    let vs = values.iter().map(|(_, v)| *v);
    match strategy {
        MetricStrategyType::Max => vs.reduce(f64::max),
        MetricStrategyType::Min => vs.reduce(f64::min),
        MetricStrategyType::Latest => values.last().map(|p| p.1),
    }
}

/// Where an experiment's trials stand, as the rule that ends it reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Trials created so far.
    pub trials: u64,
    /// Trials still running.
    pub running: u64,
    /// Failed trials, counting those that never reported the objective.
    pub failed: u64,
    /// The best succeeded trial: its name's number and its value.
    pub best: Option<(u64, f64)>,
    /// Whether the sampler has no new point left (an exhausted grid).
    pub exhausted: bool,
}

/// How an experiment ends: phase, reason, message.
pub type Ending = (&'static str, &'static str, String);

/// Whether the experiment is over, and how: goal reached, too many failed trials, all trials
/// run, or the search space exhausted (the last two once no trial runs).
pub fn ending(exp: &Experiment, tally: &Tally) -> Option<Ending> {
    let direction: Direction = exp.direction();
    if let (Some(goal), Some((best, v))) = (exp.goal(), tally.best) {
        if direction.loss(v) <= direction.loss(goal) {
            return Some((
                "Succeeded",
                "ExperimentGoalReached",
                format!(
                    "trial {} reached the goal: {v} (goal {goal})",
                    trial_name(exp.name(), best)
                ),
            ));
        }
    }
    if let Some(max) = exp.max_failed_trial_count() {
        if tally.failed >= max && max > 0 {
            return Some((
                "Failed",
                "ExperimentMaxFailedTrialsReached",
                format!(
                    "{} trials failed or reported no metrics (maxFailedTrialCount {max})",
                    tally.failed
                ),
            ));
        }
    }
    if tally.running > 0 {
        return None;
    }
    if exp.max_trial_count().is_some_and(|m| tally.trials >= m) {
        return Some((
            "Succeeded",
            "ExperimentMaxTrialsReached",
            format!("{} trials ran (maxTrialCount)", tally.trials),
        ));
    }
    tally.exhausted.then(|| {
        (
            "Succeeded",
            "ExperimentSuggestionEndReached",
            format!(
                "the search space is exhausted after {} trials",
                tally.trials
            ),
        )
    })
}
