//! The dashboard over a cluster: the namespace's TrainingJobs as `trainctl get --kube -o json`
//! prints them, and for one job its replicas (pod, node, attempt, exit code and reason), the
//! attempts whose logs can be read, its conditions and the Events about it and its pods.

use std::cmp::Reverse;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::{json, Value};
use trainctl_core::wiring::replica_object_name;
use trainctl_core::ReplicaId;
use trainctl_kube_client::client::{Cluster, LogSource};
use trainctl_kube_client::job_metrics::LiveJobMetrics;
use trainctl_kube_client::names::pod_attempt;
use trainctl_kube_client::TrainingJobResource;
use trainctl_metrics::series::Run;

use crate::jobs::{ListQuery, Page};
use crate::server::ApiError;

/// A failed cluster call, with the client's explanation.
pub(crate) fn failed(error: anyhow::Error) -> ApiError {
    ApiError::Internal(format!("{error:#}"))
}

/// One job; a job that is not in the namespace is a 404.
pub(crate) async fn get(cluster: &Cluster, name: &str) -> Result<TrainingJobResource, ApiError> {
    match cluster.get(name).await {
        Ok(job) => Ok(job),
        Err(e) => {
            let listed = cluster.list().await.map_err(failed)?;
            if listed.iter().any(|j| j.name_any() == name) {
                Err(failed(e))
            } else {
                Err(ApiError::NotFound(format!(
                    "trainingjob {name} not found in namespace {}",
                    cluster.namespace
                )))
            }
        }
    }
}

/// Whether the job has succeeded or failed.
pub(crate) fn has_ended(job: &TrainingJobResource) -> bool {
    job.status.as_ref().is_some_and(|s| s.outcome().is_some())
}

/// Seconds since the Unix epoch.
fn epoch_seconds(time: Option<&Time>) -> Option<f64> {
    time.map(|t| t.0.as_millisecond() as f64 / 1000.0)
}

/// The job as the API server has it, with its phase always set.
fn job_object(job: &TrainingJobResource) -> Value {
    let mut object = serde_json::to_value(job).unwrap_or(Value::Null);
    if !object["status"].is_object() {
        object["status"] = json!({"replicas": job.spec.0.replicas.total(), "restarts": 0});
    }
    object["status"]["phase"] = json!(job.phase());
    object
}

/// A page of the namespace's jobs, newest first.
pub async fn list(cluster: &Cluster, query: &ListQuery) -> Result<Page<Value>, ApiError> {
    let mut jobs = cluster.list().await.map_err(failed)?;
    jobs.sort_by_key(|j| {
        Reverse(epoch_seconds(j.metadata.creation_timestamp.as_ref()).map(|t| t as i64))
    });
    let rows = jobs
        .into_iter()
        .map(|j| (j.name_any(), j.phase(), j))
        .collect();
    let page = query.page(rows);
    let items = page.items.iter().map(job_object).collect();
    Ok(page.with_items(items))
}

/// The replica's pod: its name, node, state, exit code and the reason it is waiting or ended.
fn replica_row(job: &TrainingJobResource, id: ReplicaId, pods: &[Pod]) -> Value {
    let spec = job.to_job();
    let pod = pods
        .iter()
        .find(|p| p.name_any() == replica_object_name(&spec, id));
    let recorded = job
        .status
        .as_ref()
        .and_then(|s| s.attempts.get(&id.to_string()).copied())
        .unwrap_or(0);
    let Some(pod) = pod else {
        return json!({"replica": id, "state": "NoPod", "attempt": recorded});
    };
    let status = pod.status.clone().unwrap_or_default();
    let container = status.container_statuses.iter().flatten().next();
    let state = container.and_then(|c| c.state.clone()).unwrap_or_default();
    let terminated = state.terminated.as_ref();
    let reason = terminated
        .and_then(|t| t.reason.clone())
        .or_else(|| state.waiting.as_ref().and_then(|w| w.reason.clone()))
        .or(status.reason.clone());
    json!({
        "replica": id,
        "pod": pod.name_any(),
        "node": pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "state": status.phase.unwrap_or_else(|| "Pending".into()),
        "attempt": pod_attempt(pod),
        "exitCode": terminated.map(|t| t.exit_code),
        "reason": reason,
    })
}

fn event_row(event: &Event) -> Value {
    let time = epoch_seconds(event.last_timestamp.as_ref())
        .or_else(|| epoch_seconds(event.metadata.creation_timestamp.as_ref()));
    json!({
        "time": time,
        "type": event.type_,
        "reason": event.reason,
        "object": event.involved_object.name,
        "message": event.message,
    })
}

/// One job with its replicas, the attempts whose logs exist, and its Events.
pub async fn one(cluster: &Cluster, name: &str) -> Result<Value, ApiError> {
    let job = get(cluster, name).await?;
    let pods = cluster.job_pods(name).await.map_err(failed)?;
    let events = cluster.job_events(name, &pods).await.map_err(failed)?;
    let logs = cluster
        .log_sources(&job, None, None)
        .await
        .map_err(failed)?;
    let mut object = job_object(&job);
    let replicas: Vec<Value> = ReplicaId::all_of(&job.to_job())
        .into_iter()
        .map(|id| replica_row(&job, id, &pods))
        .collect();
    let attempts: Vec<Value> = logs
        .iter()
        .map(|l| {
            let log = match &l.source {
                LogSource::Archived(_) => "archived".to_string(),
                LogSource::Live(pod) => format!("pod {pod}"),
            };
            json!({"replica": l.replica, "attempt": l.attempt, "log": log})
        })
        .collect();
    object["status"]["replicas"] = json!(replicas);
    object["status"]["attempts"] = json!(attempts);
    object["status"]["events"] = json!(events.iter().map(event_row).collect::<Vec<_>>());
    Ok(object)
}

/// The charts of cluster jobs: each job's pods are followed from its first chart request on
/// (by uid, so a job deleted and created again starts afresh).
#[derive(Default)]
pub(crate) struct ClusterCharts(tokio::sync::Mutex<HashMap<String, (String, LiveJobMetrics)>>);

/// Hands the job's series (parsed from its followed logs, [`LiveJobMetrics`]) to `view`;
/// also says whether the job had ended with all its output read.
pub(crate) async fn read_metrics<T>(
    cluster: &Cluster,
    charts: &ClusterCharts,
    name: &str,
    view: impl FnOnce(&[(&str, &Run)], &[String]) -> T,
) -> Result<(T, bool), ApiError> {
    let uid = get(cluster, name).await?.uid().unwrap_or_default();
    let mut jobs = charts.0.lock().await;
    if jobs.get(name).is_none_or(|(seen, _)| *seen != uid) {
        let live = LiveJobMetrics::open(cluster, name).await.map_err(failed)?;
        jobs.insert(name.to_string(), (uid, live));
    }
    let Some((_, live)) = jobs.get_mut(name) else {
        return Err(ApiError::Internal(format!("job {name}: no charts")));
    };
    let (runs, ended) = live.runs(cluster, name).await.map_err(failed)?;
    let runs: Vec<(&str, &Run)> = runs
        .iter()
        .map(|(run, series)| (run.as_str(), series))
        .collect();
    Ok((view(&runs, &[]), ended))
}
