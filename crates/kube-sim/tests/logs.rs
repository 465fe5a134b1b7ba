//! The pods/log subresource as a kubelet serves it: timestamps, sinceTime, sinceSeconds,
//! tailLines, limitBytes, previous, follow until the pod ends, the log-cut fault, the byte
//! count, and print schedules in simulated time.

mod common;

use std::time::Duration;

use futures::{AsyncBufReadExt, AsyncReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use kube_sim::{NodeSpec, PRINT_ANNOTATION, SCRIPT_ANNOTATION};
use serde_json::json;

/// A server with one node and a Running pod `p` (with `annotations`).
async fn running_pod(annotations: serde_json::Value) -> (common::Sim, Api<Pod>) {
    let s = common::start().await;
    s.sim.add_node(&NodeSpec::new("n1")).unwrap();
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    let pod = json!({"metadata": {"name": "p", "annotations": annotations},
                     "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    common::eventually("p running", || async {
        let p = pods.get("p").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    (s, pods)
}

async fn read(pods: &Api<Pod>, params: LogParams) -> String {
    pods.logs("p", &params).await.unwrap()
}

async fn refused(pods: &Api<Pod>, params: LogParams) -> String {
    match pods.logs("p", &params).await {
        Err(kube::Error::Api(e)) => format!("{} {}", e.code, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn log_parameters_select_lines_as_a_kubelet_does() {
    let (s, pods) = running_pod(json!({})).await;
    let before = s.sim.now();
    s.sim.append_log("default", "p", "", &["a", "b"]);
    // Five simulated seconds pass in about 5ms.
    s.sim.set_clock_speed(1000.0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.sim.set_clock_speed(1.0);
    s.sim.append_log("default", "p", "", &["c"]);
    let stamped = read(
        &pods,
        LogParams {
            timestamps: true,
            ..Default::default()
        },
    )
    .await;
    let stamps: Vec<(jiff::Timestamp, &str)> = stamped
        .lines()
        .map(|l| {
            let (t, text) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), text)
        })
        .collect();
    let first = stamps[0].0;
    assert!(first >= before);
    assert_eq!(stamps[0].1, "a");
    assert_eq!(
        stamps[1],
        (first, "b"),
        "lines of one append share its time"
    );
    assert!(stamps[2].0 > first + jiff::SignedDuration::from_secs(4));
    // kube-rs rounds sinceTime to the nearest second; give it whole seconds.
    let since = |t: jiff::Timestamp| LogParams {
        since_time: Some(
            t.round(
                jiff::TimestampRound::new()
                    .smallest(jiff::Unit::Second)
                    .mode(jiff::RoundMode::Trunc),
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    assert_eq!(read(&pods, since(stamps[2].0)).await, "c\n");
    assert_eq!(
        read(&pods, since(first)).await,
        "a\nb\nc\n",
        "sinceTime is inclusive"
    );
    let seconds = LogParams {
        since_seconds: Some(2),
        ..Default::default()
    };
    assert_eq!(read(&pods, seconds).await, "c\n");
    let tail = LogParams {
        tail_lines: Some(2),
        ..Default::default()
    };
    assert_eq!(read(&pods, tail).await, "b\nc\n");
    let limit = LogParams {
        limit_bytes: Some(3),
        ..Default::default()
    };
    assert_eq!(read(&pods, limit).await, "a\nb");
    let previous = LogParams {
        previous: true,
        ..Default::default()
    };
    assert_eq!(
        refused(&pods, previous).await,
        "400 previous terminated container \"main\" in pod \"p\" not found"
    );
    // kube-rs sends only sinceSeconds when given both; ask over raw HTTP for the refusal.
    let url = format!(
        "{}/api/v1/namespaces/default/pods/p/log?sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z",
        s.sim.url()
    );
    let answer = raw_get(&url).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("at most one of sinceTime or sinceSeconds"),
        "{answer}"
    );
}

/// A GET over a plain TCP connection; the whole answer, status line first.
async fn raw_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_followed_log_streams_until_the_pod_ends_and_every_byte_is_counted() {
    let (s, pods) = running_pod(json!({})).await;
    s.sim.append_log("default", "p", "", &["one"]);
    let follow = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut lines = pods.log_stream("p", &follow).await.unwrap().lines();
    assert_eq!(lines.try_next().await.unwrap().as_deref(), Some("one"));
    s.sim.append_log("default", "p", "", &["two", "three"]);
    assert_eq!(lines.try_next().await.unwrap().as_deref(), Some("two"));
    s.sim.finish_pod("default", "p", 0).unwrap();
    let rest: Vec<String> = lines.try_collect().await.unwrap();
    assert_eq!(rest, ["three"], "the stream ends with the pod");
    assert_eq!(
        s.sim.log_bytes_served("default", "p"),
        "one\ntwo\nthree\n".len() as u64
    );
}

#[tokio::test]
async fn the_log_cut_fault_drops_a_followed_log_mid_line_while_the_pod_runs() {
    let (s, pods) = running_pod(json!({})).await;
    s.sim
        .append_log("default", "p", "", &["epoch 1", "epoch 2"]);
    s.sim.cut_log_follows_after(Some(10));
    let follow = LogParams {
        follow: true,
        ..Default::default()
    };
    let mut stream = pods.log_stream("p", &follow).await.unwrap();
    let (mut text, mut chunk) = (Vec::new(), [0u8; 64]);
    let broken = loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break false,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(_) => break true,
        }
    };
    assert_eq!(String::from_utf8(text).unwrap(), "epoch 1\nep");
    assert!(
        broken,
        "a cut connection breaks off with an error, it does not end"
    );
    let p = pods.get("p").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(
        read(&pods, LogParams::default()).await,
        "epoch 1\nepoch 2\n",
        "plain reads are not cut"
    );
}

#[tokio::test]
async fn a_print_schedule_prints_an_hour_of_lines_in_simulated_time() {
    let (s, pods) = running_pod(json!({})).await;
    drop(pods);
    let pods = Api::<Pod>::default_namespaced(s.client.clone());
    s.sim.set_clock_speed(20_000.0);
    let pod = json!({"metadata": {"name": "printer", "annotations": {
                        PRINT_ANNOTATION: "every 1s step {n} loss 0.5",
                        SCRIPT_ANNOTATION: "run 1h then exit 0"}},
                     "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    common::eventually("printer succeeded", || async {
        let p = pods.get("printer").await.ok()?;
        (p.status?.phase.as_deref() == Some("Succeeded")).then_some(())
    })
    .await;
    let params = LogParams {
        timestamps: true,
        ..Default::default()
    };
    let log = pods.logs("printer", &params).await.unwrap();
    let lines: Vec<(jiff::Timestamp, &str)> = log
        .lines()
        .map(|l| {
            let (t, text) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), text)
        })
        .collect();
    assert_eq!(lines.len(), 3600);
    assert_eq!(lines[0].1, "step 1 loss 0.5");
    assert_eq!(lines[3599].1, "step 3600 loss 0.5");
    assert_eq!(
        lines[3599].0.duration_since(lines[0].0),
        jiff::SignedDuration::from_secs(3599)
    );
}
