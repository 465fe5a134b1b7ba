//! The verbs against a Kubernetes cluster (`--kube`, `--context`, `-n`, or `backend: kube`):
//! submit, get, wait, delete, suspend, resume here; describe in `kube_describe`, logs in
//! `kube_logs`. The calls themselves live in `trainctl_kube_client::client`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use kube::ResourceExt;
use trainctl_kube_client::client::Cluster;
use trainctl_kube_client::TrainingJobResource;

use crate::args::{Command, Output, SubmitArgs};
use crate::backend::resolve;

/// How long `wait` lets a job go without a status before it says the operator may be
/// missing.
const OPERATOR_GRACE: Duration = Duration::from_secs(5);

/// A command routed to a cluster and done, or left for the local engine.
pub enum Routed {
    /// Done against a cluster, with this exit code.
    Done(ExitCode),
    /// For the local engine.
    Local(Box<Command>),
}

/// Runs the command against a cluster when its backend flags (or the config) say so.
pub fn route(command: Command) -> Result<Routed> {
    let target = match &command {
        Command::Submit(a) => &a.target,
        Command::Get { target, .. }
        | Command::Describe { target, .. }
        | Command::Wait { target, .. }
        | Command::Delete { target, .. } => target,
        Command::Logs(a) => &a.target,
        // `--logdir` reads event files on this machine, whatever the backend.
        Command::Metrics(a) if a.logdir.is_none() => &a.target,
        Command::Collect(a) => &a.target,
        Command::Suspend(a) | Command::Resume(a) => &a.target,
        _ => return Ok(Routed::Local(Box::new(command))),
    };
    let Some(kube) = resolve(target)? else {
        return Ok(Routed::Local(Box::new(command)));
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let code = runtime.block_on(async {
        let cluster = Cluster::connect(kube.context.as_deref(), kube.namespace.as_deref()).await?;
        match command {
            Command::Submit(a) => submit(&cluster, &a).await,
            Command::Get { job, output, .. } => get(&cluster, job.as_deref(), output).await,
            Command::Describe { job, .. } => crate::kube_describe::describe(&cluster, &job).await,
            Command::Logs(a) => crate::kube_logs::logs(&cluster, &a).await,
            Command::Metrics(a) => crate::metrics_cmds::cluster_metrics(&cluster, &a).await,
            Command::Collect(a) => crate::metrics_cmds::collect(&cluster, &a).await,
            Command::Wait { job, timeout, .. } => wait(&cluster, &job, timeout).await,
            Command::Delete { jobs, .. } => delete(&cluster, &jobs).await,
            Command::Suspend(a) => set_suspended(&cluster, &a.job, true).await,
            Command::Resume(a) => set_suspended(&cluster, &a.job, false).await,
            other => bail!("{other:?} has no Kubernetes backend"),
        }
    })?;
    Ok(Routed::Done(code))
}

/// The verbs only a cluster has, asked of this machine.
pub fn not_local() -> Result<ExitCode> {
    bail!("suspend and resume are not supported locally yet; use --kube (or -n/--context) for a job on a cluster")
}

async fn submit(cluster: &Cluster, a: &SubmitArgs) -> Result<ExitCode> {
    let job = match &a.file {
        Some(file) => {
            if a.name.is_some() || !a.command.is_empty() {
                bail!("give either a job file or the flag form (--name ... -- COMMAND), not both");
            }
            crate::load(file)?.0
        }
        None => crate::flag_job::job_from_flags(a)?,
    };
    crate::render_cmds::lint_before_cluster(&job)?;
    cluster.create(&job).await?;
    println!(
        "trainingjob/{} created in namespace {}",
        job.name(),
        cluster.namespace
    );
    Ok(ExitCode::SUCCESS)
}

/// Seconds since an RFC 3339-style Kubernetes timestamp.
pub fn seconds_since(time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> f64 {
    time.map_or(0.0, |t| {
        (k8s_openapi::jiff::Timestamp::now() - t.0)
            .total(k8s_openapi::jiff::Unit::Second)
            .unwrap_or(0.0)
    })
}

/// `running/total` replicas of a job, from its status (or its spec before any status).
fn replica_summary(job: &TrainingJobResource) -> String {
    let total = job.spec.0.replicas.total();
    let active: u32 = job
        .status
        .as_ref()
        .map_or(0, |s| s.replica_statuses.values().map(|r| r.active).sum());
    format!("{active}/{total}")
}

/// The recorded phase, or `-` before the operator has seen the job.
pub fn phase_of(job: &TrainingJobResource) -> String {
    job.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "-".into())
}

async fn get(cluster: &Cluster, name: Option<&str>, output: Option<Output>) -> Result<ExitCode> {
    let jobs = match name {
        Some(n) => vec![cluster.get(n).await?],
        None => cluster.list().await?,
    };
    let mut out = std::io::stdout().lock();
    if matches!(output, Some(Output::Json | Output::Yaml)) {
        let value = match (name, jobs.first()) {
            (Some(_), Some(job)) => serde_json::to_value(job)?,
            _ => crate::view::list_object(
                jobs.iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?,
            ),
        };
        if output == Some(Output::Json) {
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        } else {
            write!(out, "{}", serde_yaml_ng::to_string(&value)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        eprintln!("No jobs found in namespace {}.", cluster.namespace);
        return Ok(ExitCode::SUCCESS);
    }
    let wide = output == Some(Output::Wide);
    let mut header = vec!["NAME", "PHASE", "REPLICAS", "RESTARTS", "AGE"];
    if wide {
        header.push("REASON");
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let status = j.status.clone().unwrap_or_default();
            let mut row = vec![
                j.name_any(),
                phase_of(j),
                replica_summary(j),
                status.restarts.to_string(),
                crate::view::age(seconds_since(j.metadata.creation_timestamp.as_ref())),
            ];
            if wide {
                row.push(status.reason.unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    write!(out, "{}", crate::view::table(&header, &rows))?;
    Ok(ExitCode::SUCCESS)
}

async fn wait(cluster: &Cluster, name: &str, timeout: Option<Duration>) -> Result<ExitCode> {
    let started = Instant::now();
    let mut warned = false;
    loop {
        let job = cluster.get(name).await?;
        let status = job.status.clone().unwrap_or_default();
        if let Some(outcome) = status.outcome() {
            println!(
                "trainingjob/{name} {}: {}",
                outcome.phase.as_str(),
                outcome.message
            );
            return Ok(crate::exit_for(outcome.phase));
        }
        if status.phase.is_none() && !warned && started.elapsed() >= OPERATOR_GRACE {
            eprintln!(
                "warning: trainingjob/{name} has no status after {}s: is the trainctl operator \
                 running? (helm install trainctl charts/trainctl, or `trainctl operator`)",
                OPERATOR_GRACE.as_secs()
            );
            warned = true;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            eprintln!(
                "error: timed out waiting for trainingjob/{name} (phase {})",
                phase_of(&job)
            );
            return Ok(ExitCode::from(2));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn delete(cluster: &Cluster, names: &[String]) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match cluster.delete(name).await {
            Ok(()) => println!("trainingjob/{name} deleted"),
            Err(e) => {
                eprintln!("error: {e:#}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

async fn set_suspended(cluster: &Cluster, name: &str, suspended: bool) -> Result<ExitCode> {
    cluster.set_suspended(name, suspended).await?;
    let verb = if suspended { "suspended" } else { "resumed" };
    println!("trainingjob/{name} {verb}");
    Ok(ExitCode::SUCCESS)
}
