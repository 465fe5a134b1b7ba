//! A stand-in for metrics-server: the `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics,
//! served once the test installs the API, with the usage the test sets.

use serde_json::{json, Value};

use crate::control::ControlResult;
use crate::registry::ResourceType;
use crate::server::{KubeSim, Shared};
use crate::store::{now, EventType};

/// The API group metrics-server registers.
const GROUP: &str = "metrics.k8s.io";

/// The version it serves.
const VERSION: &str = "v1beta1";

fn metrics_type(plural: &str, kind: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: GROUP.into(),
        version: VERSION.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: Vec::new(),
        status_subresource: false,
        log_subresource: false,
        schema: None,
    }
}

/// A metrics object as metrics-server answers it: a 30 s window ending now.
fn usage_object(rt: &ResourceType, ns: &str, name: &str, body: (&str, Value)) -> Value {
    let mut metadata = json!({"name": name, "creationTimestamp": now()});
    if rt.namespaced {
        metadata["namespace"] = json!(ns);
    }
    let mut object = json!({"apiVersion": rt.api_version(), "kind": rt.kind,
        "metadata": metadata, "timestamp": now(), "window": "30s"});
    object[body.0] = body.1;
    object
}

impl Shared {
    fn metrics_type(&self, plural: &str) -> Result<ResourceType, crate::error::ApiError> {
        let store = self.store();
        store
            .registry
            .find(GROUP, VERSION, plural)
            .cloned()
            .ok_or_else(|| {
                crate::error::ApiError::bad_request(
                    "the metrics API is not installed (call serve_metrics_api first)",
                )
            })
    }

    fn put_usage(&self, plural: &str, ns: &str, name: &str, body: (&str, Value)) -> ControlResult {
        let rt = self.metrics_type(plural)?;
        let object = usage_object(&rt, ns, name, body);
        self.store().put(&rt, object, EventType::Modified);
        Ok(())
    }
}

impl KubeSim {
    /// Serves `metrics.k8s.io/v1beta1` (nodes and pods), as installing metrics-server does;
    /// until then its paths answer 404 as on a cluster without it.
    pub fn serve_metrics_api(&self) {
        let mut store = self.shared.store();
        store.registry.set_crd_types(
            "nodes.metrics.k8s.io",
            vec![metrics_type("nodes", "NodeMetrics", false)],
        );
        store.registry.set_crd_types(
            "pods.metrics.k8s.io",
            vec![metrics_type("pods", "PodMetrics", true)],
        );
    }

    /// Sets a pod's usage: each `(container, cpu, memory)` as quantities (`250m`, `1Gi`).
    pub fn set_pod_usage(
        &self,
        ns: &str,
        pod: &str,
        containers: &[(&str, &str, &str)],
    ) -> ControlResult {
        let containers: Vec<Value> = containers
            .iter()
            .map(|(name, cpu, memory)| json!({"name": name, "usage": {"cpu": cpu, "memory": memory}}))
            .collect();
        self.shared
            .put_usage("pods", ns, pod, ("containers", json!(containers)))
    }

    /// Sets a node's usage as quantities (`3500m`, `12Gi`).
    pub fn set_node_usage(&self, node: &str, cpu: &str, memory: &str) -> ControlResult {
        self.shared.put_usage(
            "nodes",
            "",
            node,
            ("usage", json!({"cpu": cpu, "memory": memory})),
        )
    }
}
