//! Scale benchmark: create 10,000 pods through kube-rs while 4 watchers watch them; prints
//! creates/s, watch-event latency p50/p99 (create sent -> ADDED received) and the server's
//! RSS. The server is the `kube-sim` binary in its own process, so its RSS is its own.
//! Run: `cargo bench -p trainctl-kube-sim --bench kube_sim_scale` (env PODS, WATCHERS,
//! CONCURRENCY, SCHEMAS=off to change the defaults).

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (pods, watchers, concurrency) = (
        env_or("PODS", 10_000),
        env_or("WATCHERS", 4),
        env_or("CONCURRENCY", 32),
    );
    let schemas = std::env::var("SCHEMAS").map_or(true, |v| v != "off");
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let mut args = vec![
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--no-cluster",
        "--history",
        "50000",
    ];
    if !schemas {
        args.push("--no-schemas");
    }
    let mut server = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()?;
    let mut banner = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut banner)?;
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let api = Api::<Pod>::default_namespaced(client);
    let rss_before = rss_kib(server.id(), "VmRSS:");

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut watch_tasks = Vec::new();
    for _ in 0..watchers {
        let (api, sent) = (api.clone(), sent.clone());
        let stream = api
            .watch(&WatchParams::default().disable_bookmarks(), "0")
            .await?
            .boxed();
        watch_tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(pods);
            let mut stream = stream;
            while latencies.len() < pods {
                if let Some(WatchEvent::Added(pod)) = stream.try_next().await.expect("watch stream")
                {
                    let received = Instant::now();
                    let name = pod.metadata.name.unwrap_or_default();
                    let at = sent
                        .lock()
                        .unwrap()
                        .get(&name)
                        .copied()
                        .expect("sent before seen");
                    latencies.push(received - at);
                }
            }
            latencies
        }));
    }

    let started = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let (api, sent) = (api.clone(), sent.clone());
            async move {
                let name = format!("pod-{i:05}");
                let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}))
                    .expect("pod");
                sent.lock().unwrap().insert(name, Instant::now());
                api.create(&PostParams::default(), &pod).await.expect("create");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let create_time = started.elapsed();
    let mut latencies = Vec::new();
    for task in watch_tasks {
        latencies.extend(tokio::time::timeout(Duration::from_secs(120), task).await??);
    }
    let all_seen = started.elapsed();
    latencies.sort();
    let rss = rss_kib(server.id(), "VmRSS:");
    let peak = rss_kib(server.id(), "VmHWM:");
    let _ = server.kill();
    let _ = server.wait();

    println!("kube-sim scale: {pods} pods, {watchers} watchers, {concurrency} concurrent creates, schema validation {}", if schemas { "on" } else { "off" });
    println!(
        "creates/s:              {:.0}",
        pods as f64 / create_time.as_secs_f64()
    );
    println!(
        "all events delivered:   {:.2}s after the first create",
        all_seen.as_secs_f64()
    );
    println!(
        "watch latency p50:      {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "watch latency p99:      {:.2} ms",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "server RSS:             {} MiB before, {} MiB after, {} MiB peak",
        rss_before / 1024,
        rss / 1024,
        peak / 1024
    );
    Ok(())
}
