//! What the operator benchmarks share: the operator in its own process (the bench binary
//! started again in operator mode: the same `run_as_leader` as `trainctl operator`, as its
//! own user, so kube-sim's request tally separates its requests and its peak RSS is its
//! own), its CPU and memory from `/proc`, and its API writes by resource and verb.

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{KubeSim, RequestCounts};
use trainctl_operator::leader::{run_as_leader, LeaseConfig};
use trainctl_operator::metrics::Metrics;
use trainctl_operator::OperatorConfig;

/// Set (to the kubeconfig path) in the child that runs the operator.
const OPERATOR_KUBECONFIG_ENV: &str = "OPERATOR_BENCH_OPERATOR_KUBECONFIG";
/// The identity the operator's requests carry (kube-sim tallies requests by user).
pub const OPERATOR_USER: &str = "system:serviceaccount:default:trainctl-operator";
/// The namespace of every benchmarked object.
pub const NS: &str = "default";
/// Writes per job or trial may be at most this many times the minimum.
pub const TARGET_WRITE_RATIO: f64 = 1.5;
/// The operator's peak RSS must stay under this many MB.
pub const TARGET_RSS_MB: f64 = 200.0;

/// Runs `bench`, or the operator when this process was started as one.
pub fn main_with<F: std::future::Future<Output = anyhow::Result<()>>>(
    bench: impl FnOnce() -> F,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = match std::env::var(OPERATOR_KUBECONFIG_ENV) {
        Ok(kubeconfig) => runtime.block_on(operator(&kubeconfig)),
        Err(_) => runtime.block_on(bench()),
    };
    // The simulated cluster and the stdin reader would otherwise keep the runtime alive.
    runtime.shutdown_background();
    result
}

/// The operator process: leader election and the controllers, as `trainctl operator` runs
/// them (its warnings on stderr), until its stdin closes; then its metrics, in the Prometheus text format, on stdout.
async fn operator(kubeconfig: &str) -> anyhow::Result<()> {
    trainctl_operator::telemetry::init_logging();
    let client = client(kubeconfig, Some(OPERATOR_USER)).await?;
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| {
            std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
        })
        .await;
    };
    let metrics = Arc::new(Metrics::default());
    run_as_leader(
        client,
        OperatorConfig::from_env(),
        metrics.clone(),
        LeaseConfig::from_env(),
        stdin_closed,
    )
    .await
    .map_err(|lost| anyhow::anyhow!("{lost}"))?;
    print!("{}", metrics.render());
    Ok(())
}

/// A kube-rs client from a kubeconfig file, impersonating `user` when given.
pub async fn client(kubeconfig: &str, user: Option<&str>) -> anyhow::Result<kube::Client> {
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    config.auth_info.impersonate = user.map(str::to_string);
    Ok(kube::Client::try_from(config)?)
}

/// A positive count from the environment variable `name`, or `default`.
pub fn count_from_env(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name}={text:?}: want a positive number")),
    }
}

/// The operator running in its own process.
pub struct OperatorProcess {
    child: Child,
}

impl OperatorProcess {
    /// Starts this binary again as the operator of the cluster behind `kubeconfig`.
    pub fn spawn(kubeconfig: &Path) -> anyhow::Result<Self> {
        let child = Command::new(std::env::current_exe()?)
            .env(OPERATOR_KUBECONFIG_ENV, kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the operator process")?;
        Ok(OperatorProcess { child })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it gracefully (its stdin closes) and returns its metrics in the Prometheus
    /// text format; kills it when it has not ended after 30 s.
    pub fn stop(mut self) -> anyhow::Result<String> {
        drop(self.child.stdin.take());
        let mut stdout = self.child.stdout.take().context("the operator's stdout")?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).map(|_| text)
        });
        let started = Instant::now();
        while self.child.try_wait()?.is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the operator did not stop within 30 s of its stdin closing");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the operator's stdout reader panicked"))??;
        Ok(text)
    }
}

/// Waits until the operator watches every one of `resources` (it leads and its caches are
/// filling).
pub async fn operator_watching(sim: &KubeSim, resources: &[&str]) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let watching: HashSet<String> = sim
            .requests()
            .keys()
            .filter(|k| k.user == OPERATOR_USER && k.verb == "watch")
            .map(|k| k.resource.clone())
            .collect();
        if resources.iter().all(|r| watching.contains(*r)) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the operator did not start watching {resources:?} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A field of `/proc/PID/status` in KiB (`VmHWM:` is the peak RSS).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of a process, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The operator's write requests, by (resource, verb).
pub type Writes = BTreeMap<(String, String), u64>;

/// The operator's write requests so far.
pub fn operator_writes(counts: &RequestCounts) -> Writes {
    let mut out = BTreeMap::new();
    for (kind, n) in counts {
        if kind.user == OPERATOR_USER && kind.is_write() {
            *out.entry((kind.resource.clone(), kind.verb.clone()))
                .or_default() += n;
        }
    }
    out
}

/// Whether writes to this resource are leader election's, not any job's.
fn is_leader_election(resource: &str) -> bool {
    resource == "leases"
}

/// The writes done for jobs and experiments (leader election left out).
fn for_work(writes: &Writes) -> Vec<(&(String, String), &u64)> {
    writes
        .iter()
        .filter(|((resource, _), _)| !is_leader_election(resource))
        .collect()
}

/// Waits until the operator has finished what follows the end of the work: until its
/// writes stay the same for 3 s. Lease renewals (every 3 s) are left out of the comparison:
/// with them in, nearly every 3 s window saw a write and this never ended. Returns the
/// writes then.
pub async fn settled_writes(sim: &KubeSim) -> Writes {
    let mut last = operator_writes(&sim.requests());
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = operator_writes(&sim.requests());
        let settled = for_work(&now) == for_work(&last);
        last = now;
        if settled {
            return last;
        }
    }
}

/// Prints the writes by resource and verb, in all and per `unit` (`units` of them, leader
/// election apart); returns the writes per unit.
pub fn print_writes(writes: &Writes, units: usize, unit: &str) -> f64 {
    let per_unit = |n: u64| n as f64 / units as f64;
    println!("operator writes (resource verb: total, per {unit}):");
    let mut total = 0.0;
    for ((resource, verb), n) in writes {
        let shared = is_leader_election(resource);
        println!(
            "  {resource:<24} {verb:<8} {n:>7}  {:>6.2}{}",
            per_unit(*n),
            if shared {
                format!("  (leader election, not per {unit}: left out)")
            } else {
                String::new()
            }
        );
        if !shared {
            total += per_unit(*n);
        }
    }
    total
}

/// PASS or MISS.
pub fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// The machine: cores and load average.
pub fn machine() -> String {
    format!(
        "{} cores, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    )
}
