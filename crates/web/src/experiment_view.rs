//! Experiments as the dashboard shows them, built from the rows any source fills: an
//! [`ExperimentRow`] with its [`TrialRow`]s (the local store's, or a cluster's Experiment
//! converted into the same rows) and what the trials' metrics say ([`TrialMetrics`]). Pure:
//! no I/O here, so every source answers with the same JSON.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use trainctl_backend::experiment::status::{best_trial, state, Counts};
use trainctl_local::store::{ExperimentRow, TrialRow};
use trainctl_spec::trial::counted_value;
use trainctl_spec::ObjectiveType;

/// Intermediate values per trial sent for the curves; longer runs are thinned evenly (the
/// last value always kept).
pub const CURVE_POINTS: usize = 200;

/// What a trial's job reported, as far as the experiment page needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrialMetrics {
    /// The objective's values by step (the last value of each step), in step order.
    pub intermediate: Vec<(u64, f64)>,
    /// The latest value of each additional metric the experiment names.
    pub latest: BTreeMap<String, f64>,
}

/// Whether an experiment has ended: nothing about it changes any more.
pub fn ended(exp: &ExperimentRow, trials: &[TrialRow]) -> bool {
    matches!(exp.phase.as_str(), "Succeeded" | "Failed")
        && trials.iter().all(|t| t.state != state::RUNNING)
}

/// The counted objective of a trial: the recorded one once it ended, else the value its
/// values so far would count.
fn objective(exp: &ExperimentRow, t: &TrialRow, m: &TrialMetrics) -> Option<f64> {
    t.value
        .or_else(|| counted_value(&exp.spec, &m.intermediate))
}

/// The values a trial's page shows: the recorded ones once it ended, else the metrics read
/// now (a running trial's row holds none yet).
fn intermediate<'a>(t: &'a TrialRow, m: &'a TrialMetrics) -> &'a [(u64, f64)] {
    if t.intermediate.is_empty() {
        &m.intermediate
    } else {
        &t.intermediate
    }
}

/// At most `max` of `points`, evenly spaced, the last one always kept.
fn thin(points: &[(u64, f64)], max: usize) -> Vec<(u64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let last = points.len() - 1;
    (0..max).map(|i| points[i * last / (max - 1)]).collect()
}

/// Trials per state as the list and the page show them.
fn counts_json(trials: &[TrialRow]) -> Value {
    let c = Counts::of(trials);
    let killed = trials.iter().filter(|t| t.state == state::KILLED).count();
    json!({
        "total": c.trials,
        state::RUNNING: c.running,
        state::SUCCEEDED: c.succeeded,
        state::FAILED: c.failed,
        state::EARLY_STOPPED: c.early_stopped,
        state::METRICS_UNAVAILABLE: c.metrics_unavailable,
        state::KILLED: killed,
    })
}

/// The fields the list and the page share: name, phase, objective, best trial, counts.
fn summary_fields(
    exp: &ExperimentRow,
    trials: &[TrialRow],
    now: f64,
) -> serde_json::Map<String, Value> {
    let objective = &exp.spec.spec.objective;
    let best = best_trial(exp, trials).map(|t| {
        json!({
            "trial": t.number,
            "job": t.job,
            "value": t.value,
            "parameters": parameters(t),
        })
    });
    let fields = json!({
        "name": exp.name,
        "phase": exp.phase,
        "reason": exp.reason,
        "message": exp.message,
        "created": exp.created,
        "finished": exp.finished,
        "ageSeconds": (now - exp.created).max(0.0),
        "objective": {
            "metric": objective.objective_metric_name,
            "type": objective.direction,
            "goal": objective.goal,
            "additionalMetrics": objective.additional_metric_names,
        },
        "algorithm": exp.spec.spec.algorithm.algorithm_name,
        "maxTrialCount": exp.spec.spec.max_trial_count,
        "parallelTrialCount": exp.spec.spec.parallel_trial_count,
        "best": best,
        "trials": counts_json(trials),
    });
    match fields {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// A trial's parameters as `{name: value}`.
fn parameters(t: &TrialRow) -> Value {
    Value::Object(
        t.assignment
            .iter()
            .map(|(n, v)| (n.clone(), json!(v)))
            .collect(),
    )
}

/// One row of the experiments list: phase, best objective, trials by state, age.
pub fn summary(exp: &ExperimentRow, trials: &[TrialRow], now: f64) -> Value {
    Value::Object(summary_fields(exp, trials, now))
}

/// One trial: parameters, objective, other metrics, step reached, duration, state, its job,
/// and its objective values by step for the curves.
fn trial_json(exp: &ExperimentRow, t: &TrialRow, m: &TrialMetrics, now: f64) -> Value {
    let values = intermediate(t, m);
    json!({
        "number": t.number,
        "job": t.job,
        "state": t.state,
        "parameters": parameters(t),
        "objective": objective(exp, t, m),
        "metrics": m.latest,
        "step": values.last().map(|p| p.0),
        "started": t.started,
        "finished": t.finished,
        "durationSeconds": (t.finished.unwrap_or(now) - t.started).max(0.0),
        "message": t.message,
        "intermediate": thin(values, CURVE_POINTS),
    })
}

/// The optimization history: each trial with an objective, in trial order, with the best
/// value of the succeeded trials so far (early-stopped trials show but never count as best).
fn history(
    exp: &ExperimentRow,
    trials: &[TrialRow],
    metrics: &HashMap<String, TrialMetrics>,
) -> Value {
    let better = |a: f64, b: f64| match exp.spec.spec.objective.direction {
        ObjectiveType::Maximize => a > b,
        ObjectiveType::Minimize => a < b,
    };
    let mut best: Option<f64> = None;
    let empty = TrialMetrics::default();
    let points: Vec<Value> = trials
        .iter()
        .filter_map(|t| {
            let value = objective(exp, t, metrics.get(&t.job).unwrap_or(&empty))?;
            if t.state == state::SUCCEEDED && best.is_none_or(|b| better(value, b)) {
                best = Some(value);
            }
            Some(json!({"trial": t.number, "job": t.job, "state": t.state, "value": value, "bestSoFar": best}))
        })
        .collect();
    Value::Array(points)
}

/// One experiment: the summary, the search space, every trial and the optimization history.
/// `metrics` holds what each trial's job reported, by job name (a trial without an entry
/// shows only its recorded values).
pub fn detail(
    exp: &ExperimentRow,
    trials: &[TrialRow],
    metrics: &HashMap<String, TrialMetrics>,
    now: f64,
) -> Value {
    let empty = TrialMetrics::default();
    let mut fields = summary_fields(exp, trials, now);
    fields.insert("parameters".into(), json!(exp.spec.spec.parameters));
    fields.insert(
        "trialList".into(),
        trials
            .iter()
            .map(|t| trial_json(exp, t, metrics.get(&t.job).unwrap_or(&empty), now))
            .collect(),
    );
    fields.insert("history".into(), history(exp, trials, metrics));
    fields.insert("ended".into(), json!(ended(exp, trials)));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainctl_spec::HyperValue;

    fn exp(direction: &str) -> ExperimentRow {
        let yaml = format!(
            "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: e}}\nspec:\n  \
             objective: {{type: {direction}, objectiveMetricName: acc, additionalMetricNames: [loss]}}\n  \
             algorithm: {{algorithmName: random}}\n  maxTrialCount: 4\n  parameters:\n    \
             - {{name: x, parameterType: double, feasibleSpace: {{min: 0, max: 1}}}}\n  \
             trialTemplate:\n    spec:\n      command: [python3, t.py]\n      replicas: {{worker: {{}}}}\n"
        );
        let spec =
            trainctl_spec::parse_experiment_str("e.yaml", &yaml).expect("a valid experiment");
        ExperimentRow {
            name: "e".into(),
            spec,
            workdir: "/tmp".into(),
            phase: "Running".into(),
            reason: String::new(),
            message: String::new(),
            created: 100.0,
            finished: None,
            driver_pid: 0,
            driver_start: 0,
        }
    }

    fn trial(n: u64, st: &str, values: &[(u64, f64)]) -> TrialRow {
        TrialRow {
            number: n,
            job: format!("e-{n}"),
            assignment: vec![("x".into(), HyperValue::Float(n as f64 / 10.0))],
            state: st.into(),
            value: (st != state::RUNNING)
                .then(|| values.iter().map(|p| p.1).reduce(f64::max))
                .flatten(),
            intermediate: if st == state::RUNNING {
                vec![]
            } else {
                values.to_vec()
            },
            message: String::new(),
            started: 100.0 + n as f64,
            finished: (st != state::RUNNING).then_some(110.0 + n as f64),
            metrics: Vec::new(),
        }
    }

    #[test]
    fn best_so_far_counts_only_succeeded_trials_in_trial_order() {
        let e = exp("maximize");
        let trials = vec![
            trial(0, state::SUCCEEDED, &[(1, 0.5), (2, 0.6)]),
            trial(1, state::EARLY_STOPPED, &[(1, 0.9)]),
            trial(2, state::SUCCEEDED, &[(1, 0.4)]),
            trial(3, state::SUCCEEDED, &[(1, 0.7)]),
        ];
        let d = detail(&e, &trials, &HashMap::new(), 200.0);
        let best: Vec<Value> = d["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["bestSoFar"].clone())
            .collect();
        assert_eq!(best, vec![json!(0.6), json!(0.6), json!(0.6), json!(0.7)]);
        assert_eq!(d["best"]["job"], "e-3");
        assert_eq!(d["history"][1]["state"], state::EARLY_STOPPED);
    }

    #[test]
    fn a_running_trial_shows_the_metrics_read_now() {
        let e = exp("minimize");
        let trials = vec![trial(0, state::RUNNING, &[])];
        let mut metrics = HashMap::new();
        metrics.insert(
            "e-0".to_string(),
            TrialMetrics {
                intermediate: vec![(1, 0.8), (2, 0.3), (3, 0.5)],
                latest: [("loss".to_string(), 1.5)].into(),
            },
        );
        let d = detail(&e, &trials, &metrics, 130.0);
        let t = &d["trialList"][0];
        assert_eq!(
            t["objective"],
            json!(0.3),
            "minimize counts the smallest value"
        );
        assert_eq!(t["step"], json!(3));
        assert_eq!(t["metrics"]["loss"], json!(1.5));
        assert_eq!(t["durationSeconds"], json!(30.0));
        assert_eq!(
            d["history"][0]["bestSoFar"],
            Value::Null,
            "not succeeded yet"
        );
        assert_eq!(d["ended"], json!(false));
        assert_eq!(d["trials"]["Running"], json!(1));
    }

    #[test]
    fn long_curves_are_thinned_keeping_the_ends() {
        let points: Vec<(u64, f64)> = (0..1000).map(|i| (i, i as f64)).collect();
        let thinned = thin(&points, CURVE_POINTS);
        assert_eq!(thinned.len(), CURVE_POINTS);
        assert_eq!(thinned.first(), Some(&(0, 0.0)));
        assert_eq!(thinned.last(), Some(&(999, 999.0)));
    }
}
