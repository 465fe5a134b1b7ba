//! `trainctl`: the command line. It parses arguments and calls the libraries; the rules live
//! in `trainctl-core` and the local engine in `trainctl-local`.

mod args;
mod backend;
mod flag_job;
mod kube_cmds;
mod kube_describe;
mod kube_logs;
mod kube_verbs;
mod metrics_cmds;
mod progress;
mod render_cmds;
mod signals;
mod ui_cmds;
mod view;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use trainctl_core::state_machine::JobPhase;
use trainctl_core::ReplicaId;
use trainctl_local::logs::{copy_logs, Selection};
use trainctl_local::store::Store;
use trainctl_local::supervisor::{supervise, SupervisorConfig};
use trainctl_local::{now, EngineError, Home, LocalEngine};
use trainctl_spec::TrainingJob;

use args::{Cli, Command, LogsArgs, Output, SubmitArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn engine() -> Result<LocalEngine> {
    LocalEngine::open(Home::from_env()).context("cannot open the trainctl state directory")
}

fn dispatch(command: Command) -> Result<ExitCode> {
    let command = match kube_verbs::route(command)? {
        kube_verbs::Routed::Done(code) => return Ok(code),
        kube_verbs::Routed::Local(command) => *command,
    };
    match command {
        Command::Run { file } => run(&file),
        Command::Submit(a) => submit(&a),
        Command::Get { job, output, .. } => get(job.as_deref(), output),
        Command::Describe { job, .. } => describe(&job),
        Command::Logs(a) => logs(&a),
        Command::Wait { job, timeout, .. } => wait(&job, timeout),
        Command::Delete {
            jobs, grace_period, ..
        } => delete(&jobs, grace_period),
        Command::Metrics(a) => metrics_cmds::metrics(&a),
        Command::Tensorboard { job, port } => metrics_cmds::tensorboard(&job, port),
        Command::Collect(_) => metrics_cmds::collect_local(),
        Command::Supervise { job } => supervise_detached(&job),
        Command::Crd => kube_cmds::crd(),
        Command::Suspend(_) | Command::Resume(_) => kube_verbs::not_local(),
        Command::Operator(a) => kube_cmds::operator(&a),
        Command::Ui(a) => ui_cmds::ui(&a),
        Command::Render(a) => render_cmds::render(&a),
        Command::Lint { file } => render_cmds::lint(&file),
        Command::Convert { file } => render_cmds::convert(&file),
    }
}

/// Reads and validates a job file; errors are printed one per line with file:line:column.
fn load(file: &Path) -> Result<(TrainingJob, PathBuf)> {
    let job = trainctl_spec::parse_job(file).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!("invalid job file\n{}", lines.join("\n"))
    })?;
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = base
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", base.display()))?;
    let workdir = match &job.spec.working_dir {
        Some(d) => base.join(d),
        None => base,
    };
    Ok((job, workdir))
}

fn exit_for(phase: JobPhase) -> ExitCode {
    if phase == JobPhase::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(file: &Path) -> Result<ExitCode> {
    let (job, workdir) = load(file)?;
    render_cmds::lint_before_start(&job)?;
    let mut engine = engine()?;
    engine.create(&job, &workdir)?;
    let name = job.name().to_string();
    eprintln!(
        "job {name} created ({} replicas); state in {}",
        job.spec.replicas.total(),
        engine.home().root().display()
    );
    signals::install();

    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let done = done.clone();
        let db = engine.home().db_path();
        let name = name.clone();
        let job = job.clone();
        std::thread::spawn(move || -> Result<()> {
            let store = Store::open(&db)?;
            let sel = Selection {
                prefix: true,
                ..Selection::default()
            };
            let stdout = std::io::stdout();
            let buffered = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
            let mut out = progress::wrap(buffered, &job, true);
            // Phase changes go to stderr as they happen, so a queued or restarting job says so.
            let mut shown = (String::new(), String::new());
            copy_logs(&store, &name, &sel, &mut out, true, &mut |store| {
                if let Some(j) = store.job(&name)? {
                    let now_showing = (j.phase.as_str().to_string(), j.reason.clone());
                    if now_showing != shown && !j.phase.is_terminal() {
                        eprintln!(
                            "job {name}: {} ({}): {}",
                            now_showing.0, j.reason, j.message
                        );
                    }
                    shown = now_showing;
                }
                Ok(done.load(Ordering::SeqCst))
            })?;
            Ok(())
        })
    };
    let collecting = metrics_cmds::Collecting::start(engine.home(), &name);
    let result = supervise(
        engine.home(),
        &name,
        &SupervisorConfig::from_env(),
        &signals::STOP,
    );
    collecting.finish();
    done.store(true, Ordering::SeqCst);
    follower.thread().unpark();
    let logs = follower
        .join()
        .map_err(|_| anyhow!("log streaming thread panicked"))?;
    let phase = result?;
    if let Err(e) = logs {
        eprintln!("warning: log streaming stopped: {e:#}");
    }
    let job = engine.job(&name).ok();
    let (reason, message) = job.map(|j| (j.reason, j.message)).unwrap_or_default();
    eprintln!("job {name} {}: {reason}: {message}", phase.as_str());
    if signals::interrupted() {
        return Ok(ExitCode::from(130));
    }
    Ok(exit_for(phase))
}

fn submit(a: &SubmitArgs) -> Result<ExitCode> {
    let (job, workdir) = match &a.file {
        Some(file) => {
            if a.name.is_some() || !a.command.is_empty() {
                bail!("give either a job file or the flag form (--name ... -- COMMAND), not both");
            }
            load(file)?
        }
        None => {
            let job = flag_job::job_from_flags(a)?;
            let dir = PathBuf::from(job.spec.working_dir.clone().unwrap_or_else(|| ".".into()));
            (job, dir)
        }
    };
    render_cmds::lint_before_start(&job)?;
    let mut engine = engine()?;
    engine.create(&job, &workdir)?;
    let exe = std::env::current_exe().context("cannot find the trainctl executable")?;
    let program = vec![exe.to_string_lossy().into_owned(), "supervise".to_string()];
    if let Err(e) = engine.start_detached(job.name(), &program) {
        let _ = engine.delete(job.name(), Duration::from_secs(1));
        return Err(e).context("cannot start the job's supervisor");
    }
    println!("trainingjob/{} created", job.name());
    Ok(ExitCode::SUCCESS)
}

fn supervise_detached(name: &str) -> Result<ExitCode> {
    signals::install();
    let home = Home::from_env();
    let collecting = metrics_cmds::Collecting::start(&home, name);
    let phase = supervise(&home, name, &SupervisorConfig::from_env(), &signals::STOP);
    collecting.finish();
    let phase = phase?;
    Ok(exit_for(phase))
}

fn get(name: Option<&str>, output: Option<Output>) -> Result<ExitCode> {
    let mut engine = engine()?;
    let jobs = match name {
        Some(n) => vec![engine.job(n)?],
        None => engine.jobs()?,
    };
    let mut details = Vec::new();
    for j in &jobs {
        match engine.detail(&j.name) {
            Ok(d) => details.push(d),
            // Deleted between the listing and now.
            Err(EngineError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut out = std::io::stdout().lock();
    match output {
        Some(Output::Json) | Some(Output::Yaml) => {
            let value = if name.is_some() {
                details.first().map(view::job_object).unwrap_or_default()
            } else {
                view::list_object(details.iter().map(view::job_object).collect())
            };
            if output == Some(Output::Json) {
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                write!(out, "{}", serde_yaml_ng::to_string(&value)?)?;
            }
        }
        _ => {
            let wide = output == Some(Output::Wide);
            if details.is_empty() {
                eprintln!("No jobs found.");
                return Ok(ExitCode::SUCCESS);
            }
            let mut header = vec!["NAME", "PHASE", "REPLICAS", "RESTARTS", "AGE"];
            if wide {
                header.extend(["GPUS", "PORTS", "REASON"]);
            }
            let t = now();
            let rows: Vec<Vec<String>> = details
                .iter()
                .map(|d| view::job_row(&d.job, &d.replicas, wide, t))
                .collect();
            write!(out, "{}", view::table(&header, &rows))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(name: &str) -> Result<ExitCode> {
    let mut engine = engine()?;
    let d = engine.detail(name)?;
    let j = &d.job;
    let t = now();
    let when = |x: Option<f64>| {
        x.map(|x| format!("{} ({} ago)", view::rfc3339(x), view::age(t - x)))
            .unwrap_or_else(|| "-".into())
    };
    let spec = &j.spec.spec;
    let mut s = String::new();
    s += &format!("Name:          {}\n", j.name);
    s += &format!("Phase:         {}\n", j.phase.as_str());
    s += &format!("Reason:        {}\n", j.reason);
    s += &format!("Message:       {}\n", j.message);
    s += &format!(
        "Framework:     {}\n",
        serde_json::to_value(spec.framework)?
            .as_str()
            .unwrap_or("-")
    );
    s += &format!("Command:       {}\n", spec.command.join(" "));
    s += &format!("Working dir:   {}\n", j.workdir.display());
    s += &format!("Created:       {}\n", when(Some(j.created)));
    s += &format!("Started:       {}\n", when(j.started));
    s += &format!("Finished:      {}\n", when(j.finished));
    s += &format!(
        "Restarts:      {} (backoffLimit {}, restartPolicy {:?})\n",
        j.restarts, spec.run_policy.backoff_limit, spec.run_policy.restart_policy
    );
    s += &format!("GPUs:          {}\n", view::list_or_dash(&j.gpus));
    s += "\nReplicas:\n";
    let rows: Vec<Vec<String>> = d
        .replicas
        .iter()
        .map(|r| {
            vec![
                r.replica.to_string(),
                r.state.as_str().to_string(),
                if r.attempt < 0 {
                    "-".into()
                } else {
                    r.attempt.to_string()
                },
                r.exit_code.map_or("-".into(), |c| c.to_string()),
                if r.pid == 0 {
                    "-".into()
                } else {
                    r.pid.to_string()
                },
                if r.port == 0 {
                    "-".into()
                } else {
                    r.port.to_string()
                },
                view::list_or_dash(&r.gpus),
            ]
        })
        .collect();
    s += &indent(&view::table(
        &["REPLICA", "STATE", "ATTEMPT", "EXIT", "PID", "PORT", "GPUS"],
        &rows,
    ));
    s += "\nAttempts:\n";
    let rows: Vec<Vec<String>> = d
        .attempts
        .iter()
        .map(|a| {
            vec![
                a.replica.to_string(),
                a.attempt.to_string(),
                view::rfc3339(a.started),
                a.finished
                    .map_or("running".into(), |f| format!("{:.1}s", f - a.started)),
                a.exit_code.map_or("-".into(), |c| c.to_string()),
                a.log.display().to_string(),
            ]
        })
        .collect();
    s += &indent(&view::table(
        &["REPLICA", "ATTEMPT", "STARTED", "DURATION", "EXIT", "LOG"],
        &rows,
    ));
    s += "\nEvents:\n";
    let rows: Vec<Vec<String>> = d
        .events
        .iter()
        .map(|e| {
            vec![
                view::age(t - e.time),
                e.kind.clone(),
                e.reason.clone(),
                e.message.clone(),
            ]
        })
        .collect();
    s += &indent(&view::table(&["AGE", "TYPE", "REASON", "MESSAGE"], &rows));
    print!("{s}");
    Ok(ExitCode::SUCCESS)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn logs(a: &LogsArgs) -> Result<ExitCode> {
    let mut engine = engine()?;
    let job = engine.job(&a.job)?;
    let replica: Option<ReplicaId> = match &a.replica {
        Some(r) => {
            let id: ReplicaId = r.parse().map_err(|e: String| anyhow!(e))?;
            if !ReplicaId::all_of(&job.spec).contains(&id) {
                let all: Vec<String> = ReplicaId::all_of(&job.spec)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                bail!(
                    "job {} has no replica {id}; it has {}",
                    a.job,
                    all.join(", ")
                );
            }
            Some(id)
        }
        None => None,
    };
    let sel = Selection {
        prefix: replica.is_none(),
        replica,
        attempt: a.attempt,
        tail: a.tail,
    };
    let name = a.job.clone();
    let stdout = std::io::stdout();
    let buffered = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut out = progress::wrap(buffered, &job.spec, a.follow);
    copy_logs(
        engine.store(),
        &a.job,
        &sel,
        &mut out,
        a.follow,
        &mut |store| {
            // Over once nobody supervises the job any more (it ended, or was deleted).
            Ok(store.job(&name)?.is_none_or(|j| {
                !trainctl_local::process::is_same_process(j.supervisor_pid, j.supervisor_start)
            }))
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn wait(name: &str, timeout: Option<Duration>) -> Result<ExitCode> {
    let mut engine = engine()?;
    match engine.wait(name, timeout) {
        Ok(phase) => {
            let j = engine.job(name)?;
            println!("trainingjob/{name} {}: {}", phase.as_str(), j.message);
            Ok(exit_for(phase))
        }
        Err(e @ EngineError::Timeout(..)) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

fn delete(names: &[String], grace: u64) -> Result<ExitCode> {
    let mut engine = engine()?;
    let mut code = ExitCode::SUCCESS;
    for name in names {
        match engine.delete(name, Duration::from_secs(grace)) {
            Ok(()) => println!("trainingjob/{name} deleted"),
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}
