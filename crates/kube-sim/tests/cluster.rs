//! The simulated cluster (scheduler, kubelet, logs, node failure, gang stand-in), schema
//! validation of built-in kinds, and fault injection, seen through kube-rs and raw HTTP.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams, PostParams};
use kube::ResourceExt;
use kube_sim::{FaultRule, InjectedError, NodeSpec, ServerConfig, SCRIPT_ANNOTATION};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pod(name: &str, extra: serde_json::Value) -> Pod {
    let mut value = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
    json_patch::merge(&mut value, &extra);
    serde_json::from_value(value).unwrap()
}

fn gpus(n: u32) -> serde_json::Value {
    json!({"spec": {"containers": [{"name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": n}}}]}})
}

async fn phase_of(api: &Api<Pod>, name: &str, want: &str) -> Pod {
    common::eventually(&format!("{name} {want}"), || async {
        let p = api.get(name).await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some(want)).then_some(p)
    })
    .await
}

#[tokio::test]
async fn scheduler_binds_by_gpus_and_node_selector_and_reports_unschedulable_pods() {
    let s = common::start().await;
    s.sim.add_node(&NodeSpec::new("cpu-1")).unwrap();
    let mut gpu_node = NodeSpec {
        gpus: 2,
        ..NodeSpec::new("gpu-1")
    };
    gpu_node.labels.insert("accelerator".into(), "t4".into());
    s.sim.add_node(&gpu_node).unwrap();
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    pods.create(&PostParams::default(), &pod("two-gpus", gpus(2)))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "selected",
            json!({"spec": {"nodeSelector": {"accelerator": "t4"}}}),
        ),
    )
    .await
    .unwrap();
    pods.create(&PostParams::default(), &pod("too-big", gpus(1)))
        .await
        .unwrap();
    let bound = phase_of(&pods, "two-gpus", "Running").await;
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("gpu-1"));
    let selected = phase_of(&pods, "selected", "Running").await;
    assert_eq!(selected.spec.unwrap().node_name.as_deref(), Some("gpu-1"));
    let events = Api::<Event>::default_namespaced(s.client.clone());
    let failed = common::eventually("FailedScheduling event", || async {
        let list = events
            .list(
                &ListParams::default()
                    .fields("involvedObject.name=too-big,reason=FailedScheduling"),
            )
            .await
            .ok()?;
        list.items.into_iter().next()
    })
    .await;
    assert!(failed.message.unwrap().contains("nodes are available"));
    let pending = pods.get("too-big").await.unwrap();
    assert_eq!(pending.status.unwrap().phase.as_deref(), Some("Pending"));
    assert!(pending.spec.unwrap().node_name.is_none());
}

/// A started server with the node `n1` and the pods API of the default namespace.
async fn one_node() -> (common::Sim, Api<Pod>) {
    let s = common::start().await;
    s.sim.add_node(&NodeSpec::new("n1")).unwrap();
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    (s, pods)
}

#[tokio::test]
async fn the_kubelet_runs_a_pods_script_to_its_exit_code() {
    let (_s, pods) = one_node().await;
    let script = json!({"metadata": {"annotations": {SCRIPT_ANNOTATION: "run 200ms then exit 3"}}});
    pods.create(&PostParams::default(), &pod("scripted", script))
        .await
        .unwrap();
    let failed = phase_of(&pods, "scripted", "Failed").await;
    let state = failed.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    assert_eq!(state.terminated.unwrap().exit_code, 3);
}

#[tokio::test]
async fn the_kubelet_serves_appended_logs_and_finishes_a_pod_when_told() {
    let (s, pods) = one_node().await;
    pods.create(&PostParams::default(), &pod("told", json!({})))
        .await
        .unwrap();
    phase_of(&pods, "told", "Running").await;
    s.sim.append_log(
        "default",
        "told",
        "",
        &["epoch 1 loss 0.5", "epoch 2 loss 0.25"],
    );
    let logs = pods.logs("told", &LogParams::default()).await.unwrap();
    assert_eq!(logs, "epoch 1 loss 0.5\nepoch 2 loss 0.25\n");
    let tail = pods
        .logs(
            "told",
            &LogParams {
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "epoch 2 loss 0.25\n");
    s.sim.finish_pod("default", "told", 0).unwrap();
    assert_eq!(
        pods.get("told")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Succeeded")
    );
    assert!(s.sim.finish_pod("default", "nope", 0).is_err());
}

#[tokio::test]
async fn killing_a_node_fails_its_pods_as_node_lost_and_makes_it_not_ready() {
    let (s, pods) = one_node().await;
    pods.create(&PostParams::default(), &pod("doomed", json!({})))
        .await
        .unwrap();
    phase_of(&pods, "doomed", "Running").await;
    s.sim.kill_node("n1").unwrap();
    let lost = pods.get("doomed").await.unwrap().status.unwrap();
    assert_eq!(
        (lost.phase.as_deref(), lost.reason.as_deref()),
        (Some("Failed"), Some("NodeLost"))
    );
    let node = Api::<Node>::all(s.client.clone()).get("n1").await.unwrap();
    let ready = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
}

#[tokio::test]
async fn gang_pods_wait_for_the_stand_in_which_binds_a_whole_group() {
    let s = common::start().await;
    s.sim
        .add_node(&NodeSpec {
            gpus: 2,
            ..NodeSpec::new("g1")
        })
        .unwrap();
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    let member = |group: &str| {
        let mut extra = gpus(1);
        extra["metadata"] = json!({"annotations": {"scheduling.k8s.io/group-name": group}});
        extra["spec"]["schedulerName"] = json!("volcano");
        extra
    };
    for name in ["a-0", "a-1"] {
        pods.create(&PostParams::default(), &pod(name, member("job-a")))
            .await
            .unwrap();
    }
    for name in ["b-0", "b-1", "b-2"] {
        pods.create(&PostParams::default(), &pod(name, member("job-b")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pods.get("a-0")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .is_none(),
        "volcano pods wait without the stand-in"
    );
    s.sim.set_gang_scheduling(true);
    phase_of(&pods, "a-0", "Running").await;
    phase_of(&pods, "a-1", "Running").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for name in ["b-0", "b-1", "b-2"] {
        let p = pods.get(name).await.unwrap();
        assert!(
            p.spec.unwrap().node_name.is_none(),
            "{name}: a group of 3 GPUs never fits 2, none is bound"
        );
    }
}

#[tokio::test]
async fn schema_invalid_pods_are_422_against_the_official_schemas() {
    let s = common::start_with(ServerConfig::default()).await;
    assert!(
        s.sim.validates_builtins(),
        "python3 on PATH lacks kubernetes-validate: run scripts/test (it installs tests/requirements.txt into .venv)"
    );
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    // A container without its required name; typed Pods cannot even express that.
    let raw: Api<DynamicObject> =
        Api::default_namespaced_with(s.client.clone(), &ApiResource::erase::<Pod>(&()));
    let invalid: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {"containers": [{"image": "x"}]}})).unwrap();
    let err = raw
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err();
    common::assert_invalid(err, &["Pod \"bad\" is invalid: spec.containers[0]"]);
    pods.create(&PostParams::default(), &pod("good", json!({})))
        .await
        .unwrap();
    assert_eq!(
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        ["good"]
    );
}

/// Sends one raw HTTP request and returns (status line, headers and body).
async fn raw_request(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn a_throttling_fault_answers_429_with_retry_after_for_its_verb_and_resource_only() {
    let s = common::start().await;
    s.sim.inject_fault(FaultRule {
        verb: Some("list".into()),
        resource: Some("pods".into()),
        rate: 1.0,
        error: InjectedError::TooManyRequests { seconds: 3 },
    });
    let throttled = raw_request(s.sim.addr(), "GET", "/api/v1/namespaces/default/pods").await;
    assert!(throttled.starts_with("HTTP/1.1 429"), "{throttled}");
    assert!(
        throttled.to_lowercase().contains("retry-after: 3"),
        "{throttled}"
    );
    let other = raw_request(s.sim.addr(), "GET", "/api/v1/namespaces/default/configmaps").await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
}

#[tokio::test]
async fn a_server_error_fault_answers_500_internal_error() {
    let s = common::start().await;
    s.sim.inject_fault(FaultRule {
        verb: None,
        resource: None,
        rate: 1.0,
        error: InjectedError::ServerError,
    });
    let broken = raw_request(s.sim.addr(), "GET", "/api/v1/namespaces").await;
    assert!(
        broken.starts_with("HTTP/1.1 500") && broken.contains("\"reason\":\"InternalError\""),
        "{broken}"
    );
}

#[tokio::test]
async fn injected_latency_delays_every_answer() {
    let s = common::start().await;
    s.sim.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    let slow = raw_request(s.sim.addr(), "GET", "/api/v1/namespaces").await;
    assert!(slow.starts_with("HTTP/1.1 200") && started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn requests_are_tallied_by_verb_group_and_subresource() {
    let s = common::start().await;
    raw_request(s.sim.addr(), "GET", "/api/v1/namespaces/default/pods").await;
    raw_request(s.sim.addr(), "GET", "/api/v1/namespaces/default/pods").await;
    raw_request(s.sim.addr(), "GET", "/api/v1/namespaces/default/pods/p/log").await;
    raw_request(
        s.sim.addr(),
        "DELETE",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
    )
    .await;
    let kind = |verb: &str, group: &str, resource: &str| kube_sim::RequestKind {
        user: String::new(),
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
    };
    let counts = s.sim.requests();
    assert_eq!(counts.get(&kind("list", "", "pods")), Some(&2));
    assert_eq!(counts.get(&kind("get", "", "pods/log")), Some(&1));
    let delete = kind("delete", "coordination.k8s.io", "leases");
    assert_eq!(counts.get(&delete), Some(&1), "a 404 is still a request");
    assert!(delete.is_write() && !kind("watch", "", "pods").is_write());
}
