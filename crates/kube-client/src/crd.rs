//! The `trainingjobs.trainctl.dev` custom resource: the job file's spec as the resource's
//! spec, the operator's [`JobStatus`] as its status subresource.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use trainctl_spec::{ObjectMeta, TrainingJob, TrainingJobSpec, API_VERSION, KIND};

use crate::status::JobStatus;

/// The spec of the custom resource: exactly the job file's `spec`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "trainctl.dev",
    version = "v1alpha1",
    kind = "TrainingJob",
    root = "TrainingJobResource",
    plural = "trainingjobs",
    shortname = "tj",
    namespaced,
    status = "JobStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Restarts","type":"integer","jsonPath":".status.restarts"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct ResourceSpec(pub TrainingJobSpec);

/// The CustomResourceDefinition, generated from the Rust types. kube's derive makes the
/// schema structural except for untagged enums (a hyperparameter is a number, string or
/// bool): those become "any value" (`x-kubernetes-preserve-unknown-fields`), checked by the
/// operator when it parses the job.
pub fn crd() -> CustomResourceDefinition {
    structural(<TrainingJobResource as kube::core::CustomResourceExt>::crd())
}

/// The CRD with every untyped union in its schemas made "any value", so the schema is
/// structural.
pub(crate) fn structural(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            let mut value = serde_json::to_value(&*schema).unwrap_or_default();
            untyped_unions_to_any(&mut value);
            if let Ok(fixed) = serde_json::from_value(value) {
                *schema = fixed;
            }
        }
    }
    crd
}

/// Replaces every `anyOf`/`oneOf` node without a type by one that accepts any value.
fn untyped_unions_to_any(node: &mut serde_json::Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let union = obj.contains_key("anyOf") || obj.contains_key("oneOf");
    if union && !obj.contains_key("type") {
        let description = obj.get("description").cloned();
        obj.clear();
        if let Some(d) = description {
            obj.insert("description".into(), d);
        }
        obj.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            serde_json::Value::Bool(true),
        );
        return;
    }
    for child in obj.values_mut() {
        match child {
            serde_json::Value::Object(_) => untyped_unions_to_any(child),
            serde_json::Value::Array(items) => items.iter_mut().for_each(untyped_unions_to_any),
            _ => {}
        }
    }
}

impl TrainingJobResource {
    /// The resource from a job file (its namespace defaulting to `namespace`).
    pub fn from_job(job: &TrainingJob, namespace: &str) -> Self {
        let namespace = job.metadata.namespace.clone().unwrap_or(namespace.into());
        let mut spec = job.spec.clone();
        let mut labels = job.metadata.labels.clone();
        if let Some((key, queue)) = trainctl_kube::render::kueue_queue_label(job, &namespace) {
            // Created suspended: Kueue admits it by setting suspend to false.
            labels.insert(key, queue);
            spec.run_policy.suspend = true;
        }
        let mut resource = TrainingJobResource::new(job.name(), ResourceSpec(spec));
        resource.metadata.namespace = Some(namespace);
        resource.metadata.labels = non_empty(&labels);
        resource.metadata.annotations = non_empty(&job.metadata.annotations);
        resource
    }

    /// The recorded phase, or Pending before the operator has seen the job.
    pub fn phase(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into())
    }

    /// The job as the core rules and the renderer see it.
    pub fn to_job(&self) -> TrainingJob {
        let meta = &self.metadata;
        TrainingJob {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: ObjectMeta {
                name: meta.name.clone().unwrap_or_default(),
                namespace: meta.namespace.clone(),
                labels: meta.labels.clone().unwrap_or_default(),
                annotations: meta
                    .annotations
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/"))
                    .collect(),
            },
            spec: self.spec.0.clone(),
        }
    }
}

fn non_empty(
    map: &std::collections::BTreeMap<String, String>,
) -> Option<std::collections::BTreeMap<String, String>> {
    (!map.is_empty()).then(|| map.clone())
}
