//! What a GPU cluster can get wrong, simulated: taints the pod does not tolerate, images
//! the registry lacks, nodes whose runtime gives containers no NVML; and the metrics API
//! of metrics-server, seen through kube-rs.

mod common;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams, PostParams};
use kube_sim::{NodeSpec, NodeTaint};
use serde_json::json;

fn gpu_pod(name: &str, image: &str, extra: serde_json::Value) -> Pod {
    let mut value = json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": image,
                 "resources": {"limits": {"nvidia.com/gpu": 1}}}]}});
    json_patch::merge(&mut value, &extra);
    serde_json::from_value(value).unwrap()
}

async fn events_of(client: &kube::Client, pod: &str, reason: &str) -> Vec<Event> {
    let events = Api::<Event>::default_namespaced(client.clone());
    let fields = format!("involvedObject.name={pod},reason={reason}");
    common::eventually(&format!("{reason} event of {pod}"), || async {
        let list = events
            .list(&ListParams::default().fields(&fields))
            .await
            .ok()?;
        (!list.items.is_empty()).then_some(list.items)
    })
    .await
}

#[tokio::test]
async fn an_untolerated_taint_keeps_a_pod_pending_with_the_real_schedulers_message() {
    let s = common::start().await;
    s.sim
        .add_node(&NodeSpec {
            gpus: 8,
            taints: vec![NodeTaint::no_schedule("dedicated", "ml")],
            ..NodeSpec::new("gpu-tainted")
        })
        .unwrap();
    s.sim.add_node(&NodeSpec::new("cpu-1")).unwrap();
    s.sim.add_node(&NodeSpec::new("cpu-2")).unwrap();
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    pods.create(
        &PostParams::default(),
        &gpu_pod("blocked", "cuda", json!({})),
    )
    .await
    .unwrap();
    let message = events_of(&s.client, "blocked", "FailedScheduling").await[0]
        .message
        .clone()
        .unwrap();
    assert_eq!(
        message,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 2 Insufficient nvidia.com/gpu."
    );
    let tolerating = json!({"spec": {"tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]}});
    pods.create(
        &PostParams::default(),
        &gpu_pod("tolerating", "cuda", tolerating),
    )
    .await
    .unwrap();
    let bound = common::eventually("the tolerating pod runs", || async {
        let p = pods.get("tolerating").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    assert_eq!(
        bound.spec.unwrap().node_name.as_deref(),
        Some("gpu-tainted")
    );
}

#[tokio::test]
async fn an_image_the_registry_lacks_fails_to_pull_then_backs_off() {
    let s = common::start().await;
    s.sim
        .add_node(&NodeSpec {
            gpus: 1,
            ..NodeSpec::new("gpu-1")
        })
        .unwrap();
    s.sim.remove_image("nvcr.io/nvidia/cuda:0.0-typo");
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    pods.create(
        &PostParams::default(),
        &gpu_pod("pull", "nvcr.io/nvidia/cuda:0.0-typo", json!({})),
    )
    .await
    .unwrap();
    let failed = events_of(&s.client, "pull", "Failed").await;
    assert!(failed[0].message.as_deref().unwrap().starts_with(
        "Failed to pull image \"nvcr.io/nvidia/cuda:0.0-typo\": rpc error: code = NotFound"
    ));
    let waiting = common::eventually("ImagePullBackOff", || async {
        let p = pods.get("pull").await.ok()?;
        let state = p.status?.container_statuses?.first()?.state.clone()?;
        let waiting = state.waiting?;
        (waiting.reason.as_deref() == Some("ImagePullBackOff")).then_some(waiting)
    })
    .await;
    assert_eq!(
        waiting.message.as_deref(),
        Some("Back-off pulling image \"nvcr.io/nvidia/cuda:0.0-typo\"")
    );
    let pod = pods.get("pull").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    events_of(&s.client, "pull", "BackOff").await;
}

#[tokio::test]
async fn a_gpu_container_on_a_node_without_the_nvidia_runtime_cannot_load_nvml() {
    let s = common::start().await;
    s.sim
        .add_node(&NodeSpec {
            gpus: 2,
            nvidia_runtime: false,
            ..NodeSpec::new("gpu-1")
        })
        .unwrap();
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    pods.create(&PostParams::default(), &gpu_pod("smi", "cuda", json!({})))
        .await
        .unwrap();
    let failed = common::eventually("the GPU pod fails", || async {
        let p = pods.get("smi").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await;
    let status = failed.status.unwrap().container_statuses.unwrap();
    let code = status[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .exit_code;
    assert_eq!(code, 12);
    let log = pods.logs("smi", &LogParams::default()).await.unwrap();
    assert!(log.contains("couldn't find libnvidia-ml.so"), "{log}");

    let cpu_pod: Pod = serde_json::from_value(json!({"metadata": {"name": "cpu"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &cpu_pod).await.unwrap();
    common::eventually("a pod without GPUs runs there", || async {
        let p = pods.get("cpu").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_metrics_api_answers_404_until_installed_then_serves_the_usage_set() {
    let s = common::start().await;
    s.sim.add_node(&NodeSpec::new("cpu-1")).unwrap();
    let resource = |plural: &str, kind: &str| ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let pod_metrics: Api<DynamicObject> =
        Api::namespaced_with(s.client.clone(), "default", &resource("pods", "PodMetrics"));
    match pod_metrics.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404 without metrics-server: {other:?}"),
    }
    s.sim.serve_metrics_api();
    s.sim
        .set_pod_usage("default", "train-0", &[("main", "1500m", "2Gi")])
        .unwrap();
    s.sim.set_node_usage("cpu-1", "3", "12Gi").unwrap();
    let pods = pod_metrics
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 1);
    assert_eq!(
        pods[0].data["containers"],
        json!([{"name": "main", "usage": {"cpu": "1500m", "memory": "2Gi"}}])
    );
    let nodes: Api<DynamicObject> =
        Api::all_with(s.client.clone(), &resource("nodes", "NodeMetrics"));
    let node = nodes.get("cpu-1").await.unwrap();
    assert_eq!(node.data["usage"]["cpu"], "3");
}
