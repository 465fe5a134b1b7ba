//! Experiments on a cluster as the rows of local ones, so the same table, describe and
//! export code renders both.

use std::path::PathBuf;

use kube::ResourceExt;
use trainctl_kube_client::experiment::{ExperimentResource, TrialObservation, TrialView};
use trainctl_local::store::{ExperimentRow, ObservedMetric, TrialRow};

/// Seconds since the epoch of an RFC 3339 time.
fn seconds(text: Option<&str>) -> Option<f64> {
    let t: k8s_openapi::jiff::Timestamp = text?.parse().ok()?;
    Some(t.as_millisecond() as f64 / 1000.0)
}

/// What a trial observed of the experiment's additional metrics, in their order.
fn additional_metrics(
    observed: Option<&TrialObservation>,
    names: &[String],
) -> Vec<ObservedMetric> {
    let Some(observed) = observed else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| observed.metrics.iter().find(|m| &m.name == name))
        .map(|m| ObservedMetric {
            name: m.name.clone(),
            min: m.min,
            max: m.max,
            latest: m.latest,
        })
        .collect()
}

/// The experiment and its trials as local rows.
pub fn rows(resource: &ExperimentResource, trials: &[TrialView]) -> (ExperimentRow, Vec<TrialRow>) {
    let status = resource.status.clone().unwrap_or_default();
    let created = resource.metadata.creation_timestamp.as_ref();
    let exp = ExperimentRow {
        name: resource.name_any(),
        spec: resource.to_experiment(),
        workdir: PathBuf::new(),
        phase: resource.phase(),
        reason: status.reason.unwrap_or_default(),
        message: status.message.unwrap_or_default(),
        created: created.map_or(0.0, |t| t.0.as_millisecond() as f64 / 1000.0),
        finished: seconds(status.completion_time.as_deref()),
        driver_pid: 0,
        driver_start: 0,
    };
    let additional = &exp.spec.spec.objective.additional_metric_names;
    let trials = trials
        .iter()
        .map(|t| {
            let job = t.resource.status.clone().unwrap_or_default();
            let created = t.resource.metadata.creation_timestamp.as_ref();
            TrialRow {
                number: t.number,
                job: t.name(),
                assignment: t.assignment.clone(),
                state: t.state.to_string(),
                value: t.value,
                intermediate: t.intermediate.clone(),
                message: job
                    .message
                    .filter(|_| t.state != "Succeeded")
                    .unwrap_or_default(),
                started: seconds(job.start_time.as_deref())
                    .or(created.map(|c| c.0.as_millisecond() as f64 / 1000.0))
                    .unwrap_or(0.0),
                finished: seconds(job.completion_time.as_deref()),
                metrics: additional_metrics(job.observation.as_ref(), additional),
            }
        })
        .collect();
    (exp, trials)
}
