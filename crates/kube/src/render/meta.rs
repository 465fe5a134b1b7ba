//! Names, labels and metadata shared by every object of a job.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};
use trainctl_core::ReplicaId;
use trainctl_spec::ReplicaType;

use super::Ctx;

/// Label: the job an object belongs to.
pub const JOB_NAME: &str = "trainctl.dev/job-name";
/// Label: the role of a replica.
pub const REPLICA_TYPE: &str = "trainctl.dev/replica-type";
/// Label: the index of a replica within its role.
pub const REPLICA_INDEX: &str = "trainctl.dev/replica-index";
/// Label: the part of a job that is not a replica (`tensorboard`).
pub const COMPONENT: &str = "trainctl.dev/component";

/// The job's own labels plus the job-name label.
pub fn job_labels(ctx: &Ctx) -> BTreeMap<String, String> {
    let mut labels = ctx.job.metadata.labels.clone();
    labels.insert(JOB_NAME.into(), ctx.job.name().into());
    labels
}

/// Labels of every pod of a role.
pub fn role_labels(ctx: &Ctx, role: ReplicaType) -> BTreeMap<String, String> {
    let mut labels = job_labels(ctx);
    labels.insert(REPLICA_TYPE.into(), role.to_string());
    labels
}

/// Labels that select exactly one replica.
pub fn replica_selector(ctx: &Ctx, id: ReplicaId) -> BTreeMap<String, String> {
    BTreeMap::from([
        (JOB_NAME.to_string(), ctx.job.name().to_string()),
        (REPLICA_TYPE.to_string(), id.role.to_string()),
        (REPLICA_INDEX.to_string(), id.index.to_string()),
    ])
}

/// Labels of one replica's objects.
pub fn replica_labels(ctx: &Ctx, id: ReplicaId) -> BTreeMap<String, String> {
    let mut labels = job_labels(ctx);
    labels.extend(replica_selector(ctx, id));
    labels
}

/// Metadata of a namespaced object of the job; the job's annotations are copied.
pub fn object_meta(ctx: &Ctx, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(ctx.namespace.clone()),
        labels: Some(labels),
        annotations: non_empty(ctx.job.metadata.annotations.clone()),
        ..ObjectMeta::default()
    }
}

/// Metadata of a custom-resource workload (JobSet, TFJob) as JSON.
pub fn workload_metadata(ctx: &Ctx, labels: BTreeMap<String, String>) -> Value {
    let mut metadata = json!({
        "name": ctx.job.name(),
        "namespace": ctx.namespace,
        "labels": labels,
    });
    if let Some(annotations) = non_empty(ctx.job.metadata.annotations.clone()) {
        metadata["annotations"] = json!(annotations);
    }
    metadata
}

/// `None` for an empty map, so the field is left out.
pub fn non_empty<V>(map: BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!map.is_empty()).then_some(map)
}
