//! All trials of an experiment as CSV or JSON rows, for notebooks: number, job, state, each
//! parameter, the objective's counted value, each additional metric's latest value, the last
//! step, times and message.

use serde_json::{json, Value};
use trainctl_local::store::{ExperimentRow, TrialRow};

/// One JSON object per trial, parameters and objective as columns.
pub fn rows(exp: &ExperimentRow, trials: &[TrialRow]) -> Vec<Value> {
    let metric = &exp.spec.spec.objective.objective_metric_name;
    trials
        .iter()
        .map(|t| {
            let mut row = serde_json::Map::new();
            row.insert("trial".into(), json!(t.number));
            row.insert("job".into(), json!(t.job));
            row.insert("state".into(), json!(t.state));
            for (n, v) in &t.assignment {
                row.insert(n.clone(), json!(v));
            }
            row.insert(metric.clone(), json!(t.value));
            for name in &exp.spec.spec.objective.additional_metric_names {
                let m = t.metrics.iter().find(|m| m.name == *name);
                row.insert(name.clone(), json!(m.map(|m| m.latest)));
            }
            row.insert("step".into(), json!(t.intermediate.last().map(|p| p.0)));
            row.insert("started".into(), json!(t.started));
            row.insert("finished".into(), json!(t.finished));
            row.insert("message".into(), json!(t.message));
            Value::Object(row)
        })
        .collect()
}

fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The rows as CSV with a header line (RFC 4180 quoting).
pub fn csv(exp: &ExperimentRow, trials: &[TrialRow]) -> String {
    let metric = &exp.spec.spec.objective.objective_metric_name;
    let mut columns: Vec<String> = ["trial", "job", "state"].map(String::from).to_vec();
    columns.extend(exp.spec.spec.parameters.iter().map(|p| p.name.clone()));
    columns.push(metric.clone());
    columns.extend(
        exp.spec
            .spec
            .objective
            .additional_metric_names
            .iter()
            .cloned(),
    );
    columns.extend(["step", "started", "finished", "message"].map(String::from));
    let rows = rows(exp, trials);
    let mut out = columns
        .iter()
        .map(|c| cell(&json!(c)))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for row in &rows {
        let line: Vec<String> = columns.iter().map(|c| cell(&row[c])).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}
