//! The live table of `trainctl run experiment.yaml`: counts per state, the best trial so far
//! with its parameters, one row per trial (the objective, then each additional metric's
//! latest value).

use std::fmt::Write;

use trainctl_local::store::{ExperimentRow, TrialRow};

use super::status::{assignment_text, best_trial, Counts};
use crate::view::table;

/// The table as text.
pub fn render(exp: &ExperimentRow, trials: &[TrialRow], now: f64) -> String {
    let c = Counts::of(trials);
    let metric = &exp.spec.spec.objective.objective_metric_name;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "experiment {} {}: {} trials: {} running, {} succeeded, {} failed, {} early stopped, {} metrics unavailable",
        exp.name, exp.phase, c.trials, c.running, c.succeeded, c.failed, c.early_stopped,
        c.metrics_unavailable
    );
    if let Some(b) = best_trial(exp, trials) {
        let _ = writeln!(
            out,
            "best trial {}: {metric}={} ({})",
            b.job,
            b.value.unwrap_or(f64::NAN),
            assignment_text(b)
        );
    }
    let mut header = vec!["TRIAL".to_string(), "STATE".to_string()];
    if let Some(t) = trials.first() {
        header.extend(t.assignment.iter().map(|(n, _)| n.to_uppercase()));
    }
    let additional = &exp.spec.spec.objective.additional_metric_names;
    header.push(metric.to_uppercase());
    header.extend(additional.iter().map(|n| n.to_uppercase()));
    header.extend(["STEP".into(), "DURATION".into()]);
    let rows: Vec<Vec<String>> = trials
        .iter()
        .map(|t| {
            let mut row = vec![t.job.clone(), t.state.clone()];
            row.extend(t.assignment.iter().map(|(_, v)| v.to_string()));
            row.push(
                t.value
                    .or(t.intermediate.last().map(|p| p.1))
                    .map_or("-".into(), |v| format!("{v:.6}")),
            );
            row.extend(additional.iter().map(|n| {
                t.metrics
                    .iter()
                    .find(|m| m.name == *n)
                    .map_or("-".into(), |m| format!("{:.6}", m.latest))
            }));
            row.push(
                t.intermediate
                    .last()
                    .map_or("-".into(), |p| p.0.to_string()),
            );
            row.push(format!("{:.1}s", t.finished.unwrap_or(now) - t.started));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(|s| s.as_str()).collect();
    out.push_str(&table(&header, &rows));
    out
}
