//! A trial's metrics with no sidecar: its replicas' logs read through the API (live pods and
//! the operator's archive of deleted ones) and parsed by the same stdout parser as locally.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};
use trainctl_core::ReplicaId;
use trainctl_metrics::stdout::StdoutParser;

use crate::client::{attempt_sources, LogSource};
use crate::crd::TrainingJobResource;
use crate::experiment::TrialObservation;
use crate::names::{job_selector, log_archive_name};

/// Every attempt's log of `job` so far: `(replica, attempt, text)`, archived attempts first.
/// A pod that cannot give its log (still starting, deleted just now) has none yet.
pub async fn replica_logs(
    client: &kube::Client,
    job: &TrainingJobResource,
) -> Result<Vec<(ReplicaId, u32, String)>, kube::Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let archive = maps
        .get_opt(&log_archive_name(&name))
        .await?
        .and_then(|m| m.data)
        .unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let live = pods
        .list(&ListParams::default().labels(&job_selector(&name)))
        .await?
        .items;
    let mut out = Vec::new();
    for attempt in attempt_sources(job, &archive, &live) {
        let text = match attempt.source {
            LogSource::Archived(text) => text,
            LogSource::Live(pod) => match pods.logs(&pod, &LogParams::default()).await {
                Ok(text) => text,
                Err(kube::Error::Api(e)) if e.code == 400 || e.code == 404 => continue,
                Err(e) => return Err(e),
            },
        };
        out.push((attempt.replica, attempt.attempt, text));
    }
    Ok(out)
}

/// The observation of `metrics` (the objective first) in the logs: the first replica that
/// printed the objective is the trial's (as locally, where the first run with the metric
/// counts). A line's step is the step it gives, else the last one seen in its attempt, else
/// the count of metric lines so far.
pub fn observe(
    parser: &StdoutParser,
    metrics: &[String],
    logs: &[(ReplicaId, u32, String)],
) -> TrialObservation {
    let Some(objective) = metrics.first() else {
        return TrialObservation::default();
    };
    let mut by_replica: BTreeMap<ReplicaId, Vec<(String, u64, f64)>> = BTreeMap::new();
    for (replica, _, text) in logs {
        let points = by_replica.entry(*replica).or_default();
        let (mut step, mut seq) = (None, 0u64);
        for line in text.lines() {
            let parsed = parser.parse(line);
            if let Some(s) = parsed.step {
                step = Some(s.max(0) as u64);
            }
            if parsed.metrics.is_empty() {
                continue;
            }
            seq += 1;
            let at = step.unwrap_or(seq);
            points.extend(parsed.metrics.into_iter().map(|(n, v)| (n, at, v)));
        }
    }
    let points = by_replica
        .into_values()
        .find(|points| points.iter().any(|p| &p.0 == objective))
        .unwrap_or_default();
    TrialObservation::from_points(objective, metrics, &points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_replica_with_the_objective_counts_and_steps_carry_over() {
        let parser = StdoutParser::for_spec(None).unwrap();
        let worker = |i| ReplicaId::new(trainctl_spec::ReplicaType::Worker, i);
        let logs = vec![
            (worker(0), 0, "starting\n".to_string()),
            (
                worker(1),
                0,
                "Step: 3, Acc: 0.5\nacc=0.6 loss=2\nStep: 5, Acc: 0.9\n".to_string(),
            ),
        ];
        let names = ["acc".to_string(), "loss".to_string()];
        let o = observe(&parser, &names, &logs);
        assert_eq!(o.steps(), vec![(3, 0.6), (5, 0.9)]);
        assert_eq!(o.metrics[0].max, 0.9);
        assert_eq!(o.metrics[1].latest, 2.0);
    }
}
