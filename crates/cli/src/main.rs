//! `trainctl`: the command line. It parses arguments and dispatches: the verbs on jobs go to
//! a [`trainctl_backend::Backend`] (this machine or a cluster); the rules live in
//! `trainctl-core`, the engines in `trainctl-local` and `trainctl-operator`.

mod args;
mod backend;
mod experiment_cmds;
mod flag_job;
mod gpu_cmds;
mod gpu_smoke;
mod kube_cmds;
mod logdir;
mod metrics_cmds;
mod progress;
mod queue_cmds;
mod render_cmds;
mod signals;
mod sim_cmds;
mod ui_cmds;
mod verbs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use trainctl_backend::run::{run_attached, supervise_collecting};
use trainctl_core::state_machine::JobPhase;
use trainctl_local::{Home, LocalEngine};
use trainctl_spec::TrainingJob;

use args::{Cli, Command};

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

/// Whether a word names the job resource, as kubectl users write it (`get jobs`,
/// `describe job NAME`, `delete tj NAME`).
fn is_job_kind_word(word: &str) -> bool {
    matches!(word, "job" | "jobs" | "trainingjob" | "trainingjobs" | "tj")
}

/// The command with a leading job kind word dropped: `get jobs [NAME]` is `get [NAME]`,
/// `describe job NAME` is `describe NAME`, `delete job NAME...` is `delete NAME...`.
fn without_job_kind(command: Command) -> Result<Command> {
    Ok(match command {
        Command::Get {
            job: Some(kind),
            name,
            output,
            target,
        } if is_job_kind_word(&kind) => Command::Get {
            job: name,
            name: None,
            output,
            target,
        },
        Command::Describe { job, name, target } if is_job_kind_word(&job) => Command::Describe {
            job: name.context("give the job: trainctl describe job NAME")?,
            name: None,
            target,
        },
        Command::Delete {
            jobs,
            grace_period,
            target,
        } if is_job_kind_word(&jobs[0]) => {
            anyhow::ensure!(jobs.len() > 1, "give the jobs: trainctl delete job NAME...");
            Command::Delete {
                jobs: jobs[1..].to_vec(),
                grace_period,
                target,
            }
        }
        other => other,
    })
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match without_job_kind(command)? {
        Command::Run { file } if experiment_cmds::is_experiment(&file) => {
            experiment_cmds::run(&file)
        }
        Command::Submit(a)
            if a.file
                .as_deref()
                .is_some_and(experiment_cmds::is_experiment) =>
        {
            let kube = backend::resolve(&a.target)?;
            experiment_cmds::submit(a.file.as_deref().expect("checked"), kube.as_ref())
        }
        Command::DriveExperiment { experiment } => experiment_cmds::drive_detached(&experiment),
        Command::Get {
            job: Some(kind),
            name,
            output,
            target,
        } if experiment_cmds::is_kind_word(&kind) => {
            experiment_cmds::get(name.as_deref(), output, backend::resolve(&target)?.as_ref())
        }
        Command::Describe {
            job,
            name: Some(name),
            target,
        } if experiment_cmds::is_kind_word(&job) => {
            experiment_cmds::describe(&name, backend::resolve(&target)?.as_ref())
        }
        Command::Delete {
            jobs,
            grace_period,
            target,
        } if experiment_cmds::is_kind_word(&jobs[0]) => experiment_cmds::delete(
            &jobs[1..],
            std::time::Duration::from_secs(grace_period),
            backend::resolve(&target)?.as_ref(),
        ),
        Command::Resume(a) if a.job.as_deref().is_some_and(experiment_cmds::is_kind_word) => {
            let name = a
                .name
                .context("give the experiment: trainctl resume experiment NAME")?;
            experiment_cmds::resume(&name, a.max_trials, backend::resolve(&a.target)?.as_ref())
        }
        Command::Get { name: Some(n), .. }
        | Command::Describe { name: Some(n), .. }
        | Command::Resume(args::ResumeArgs { name: Some(n), .. }) => {
            anyhow::bail!("unexpected argument {n:?} (only `experiments` takes a name after it)")
        }
        Command::Export {
            kind,
            name,
            format,
            target,
        } => {
            if !experiment_cmds::is_kind_word(&kind) {
                anyhow::bail!("export works on experiments: trainctl export experiment NAME");
            }
            experiment_cmds::export(&name, &format, backend::resolve(&target)?.as_ref())
        }
        Command::Run { file } => run(&file),
        Command::Metrics(a) if a.logdir.is_some() => metrics_cmds::logdir_metrics(&a),
        Command::Tensorboard { job, port } => metrics_cmds::tensorboard(&job, port),
        Command::Supervise { job } => supervise_detached(&job),
        Command::Queue { output } => queue_cmds::queue(output),
        Command::Sim(a) => sim_cmds::sim(&a).map(|()| ExitCode::SUCCESS),
        Command::Crd => kube_cmds::crd(),
        Command::Operator(a) => kube_cmds::operator(&a),
        Command::Ui(a) => ui_cmds::ui(&a),
        Command::Doctor(a) => gpu_cmds::doctor(&a),
        Command::Top(a) => gpu_cmds::top(&a),
        Command::Render(a) => render_cmds::render(&a),
        Command::Lint { file } => render_cmds::lint(&file),
        Command::Convert { file } => render_cmds::convert(&file),
        verb => verbs::on_backend(verb),
    }
}

/// Reads and validates a job file; errors are printed one per line with file:line:column.
fn load(file: &Path) -> Result<(TrainingJob, PathBuf)> {
    let job = render_cmds::load_job(file)?;
    let workdir = workdir_of(file, job.spec.working_dir.as_deref())?;
    Ok((job, workdir))
}

/// Where the replicas of a file's job run: the file's directory, or `working_dir` under it.
fn workdir_of(file: &Path, working_dir: Option<&str>) -> Result<PathBuf> {
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = base
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", base.display()))?;
    Ok(match working_dir {
        Some(d) => base.join(d),
        None => base,
    })
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
    let mut engine =
        LocalEngine::open(Home::from_env()).context("cannot open the trainctl state directory")?;
    engine.create(&job, &workdir)?;
    let name = job.name().to_string();
    eprintln!(
        "job {name} created ({} replicas); state in {}",
        job.spec.replicas.total(),
        engine.home().root().display()
    );
    signals::install();
    let out = move || {
        let buffered = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
        progress::wrap(buffered, &job, true)
    };
    let phase = run_attached(engine.home(), &name, out, &signals::STOP)?;
    let job = engine.job(&name).ok();
    let (reason, message) = job.map(|j| (j.reason, j.message)).unwrap_or_default();
    eprintln!("job {name} {}: {reason}: {message}", phase.as_str());
    if signals::interrupted() {
        return Ok(ExitCode::from(130));
    }
    Ok(exit_for(phase))
}

fn supervise_detached(name: &str) -> Result<ExitCode> {
    signals::install();
    let phase = supervise_collecting(&Home::from_env(), name, &signals::STOP)?;
    Ok(exit_for(phase))
}
