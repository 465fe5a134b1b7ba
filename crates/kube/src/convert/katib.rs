//! Katib `kubeflow.org/v1beta1` Experiments to trainctl Experiment files. The objective,
//! counts and parameters keep their Katib names; the algorithm maps as
//! [`katib_algorithm`](super::katib_algorithm) says; the trial template's
//! `${trialParameters.<name>}` placeholders become hyperparameters named by the flag they
//! stood in ([`placeholders`](super::placeholders)), each searched parameter renamed after
//! the flag its trial parameter's `reference` feeds; and the `trialSpec` (a batch Job, TFJob
//! or PyTorchJob) becomes the TrainingJob template through [`convert_job`](super::convert_job).
//! Whatever has no counterpart is reported, never dropped silently.

use std::collections::BTreeMap;

use serde_json::Value;
use trainctl_spec::{
    validate_experiment, Distribution, Experiment, ExperimentSpec, FeasibleSpace, HyperValue,
    MetricStrategy, MetricStrategyType, Objective, ObjectiveType, ParameterSpec, ParameterType,
    TrialTemplate, API_VERSION, EXPERIMENT_KIND,
};

use super::{convert_job, katib_algorithm, metadata, placeholders, valid, ConvertError};

/// A converted experiment and what did not carry over.
#[derive(Debug, Clone)]
pub struct ConvertedExperiment {
    /// The equivalent Experiment file.
    pub experiment: Experiment,
    /// One line per setting that has no Experiment field and was left out or changed.
    pub dropped: Vec<String>,
}

/// The fields of a Katib experiment's spec this conversion reads.
const READ: &[&str] = &[
    "objective",
    "algorithm",
    "earlyStopping",
    "parameters",
    "parallelTrialCount",
    "maxTrialCount",
    "maxFailedTrialCount",
    "trialTemplate",
    "metricsCollectorSpec",
];

/// Whether the document is a Katib experiment.
pub fn is_katib_experiment(doc: &Value) -> bool {
    doc["kind"] == "Experiment"
        && doc["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("kubeflow.org/"))
}

/// Converts a parsed Katib v1beta1 Experiment.
pub fn convert_experiment(doc: &Value) -> Result<ConvertedExperiment, ConvertError> {
    if doc["apiVersion"] != "kubeflow.org/v1beta1" || doc["kind"] != "Experiment" {
        return Err(ConvertError::Unsupported(format!(
            "expected a kubeflow.org/v1beta1 Experiment, got {} {}",
            doc["apiVersion"].as_str().unwrap_or("no apiVersion"),
            doc["kind"]
        )));
    }
    let spec = &doc["spec"];
    let mut dropped = Vec::new();
    for (k, v) in spec.as_object().into_iter().flatten() {
        match k.as_str() {
            _ if READ.contains(&k.as_str()) => {}
            "resumePolicy" => dropped.push(format!(
                "spec.resumePolicy ({}): a trainctl experiment always resumes where it stopped \
                 (trainctl resume experiment NAME)",
                v.as_str().unwrap_or("?")
            )),
            "nasConfig" => dropped.push(
                "spec.nasConfig: neural architecture search has no counterpart in trainctl".into(),
            ),
            _ => dropped.push(format!("spec.{k}: no Experiment field")),
        }
    }
    let mut search = katib_algorithm::algorithm(spec, &mut dropped)?;
    let mut early_stopping = katib_algorithm::early_stopping(spec, &mut dropped)?;
    if search.early_stopping.is_some() {
        if early_stopping.is_some() {
            return Err(ConvertError::Unsupported(
                "spec.earlyStopping: the hyperband algorithm already stops trials early; \
                 remove one of them"
                    .into(),
            ));
        }
        early_stopping = search.early_stopping.take();
    }
    let meta = metadata(&doc["metadata"]);
    let (template, flags) = trial_template(spec, &meta.name, &mut dropped)?;
    let mut template = template;
    let mut parameters = Vec::new();
    for (i, p) in parameters_of(spec).iter().enumerate() {
        let p = parameter(p, &format!("spec.parameters[{i}]"), &mut dropped)?;
        let name = flags
            .get(&p.name)
            .cloned()
            .unwrap_or_else(|| p.name.clone());
        match &search.fixed {
            Some((fixed, value)) if *fixed == p.name => {
                template.hyperparameters.insert(name, value.clone());
            }
            _ => {
                if !flags.contains_key(&p.name) {
                    dropped.push(format!(
                        "spec.parameters[{i}] ({}): no placeholder of the trial template \
                         refers to it; trials get it as --{}=value and HP_ variable all the same",
                        p.name, p.name
                    ));
                }
                parameters.push(ParameterSpec { name, ..p });
            }
        }
    }
    metrics_collector(&spec["metricsCollectorSpec"], &mut template, &mut dropped);
    let experiment = Experiment {
        api_version: API_VERSION.into(),
        kind: EXPERIMENT_KIND.into(),
        metadata: meta,
        spec: ExperimentSpec {
            objective: objective(&spec["objective"])?,
            algorithm: search.algorithm,
            early_stopping,
            parallel_trial_count: number(&spec["parallelTrialCount"]),
            max_trial_count: number(&spec["maxTrialCount"]),
            max_failed_trial_count: number(&spec["maxFailedTrialCount"]),
            parameters,
            trial_template: TrialTemplate { spec: template },
        },
    };
    valid(validate_experiment(&experiment))?;
    Ok(ConvertedExperiment {
        experiment,
        dropped,
    })
}

/// The entries of `spec.parameters`.
pub(super) fn parameters_of(spec: &Value) -> Vec<&Value> {
    spec["parameters"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// A JSON scalar as a value of the experiment file. Katib writes numbers as strings; they
/// become numbers when they read back as the same text.
fn number(v: &Value) -> Option<HyperValue> {
    match v {
        Value::String(s) => Some(super::hyperparameters::value_of(s)),
        other => hyper(other),
    }
}

/// A JSON scalar as a hyperparameter value, strings kept as text.
fn hyper(v: &Value) -> Option<HyperValue> {
    match v {
        Value::String(s) => Some(HyperValue::String(s.clone())),
        Value::Bool(b) => Some(HyperValue::Bool(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => HyperValue::Int(i),
            None => HyperValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn objective(o: &Value) -> Result<Objective, ConvertError> {
    let at = "spec.objective";
    let direction = match o["type"].as_str() {
        Some("maximize") => ObjectiveType::Maximize,
        Some("minimize") => ObjectiveType::Minimize,
        other => {
            return Err(ConvertError::Unsupported(format!(
                "{at}.type: {other:?} is neither maximize nor minimize"
            )))
        }
    };
    let mut metric_strategies = Vec::new();
    for (i, s) in o["metricStrategies"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let value = match s["value"].as_str() {
            Some("min") => MetricStrategyType::Min,
            Some("max") => MetricStrategyType::Max,
            Some("latest") => MetricStrategyType::Latest,
            other => {
                return Err(ConvertError::Unsupported(format!(
                    "{at}.metricStrategies[{i}].value: {other:?} is not min, max or latest"
                )))
            }
        };
        metric_strategies.push(MetricStrategy {
            name: s["name"].as_str().unwrap_or_default().to_string(),
            value,
        });
    }
    Ok(Objective {
        direction,
        objective_metric_name: o["objectiveMetricName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        goal: number(&o["goal"]),
        additional_metric_names: strings(&o["additionalMetricNames"]),
        metric_strategies,
    })
}

fn parameter(
    p: &Value,
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<ParameterSpec, ConvertError> {
    let parameter_type = match p["parameterType"].as_str() {
        Some("double") => ParameterType::Double,
        Some("int") => ParameterType::Int,
        Some("categorical") => ParameterType::Categorical,
        Some("discrete") => ParameterType::Discrete,
        other => {
            return Err(ConvertError::Unsupported(format!(
                "{at}.parameterType: {other:?} is not double, int, categorical or discrete"
            )))
        }
    };
    let fs = &p["feasibleSpace"];
    let distribution = match fs["distribution"].as_str() {
        None | Some("uniform") => None,
        Some("logUniform") => Some(Distribution::LogUniform),
        Some(d @ ("normal" | "logNormal")) => {
            dropped.push(format!(
                "{at}.feasibleSpace.distribution {d}: sampled {} between min and max",
                if d == "normal" {
                    "uniformly"
                } else {
                    "log-uniformly"
                }
            ));
            (d == "logNormal").then_some(Distribution::LogUniform)
        }
        Some(d) => {
            return Err(ConvertError::Unsupported(format!(
                "{at}.feasibleSpace.distribution: {d:?} is not uniform, logUniform, normal or \
                 logNormal"
            )))
        }
    };
    Ok(ParameterSpec {
        name: p["name"].as_str().unwrap_or_default().to_string(),
        parameter_type,
        feasible_space: FeasibleSpace {
            min: number(&fs["min"]),
            max: number(&fs["max"]),
            step: number(&fs["step"]),
            list: fs["list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    if parameter_type == ParameterType::Discrete {
                        number(v)
                    } else {
                        hyper(v)
                    }
                })
                .collect(),
            distribution,
        },
    })
}

/// The TrainingJob template and, per searched parameter, the flag its placeholder stood in.
fn trial_template(
    spec: &Value,
    experiment: &str,
    dropped: &mut Vec<String>,
) -> Result<(trainctl_spec::TrainingJobSpec, BTreeMap<String, String>), ConvertError> {
    let at = "spec.trialTemplate";
    let t = &spec["trialTemplate"];
    if !t["configMap"].is_null() {
        return Err(ConvertError::Unsupported(format!(
            "{at}.configMap: the trial template lives in a ConfigMap; put it inline as \
             trialTemplate.trialSpec and convert again"
        )));
    }
    if !t["trialSpec"].is_object() {
        return Err(ConvertError::Unsupported(format!(
            "{at}.trialSpec is missing: the experiment has no trial job"
        )));
    }
    for (field, why) in [
        (
            "successCondition",
            "trainctl decides success by the job's successPolicy",
        ),
        (
            "failureCondition",
            "trainctl decides failure by the job's restart rules",
        ),
        ("primaryPodLabels", "every replica of a trial is watched"),
        (
            "retain",
            "a finished trial's processes end; its logs and metrics stay",
        ),
    ] {
        if !t[field].is_null() {
            dropped.push(format!("{at}.{field}: {why}"));
        }
    }
    let mut trial = t["trialSpec"].clone();
    let found = placeholders::take(&mut trial, &format!("{at}.trialSpec"))?;
    let mut references = BTreeMap::new();
    for (i, tp) in t["trialParameters"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = tp["name"].as_str().unwrap_or_default();
        let reference = tp["reference"].as_str().unwrap_or(name);
        if !parameters_of(spec).iter().any(|p| p["name"] == reference) {
            return Err(ConvertError::Unsupported(format!(
                "{at}.trialParameters[{i}] ({name}): reference {reference:?} is not one of \
                 spec.parameters{}",
                if reference.starts_with("${trialSpec.") {
                    " (a trial's own metadata has no placeholder in trainctl)"
                } else {
                    ""
                }
            )));
        }
        references.insert(name.to_string(), reference.to_string());
    }
    let mut flags: BTreeMap<String, String> = BTreeMap::new();
    for (name, flag) in &found {
        let reference = references.get(name).ok_or_else(|| {
            ConvertError::Unsupported(format!(
                "{at}.trialSpec: placeholder ${{trialParameters.{name}}} names no entry of \
                 {at}.trialParameters"
            ))
        })?;
        if let Some(other) = flags.get(reference).filter(|f| *f != flag) {
            return Err(ConvertError::Unsupported(format!(
                "{at}.trialSpec: parameter {reference:?} is passed as --{flag} and as --{other}; \
                 a trial's value reaches the program under one name"
            )));
        }
        if let Some((taken, _)) = flags.iter().find(|(r, f)| *f == flag && *r != reference) {
            return Err(ConvertError::Unsupported(format!(
                "{at}.trialSpec: --{flag} is given parameters {taken:?} and {reference:?}"
            )));
        }
        flags.insert(reference.clone(), flag.clone());
    }
    for name in references.keys().filter(|n| !found.contains_key(*n)) {
        dropped.push(format!(
            "{at}.trialParameters ({name}): no placeholder in the trial spec uses it"
        ));
    }
    if let Some(meta) = trial["metadata"].as_object() {
        if meta.keys().any(|k| k != "name") {
            dropped.push(format!(
                "{at}.trialSpec.metadata: a trial's name and labels are trainctl's own"
            ));
        }
    }
    trial["metadata"] = serde_json::json!({"name": format!("{experiment}-1")});
    let converted = convert_job(&trial)
        .map_err(|e| ConvertError::Unsupported(format!("{at}.trialSpec: {e}")))?;
    dropped.extend(
        converted
            .dropped
            .into_iter()
            .map(|d| format!("{at}.trialSpec.{d}")),
    );
    Ok((converted.job.spec, flags))
}

/// Katib's metrics collector: standard output is what trainctl reads anyway, and TensorFlow
/// event files are read from the template's `tensorboard.logDir`; other kinds are reported.
fn metrics_collector(
    mc: &Value,
    template: &mut trainctl_spec::TrainingJobSpec,
    dropped: &mut Vec<String>,
) {
    let at = "spec.metricsCollectorSpec";
    let path = mc["source"]["fileSystemPath"]["path"].as_str();
    match mc["collector"]["kind"].as_str() {
        None | Some("StdOut") => {}
        Some("TensorFlowEvent") if template.tensorboard.is_none() && path.is_some() => {
            template.tensorboard = Some(trainctl_spec::TensorBoard {
                log_dir: path.unwrap_or_default().to_string(),
                service_type: Default::default(),
                image: None,
            });
        }
        Some("File") => dropped.push(format!(
            "{at}.collector File ({}): trainctl reads metrics from what replicas print and \
             from event files; print the metric lines as well",
            path.unwrap_or("no path")
        )),
        Some(kind) => dropped.push(format!(
            "{at}.collector {kind}: no counterpart; trainctl reads metrics from what replicas \
             print and from event files"
        )),
    }
    if !mc["source"]["filter"].is_null() {
        dropped.push(format!(
            "{at}.source.filter: Katib's positional regexes; write metrics.regex with named \
             groups (?P<name>...)(?P<value>...) in the template"
        ));
    }
}
