//! Command-line arguments, kubectl style.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Runs deep-learning training jobs: here on this machine, or on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "trainctl", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job here: start it, stream its logs, exit with its status.
    Run {
        /// The job file.
        file: PathBuf,
    },
    /// Start a job and return; it keeps running after this command exits.
    Submit(SubmitArgs),
    /// List jobs, or show one (`get experiments [NAME]` for experiments).
    Get {
        /// Only this job (or a kind first, as in kubectl: `jobs`/`tj`, `experiments`).
        job: Option<String>,
        /// After `experiments`: only this experiment.
        name: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum)]
        output: Option<Output>,
        /// This machine or a cluster.
        #[command(flatten)]
        target: crate::backend::Target,
    },
    /// Show a job's replicas, attempts, exit codes and events (`describe experiment NAME`
    /// for an experiment's status and trials).
    Describe {
        /// The job (or a kind first: `job`, `experiment`).
        job: String,
        /// After the kind: the job or experiment.
        name: Option<String>,
        /// This machine or a cluster.
        #[command(flatten)]
        target: crate::backend::Target,
    },
    /// Print a job's logs.
    Logs(LogsArgs),
    /// Wait until a job has ended; exit 0 if it succeeded.
    Wait {
        /// The job.
        job: String,
        /// Give up after this long (e.g. 90s, 5m, 1h; a bare number is seconds).
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// This machine or a cluster.
        #[command(flatten)]
        target: crate::backend::Target,
    },
    /// Stop every process of a job and remove it (`delete experiment NAME` stops its trials).
    Delete {
        /// The jobs (or a kind first: `job` and job names, `experiment` and experiment names).
        #[arg(required = true)]
        jobs: Vec<String>,
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, default_value_t = 10)]
        grace_period: u64,
        /// This machine or a cluster.
        #[command(flatten)]
        target: crate::backend::Target,
    },
    /// Stop every replica of a job (SIGTERM, the grace period to checkpoint, SIGKILL) and
    /// keep it, its logs and checkpoints, to resume later.
    Suspend(crate::backend::JobOnTarget),
    /// Start the replicas of a suspended job again, each as its next attempt with the same
    /// checkpoint directory (`resume --lost`: every job whose supervisor was lost).
    /// (`resume experiment NAME [--max-trials N]`: continue an experiment whose driver
    /// stopped, or a finished one with a larger budget.)
    Resume(ResumeArgs),
    /// Print every trial of an experiment (parameters, objective, state, times) as CSV or
    /// JSON, for notebooks: `export experiment NAME [--format csv|json]`.
    Export {
        /// `experiment`.
        kind: String,
        /// The experiment.
        name: String,
        /// csv (default) or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// This machine or a cluster.
        #[command(flatten)]
        target: crate::backend::Target,
    },
    /// Print the Kubernetes objects of a job (lint runs first).
    Render(crate::render_cmds::RenderArgs),
    /// Report the mistakes that cost hours on GPU clusters, in a job file or a manifest.
    Lint {
        /// A job file, or Kubernetes manifests (multi-document YAML).
        file: PathBuf,
    },
    /// Print the TrainingJob equivalent to a Kubeflow TFJob, PyTorchJob or batch Job
    /// manifest, or the Experiment equivalent to a Katib v1beta1 Experiment.
    Convert {
        /// The TFJob, PyTorchJob, Job or Katib Experiment manifest.
        file: PathBuf,
    },
    /// Show a job's training metrics (per tag: last, min, max, step), or plot them.
    Metrics(MetricsArgs),
    /// Follow a cluster job's replica logs until it ends, recording its metrics under
    /// --logdir as metrics.db and TensorBoard event files.
    Collect(CollectArgs),
    /// Start TensorBoard on a job's event files.
    Tensorboard {
        /// The job.
        job: String,
        /// TensorBoard's port (its default when left out).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Serve the dashboard: jobs, logs and live training curves in the browser.
    Ui(crate::ui_cmds::UiArgs),
    /// List the jobs waiting for this machine's GPUs, in the order they will start.
    Queue {
        /// Output format.
        #[arg(short, long, value_enum)]
        output: Option<Output>,
    },
    /// Replay a job trace through a queue policy with simulated time.
    Sim(crate::sim_cmds::SimArgs),
    /// Print the CustomResourceDefinitions of trainingjobs and experiments.trainctl.dev
    /// (kubectl apply -f -).
    Crd,
    /// Run the operator: the controller that runs TrainingJobs on the cluster.
    Operator(crate::kube_cmds::OperatorArgs),
    /// Check that this machine can run GPU jobs: driver, NVML, GPUs, CUDA builds, errors,
    /// foreign processes, container runtime; with the fix for every problem.
    Doctor(crate::gpu_cmds::DoctorArgs),
    /// Show what this machine's GPUs and jobs' replicas are doing now.
    Top(crate::gpu_cmds::TopArgs),
    /// Internal: drive a submitted experiment (started by `submit`).
    #[command(hide = true)]
    DriveExperiment {
        /// The experiment.
        experiment: String,
    },
    /// Internal: supervise a submitted job (started by `submit`).
    #[command(hide = true)]
    Supervise {
        /// The job.
        job: String,
    },
}

/// `resume JOB`, or `resume experiment NAME [--max-trials N]`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The job (or `experiment`).
    #[arg(required_unless_present = "lost")]
    pub job: Option<String>,
    /// This machine or a cluster.
    #[command(flatten)]
    pub target: crate::backend::Target,
    /// Resume every job on this machine that was suspended because its supervisor was lost
    /// (killed, crashed, the machine rebooted).
    #[arg(long, conflicts_with = "job")]
    pub lost: bool,
    /// After `experiment`: the experiment.
    pub name: Option<String>,
    /// The experiment's new maxTrialCount.
    #[arg(long)]
    pub max_trials: Option<u64>,
}

/// `get` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// More columns.
    Wide,
    /// YAML objects.
    Yaml,
    /// JSON objects.
    Json,
}

/// `submit FILE`, or a job described by flags (Arena style) with the command after `--`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job file (leave out to describe the job with flags).
    pub file: Option<PathBuf>,
    /// Job name (flag form).
    #[arg(long)]
    pub name: Option<String>,
    /// Number of workers (flag form).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Number of parameter servers (flag form).
    #[arg(long)]
    pub ps: Option<u32>,
    /// Add a chief (flag form).
    #[arg(long)]
    pub chief: bool,
    /// Add an evaluator (flag form).
    #[arg(long)]
    pub evaluator: bool,
    /// GPUs per worker (and chief) (flag form).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// tensorflow, pytorch or generic (flag form; tensorflow when --ps, --chief or
    /// --evaluator is given, else generic).
    #[arg(long)]
    pub framework: Option<String>,
    /// Container image (flag form).
    #[arg(long)]
    pub image: Option<String>,
    /// Environment variable NAME=VALUE, repeatable (flag form).
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// Hyperparameter NAME=VALUE, repeatable (flag form).
    #[arg(long = "hp")]
    pub hyperparameters: Vec<String>,
    /// Working directory of the replicas (flag form; default: the current directory).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// The command of every replica (flag form), after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// This machine or a cluster.
    #[command(flatten)]
    pub target: crate::backend::Target,
}

/// `logs` arguments.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job.
    pub job: String,
    /// Only this replica, such as worker-1.
    #[arg(long, short = 'r')]
    pub replica: Option<String>,
    /// Only this attempt (0 is the first run).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Keep printing until the job ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N lines of each attempt.
    #[arg(long)]
    pub tail: Option<usize>,
    /// This machine or a cluster.
    #[command(flatten)]
    pub target: crate::backend::Target,
}

/// `metrics` arguments.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The job.
    #[arg(required_unless_present = "logdir")]
    pub job: Option<String>,
    /// Read the event files of this directory (or this one file) instead of a job's.
    #[arg(long, conflicts_with = "job")]
    pub logdir: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// Draw a PNG chart of one metric, every run overlaid, to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The metric to plot (default: loss, cost or accuracy, else the first).
    #[arg(long, requires = "plot")]
    pub tag: Option<String>,
    /// This machine or a cluster (a cluster job's metrics are read from its pods' logs).
    #[command(flatten)]
    pub target: crate::backend::Target,
}

/// `collect` arguments.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The job.
    pub job: String,
    /// Where to write metrics.db, the event files (TensorBoard reads them) and log copies.
    #[arg(long)]
    pub logdir: PathBuf,
    /// Once the job has ended and its last points are written, wait until terminated
    /// instead of exiting (the collector beside a job's TensorBoard on the cluster).
    #[arg(long)]
    pub keep_running: bool,
    /// This machine or a cluster.
    #[command(flatten)]
    pub target: crate::backend::Target,
}

/// Parses `90`, `90s`, `5m`, `1h`, `1.5h`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 90s, 5m or 1h"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}; use ms, s, m or h")),
    };
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(std::time::Duration::from_secs_f64(value * scale))
}
