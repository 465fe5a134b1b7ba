//! The tracking finalizer's lifecycle outside one job's reconcile: releasing a pod, and
//! releasing the pods of jobs that are gone (deleted, or collected after their TTL), so no
//! pod is ever left stuck on the finalizer.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::crd::TrainingJobResource;
use crate::names::MANAGER;
use crate::observe::{is_tracked, TRACKING_FINALIZER};

/// Removes the tracking finalizer from `pod` with one merge patch, conditional on the
/// pod's resourceVersion so other finalizers added meanwhile are kept (a conflict is an
/// error: the caller reads the pod again). A pod already gone is not an error.
pub async fn release(pods: &Api<Pod>, pod: &Pod) -> kube::Result<()> {
    if !is_tracked(pod) {
        return Ok(());
    }
    let others: Vec<&String> = pod
        .finalizers()
        .iter()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch = json!({
        "metadata": {"resourceVersion": pod.resource_version(), "finalizers": others},
    });
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    match pods
        .patch(&pod.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Watches trainctl pods and releases every tracked pod being deleted whose job no longer
/// exists (its reconciles have stopped, so nothing else would). Runs until the stream ends.
pub async fn release_orphans(client: kube::Client, pods: Api<Pod>) {
    let config = watcher::Config::default().labels(trainctl_kube::render::JOB_NAME);
    let mut events = watcher::watcher(pods, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => pod,
            _ => continue,
        };
        if pod.metadata.deletion_timestamp.is_none() || !is_tracked(&pod) {
            continue;
        }
        if let Err(e) = release_if_orphaned(&client, &pod).await {
            eprintln!(
                "trainctl-operator: cannot release pod {}: {e}",
                pod.name_any()
            );
        }
    }
}

async fn release_if_orphaned(client: &kube::Client, pod: &Pod) -> kube::Result<()> {
    let ns = pod.namespace().unwrap_or_default();
    let jobs: Api<TrainingJobResource> = Api::namespaced(client.clone(), &ns);
    for owner in pod.owner_references() {
        let job = jobs.get_opt(&owner.name).await?;
        let alive = job.is_some_and(|j| {
            j.uid().as_deref() == Some(&owner.uid) && j.metadata.deletion_timestamp.is_none()
        });
        if alive {
            return Ok(());
        }
    }
    release(&Api::namespaced(client.clone(), &ns), pod).await
}
