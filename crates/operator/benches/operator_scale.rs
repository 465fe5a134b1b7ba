//! Operator scale benchmark (issue 5): N TrainingJobs of 1 chief + 1 ps + 4 workers are
//! submitted at once to kube-sim. The operator runs in its own process (see `common`), so
//! its peak RSS is its own. When all 6 pods of a job run, the bench ends the 4
//! workers and then the chief with exit 0 through the simulated kubelet; the operator must
//! then mark the job Succeeded and stop its parameter server.
//!
//! Prints the time until every pod exists, the time until every job is Succeeded, the
//! operator's API writes per job (from kube-sim's request tally, by resource and verb)
//! against the minimum, and the operator's peak RSS, each with its target and PASS/MISS.
//! Exits 1 when a job ends wrong (not Succeeded, wrong counts, PS left running).
//!
//! Run: `cargo bench -p trainctl-operator --bench operator_scale`
//! (env `OPERATOR_SCALE_JOBS`, default 1000).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use common::{
    client, count_from_env, cpu_seconds, machine, operator_watching, print_writes, proc_status_kib,
    settled_writes, verdict, OperatorProcess, Writes, NS, TARGET_RSS_MB, TARGET_WRITE_RATIO,
};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use kube_sim::{KubeSim, NodeSpec, ServerConfig};
use trainctl_kube::render::{JOB_NAME, REPLICA_TYPE};
use trainctl_operator::{crd, TrainingJobResource};

const PODS_PER_JOB: usize = 6;
/// Minimum writes per job: 6 pods + 6 services + 3 status writes (Created, Running,
/// Succeeded) + 1 delete of the stopped parameter server.
const MINIMUM_WRITES: f64 = 16.0;
const TARGET_ALL_PODS: Duration = Duration::from_secs(60);
/// The whole run gives up after this long.
const GIVE_UP: Duration = Duration::from_secs(540);

fn main() -> anyhow::Result<()> {
    common::main_with(bench)
}

fn job_yaml(name: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\n\
         spec:\n  framework: tensorflow\n  image: registry.example.com/train:1\n  \
         command: [python3, train.py]\n  replicas:\n    \
         chief: {{count: 1, resources: {{cpu: 100m, memory: 128Mi}}}}\n    \
         ps: {{count: 1, resources: {{cpu: 100m, memory: 128Mi}}}}\n    \
         worker: {{count: 4, resources: {{cpu: 100m, memory: 128Mi}}}}\n"
    )
}

/// Pods seen per job, and which of them run.
#[derive(Default)]
struct PodTracker {
    seen: HashSet<String>,
    running: HashMap<String, HashSet<String>>,
    finished_jobs: HashSet<String>,
    all_created: Option<Instant>,
}

impl PodTracker {
    /// Notes a pod; when all pods of its job run, ends the workers and then the chief.
    fn observe(&mut self, sim: &KubeSim, pod: &Pod, total: usize) {
        let name = pod.name_any();
        let labels = pod.labels();
        let Some(job) = labels.get(JOB_NAME).cloned() else {
            return;
        };
        self.seen.insert(name.clone());
        if self.seen.len() == total && self.all_created.is_none() {
            self.all_created = Some(Instant::now());
        }
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !running || self.finished_jobs.contains(&job) {
            return;
        }
        let pods = self.running.entry(job.clone()).or_default();
        pods.insert(name);
        if pods.len() < PODS_PER_JOB {
            return;
        }
        let mut ending: Vec<&String> = pods.iter().filter(|p| !p.contains("-ps-")).collect();
        ending.sort_by_key(|p| p.contains("-chief-"));
        for pod in ending {
            if let Err(e) = sim.finish_pod(NS, pod, 0) {
                eprintln!("cannot finish {pod}: {e}");
            }
        }
        self.running.remove(&job);
        self.finished_jobs.insert(job);
    }
}

/// What went wrong with one finished job, if anything.
fn check_job(job: &TrainingJobResource, pods: &[Pod]) -> Option<String> {
    let name = job.name_any();
    let status = job.status.clone().unwrap_or_default();
    let counts = |role: &str| {
        status
            .replica_statuses
            .get(role)
            .copied()
            .unwrap_or_default()
    };
    let ps_left = pods
        .iter()
        .any(|p| p.labels().get(REPLICA_TYPE).map(String::as_str) == Some("ps"));
    let problems = [
        (
            status.phase.as_deref() != Some("Succeeded"),
            "not Succeeded",
        ),
        (
            counts("chief").succeeded != 1,
            "chief not counted succeeded",
        ),
        (
            counts("worker").succeeded != 4,
            "workers not counted succeeded",
        ),
        (counts("ps").active != 0, "ps still counted active"),
        (ps_left, "ps pod not deleted"),
        (pods.len() != PODS_PER_JOB - 1, "wrong number of pods left"),
    ];
    let wrong: Vec<&str> = problems
        .iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, what)| *what)
        .collect();
    (!wrong.is_empty()).then(|| format!("{name}: {} ({status:?})", wrong.join(", ")))
}

async fn bench() -> anyhow::Result<()> {
    let jobs_n = count_from_env("OPERATOR_SCALE_JOBS", 1000)?;
    let total_pods = jobs_n * PODS_PER_JOB;
    let sim = KubeSim::start_with(ServerConfig {
        history_limit: 20 * total_pods + 10_000,
        ..ServerConfig::default()
    })
    .await?;
    for i in 0..8 {
        sim.add_node(&NodeSpec {
            cpu: "2000".into(),
            memory: "4000Gi".into(),
            ..NodeSpec::new(&format!("node-{i}"))
        })?;
    }
    let dir = tempfile::tempdir()?;
    let kubeconfig = sim.write_kubeconfig(&dir.path().join("kubeconfig"))?;
    let admin = client(kubeconfig.to_str().context("utf-8 path")?, None).await?;
    Api::<CustomResourceDefinition>::all(admin.clone())
        .create(&PostParams::default(), &crd())
        .await?;
    let operator = OperatorProcess::spawn(&kubeconfig)?;
    let pid = operator.pid();
    operator_watching(&sim, &["trainingjobs", "pods"]).await?;
    let rss_idle = proc_status_kib(pid, "VmRSS:");
    let cpu_idle = cpu_seconds(pid);
    let sim_cpu_idle = cpu_seconds(std::process::id());

    let sim = Arc::new(sim);
    let pods_api: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let jobs_api: Api<TrainingJobResource> = Api::namespaced(admin.clone(), NS);
    let tracker = {
        let sim = sim.clone();
        let stream = watcher(
            pods_api.clone(),
            watcher::Config::default().labels(JOB_NAME),
        );
        tokio::spawn(async move {
            let mut tracker = PodTracker::default();
            let mut stream = stream.boxed();
            while let Some(event) = stream.try_next().await? {
                if let watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) = event {
                    tracker.observe(&sim, &pod, total_pods);
                }
                if tracker.finished_jobs.len() == jobs_n {
                    return anyhow::Ok(tracker);
                }
            }
            bail!("the pod watch ended")
        })
    };

    let started = Instant::now();
    let submitted = futures::stream::iter(0..jobs_n)
        .map(|i| {
            let jobs_api = jobs_api.clone();
            async move {
                let job =
                    trainctl_spec::parse_job_str("job.yaml", &job_yaml(&format!("bench-{i:05}")))
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                jobs_api
                    .create(
                        &PostParams::default(),
                        &TrainingJobResource::from_job(&job, NS),
                    )
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>();
    submitted.await?;
    let submit_time = started.elapsed();

    let tracker = tokio::time::timeout(GIVE_UP, tracker)
        .await
        .context("gave up waiting for every job's pods to run")???;
    let all_created = tracker.all_created.context("not every pod was seen")? - started;

    let all_succeeded = tokio::time::timeout(GIVE_UP, async {
        loop {
            let list = jobs_api.list(&ListParams::default()).await?;
            let done = list
                .items
                .iter()
                .filter(|j| j.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
                .count();
            if done == jobs_n {
                return anyhow::Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .context("gave up waiting for every job to succeed")??;

    // Let the operator finish what follows (stopping parameter servers).
    let last = settled_writes(&sim).await;
    let peak_rss = proc_status_kib(pid, "VmHWM:");
    let rss_end = proc_status_kib(pid, "VmRSS:");
    let cpu = cpu_seconds(pid) - cpu_idle;
    operator.stop()?;
    let sim_cpu = cpu_seconds(std::process::id()) - sim_cpu_idle;

    let mut pods_by_job: HashMap<String, Vec<Pod>> = HashMap::new();
    for pod in pods_api
        .list(&ListParams::default().labels(JOB_NAME))
        .await?
        .items
    {
        let job = pod.labels().get(JOB_NAME).cloned().unwrap_or_default();
        pods_by_job.entry(job).or_default().push(pod);
    }
    let wrong: Vec<String> = jobs_api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|j| check_job(j, pods_by_job.get(&j.name_any()).map_or(&[], Vec::as_slice)))
        .collect();

    report(&Report {
        jobs: jobs_n,
        submit_time,
        all_created,
        all_succeeded,
        writes: last,
        peak_rss_mib: peak_rss as f64 / 1024.0,
        rss_idle_mib: rss_idle as f64 / 1024.0,
        rss_end_mib: rss_end as f64 / 1024.0,
        cpu,
        sim_cpu,
    });
    if !wrong.is_empty() {
        for w in wrong.iter().take(10) {
            eprintln!("WRONG: {w}");
        }
        bail!("{} of {jobs_n} jobs ended wrong", wrong.len());
    }
    println!("correctness:            all {jobs_n} jobs Succeeded, 1 chief + 4 workers succeeded, ps stopped");
    Ok(())
}

/// The measured numbers.
struct Report {
    jobs: usize,
    submit_time: Duration,
    all_created: Duration,
    all_succeeded: Duration,
    writes: Writes,
    peak_rss_mib: f64,
    rss_idle_mib: f64,
    rss_end_mib: f64,
    cpu: f64,
    sim_cpu: f64,
}

fn report(r: &Report) {
    println!(
        "operator scale: {} jobs x (1 chief + 1 ps + 4 workers) = {} pods; {}",
        r.jobs,
        r.jobs * PODS_PER_JOB,
        machine()
    );
    println!(
        "all jobs submitted:     {:.2} s",
        r.submit_time.as_secs_f64()
    );
    println!(
        "all pods created:       {:.2} s   target < {} s: {}",
        r.all_created.as_secs_f64(),
        TARGET_ALL_PODS.as_secs(),
        verdict(r.all_created < TARGET_ALL_PODS)
    );
    println!(
        "all jobs Succeeded:     {:.2} s after the first submit",
        r.all_succeeded.as_secs_f64()
    );
    let per_job_total = print_writes(&r.writes, r.jobs, "job");
    let ratio = per_job_total / MINIMUM_WRITES;
    println!(
        "writes per job:         {per_job_total:.2} vs minimum {MINIMUM_WRITES} = {ratio:.2}x   target <= {TARGET_WRITE_RATIO}x: {}",
        verdict(ratio <= TARGET_WRITE_RATIO)
    );
    println!(
        "operator peak RSS:      {:.0} MiB (idle {:.0}, at end {:.0})   target < {TARGET_RSS_MB} MB: {}",
        r.peak_rss_mib,
        r.rss_idle_mib,
        r.rss_end_mib,
        verdict(r.peak_rss_mib * 1.048_576 < TARGET_RSS_MB)
    );
    println!(
        "operator CPU:           {:.1} s (user + system, from submit to the end)",
        r.cpu
    );
    println!(
        "kube-sim + bench CPU:   {:.1} s (this process, same span)",
        r.sim_cpu
    );
}
