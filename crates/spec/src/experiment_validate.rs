//! The rules of an Experiment file, each broken rule a violation at its field path.

use std::collections::BTreeSet;

use trainctl_search::{Domain, SearchError, Space};

use crate::errors::Violation;
use crate::experiment::{integer, number, Experiment, EXPERIMENT_KIND};
use crate::types::{TrainingJob, API_VERSION, KIND};
use crate::validate::{is_dns1035_label, is_hyperparameter_name, validate};

/// The longest experiment name: its trials, `<name>-<n>`, must stay DNS-1035 labels (63
/// characters) up to trial 99999.
const MAX_NAME: usize = 57;

/// Every rule the experiment breaks; empty when it is valid.
pub fn validate_experiment(exp: &Experiment) -> Vec<Violation> {
    let mut out = Vec::new();
    if exp.api_version != API_VERSION {
        out.push(Violation::new(
            "apiVersion",
            format!(
                "unsupported apiVersion {:?}; use {API_VERSION}",
                exp.api_version
            ),
        ));
    }
    if exp.kind != EXPERIMENT_KIND {
        out.push(Violation::new(
            "kind",
            format!("unsupported kind {:?}; use {EXPERIMENT_KIND}", exp.kind),
        ));
    }
    let name = exp.name();
    if name.is_empty() {
        out.push(Violation::new(
            "metadata.name",
            "the experiment needs a name",
        ));
    } else if !is_dns1035_label(name) || name.len() > MAX_NAME {
        out.push(Violation::new(
            "metadata.name",
            format!(
                "{name:?} cannot name trials: use at most {MAX_NAME} lower-case letters, digits \
                 and '-', starting with a letter and not ending with '-' (trials are named \
                 {name}-1, {name}-2, ...)"
            ),
        ));
    }
    check_counts(exp, &mut out);
    check_objective(exp, &mut out);
    check_algorithms(exp, &mut out);
    check_parameters(exp, &mut out);
    check_template(exp, &mut out);
    out
}

fn check_counts(exp: &Experiment, out: &mut Vec<Violation>) {
    let s = &exp.spec;
    let fields = [
        ("parallelTrialCount", &s.parallel_trial_count, 1),
        ("maxTrialCount", &s.max_trial_count, 1),
        ("maxFailedTrialCount", &s.max_failed_trial_count, 0),
    ];
    for (field, value, least) in fields {
        if let Some(v) = value {
            if integer(v).is_none_or(|i| i < least) {
                out.push(Violation::new(
                    format!("spec.{field}"),
                    format!("{v} is not a whole number >= {least}"),
                ));
            }
        }
    }
    if let (Some(parallel), Some(max)) = (
        s.parallel_trial_count.as_ref().and_then(integer),
        s.max_trial_count.as_ref().and_then(integer),
    ) {
        if parallel > max && max >= 1 {
            out.push(Violation::new(
                "spec.parallelTrialCount",
                format!("{parallel} trials at once is more than maxTrialCount ({max}) in all"),
            ));
        }
    }
}

fn check_objective(exp: &Experiment, out: &mut Vec<Violation>) {
    let o = &exp.spec.objective;
    let metric = o.objective_metric_name.as_str();
    if metric.trim().is_empty() {
        out.push(Violation::new(
            "spec.objective.objectiveMetricName",
            "name the metric the trials report",
        ));
    } else if exp.spec.parameters.iter().any(|p| p.name == metric) {
        out.push(Violation::new(
            "spec.objective.objectiveMetricName",
            format!(
                "{metric:?} is also a parameter name: the objective is what a trial reports, \
                 not what it is given; rename one of them"
            ),
        ));
    }
    if let Some(goal) = &o.goal {
        if number(goal).is_none() {
            out.push(Violation::new(
                "spec.objective.goal",
                format!("{goal} is not a number"),
            ));
        }
    }
    let known: BTreeSet<&str> = std::iter::once(metric)
        .chain(o.additional_metric_names.iter().map(String::as_str))
        .collect();
    for (i, s) in o.metric_strategies.iter().enumerate() {
        if !known.contains(s.name.as_str()) {
            out.push(Violation::new(
                format!("spec.objective.metricStrategies[{i}].name"),
                format!(
                    "{:?} is neither the objective metric nor an additional metric ({})",
                    s.name,
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
            break;
        }
    }
}

fn check_algorithms(exp: &Experiment, out: &mut Vec<Violation>) {
    let at = |field: &str, e: SearchError| {
        let path = match e {
            SearchError::Algorithm(_) => format!("spec.{field}.algorithmName"),
            _ => format!("spec.{field}.algorithmSettings"),
        };
        Violation::new(path, e.to_string())
    };
    if let Err(e) = exp.sampler() {
        out.push(at("algorithm", e));
    }
    if let Err(e) = exp.early_stopping() {
        out.push(at("earlyStopping", e));
    }
}

fn check_parameters(exp: &Experiment, out: &mut Vec<Violation>) {
    let params = &exp.spec.parameters;
    if params.is_empty() {
        out.push(Violation::new(
            "spec.parameters",
            "list at least one parameter to search over",
        ));
    }
    let grid = exp.spec.algorithm.algorithm_name == "grid";
    for (i, p) in params.iter().enumerate() {
        let at = format!("spec.parameters[{i}]");
        if !is_hyperparameter_name(&p.name) {
            out.push(Violation::new(
                format!("{at}.name"),
                format!(
                    "{:?} is not a hyperparameter name: trials get it as --NAME=value, so it \
                     holds letters, digits, '-' and '_', starting with a letter",
                    p.name
                ),
            ));
        } else if params[..i].iter().any(|q| q.name == p.name) {
            out.push(Violation::new(
                format!("{at}.name"),
                format!("parameter {:?} is declared twice", p.name),
            ));
        }
        let space = p
            .to_search()
            .map_err(|e| format!("parameter {}: {e}", p.name))
            .and_then(|param| Space::new(vec![param]).map_err(|e| e.to_string()));
        match space {
            Err(e) => out.push(Violation::new(format!("{at}.feasibleSpace"), e)),
            Ok(space) if grid => {
                if let Domain::Double { step: None, .. } = space.params()[0].domain {
                    out.push(Violation::new(
                        format!("{at}.feasibleSpace"),
                        format!(
                            "parameter {}: grid search needs a `step` for a double parameter",
                            p.name
                        ),
                    ));
                }
            }
            Ok(_) => {}
        }
    }
}

/// The trial template is a TrainingJob spec: validated as the job of trial 1 would be, with
/// its violations moved under `spec.trialTemplate`.
fn check_template(exp: &Experiment, out: &mut Vec<Violation>) {
    let job = TrainingJob {
        api_version: API_VERSION.to_string(),
        kind: KIND.to_string(),
        metadata: crate::types::ObjectMeta {
            name: format!("{}-1", exp.name()),
            ..Default::default()
        },
        spec: exp.spec.trial_template.spec.clone(),
    };
    for v in validate(&job) {
        if let Some(rest) = v.path.strip_prefix("spec.") {
            out.push(Violation::new(
                format!("spec.trialTemplate.spec.{rest}"),
                v.message,
            ));
        }
    }
}
