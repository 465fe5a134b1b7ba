//! Shared test setup: a server and a kube-rs client talking to it over its kubeconfig.
#![allow(dead_code)]

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{KubeSim, SchemaSource, ServerConfig};

/// A running server with a kube-rs client configured from its kubeconfig.
pub struct Sim {
    pub sim: KubeSim,
    pub client: kube::Client,
}

/// Starts a server with `config` and builds a client from the kubeconfig it writes.
pub async fn start_with(config: ServerConfig) -> Sim {
    let sim = KubeSim::start_with(config).await.expect("server starts");
    let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube-rs accepts the kubeconfig");
    let client = kube::Client::try_from(config).expect("client builds");
    Sim { sim, client }
}

/// A server without built-in schemas (the validation tests ask for them explicitly).
pub async fn start() -> Sim {
    start_with(ServerConfig {
        schemas: SchemaSource::Off,
        ..ServerConfig::default()
    })
    .await
}

/// A server for API tests: no built-in schemas and no simulated scheduler or kubelet, so
/// nothing but the test writes objects (a running kubelet would bump a pod's
/// resourceVersion between the test's get and replace, as on a real cluster).
pub async fn start_api_only() -> Sim {
    start_with(ServerConfig {
        schemas: SchemaSource::Off,
        simulate_cluster: false,
        ..ServerConfig::default()
    })
    .await
}

/// Polls `check` every 20ms until it returns Some, failing after 10s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    kube_sim::eventually(what, Duration::from_secs(10), check).await
}

/// The toy CRD the tests serve: `widgets.example.com`, namespaced, with status.
pub fn widget_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1}}},
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"}}}}}}
            }]
        }
    })
}

/// Asserts that `err` is a 422 Invalid whose message contains every one of `expected`.
pub fn assert_invalid(err: kube::Error, expected: &[&str]) {
    match err {
        kube::Error::Api(e) => {
            assert_eq!(
                (e.code, e.reason.as_str()),
                (422, "Invalid"),
                "{}",
                e.message
            );
            for part in expected {
                assert!(e.message.contains(part), "{:?} lacks {part:?}", e.message);
            }
        }
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}
