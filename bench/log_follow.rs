//! Bytes fetched from the log API per byte a replica printed, for a replica that prints a
//! line a second for an hour of simulated time: the whole-log polling `collect` and the
//! dashboard charts did (one read of the whole log per second, as `COLLECT_EVERY`) against
//! the follower (`LogFollower`), side by side on two identical pods of one kube-sim, then
//! the follower again with every followed connection broken off after 64 KiB (at 10x the
//! speed; each break costs one timestamped read of what came since the last). The follower's lines
//! are checked against what was printed. Target (issue 14): follower under 1.1.
//!
//! cargo run -p trainctl-kube-client --example log_follow -- [--speed 60] [--line-bytes 100]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{KubeSim, NodeSpec, SchemaSource, ServerConfig};
use kube_sim::{PRINT_ANNOTATION, SCRIPT_ANNOTATION};
use serde_json::json;
use trainctl_kube_client::log_follow::LogFollower;

/// One simulated hour, one line a second.
const LINES: usize = 3600;
/// Followed connections are cut after this many bytes in the third run.
const CUT: u64 = 64 * 1024;

struct Args {
    speed: f64,
    line_bytes: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        speed: 60.0,
        line_bytes: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--speed" => a.speed = value.parse().context("--speed: a number")?,
            "--line-bytes" => a.line_bytes = value.parse().context("--line-bytes: a count")?,
            _ => bail!("unknown flag {flag} (--speed N, --line-bytes N)"),
        }
    }
    if a.line_bytes < 30 {
        bail!("--line-bytes must be at least 30");
    }
    Ok(a)
}

/// The print template: a metrics line padded to `bytes` (with the step number's 4 digits).
fn template(bytes: usize) -> String {
    let head = "{'loss': 0.4821, 'learning_rate': 4.2e-05, 'step': {n}}";
    let pad = bytes.saturating_sub(head.len() - 3 + 4);
    format!("{head}{}", " ".repeat(pad))
}

async fn start_pod(pods: &Api<Pod>, name: &str, template: &str) -> Result<()> {
    let pod = json!({"metadata": {"name": name, "annotations": {
                        PRINT_ANNOTATION: format!("every 1s {template}"),
                        SCRIPT_ANNOTATION: "run 1h then exit 0"}},
                     "spec": {"containers": [{"name": "main", "image": "trainer"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(pod)?)
        .await?;
    Ok(())
}

async fn ended(pods: &Api<Pod>, name: &str) -> bool {
    let phase = pods.get(name).await.ok().and_then(|p| p.status?.phase);
    matches!(phase.as_deref(), Some("Succeeded" | "Failed"))
}

/// The old way: the whole log once per simulated second until the pod has ended (and a
/// last read after); returns how many reads it made (fewer than one a second when the
/// reads cannot keep up with the simulated clock: then it undercounts the old cost).
async fn poll(sim: &KubeSim, pods: &Api<Pod>, name: &str, speed: f64) -> Result<u64> {
    let mut reads = 0;
    let mut next = sim.now();
    loop {
        let done = ended(pods, name).await;
        match pods.logs(name, &LogParams::default()).await {
            Ok(_) => reads += 1,
            Err(kube::Error::Api(e)) if e.code == 400 => {} // still starting
            Err(e) => return Err(e.into()),
        }
        if done {
            return Ok(reads);
        }
        next += jiff::SignedDuration::from_secs(1);
        let ahead = next.duration_since(sim.now()).as_secs_f64();
        if ahead > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(ahead / speed)).await;
        }
    }
}

/// The follower to the pod's end; returns the delivered lines and the reconnections.
async fn follow(pods: &Api<Pod>, name: &str) -> Result<(Vec<String>, u32)> {
    let mut follower = LogFollower::new(pods.clone(), name, None);
    let mut lines = Vec::new();
    while let Some(line) = follower.next_line().await? {
        lines.push(line);
    }
    Ok((lines, follower.reconnects()))
}

fn check(delivered: &[String], printed: &[String], who: &str) -> Result<()> {
    if delivered != printed {
        let first = delivered.iter().zip(printed).position(|(a, b)| a != b);
        bail!(
            "{who}: delivered {} lines, printed {}; first difference at {first:?}",
            delivered.len(),
            printed.len()
        );
    }
    Ok(())
}

async fn run(a: &Args) -> Result<bool> {
    let sim = KubeSim::start_with(ServerConfig {
        schemas: SchemaSource::Off,
        ..ServerConfig::default()
    })
    .await?;
    sim.add_node(&NodeSpec::new("n1"))?;
    let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config)?);
    let template = template(a.line_bytes);
    let printed: Vec<String> = (1..=LINES)
        .map(|n| template.replace("{n}", &n.to_string()))
        .collect();
    let printed_bytes: u64 = printed.iter().map(|l| l.len() as u64 + 1).sum();
    println!(
        "one replica printing {LINES} lines of {} bytes (one a second, an hour of simulated time at {}x): {printed_bytes} bytes",
        printed[0].len() + 1,
        a.speed
    );

    sim.set_clock_speed(a.speed);
    let started = std::time::Instant::now();
    start_pod(&pods, "polled", &template).await?;
    start_pod(&pods, "followed", &template).await?;
    let (reads, followed) = tokio::join!(
        poll(&sim, &pods, "polled", a.speed),
        follow(&pods, "followed")
    );
    let (reads, (delivered, _)) = (reads?, followed?);
    check(&delivered, &printed, "follower")?;
    let polled_bytes = sim.log_bytes_served("default", "polled");
    let followed_bytes = sim.log_bytes_served("default", "followed");
    let first_hour = started.elapsed();

    // The follower alone keeps up with a faster clock.
    sim.set_clock_speed(a.speed * 10.0);
    sim.cut_log_follows_after(Some(CUT));
    start_pod(&pods, "cut", &template).await?;
    let (delivered, reconnects) = follow(&pods, "cut").await?;
    check(&delivered, &printed, "follower with cuts")?;
    let cut_bytes = sim.log_bytes_served("default", "cut");

    let ratio = |bytes: u64| bytes as f64 / printed_bytes as f64;
    println!("\n| reader | log reads | bytes fetched | per byte printed |");
    println!("|---|---|---|---|");
    println!(
        "| whole log every simulated second (old collect / charts) | {reads} | {polled_bytes} | {:.1} |",
        ratio(polled_bytes)
    );
    println!(
        "| follower (`follow=true`, no timestamps) | 1 | {followed_bytes} | {:.3} |",
        ratio(followed_bytes)
    );
    println!(
        "| follower, connections cut every {} KiB | {} | {cut_bytes} | {:.3} |",
        CUT / 1024,
        reconnects + 1,
        ratio(cut_bytes)
    );
    println!(
        "\nold / follower: {:.0}x fewer bytes; the follower fetched {} bytes more than printed; wall time of the first hour {:.1}s",
        polled_bytes as f64 / followed_bytes as f64,
        followed_bytes.saturating_sub(printed_bytes),
        first_hour.as_secs_f64()
    );
    let pass = ratio(followed_bytes) < 1.1;
    println!(
        "target follower < 1.1: {}",
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(pass)
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("log_follow: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&a).await {
        // The numbers are the result; only a wrong line fails the run.
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log_follow: {e:#}");
            ExitCode::FAILURE
        }
    }
}
