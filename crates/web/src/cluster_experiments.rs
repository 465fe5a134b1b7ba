//! A cluster's experiments for the dashboard: its Experiment objects and the TrainingJobs
//! they own as the rows the views take ([`trainctl_backend::experiment::cluster::rows`]),
//! with what each trial reported taken from the observation the operator writes to the
//! trial's status (the objective by step, each metric's latest value): the dashboard reads
//! no trial logs itself, and sees a running trial progress as the operator records it.

use std::collections::HashMap;

use trainctl_backend::experiment::cluster::rows;
use trainctl_kube_client::client::Cluster;
use trainctl_local::store::{ExperimentRow, TrialRow};

use crate::cluster::failed;
use crate::experiment_view::TrialMetrics;
use crate::experiments::Rows;
use crate::server::ApiError;

/// What each trial reported, by job name, from its observation.
fn reported(trials: &[TrialRow]) -> HashMap<String, TrialMetrics> {
    trials
        .iter()
        .map(|t| {
            let metrics = TrialMetrics {
                intermediate: t.intermediate.clone(),
                latest: t
                    .metrics
                    .iter()
                    .map(|m| (m.name.clone(), m.latest))
                    .collect(),
            };
            (t.job.clone(), metrics)
        })
        .collect()
}

/// One experiment's rows and what its trials reported; a 404 when the namespace has no
/// experiment by that name.
pub(crate) async fn one(cluster: &Cluster, name: &str) -> Result<Rows, ApiError> {
    let (resource, trials) = cluster
        .find_experiment(name)
        .await
        .map_err(failed)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "experiment {name} not found in namespace {}",
                cluster.namespace
            ))
        })?;
    let (exp, trials) = rows(&resource, &trials);
    let metrics = reported(&trials);
    Ok((exp, trials, metrics))
}

/// Every experiment of the namespace with its trials, newest first.
pub(crate) async fn all(
    cluster: &Cluster,
) -> Result<Vec<(ExperimentRow, Vec<TrialRow>)>, ApiError> {
    let mut all: Vec<_> = cluster
        .experiments()
        .await
        .map_err(failed)?
        .iter()
        .map(|(resource, trials)| rows(resource, trials))
        .collect();
    all.sort_by(|a, b| b.0.created.total_cmp(&a.0.created));
    Ok(all)
}
