//! A trial as a TrainingJob: the experiment's template with the trial's parameters merged into
//! its hyperparameters, named `<experiment>-<n>` and labelled with its experiment.

use trainctl_search::{Assignment, Value};
use trainctl_spec::{Experiment, HyperValue, ObjectMeta, TrainingJob};

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
