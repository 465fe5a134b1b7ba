//! The verbs on experiments (hyperparameter searches) on this machine: `run` and `submit` an
//! experiment file, `get experiments`, `describe experiment`, `delete experiment`; with
//! `--kube` (`submit`, `get`, `describe`, `delete`, `resume`, `export`) on a cluster, whose
//! experiments render through the same rows as local ones.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use trainctl_backend::experiment::{self, status, table};
use trainctl_backend::view::table as text_table;
use trainctl_kube_client::client::Cluster;
use trainctl_local::store::{ExperimentRow, TrialRow};
use trainctl_local::{now, Home};
use trainctl_spec::Experiment;

use crate::args::Output;
use crate::backend::KubeTarget;
use crate::signals;

/// Whether a file is an experiment file (`kind: Experiment`).
pub fn is_experiment(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&t).ok())
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .is_some_and(|k| k == trainctl_spec::EXPERIMENT_KIND)
}

/// Whether a word names the experiment resource (`experiment`, `experiments`, `exp`).
pub fn is_kind_word(word: &str) -> bool {
    matches!(word, "experiment" | "experiments" | "exp")
}

/// Reads and validates an experiment file; its trials run in the file's directory (or the
/// template's `workingDir` under it).
fn load(file: &Path) -> Result<(Experiment, PathBuf)> {
    let exp = trainctl_spec::parse_experiment(file).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!("invalid experiment file\n{}", lines.join("\n"))
    })?;
    let workdir = crate::workdir_of(file, exp.spec.trial_template.spec.working_dir.as_deref())?;
    Ok((exp, workdir))
}

/// The command that drives a detached experiment.
fn hidden_command(verb: &str) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot find the trainctl executable")?;
    Ok(vec![exe.to_string_lossy().into_owned(), verb.into()])
}

/// Drives an experiment to its end; the exit status says whether it succeeded.
fn drive(
    name: &str,
    on_change: &mut dyn FnMut(&experiment::status::Counts, &str),
) -> Result<ExitCode> {
    let home = Home::from_env();
    signals::install();
    let mut show = |exp: &trainctl_local::store::ExperimentRow,
                    trials: &[trainctl_local::store::TrialRow]| {
        on_change(
            &status::Counts::of(trials),
            &table::render(exp, trials, now()),
        );
    };
    let exp = experiment::drive(&home, name, &signals::STOP, &mut show)?;
    eprintln!(
        "experiment {name} {}: {}: {}",
        exp.phase, exp.reason, exp.message
    );
    Ok(if exp.phase == "Succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `trainctl run experiment.yaml`: runs the trials here, with a live table on stdout.
pub fn run(file: &Path) -> Result<ExitCode> {
    let (exp, workdir) = load(file)?;
    let home = Home::from_env();
    experiment::create(&home, &exp, &workdir)?;
    eprintln!(
        "experiment {} created; state in {}",
        exp.name(),
        home.root().display()
    );
    let mut out = std::io::stdout();
    drive(exp.name(), &mut |_, text| {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    })
}

/// Runs `f` on the cluster `kube` (with an async runtime).
fn on_cluster<T>(kube: &KubeTarget, f: impl AsyncFnOnce(&Cluster) -> Result<T>) -> Result<T> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let cluster = Cluster::connect(kube.context.as_deref(), kube.namespace.as_deref()).await?;
        f(&cluster).await
    })
}

/// One experiment (`name`) or all, with their trials, from this machine or the cluster.
fn load_rows(
    kube: Option<&KubeTarget>,
    name: Option<&str>,
) -> Result<Vec<(ExperimentRow, Vec<TrialRow>)>> {
    let Some(kube) = kube else {
        let home = Home::from_env();
        return match name {
            Some(n) => Ok(vec![experiment::get(&home, n)?]),
            None => experiment::list(&home),
        };
    };
    on_cluster(kube, async |cluster| {
        let all = match name {
            Some(n) => vec![cluster.experiment(n).await?],
            None => cluster.experiments().await?,
        };
        Ok(all
            .iter()
            .map(|(r, t)| experiment::cluster::rows(r, t))
            .collect())
    })
}

/// `trainctl submit experiment.yaml`: starts a detached driver and returns (on a cluster:
/// creates the Experiment the operator runs).
pub fn submit(file: &Path, kube: Option<&KubeTarget>) -> Result<ExitCode> {
    if let Some(kube) = kube {
        let (exp, _) = load(file)?;
        on_cluster(kube, async |cluster| cluster.create_experiment(&exp).await)?;
        println!("experiment/{} created", exp.name());
        return Ok(ExitCode::SUCCESS);
    }
    let (exp, workdir) = load(file)?;
    let home = Home::from_env();
    experiment::create(&home, &exp, &workdir)?;
    experiment::start_detached(&home, exp.name(), &hidden_command("drive-experiment")?)?;
    println!("experiment/{} created", exp.name());
    Ok(ExitCode::SUCCESS)
}

/// `resume experiment NAME [--max-trials N]`: starts a detached driver again; it picks up
/// the trials that still run and suggests from everything the experiment learned (on a
/// cluster: raises the budget and sets an ended experiment running again for the operator).
pub fn resume(name: &str, max_trials: Option<u64>, kube: Option<&KubeTarget>) -> Result<ExitCode> {
    if let Some(kube) = kube {
        on_cluster(kube, async |cluster| {
            cluster.resume_experiment(name, max_trials).await
        })?;
        println!("experiment/{name} resumed");
        return Ok(ExitCode::SUCCESS);
    }
    let home = Home::from_env();
    experiment::prepare_resume(&home, name, max_trials)?;
    experiment::start_detached(&home, name, &hidden_command("drive-experiment")?)?;
    println!("experiment/{name} resumed");
    Ok(ExitCode::SUCCESS)
}

/// The hidden `drive-experiment NAME` of a submitted experiment.
pub fn drive_detached(name: &str) -> Result<ExitCode> {
    drive(name, &mut |_, _| {})
}

/// `get experiments [NAME] [-o json|yaml|wide]`.
pub fn get(
    name: Option<&str>,
    output: Option<Output>,
    kube: Option<&KubeTarget>,
) -> Result<ExitCode> {
    let all = load_rows(kube, name)?;
    let mut out = std::io::stdout().lock();
    if matches!(output, Some(Output::Json | Output::Yaml)) {
        let objects: Vec<_> = all.iter().map(|(e, t)| status::object(e, t)).collect();
        let value = match name {
            Some(_) => objects.into_iter().next().unwrap_or_default(),
            None => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects}),
        };
        if output == Some(Output::Json) {
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        } else {
            write!(out, "{}", serde_yaml_ng::to_string(&value)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(e, trials)| {
            let c = status::Counts::of(trials);
            let best = status::best_trial(e, trials);
            vec![
                e.name.clone(),
                e.phase.clone(),
                e.reason.clone(),
                c.trials.to_string(),
                c.running.to_string(),
                c.succeeded.to_string(),
                (c.failed + c.metrics_unavailable).to_string(),
                c.early_stopped.to_string(),
                best.map_or("-".into(), |b| b.job.clone()),
                best.and_then(|b| b.value)
                    .map_or("-".into(), |v| v.to_string()),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "STATUS",
        "REASON",
        "TRIALS",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "STOPPED",
        "BEST",
        "OBJECTIVE",
    ];
    write!(out, "{}", text_table(&header, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// `describe experiment NAME`: status, best trial and one row per trial, then messages.
pub fn describe(name: &str, kube: Option<&KubeTarget>) -> Result<ExitCode> {
    let (exp, trials) = one(kube, name)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Name:       {}", exp.name)?;
    writeln!(
        out,
        "Status:     {} ({}) {}",
        exp.phase, exp.reason, exp.message
    )?;
    writeln!(
        out,
        "Algorithm:  {}",
        exp.spec.spec.algorithm.algorithm_name
    )?;
    write!(out, "{}", table::render(&exp, &trials, now()))?;
    for t in trials.iter().filter(|t| !t.message.is_empty()) {
        writeln!(out, "{} {}: {}", t.job, t.state, t.message)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `delete experiment NAME...`.
pub fn delete(names: &[String], grace: Duration, kube: Option<&KubeTarget>) -> Result<ExitCode> {
    if names.is_empty() {
        anyhow::bail!("give the experiments to delete: trainctl delete experiment NAME");
    }
    if let Some(kube) = kube {
        on_cluster(kube, async |cluster| {
            for n in names {
                cluster.delete_experiment(n).await?;
                println!("experiment/{n} deleted");
            }
            Ok(())
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let home = Home::from_env();
    for n in names {
        experiment::delete(&home, n, grace)?;
        println!("experiment/{n} deleted");
    }
    Ok(ExitCode::SUCCESS)
}

/// `export experiment NAME [--format csv|json]`.
pub fn export(name: &str, format: &str, kube: Option<&KubeTarget>) -> Result<ExitCode> {
    let (exp, trials) = one(kube, name)?;
    let text = match format {
        "csv" => experiment::export::csv(&exp, &trials),
        "json" => serde_json::to_string_pretty(&experiment::export::rows(&exp, &trials))? + "\n",
        other => anyhow::bail!("unknown export format {other:?}; known: csv, json"),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// One experiment with its trials.
fn one(kube: Option<&KubeTarget>, name: &str) -> Result<(ExperimentRow, Vec<TrialRow>)> {
    load_rows(kube, Some(name))?
        .pop()
        .ok_or_else(|| anyhow!("experiment {name:?} not found"))
}
