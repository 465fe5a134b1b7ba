//! Kubernetes Events about a job: its phase changes and the pods created, stopped or
//! deleted from outside, for `kubectl describe` and `trainctl describe`.
//!
//! Written as core/v1 Events rather than through kube-runtime's `events::Recorder`: the
//! Recorder writes events.k8s.io/v1 Events (another API group for the operator's RBAC, and
//! not where `trainctl describe` and the in-memory API server read them), and it merges
//! repeats of one reason and note into a series, while a reconcile here already says all
//! the pods it created or stopped in one Event.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};

use crate::crd::TrainingJobResource;
use crate::names::MANAGER;

/// Records an Event on the job. A failure to record is logged, not fatal: the status
/// carries the same facts.
pub async fn record_event(
    client: &kube::Client,
    job: &TrainingJobResource,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let ns = job.namespace().unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", job.name_any())),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(TrainingJobResource::api_version(&()).into()),
            kind: Some(TrainingJobResource::kind(&()).into()),
            name: Some(job.name_any()),
            namespace: Some(ns.clone()),
            uid: job.uid(),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(if warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(MANAGER.into()),
            host: None,
        }),
        reporting_component: Some(MANAGER.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        ..Event::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = events.create(&PostParams::default(), &event).await {
        tracing::warn!(
            "cannot record event {reason} on {ns}/{}: {e}",
            job.name_any()
        );
    }
}
