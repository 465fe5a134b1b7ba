//! Experiment scale benchmark (issue 14): N Experiments (default 50) of 20 trials each, 4 in
//! parallel, submitted at once to kube-sim. Every trial is a TrainingJob of one worker whose
//! pod the simulated kubelet runs: it prints `Step: n, Accuracy: <its HP_X>` once per
//! simulated second for `EXPERIMENT_SCALE_STEPS` seconds (default 10) and exits 0 (the
//! experiment's print and script annotations, which its trials and their pods inherit). The
//! operator runs in its own process (see `common`) with its default settings.
//!
//! Prints the operator's API writes per trial (kube-sim's request tally, by resource and
//! verb) against the minimum, the time per suggestion measured in the operator around the
//! pure `suggest` call (its `experiment_suggestion_seconds` histogram), and the operator's
//! peak RSS, each with its target and PASS/MISS. Exits 1 when an experiment ends wrong (not
//! Succeeded with 20 succeeded trials numbered 0-19, best objective not its best trial's).
//!
//! Run: `cargo bench -p trainctl-operator --bench experiment_scale`
//! (env `EXPERIMENT_SCALE_EXPERIMENTS`, default 50; `EXPERIMENT_SCALE_STEPS`, default 10;
//! `EXPERIMENT_SCALE_CLOCK`, kube-sim's clock speed, default 1).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use common::{
    client, count_from_env, cpu_seconds, machine, operator_watching, print_writes, proc_status_kib,
    settled_writes, verdict, OperatorProcess, NS, TARGET_RSS_MB, TARGET_WRITE_RATIO,
};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use kube_sim::{KubeSim, NodeSpec, ServerConfig, PRINT_ANNOTATION, SCRIPT_ANNOTATION};
use trainctl_kube_client::experiment::{TRIAL_ASSIGNMENT_ANNOTATION, TRIAL_NUMBER_ANNOTATION};
use trainctl_kube_client::{experiment_crd, ExperimentResource, ExperimentStatus};
use trainctl_operator::{crd, TrainingJobResource};

const TRIALS: u64 = 20;
const PARALLEL: u64 = 4;
/// Minimum writes per trial (of one worker): create the TrainingJob, its pod and its
/// service; 3 status writes of the job (Created, Running, Succeeded); 1 write of the
/// trial's final observation; 1 write of the experiment's status when the trial ends (the
/// counts; the next trial is created in the same reconcile); and, shared by the
/// experiment's trials, 1 more experiment status write (Running, with its first trials).
const MINIMUM_WRITES: f64 = 1.0 + 1.0 + 1.0 + 3.0 + 1.0 + 1.0 + 1.0 / TRIALS as f64;
/// Suggestions must take less than this on average.
const TARGET_SUGGESTION_MS: f64 = 5.0;
/// The whole run gives up after this long.
const GIVE_UP: Duration = Duration::from_secs(900);

fn main() -> anyhow::Result<()> {
    common::main_with(bench)
}

fn experiment_yaml(i: usize, steps: usize) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\n\
         metadata:\n  name: bench-{i:03}\n  annotations:\n    \
         {PRINT_ANNOTATION}: \"every 1s Step: {{n}}, Accuracy: {{env:HP_X}}\"\n    \
         {SCRIPT_ANNOTATION}: \"run {steps}s then exit 0\"\n\
         spec:\n  objective: {{type: maximize, objectiveMetricName: accuracy}}\n  \
         algorithm: {{algorithmName: tpe, algorithmSettings: [{{name: random_state, value: \"{i}\"}}]}}\n  \
         parallelTrialCount: {PARALLEL}\n  maxTrialCount: {TRIALS}\n  parameters:\n  \
         - {{name: x, parameterType: double, feasibleSpace: {{min: 0, max: 1}}}}\n  \
         - {{name: lr, parameterType: double, feasibleSpace: {{min: 0.0001, max: 0.1}}}}\n  \
         - {{name: layers, parameterType: int, feasibleSpace: {{min: 1, max: 8}}}}\n  \
         trialTemplate:\n    spec: {{framework: tensorflow, image: registry.example.com/train:1, \
         command: [python3, train.py], \
         replicas: {{worker: {{count: 1, resources: {{cpu: 100m, memory: 128Mi}}}}}}}}\n"
    )
}

/// The value of `x` a trial ran with, from its recorded assignment.
fn assigned_x(trial: &TrainingJobResource) -> Option<f64> {
    let text = trial.annotations().get(TRIAL_ASSIGNMENT_ANNOTATION)?;
    let a: serde_json::Value = serde_json::from_str(text).ok()?;
    a["x"].as_str()?.parse().ok()
}

/// What went wrong with one finished experiment, if anything.
fn check_experiment(exp: &ExperimentResource, trials: &[TrainingJobResource]) -> Option<String> {
    let name = exp.name_any();
    let status = exp.status.clone().unwrap_or_default();
    let numbers: BTreeSet<u64> = trials
        .iter()
        .filter_map(|t| t.annotations().get(TRIAL_NUMBER_ANNOTATION)?.parse().ok())
        .collect();
    let best_x = trials
        .iter()
        .filter_map(assigned_x)
        .fold(f64::MIN, f64::max);
    let best_ok = status
        .best_objective
        .is_some_and(|b| (b - best_x).abs() <= 1e-9);
    let complete = trials.iter().all(|t| {
        t.status
            .as_ref()
            .and_then(|s| s.observation.as_ref())
            .is_some_and(|o| o.complete)
    });
    let problems = [
        (
            status.phase.as_deref() != Some("Succeeded"),
            "not Succeeded",
        ),
        (
            status.reason.as_deref() != Some("ExperimentMaxTrialsReached"),
            "not ended by its trial count",
        ),
        (
            status.trials_succeeded != TRIALS,
            "not every trial succeeded",
        ),
        (
            trials.len() as u64 != TRIALS || numbers != (0..TRIALS).collect(),
            "trials not numbered 0-19 once each",
        ),
        (!best_ok, "best objective is not its best trial's x"),
        (!complete, "a trial's observation is not complete"),
    ];
    let wrong: Vec<&str> = problems
        .iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, what)| *what)
        .collect();
    (!wrong.is_empty()).then(|| format!("{name}: {} ({status:?})", wrong.join(", ")))
}

/// The suggestion time histogram's count, sum and bucket bounds from the operator's metrics.
#[derive(Default)]
struct Suggestions {
    count: f64,
    sum: f64,
    /// (upper bound in seconds, cumulative count)
    buckets: Vec<(f64, f64)>,
}

impl Suggestions {
    fn parse(metrics: &str) -> Suggestions {
        let name = "trainctl_operator_experiment_suggestion_seconds";
        let mut out = Suggestions::default();
        for line in metrics.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            let Some((key, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(f64::NAN);
            match key {
                "_count" => out.count = value,
                "_sum" => out.sum = value,
                _ => {
                    let le = key
                        .strip_prefix("_bucket{le=\"")
                        .and_then(|k| k.strip_suffix("\"}"))
                        .and_then(|k| k.parse().ok());
                    if let Some(le) = le {
                        out.buckets.push((le, value));
                    }
                }
            }
        }
        out
    }

    /// The upper bound of the bucket holding quantile `q`, in ms.
    fn quantile_bound_ms(&self, q: f64) -> f64 {
        self.buckets
            .iter()
            .find(|(_, n)| *n >= q * self.count)
            .map_or(f64::INFINITY, |(le, _)| le * 1000.0)
    }
}

async fn bench() -> anyhow::Result<()> {
    let experiments_n = count_from_env("EXPERIMENT_SCALE_EXPERIMENTS", 50)?;
    let steps = count_from_env("EXPERIMENT_SCALE_STEPS", 10)?;
    let clock = count_from_env("EXPERIMENT_SCALE_CLOCK", 1)?;
    let trials_n = experiments_n * TRIALS as usize;
    let sim = KubeSim::start_with(ServerConfig {
        history_limit: 100 * trials_n + 10_000,
        ..ServerConfig::default()
    })
    .await?;
    sim.set_clock_speed(clock as f64);
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
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    crds.create(&PostParams::default(), &crd()).await?;
    crds.create(&PostParams::default(), &experiment_crd())
        .await?;
    let operator = OperatorProcess::spawn(&kubeconfig)?;
    let pid = operator.pid();
    operator_watching(&sim, &["trainingjobs", "pods", "experiments"]).await?;
    let rss_idle = proc_status_kib(pid, "VmRSS:");
    let cpu_idle = cpu_seconds(pid);
    let sim_cpu_idle = cpu_seconds(std::process::id());

    let experiments: Api<ExperimentResource> = Api::namespaced(admin.clone(), NS);
    let jobs: Api<TrainingJobResource> = Api::namespaced(admin.clone(), NS);
    let started = Instant::now();
    futures::stream::iter(0..experiments_n)
        .map(|i| {
            let experiments = experiments.clone();
            async move {
                let exp = trainctl_spec::parse_experiment_str(
                    "experiment.yaml",
                    &experiment_yaml(i, steps),
                )
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                experiments
                    .create(
                        &PostParams::default(),
                        &ExperimentResource::from_experiment(&exp, NS),
                    )
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;

    let all_succeeded = tokio::time::timeout(GIVE_UP, async {
        let mut last_report = Instant::now();
        loop {
            let list = experiments.list(&ListParams::default()).await?;
            let ended = |e: &&ExperimentResource| {
                matches!(
                    e.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            };
            let done = list.items.iter().filter(ended).count();
            if done == experiments_n {
                return anyhow::Ok(started.elapsed());
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                let count = |f: fn(&ExperimentStatus) -> u64| -> u64 {
                    list.items.iter().filter_map(|e| e.status.as_ref()).map(f).sum()
                };
                eprintln!(
                    "{:.0} s: {done} of {experiments_n} experiments ended; trials: {} created, {} running, {} succeeded",
                    started.elapsed().as_secs_f64(),
                    count(|s| s.trials),
                    count(|s| s.trials_running),
                    count(|s| s.trials_succeeded),
                );
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .context("gave up waiting for every experiment to end")??;

    let writes = settled_writes(&sim).await;
    let peak_rss = proc_status_kib(pid, "VmHWM:");
    let rss_end = proc_status_kib(pid, "VmRSS:");
    let cpu = cpu_seconds(pid) - cpu_idle;
    let metrics = operator.stop()?;
    let sim_cpu = cpu_seconds(std::process::id()) - sim_cpu_idle;
    let suggestions = Suggestions::parse(&metrics);

    let mut trials_by_experiment: BTreeMap<String, Vec<TrainingJobResource>> = BTreeMap::new();
    for trial in jobs.list(&ListParams::default()).await?.items {
        let owner = trial
            .owner_references()
            .first()
            .map(|o| o.name.clone())
            .unwrap_or_default();
        trials_by_experiment.entry(owner).or_default().push(trial);
    }
    let wrong: Vec<String> = experiments
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|e| {
            let trials = trials_by_experiment
                .get(&e.name_any())
                .map_or(&[][..], Vec::as_slice);
            check_experiment(e, trials)
        })
        .collect();

    println!(
        "experiment scale: {experiments_n} experiments x {TRIALS} trials (parallel {PARALLEL}) = \
         {trials_n} trials of 1 worker printing {steps} steps over {steps} simulated s \
         (clock x{clock}); {}",
        machine()
    );
    println!(
        "all experiments ended:  {:.1} s after the first submit",
        all_succeeded.as_secs_f64()
    );
    let per_trial = print_writes(&writes, trials_n, "trial");
    let ratio = per_trial / MINIMUM_WRITES;
    println!(
        "writes per trial:       {per_trial:.2} vs minimum {MINIMUM_WRITES:.2} = {ratio:.2}x   target <= {TARGET_WRITE_RATIO}x: {}",
        verdict(ratio <= TARGET_WRITE_RATIO)
    );
    let mean_ms = suggestions.sum / suggestions.count * 1000.0;
    println!(
        "time per suggestion:    mean {mean_ms:.3} ms over {} suggestions, p50 <= {:.3} ms, p99 <= {:.3} ms   target < {TARGET_SUGGESTION_MS} ms: {}",
        suggestions.count,
        suggestions.quantile_bound_ms(0.5),
        suggestions.quantile_bound_ms(0.99),
        verdict(mean_ms < TARGET_SUGGESTION_MS)
    );
    println!(
        "operator peak RSS:      {:.0} MiB (idle {:.0}, at end {:.0})   target < {TARGET_RSS_MB} MB: {}",
        peak_rss as f64 / 1024.0,
        rss_idle as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        verdict(peak_rss as f64 * 1.024 < TARGET_RSS_MB * 1000.0)
    );
    println!("operator CPU:           {cpu:.1} s (user + system, from submit to the end)");
    println!("kube-sim + bench CPU:   {sim_cpu:.1} s (this process, same span)");
    if suggestions.count as usize != trials_n {
        bail!("{} suggestions for {trials_n} trials", suggestions.count);
    }
    if !wrong.is_empty() {
        for w in wrong.iter().take(10) {
            eprintln!("WRONG: {w}");
        }
        bail!("{} of {experiments_n} experiments ended wrong", wrong.len());
    }
    println!(
        "correctness:            all {experiments_n} experiments Succeeded with {TRIALS} trials \
         numbered 0-19, every observation complete, best objective right"
    );
    Ok(())
}
