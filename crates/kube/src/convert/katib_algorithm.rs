//! A Katib `algorithm` and `earlyStopping` in trainctl's terms. The samplers both have keep
//! their names; Katib's `bayesianoptimization` becomes `multivariate-tpe` and its `hyperband`
//! (a sampler there) becomes random sampling with Hyperband early stopping over the epochs
//! of full-length trials. Settings trainctl does not know are reported, never kept (they
//! would fail validation).

use serde_json::Value;
use trainctl_search::{EarlyStopping, Sampler};
use trainctl_spec::{AlgorithmSetting, AlgorithmSpec, HyperValue};

use super::ConvertError;

/// Katib samplers with the same name and meaning here.
const SAME: &[&str] = &[
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "sobol",
];

/// What a Katib `algorithm` becomes.
pub struct Search {
    /// The sampler.
    pub algorithm: AlgorithmSpec,
    /// Early stopping the algorithm implies (Katib's `hyperband`).
    pub early_stopping: Option<AlgorithmSpec>,
    /// A parameter the algorithm sets itself rather than searches (Hyperband's resource),
    /// with the value every trial gets.
    pub fixed: Option<(String, HyperValue)>,
}

/// `spec.algorithm` of a Katib experiment.
pub fn algorithm(spec: &Value, dropped: &mut Vec<String>) -> Result<Search, ConvertError> {
    let at = "spec.algorithm";
    let name = spec["algorithm"]["algorithmName"]
        .as_str()
        .ok_or_else(|| ConvertError::Unsupported(format!("{at}.algorithmName is missing")))?;
    let given = settings(&spec["algorithm"], at)?;
    let plain = |name: &str, renames: &[(&str, &str)], dropped: &mut Vec<String>| Search {
        algorithm: keep_known(name, &given, renames, at, dropped),
        early_stopping: None,
        fixed: None,
    };
    match name {
        _ if SAME.contains(&name) => Ok(plain(name, &[], dropped)),
        "bayesianoptimization" => {
            dropped.push(format!(
                "{at}.algorithmName bayesianoptimization (a Gaussian process): multivariate-tpe \
                 instead, the model-based sampler trainctl has"
            ));
            Ok(plain(
                "multivariate-tpe",
                &[("n_initial_points", "n_startup_trials")],
                dropped,
            ))
        }
        "hyperband" => hyperband(spec, &given, dropped),
        "pbt" | "enas" | "darts" => Err(ConvertError::Unsupported(format!(
            "{at}.algorithmName {name:?} has no counterpart in trainctl (population-based \
             training and neural architecture search); algorithms that convert: {}, \
             bayesianoptimization, hyperband",
            SAME.join(", ")
        ))),
        _ => Err(ConvertError::Unsupported(format!(
            "{at}.algorithmName {name:?} is not a Katib algorithm trainctl knows; algorithms \
             that convert: {}, bayesianoptimization, hyperband",
            SAME.join(", ")
        ))),
    }
}

/// `spec.earlyStopping` of a Katib experiment (Katib has `medianstop`).
pub fn early_stopping(
    spec: &Value,
    dropped: &mut Vec<String>,
) -> Result<Option<AlgorithmSpec>, ConvertError> {
    let at = "spec.earlyStopping";
    let es = &spec["earlyStopping"];
    if es.is_null() {
        return Ok(None);
    }
    let name = es["algorithmName"].as_str().unwrap_or_default();
    if EarlyStopping::known_settings(name).is_none() {
        return Err(ConvertError::Unsupported(format!(
            "{at}.algorithmName {name:?}: early stopping that converts: medianstop, asha, \
             hyperband"
        )));
    }
    let given = settings(es, at)?;
    Ok(Some(keep_known(name, &given, &[], at, dropped)))
}

/// Katib's Hyperband samples at random and gives each trial a budget of `resource_name`;
/// here every trial gets the full budget (`r_l`, else the parameter's max) and Hyperband
/// stops the unpromising ones at its rungs.
fn hyperband(
    spec: &Value,
    given: &[(String, Value)],
    dropped: &mut Vec<String>,
) -> Result<Search, ConvertError> {
    let at = "spec.algorithm.algorithmSettings";
    let get = |n: &str| given.iter().find(|(k, _)| k == n).map(|(_, v)| v);
    let resource = get("resource_name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ConvertError::Unsupported(format!(
                "{at}: hyperband needs resource_name, the parameter that is a trial's budget"
            ))
        })?;
    let param = super::katib::parameters_of(spec)
        .into_iter()
        .find(|p| p["name"] == resource)
        .ok_or_else(|| {
            ConvertError::Unsupported(format!(
                "{at}: resource_name {resource:?} is not one of spec.parameters"
            ))
        })?;
    let budget = get("r_l")
        .or(Some(&param["feasibleSpace"]["max"]))
        .and_then(number)
        .ok_or_else(|| {
            ConvertError::Unsupported(format!(
                "{at}: hyperband needs r_l or a numeric max of parameter {resource:?}"
            ))
        })?;
    let mut early = vec![setting("max_resource", budget.to_string())];
    if let Some(eta) = get("eta") {
        early.push(setting("reduction_factor", text(eta)));
    }
    let algorithm_settings = get("random_state")
        .map(|seed| vec![setting("random_state", text(seed))])
        .unwrap_or_default();
    for (k, _) in given {
        if !["resource_name", "r_l", "eta", "random_state"].contains(&k.as_str()) {
            dropped.push(format!("{at} ({k}): not a setting of Hyperband here"));
        }
    }
    dropped.push(format!(
        "spec.algorithm hyperband: random sampling with Hyperband early stopping; parameter \
         {resource:?} is no longer searched, every trial gets {budget} and is stopped at a rung \
         when it falls behind"
    ));
    Ok(Search {
        algorithm: AlgorithmSpec {
            algorithm_name: "random".into(),
            algorithm_settings,
        },
        early_stopping: Some(AlgorithmSpec {
            algorithm_name: "hyperband".into(),
            algorithm_settings: early,
        }),
        fixed: Some((resource.to_string(), HyperValue::Int(budget))),
    })
}

/// The `{name, value}` settings of an algorithm.
fn settings(algorithm: &Value, at: &str) -> Result<Vec<(String, Value)>, ConvertError> {
    let list = &algorithm["algorithmSettings"];
    if list.is_null() {
        return Ok(Vec::new());
    }
    let items = list.as_array().ok_or_else(|| {
        ConvertError::Unsupported(format!("{at}.algorithmSettings is not a list"))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| match s["name"].as_str() {
            Some(name) => Ok((name.to_string(), s["value"].clone())),
            None => Err(ConvertError::Unsupported(format!(
                "{at}.algorithmSettings[{i}] has no name"
            ))),
        })
        .collect()
}

/// The algorithm with the settings it knows (after `renames`); the others are reported.
fn keep_known(
    name: &str,
    given: &[(String, Value)],
    renames: &[(&str, &str)],
    at: &str,
    dropped: &mut Vec<String>,
) -> AlgorithmSpec {
    let known = Sampler::known_settings(name)
        .or(EarlyStopping::known_settings(name))
        .unwrap_or_default();
    let mut algorithm_settings = Vec::new();
    for (k, v) in given {
        let k = renames
            .iter()
            .find(|(from, _)| from == k)
            .map_or(k.as_str(), |(_, to)| to);
        if known.contains(&k) {
            algorithm_settings.push(setting(k, text(v)));
        } else {
            dropped.push(format!(
                "{at}.algorithmSettings ({k}): not a setting of {name} in trainctl (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    AlgorithmSpec {
        algorithm_name: name.to_string(),
        algorithm_settings,
    }
}

fn setting(name: &str, value: String) -> AlgorithmSetting {
    AlgorithmSetting {
        name: name.to_string(),
        value: HyperValue::String(value),
    }
}

/// A setting's value as Katib's text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A whole number written as a number or a string.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_i64(),
    }
}
