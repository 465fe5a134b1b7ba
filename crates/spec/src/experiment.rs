//! The Experiment file (`kind: Experiment`): a hyperparameter search whose field names follow
//! Katib v1beta1, so Katib users recognize them. Numbers may be written as numbers or, as in
//! Katib, as strings; validation turns them into numbers with a located error.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trainctl_search::{Direction, Domain, EarlyStopping, Parameter, Sampler, SearchError, Space};

use crate::types::{HyperValue, ObjectMeta, TrainingJobSpec};

/// The kind of an experiment file.
pub const EXPERIMENT_KIND: &str = "Experiment";

/// A hyperparameter search as written in an experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experiment {
    /// Must be `trainctl.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `Experiment`.
    pub kind: String,
    /// The experiment's name; its trials are named `<name>-<n>`.
    pub metadata: ObjectMeta,
    /// What to search and how.
    pub spec: ExperimentSpec,
}

/// The desired search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentSpec {
    /// The metric to optimize and in which direction.
    pub objective: Objective,
    /// The search algorithm.
    pub algorithm: AlgorithmSpec,
    /// Stops unpromising trials early: `medianstop`, `asha` or `hyperband`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<AlgorithmSpec>,
    /// Trials running at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_trial_count: Option<HyperValue>,
    /// Trials in all; the experiment ends when this many have finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_trial_count: Option<HyperValue>,
    /// Failed (and metrics-unavailable) trials that fail the experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failed_trial_count: Option<HyperValue>,
    /// The hyperparameters searched over.
    pub parameters: Vec<ParameterSpec>,
    /// The TrainingJob each trial runs, with the trial's assignments merged into its
    /// `hyperparameters`.
    pub trial_template: TrialTemplate,
}

/// What is optimized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Objective {
    /// `maximize` or `minimize`.
    #[serde(rename = "type")]
    pub direction: ObjectiveType,
    /// The metric the trials report.
    pub objective_metric_name: String,
    /// Stop the experiment once a trial reaches this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<HyperValue>,
    /// Other metrics recorded for every trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_metric_names: Vec<String>,
    /// Which value of a metric counts for a trial (default `max` when maximizing, `min` when
    /// minimizing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_strategies: Vec<MetricStrategy>,
}

/// The objective's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ObjectiveType {
    /// Larger is better.
    Maximize,
    /// Smaller is better.
    Minimize,
}

/// Which of a metric's values counts for a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricStrategy {
    /// The metric.
    pub name: String,
    /// `min`, `max` or `latest`.
    pub value: MetricStrategyType,
}

/// A metric strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricStrategyType {
    /// The smallest value reported.
    Min,
    /// The largest value reported.
    Max,
    /// The last value reported.
    Latest,
}

/// An algorithm and its Katib-style settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlgorithmSpec {
    /// The algorithm's name.
    pub algorithm_name: String,
    /// `{name, value}` settings (values are strings in Katib; numbers are accepted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithm_settings: Vec<AlgorithmSetting>,
}

/// One algorithm setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlgorithmSetting {
    /// The setting's name.
    pub name: String,
    /// Its value.
    pub value: HyperValue,
}

/// One searched hyperparameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterSpec {
    /// The hyperparameter's name (passed as `--name=value` and `HP_NAME`).
    pub name: String,
    /// `double`, `int`, `categorical` or `discrete`.
    pub parameter_type: ParameterType,
    /// Its values.
    pub feasible_space: FeasibleSpace,
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    /// A real number in `[min, max]`.
    Double,
    /// An integer in `[min, max]`.
    Int,
    /// One of `list` (names).
    Categorical,
    /// One of `list` (numbers).
    Discrete,
}

/// Where a parameter's values lie.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeasibleSpace {
    /// Lower bound (`double`, `int`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<HyperValue>,
    /// Upper bound (`double`, `int`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<HyperValue>,
    /// Grid spacing (`double`, `int`); must divide `max - min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<HyperValue>,
    /// The values (`categorical`, `discrete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub list: Vec<HyperValue>,
    /// `uniform` (default) or `logUniform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
}

/// How values are drawn between `min` and `max`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Distribution {
    /// Uniformly.
    #[default]
    #[serde(rename = "uniform")]
    Uniform,
    /// Uniformly in log space (`min` > 0).
    #[serde(rename = "logUniform")]
    LogUniform,
}

/// The job each trial runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrialTemplate {
    /// A TrainingJob spec, any shape.
    pub spec: TrainingJobSpec,
}

/// A value as a number, if it is one (numbers may be written as strings, as in Katib).
pub(crate) fn number(v: &HyperValue) -> Option<f64> {
    match v {
        HyperValue::Int(i) => Some(*i as f64),
        HyperValue::Float(f) => Some(*f),
        HyperValue::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        HyperValue::Bool(_) => None,
    }
}

/// A value as a whole number, if it is one.
pub(crate) fn integer(v: &HyperValue) -> Option<i64> {
    match v {
        HyperValue::Int(i) => Some(*i),
        HyperValue::String(s) => s.trim().parse::<i64>().ok(),
        HyperValue::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(*f as i64),
        _ => None,
    }
}

/// A setting value as the text the search algorithms read.
fn setting_text(v: &HyperValue) -> String {
    match v {
        HyperValue::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}

impl AlgorithmSpec {
    /// The settings as `(name, value)` text pairs.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.algorithm_settings
            .iter()
            .map(|s| (s.name.clone(), setting_text(&s.value)))
            .collect()
    }
}

impl ParameterSpec {
    /// The parameter in the search crate's terms; a message when its fields do not fit its
    /// type.
    pub fn to_search(&self) -> Result<Parameter, String> {
        let fs = &self.feasible_space;
        let log = fs.distribution == Some(Distribution::LogUniform);
        let domain = match self.parameter_type {
            ParameterType::Double | ParameterType::Int => {
                if !fs.list.is_empty() {
                    return Err(format!(
                        "a {} parameter takes min and max, not a list",
                        type_name(self.parameter_type)
                    ));
                }
                let (min, max) = (required(&fs.min, "min")?, required(&fs.max, "max")?);
                if self.parameter_type == ParameterType::Double {
                    let num = |v: &HyperValue, what: &str| {
                        number(v)
                            .ok_or_else(|| format!("{what} {:?} is not a number", v.to_string()))
                    };
                    Domain::Double {
                        min: num(min, "min")?,
                        max: num(max, "max")?,
                        log,
                        step: fs.step.as_ref().map(|s| num(s, "step")).transpose()?,
                    }
                } else {
                    let int = |v: &HyperValue, what: &str| {
                        integer(v).ok_or_else(|| {
                            format!("{what} {:?} is not a whole number", v.to_string())
                        })
                    };
                    Domain::Int {
                        min: int(min, "min")?,
                        max: int(max, "max")?,
                        log,
                        step: fs
                            .step
                            .as_ref()
                            .map(|s| int(s, "step"))
                            .transpose()?
                            .unwrap_or(1),
                    }
                }
            }
            ParameterType::Categorical | ParameterType::Discrete => {
                if fs.min.is_some() || fs.max.is_some() || fs.step.is_some() || log {
                    return Err(format!(
                        "a {} parameter takes a list, not min, max, step or distribution",
                        type_name(self.parameter_type)
                    ));
                }
                if self.parameter_type == ParameterType::Categorical {
                    Domain::Categorical(fs.list.iter().map(|v| v.to_string()).collect())
                } else {
                    let numbers = fs.list.iter().map(|v| {
                        number(v).ok_or_else(|| {
                            format!("list entry {:?} is not a number", v.to_string())
                        })
                    });
                    Domain::Discrete(numbers.collect::<Result<_, _>>()?)
                }
            }
        };
        Ok(Parameter {
            name: self.name.clone(),
            domain,
        })
    }
}

fn required<'a>(v: &'a Option<HyperValue>, what: &str) -> Result<&'a HyperValue, String> {
    v.as_ref().ok_or_else(|| format!("{what} is required"))
}

fn type_name(t: ParameterType) -> &'static str {
    match t {
        ParameterType::Double => "double",
        ParameterType::Int => "int",
        ParameterType::Categorical => "categorical",
        ParameterType::Discrete => "discrete",
    }
}

impl Experiment {
    /// The experiment name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The objective's direction in the search crate's terms.
    pub fn direction(&self) -> Direction {
        match self.spec.objective.direction {
            ObjectiveType::Maximize => Direction::Maximize,
            ObjectiveType::Minimize => Direction::Minimize,
        }
    }

    /// The space searched over.
    pub fn search_space(&self) -> Result<Space, SearchError> {
        let params = self.spec.parameters.iter().map(|p| p.to_search());
        Space::new(
            params
                .collect::<Result<_, _>>()
                .map_err(SearchError::Space)?,
        )
    }

    /// The sampler (algorithm, settings and seed).
    pub fn sampler(&self) -> Result<Sampler, SearchError> {
        let a = &self.spec.algorithm;
        Sampler::new(&a.algorithm_name, &a.settings())
    }

    /// The early-stopping rule, if any. Successive halving without `max_resource` runs a
    /// full trial for the template's `epochs` (its hyperparameter, else the largest value of
    /// a searched `epochs`), when that is above `min_resource`; otherwise the most steps a
    /// completed trial reported.
    pub fn early_stopping(&self) -> Result<Option<EarlyStopping>, SearchError> {
        let mut rule = self
            .spec
            .early_stopping
            .as_ref()
            .map(|a| EarlyStopping::new(&a.algorithm_name, &a.settings()))
            .transpose()?;
        if let Some(EarlyStopping::Asha(h) | EarlyStopping::Hyperband(h)) = rule.as_mut() {
            if h.max_resource.is_none() {
                h.max_resource = self.epochs().filter(|e| *e > h.min_resource);
            }
        }
        Ok(rule)
    }

    /// The epochs of a full trial: the template's `epochs` hyperparameter, else the upper
    /// bound of a searched `epochs` parameter.
    fn epochs(&self) -> Option<f64> {
        const EPOCHS: &str = "epochs";
        let fixed = self.spec.trial_template.spec.hyperparameters.get(EPOCHS);
        let searched = || {
            let p = self.spec.parameters.iter().find(|p| p.name == EPOCHS)?;
            match p.to_search().ok()?.domain {
                Domain::Int { max, .. } => Some(max as f64),
                Domain::Double { max, .. } => Some(max),
                Domain::Discrete(values) => values.into_iter().reduce(f64::max),
                Domain::Categorical(_) => None,
            }
        };
        fixed.and_then(number).or_else(searched)
    }

    /// Trials at once (default 1).
    pub fn parallel_trial_count(&self) -> u64 {
        count(&self.spec.parallel_trial_count).unwrap_or(1)
    }

    /// Trials in all, if bounded.
    pub fn max_trial_count(&self) -> Option<u64> {
        count(&self.spec.max_trial_count)
    }

    /// Failed trials that fail the experiment, if bounded.
    pub fn max_failed_trial_count(&self) -> Option<u64> {
        count(&self.spec.max_failed_trial_count)
    }

    /// The objective's goal, if any.
    pub fn goal(&self) -> Option<f64> {
        self.spec.objective.goal.as_ref().and_then(number)
    }
}

fn count(v: &Option<HyperValue>) -> Option<u64> {
    v.as_ref()
        .and_then(integer)
        .and_then(|i| u64::try_from(i).ok())
}
