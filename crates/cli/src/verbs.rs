//! The verbs on jobs (submit, get, describe, logs, wait, delete, suspend, resume, metrics,
//! collect), each written once over [`Backend`]: this machine's jobs, or a cluster's when
//! the backend flags (or the config file) say so.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use trainctl_backend::cluster::ClusterBackend;
use trainctl_backend::local::LocalBackend;
use trainctl_backend::view::{age, list_object, table};
use trainctl_backend::{selected_replica, Backend, LogRequest, Waited};
use trainctl_local::Home;

use crate::args::{CollectArgs, Command, LogsArgs, Output, SubmitArgs};
use crate::backend::{resolve, Target};

/// The backend flags of a verb on jobs.
fn target_of(command: &Command) -> Option<&Target> {
    match command {
        Command::Submit(a) => Some(&a.target),
        Command::Get { target, .. }
        | Command::Describe { target, .. }
        | Command::Wait { target, .. }
        | Command::Delete { target, .. } => Some(target),
        Command::Logs(a) => Some(&a.target),
        Command::Metrics(a) => Some(&a.target),
        Command::Collect(a) => Some(&a.target),
        Command::Suspend(a) => Some(&a.target),
        Command::Resume(a) => Some(&a.target),
        _ => None,
    }
}

/// Runs a verb on jobs against the backend its flags (or the config file) pick.
pub fn on_backend(command: Command) -> Result<ExitCode> {
    let target = target_of(&command).cloned().unwrap_or_default();
    match resolve(&target)? {
        None => {
            let exe = std::env::current_exe().context("cannot find the trainctl executable")?;
            let supervisor = vec![exe.to_string_lossy().into_owned(), "supervise".into()];
            let mut local = LocalBackend::open(Home::from_env(), supervisor)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(verb(&mut local, command))
        }
        Some(kube) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(async {
                let (context, namespace) = (kube.context.as_deref(), kube.namespace.as_deref());
                let mut cluster = ClusterBackend::connect(context, namespace).await?;
                verb(&mut cluster, command).await
            })
        }
    }
}

async fn verb(b: &mut impl Backend, command: Command) -> Result<ExitCode> {
    match command {
        Command::Submit(a) => submit(b, &a).await,
        Command::Get { job, output, .. } => get(b, job.as_deref(), output).await,
        Command::Describe { job, .. } => {
            print!("{}", b.describe(&job).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs(a) => logs(b, &a).await,
        Command::Wait { job, timeout, .. } => wait(b, &job, timeout).await,
        Command::Delete {
            jobs, grace_period, ..
        } => delete(b, &jobs, Duration::from_secs(grace_period)).await,
        Command::Suspend(a) => set_suspended(b, &a.job, true).await,
        Command::Resume(a) => match a.job {
            Some(job) => set_suspended(b, &job, false).await,
            None => resume_lost(b).await,
        },
        Command::Metrics(a) => {
            let Some(name) = &a.job else {
                bail!("give a job name or --logdir PATH");
            };
            let runs = b.metrics(name).await?;
            crate::metrics_cmds::report(&a, &format!("job {name}"), &runs)
        }
        Command::Collect(a) => collect(b, &a).await,
        other => bail!("{other:?} is not a verb on jobs"),
    }
}

async fn submit(b: &mut impl Backend, a: &SubmitArgs) -> Result<ExitCode> {
    let (job, workdir) = match &a.file {
        Some(file) => {
            if a.name.is_some() || !a.command.is_empty() {
                bail!("give either a job file or the flag form (--name ... -- COMMAND), not both");
            }
            crate::load(file)?
        }
        None => {
            let job = crate::flag_job::job_from_flags(a)?;
            let dir = PathBuf::from(job.spec.working_dir.clone().unwrap_or_else(|| ".".into()));
            (job, dir)
        }
    };
    crate::render_cmds::report(&b.lint(&job))?;
    b.submit(&job, &workdir).await?;
    println!("trainingjob/{} created{}", job.name(), b.scope());
    Ok(ExitCode::SUCCESS)
}

async fn get(b: &mut impl Backend, name: Option<&str>, output: Option<Output>) -> Result<ExitCode> {
    let jobs = b.list(name).await?;
    let mut out = std::io::stdout().lock();
    if matches!(output, Some(Output::Json | Output::Yaml)) {
        let value = match name {
            Some(_) => jobs.first().map(|j| j.object.clone()).unwrap_or_default(),
            None => list_object(jobs.into_iter().map(|j| j.object).collect()),
        };
        if output == Some(Output::Json) {
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        } else {
            write!(out, "{}", serde_yaml_ng::to_string(&value)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        eprintln!("No jobs found{}.", b.scope());
        return Ok(ExitCode::SUCCESS);
    }
    let wide = output == Some(Output::Wide);
    let mut header = vec!["NAME", "PHASE", "REPLICAS", "RESTARTS", "AGE"];
    if wide {
        header.extend(b.wide_columns());
    }
    let rows: Vec<Vec<String>> = jobs
        .into_iter()
        .map(|j| {
            let mut row = vec![
                j.name,
                j.phase,
                j.replicas,
                j.restarts.to_string(),
                age(j.age),
            ];
            if wide {
                row.extend(j.wide);
            }
            row
        })
        .collect();
    write!(out, "{}", table(&header, &rows))?;
    Ok(ExitCode::SUCCESS)
}

async fn logs(b: &mut impl Backend, a: &LogsArgs) -> Result<ExitCode> {
    let job = b.job(&a.job).await?;
    let request = LogRequest {
        replica: selected_replica(&job, a.replica.as_deref())?,
        attempt: a.attempt,
        follow: a.follow,
        tail: a.tail,
    };
    let buffered = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let mut out = crate::progress::wrap(buffered, &job, a.follow);
    b.logs(&job, &request, &mut out).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait(b: &mut impl Backend, name: &str, timeout: Option<Duration>) -> Result<ExitCode> {
    match b.wait(name, timeout).await? {
        Waited::Ended(outcome) => {
            println!(
                "trainingjob/{name} {}: {}",
                outcome.phase.as_str(),
                outcome.message
            );
            Ok(crate::exit_for(outcome.phase))
        }
        Waited::TimedOut(why) => {
            eprintln!("error: {why}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn delete(b: &mut impl Backend, names: &[String], grace: Duration) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match b.delete(name, grace).await {
            Ok(()) => println!("trainingjob/{name} deleted"),
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

async fn set_suspended(b: &mut impl Backend, name: &str, suspended: bool) -> Result<ExitCode> {
    b.set_suspended(name, suspended).await?;
    let verb = if suspended { "suspended" } else { "resumed" };
    println!("trainingjob/{name} {verb}");
    Ok(ExitCode::SUCCESS)
}

/// `resume --lost`: every job suspended because its supervisor was lost.
async fn resume_lost(b: &mut impl Backend) -> Result<ExitCode> {
    let names = b.resume_lost().await?;
    if names.is_empty() {
        println!("no job lost its supervisor");
    }
    for name in names {
        println!("trainingjob/{name} resumed");
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a cluster job's metrics under `--logdir` until the job ends (then, with
/// `--keep-running`, waits until terminated).
async fn collect(b: &mut impl Backend, a: &CollectArgs) -> Result<ExitCode> {
    let mut points = 0;
    b.collect(&a.job, &a.logdir, &mut |n| points += n).await?;
    println!(
        "job {} ended: {points} points collected into {}",
        a.job,
        a.logdir.display()
    );
    if a.keep_running {
        std::io::stdout().flush()?;
        // A Deployment restarts a container that exits: stay until the pod is stopped.
        std::future::pending::<()>().await;
    }
    Ok(ExitCode::SUCCESS)
}
