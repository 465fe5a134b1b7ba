//! The tracking finalizer's lifecycle outside one job's reconcile: releasing a pod, and
//! releasing the pods of jobs that are gone (deleted, or collected after their TTL), so no
//! pod is ever left stuck on the finalizer.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

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

/// Whether a pod may be left on its finalizer by a job that is gone: it is being deleted
/// and still tracked.
pub fn may_be_orphaned(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && is_tracked(pod)
}

/// Releases every pod from `queue` (pods that [`may_be_orphaned`]) whose job no longer
/// exists (its reconciles have stopped, so nothing else would). Runs until the queue closes.
pub async fn release_orphans(client: kube::Client, mut queue: UnboundedReceiver<Arc<Pod>>) {
    while let Some(pod) = queue.recv().await {
        if let Err(e) = release_if_orphaned(&client, &pod).await {
            tracing::warn!("cannot release pod {}: {e}", pod.name_any());
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
