//! The log follower against the in-memory API server: with followed connections cut
//! mid-line over and over, and with failing log requests, the lines it delivers are exactly
//! the lines the pod printed, and it ends when the pod ends.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{FaultRule, InjectedError, KubeSim, NodeSpec, SchemaSource, ServerConfig};
use kube_sim::{PRINT_ANNOTATION, SCRIPT_ANNOTATION};
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;
use trainctl_kube_client::log_follow::LogFollower;

/// A server with one node, and the pods API of its default namespace.
async fn cluster() -> (KubeSim, Api<Pod>) {
    let sim = KubeSim::start_with(ServerConfig {
        schemas: SchemaSource::Off,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    sim.add_node(&NodeSpec::new("n1")).unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let pods = Api::default_namespaced(kube::Client::try_from(config).unwrap());
    (sim, pods)
}

async fn create_pod(pods: &Api<Pod>, name: &str, annotations: serde_json::Value) {
    let pod = json!({"metadata": {"name": name, "annotations": annotations},
                     "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
}

/// Follows `pod` to its end in a task that sends each line as it comes; the task ends with
/// the number of reconnections.
fn follow(pods: &Api<Pod>, pod: &str) -> (UnboundedReceiver<String>, JoinHandle<u32>) {
    let mut follower = LogFollower::new(pods.clone(), pod, None);
    let (tx, rx) = unbounded_channel();
    let task = tokio::spawn(async move {
        while let Some(line) = follower.next_line().await.unwrap() {
            tx.send(line).unwrap();
        }
        follower.reconnects()
    });
    (rx, task)
}

/// Receives `n` lines, failing after 10s.
async fn receive(rx: &mut UnboundedReceiver<String>, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(line)) => lines.push(line),
            _ => panic!("only {} of {n} lines arrived: {lines:?}", lines.len()),
        }
    }
    lines
}

/// Follows `pod` to its end; every line and the number of reconnections.
async fn follow_to_end(pods: &Api<Pod>, pod: &str) -> (Vec<String>, u32) {
    let (mut rx, task) = follow(pods, pod);
    let reconnects = task.await.unwrap();
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    (lines, reconnects)
}

async fn wait_running(pods: &Api<Pod>, name: &str) {
    kube_sim::eventually("pod running", Duration::from_secs(10), || async {
        let p = pods.get(name).await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn lines_sharing_a_timestamp_are_delivered_once_across_connections_cut_mid_line() {
    let (sim, pods) = cluster().await;
    create_pod(&pods, "p", json!({})).await;
    // Every followed connection breaks after 100 bytes, mid-line (a line is 16 bytes; the
    // follower reads without timestamps). A resumed connection sends the lines of the last
    // second again, so the cut has to leave room for more than a second's lines (64 bytes).
    // After a break the lines missed come from one plain read, which is not cut.
    sim.cut_log_follows_after(Some(100));
    let (mut rx, follower) = follow(&pods, "p");
    wait_running(&pods, "p").await;
    let mut printed = Vec::new();
    for batch in 0..20 {
        // The two lines of a batch share one timestamp, and the two batches of a simulated
        // second share that second (sinceTime resumes at whole seconds).
        let lines: Vec<String> = (0..2).map(|i| format!("batch {batch} line {i}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        sim.append_log("default", "p", "", &refs);
        printed.extend(lines);
        sim.set_clock_speed(50.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
        sim.set_clock_speed(1.0);
        // Time for the batch to come over the followed connection.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // All arrive over followed connections while the pod runs...
    assert_eq!(receive(&mut rx, printed.len()).await, printed);
    sim.finish_pod("default", "p", 0).unwrap();
    // ...and nothing more once it has ended.
    let reconnects = follower.await.unwrap();
    assert_eq!(rx.recv().await, None);
    assert!(reconnects >= 3, "only {reconnects} reconnections");
}

#[tokio::test]
async fn an_hour_of_output_arrives_exactly_once_through_cuts_and_failing_requests() {
    let (sim, pods) = cluster().await;
    sim.set_clock_speed(3_000.0);
    sim.cut_log_follows_after(Some(512));
    sim.inject_fault(FaultRule {
        verb: Some("get".into()),
        resource: Some("pods".into()),
        rate: 0.2,
        error: InjectedError::ServerError,
    });
    create_pod(
        &pods,
        "trainer",
        json!({PRINT_ANNOTATION: "every 1s step {n} loss 0.25",
               SCRIPT_ANNOTATION: "run 1h then exit 0"}),
    )
    .await;
    let (delivered, reconnects) = follow_to_end(&pods, "trainer").await;
    let printed: Vec<String> = (1..=3600).map(|n| format!("step {n} loss 0.25")).collect();
    assert_eq!(delivered.len(), printed.len());
    assert_eq!(delivered, printed);
    assert!(reconnects >= 3, "only {reconnects} reconnections");
}

#[tokio::test]
async fn a_pod_that_never_existed_or_is_deleted_ends_the_follow_without_lines() {
    let (sim, pods) = cluster().await;
    let (lines, _) = follow_to_end(&pods, "ghost").await;
    assert!(lines.is_empty());
    create_pod(&pods, "short", json!({})).await;
    let (mut rx, follower) = follow(&pods, "short");
    wait_running(&pods, "short").await;
    sim.append_log("default", "short", "", &["only line"]);
    assert_eq!(receive(&mut rx, 1).await, ["only line"]);
    pods.delete("short", &Default::default()).await.unwrap();
    follower.await.unwrap();
    assert_eq!(rx.recv().await, None);
}
