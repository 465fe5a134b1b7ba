//! The `experiments.trainctl.dev` custom resource: the experiment file's spec as the
//! resource's spec, a Katib-shaped [`ExperimentStatus`] as its status subresource, and what
//! the operator records on each trial (a TrainingJob owned by its experiment): the trial's
//! number and assignment as annotations, written with the trial before its pods exist, and
//! its [`TrialObservation`] in the TrainingJob's status.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trainctl_core::state_machine::JobPhase;
use trainctl_spec::trial::{counted_value, state};
use trainctl_spec::{
    Experiment, ExperimentSpec, HyperValue, ObjectMeta, ParameterType, API_VERSION, EXPERIMENT_KIND,
};

use crate::crd::TrainingJobResource;
use crate::status::JobCondition;

/// Trial annotation: the trial's number in its experiment.
pub const TRIAL_NUMBER_ANNOTATION: &str = "trainctl.dev/trial-number";
/// Trial annotation: the trial's parameter assignment (a JSON object of values as text,
/// read back by each parameter's type: JSON numbers do not always come back bit for bit).
pub const TRIAL_ASSIGNMENT_ANNOTATION: &str = "trainctl.dev/trial-assignment";
/// The reason of a trial's TrainingJob that early stopping ended.
pub const EARLY_STOPPED: &str = "EarlyStopped";
/// The reason of a trial's TrainingJob stopped because its experiment ended.
pub const EXPERIMENT_ENDED: &str = "ExperimentEnded";
/// The reason an ended experiment carries once a user resumed it, until the operator runs it.
pub const EXPERIMENT_RESUMED: &str = "ExperimentResumed";

/// The spec of the custom resource: exactly the experiment file's `spec`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "trainctl.dev",
    version = "v1alpha1",
    kind = "Experiment",
    root = "ExperimentResource",
    plural = "experiments",
    shortname = "exp",
    namespaced,
    status = "ExperimentStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Best","type":"number","jsonPath":".status.bestObjective"}"#,
    printcolumn = r#"{"name":"Succeeded","type":"integer","jsonPath":".status.trialsSucceeded"}"#,
    printcolumn = r#"{"name":"Trials","type":"integer","jsonPath":".status.trials"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct ExperimentResourceSpec(pub ExperimentSpec);

/// The observed state of an Experiment, shaped like Katib's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    /// Created, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why (Katib's reasons: ExperimentGoalReached, ExperimentMaxTrialsReached, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The same for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Created, Running, Succeeded, Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<JobCondition>,
    /// The best succeeded trial so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_optimal_trial: Option<OptimalTrial>,
    /// The best trial's objective value (the printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_objective: Option<f64>,
    /// Trials created.
    #[serde(default)]
    pub trials: u64,
    /// Trials running.
    #[serde(default)]
    pub trials_running: u64,
    /// Trials that succeeded with the objective metric.
    #[serde(default)]
    pub trials_succeeded: u64,
    /// Trials whose job failed.
    #[serde(default)]
    pub trials_failed: u64,
    /// Trials early stopping ended.
    #[serde(default)]
    pub trials_early_stopped: u64,
    /// Trials stopped because the experiment ended.
    #[serde(default)]
    pub trials_killed: u64,
    /// Trials that succeeded without reporting the objective metric.
    #[serde(default)]
    pub trial_metrics_unavailable: u64,
    /// When the experiment ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
}

/// The best trial, Katib style.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimalTrial {
    /// The trial's TrainingJob.
    pub best_trial_name: String,
    /// Its parameters.
    pub parameter_assignments: Vec<NamedValue>,
    /// Its metrics.
    pub observation: Observation,
}

/// A parameter's value as text, as Katib writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NamedValue {
    /// The parameter.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Metrics of a trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Observation {
    /// Per metric: min, max, latest.
    #[serde(default)]
    pub metrics: Vec<MetricObservation>,
}

/// One metric of a trial.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricObservation {
    /// The metric.
    pub name: String,
    /// Smallest value reported.
    pub min: f64,
    /// Largest value reported.
    pub max: f64,
    /// Last value reported.
    pub latest: f64,
}

/// What the operator read from a trial's logs, in its TrainingJob's status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialObservation {
    /// Per metric (objective and additional): min, max, latest.
    #[serde(default)]
    pub metrics: Vec<MetricObservation>,
    /// The objective metric's value by step (the last value of each step): what early
    /// stopping reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intermediate: Vec<StepValue>,
    /// Set once the logs were read after the trial's job ended: nothing will change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub complete: bool,
}

/// A metric's value at a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepValue {
    /// The step.
    pub step: u64,
    /// The value.
    pub value: f64,
}

/// The CustomResourceDefinition, generated from the Rust types (untagged unions become
/// "any value", as for TrainingJobs).
pub fn experiment_crd() -> CustomResourceDefinition {
    crate::crd::structural(<ExperimentResource as kube::core::CustomResourceExt>::crd())
}

impl ExperimentResource {
    /// The resource from an experiment file (its namespace defaulting to `namespace`).
    pub fn from_experiment(exp: &Experiment, namespace: &str) -> Self {
        let mut resource =
            ExperimentResource::new(exp.name(), ExperimentResourceSpec(exp.spec.clone()));
        let meta = &exp.metadata;
        resource.metadata.namespace = Some(meta.namespace.clone().unwrap_or(namespace.into()));
        resource.metadata.labels = (!meta.labels.is_empty()).then(|| meta.labels.clone());
        resource.metadata.annotations =
            (!meta.annotations.is_empty()).then(|| meta.annotations.clone());
        resource
    }

    /// The experiment as the search code sees it. Its annotations are kept (its trials and
    /// their pods inherit them, as locally) but for kubectl's own (`kubectl.kubernetes.io/`,
    /// such as the last applied configuration).
    pub fn to_experiment(&self) -> Experiment {
        let meta = &self.metadata;
        let annotations = meta
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Experiment {
            api_version: API_VERSION.into(),
            kind: EXPERIMENT_KIND.into(),
            metadata: ObjectMeta {
                name: meta.name.clone().unwrap_or_default(),
                namespace: meta.namespace.clone(),
                labels: meta.labels.clone().unwrap_or_default(),
                annotations,
            },
            spec: self.spec.0.clone(),
        }
    }

    /// The recorded phase, or Created before the operator has seen the experiment.
    pub fn phase(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Created".into())
    }
}

impl ExperimentStatus {
    /// Whether the experiment has ended (Succeeded or Failed).
    pub fn has_ended(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    /// The merge patch of the status that resumes an ended experiment: phase Created with
    /// reason [`EXPERIMENT_RESUMED`] and no completion time, so the operator runs it again
    /// (it turns the ended condition false when the experiment runs).
    pub fn resume_patch(message: &str) -> serde_json::Value {
        serde_json::json!({
            "phase": "Created",
            "reason": EXPERIMENT_RESUMED,
            "message": message,
            "completionTime": null,
        })
    }
}

impl TrialObservation {
    /// The observation of `metrics` from `(name, step, value)` points in the order printed;
    /// the `objective`'s values by step are the intermediate values.
    pub fn from_points(objective: &str, metrics: &[String], points: &[(String, u64, f64)]) -> Self {
        let mut out = TrialObservation::default();
        for name in metrics {
            let values: Vec<f64> = points
                .iter()
                .filter(|p| &p.0 == name)
                .map(|p| p.2)
                .collect();
            if let Some(&latest) = values.last() {
                out.metrics.push(MetricObservation {
                    name: name.clone(),
                    min: values.iter().copied().fold(f64::INFINITY, f64::min),
                    max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    latest,
                });
            }
        }
        let mut by_step: BTreeMap<u64, f64> = BTreeMap::new();
        for (_, step, value) in points.iter().filter(|p| p.0 == objective) {
            by_step.insert(*step, *value);
        }
        out.intermediate = by_step
            .into_iter()
            .map(|(step, value)| StepValue { step, value })
            .collect();
        out
    }

    /// The intermediate values as `(step, value)` pairs.
    pub fn steps(&self) -> Vec<(u64, f64)> {
        self.intermediate
            .iter()
            .map(|p| (p.step, p.value))
            .collect()
    }
}

/// A trial as its TrainingJob records it: number and assignment from its annotations,
/// state from its outcome and observation (the local engine's trial states).
#[derive(Debug, Clone)]
pub struct TrialView {
    /// Its number in the experiment.
    pub number: u64,
    /// The parameters it runs with, in the space's order.
    pub assignment: Vec<(String, HyperValue)>,
    /// One of [`trainctl_spec::trial::state`].
    pub state: &'static str,
    /// The objective value that counts.
    pub value: Option<f64>,
    /// The objective's values by step.
    pub intermediate: Vec<(u64, f64)>,
    /// Its TrainingJob.
    pub resource: TrainingJobResource,
}

impl TrialView {
    /// The trial of `exp` that `resource` is; None when it carries no trial number.
    pub fn of(exp: &Experiment, resource: TrainingJobResource) -> Option<TrialView> {
        let annotations = resource.metadata.annotations.clone().unwrap_or_default();
        let number = annotations.get(TRIAL_NUMBER_ANNOTATION)?.parse().ok()?;
        let recorded: BTreeMap<String, String> = annotations
            .get(TRIAL_ASSIGNMENT_ANNOTATION)
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default();
        let assignment = exp
            .spec
            .parameters
            .iter()
            .filter_map(|p| {
                let value = typed(p.parameter_type, recorded.get(&p.name)?)?;
                Some((p.name.clone(), value))
            })
            .collect();
        let status = resource.status.clone().unwrap_or_default();
        let observation = status.observation.clone().unwrap_or_default();
        let intermediate = observation.steps();
        let value = counted_value(exp, &intermediate);
        let state = match (status.outcome(), observation.complete) {
            (Some(o), true) if o.reason == EARLY_STOPPED => state::EARLY_STOPPED,
            (Some(o), true) if o.reason == EXPERIMENT_ENDED => state::KILLED,
            (Some(o), true) if o.phase == JobPhase::Succeeded && value.is_some() => {
                state::SUCCEEDED
            }
            (Some(o), true) if o.phase == JobPhase::Succeeded => state::METRICS_UNAVAILABLE,
            (Some(_), true) => state::FAILED,
            _ => state::RUNNING,
        };
        Some(TrialView {
            number,
            assignment,
            state,
            value,
            intermediate,
            resource,
        })
    }

    /// Its TrainingJob's name.
    pub fn name(&self) -> String {
        self.resource.name_any()
    }

    /// Its observation's metrics (none before the operator read its logs).
    pub fn metrics(&self) -> Vec<MetricObservation> {
        self.resource
            .status
            .as_ref()
            .and_then(|s| s.observation.as_ref())
            .map_or_else(Vec::new, |o| o.metrics.clone())
    }
}

/// The label selector of an experiment's trials.
pub fn trial_selector(experiment: &str) -> String {
    format!("{}={experiment}", trainctl_spec::trial::EXPERIMENT_LABEL)
}

/// The trials among `jobs` that `exp` owns, by number.
pub fn owned_trials(exp: &ExperimentResource, jobs: Vec<TrainingJobResource>) -> Vec<TrialView> {
    let spec = exp.to_experiment();
    let uid = exp.uid();
    let mut trials: Vec<TrialView> = jobs
        .into_iter()
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref())
        })
        .filter_map(|j| TrialView::of(&spec, j))
        .collect();
    trials.sort_by_key(|t| t.number);
    trials
}

/// A recorded value as its parameter's type.
fn typed(kind: ParameterType, text: &str) -> Option<HyperValue> {
    Some(match kind {
        ParameterType::Double | ParameterType::Discrete => HyperValue::Float(text.parse().ok()?),
        ParameterType::Int => HyperValue::Int(text.parse().ok()?),
        ParameterType::Categorical => HyperValue::String(text.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_keeps_min_max_latest_and_the_last_value_of_each_step() {
        let p = |n: &str, s, v| (n.to_string(), s, v);
        let points = [
            p("acc", 1, 0.5),
            p("loss", 1, 2.0),
            p("acc", 2, 0.7),
            p("acc", 2, 0.6),
            p("loss", 2, 1.0),
        ];
        let names = ["acc".to_string(), "loss".to_string(), "f1".to_string()];
        let o = TrialObservation::from_points("acc", &names, &points);
        assert_eq!(o.steps(), vec![(1, 0.5), (2, 0.6)]);
        assert_eq!(o.metrics.len(), 2, "f1 was never printed");
        assert_eq!(
            (o.metrics[0].min, o.metrics[0].max, o.metrics[0].latest),
            (0.5, 0.7, 0.6)
        );
        assert_eq!(
            (o.metrics[1].min, o.metrics[1].max, o.metrics[1].latest),
            (1.0, 2.0, 1.0)
        );
    }

    #[test]
    fn an_experiments_annotations_reach_the_search_code_but_kubectls_do_not() {
        let yaml = "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {name: e}\n\
                    spec:\n  objective: {type: maximize, objectiveMetricName: acc}\n  algorithm: {algorithmName: random}\n  \
                    parameters:\n  - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n  \
                    trialTemplate:\n    spec: {image: i, command: [c], replicas: {worker: {count: 1}}}\n";
        let exp = trainctl_spec::parse_experiment_str("e.yaml", yaml).expect("a valid experiment");
        let mut resource = ExperimentResource::from_experiment(&exp, "default");
        resource.metadata.annotations = Some(BTreeMap::from([
            ("team.example.com/owner".to_string(), "ml".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
        ]));
        let exp = resource.to_experiment();
        assert_eq!(
            exp.metadata.annotations.keys().collect::<Vec<_>>(),
            ["team.example.com/owner"]
        );
    }
}
