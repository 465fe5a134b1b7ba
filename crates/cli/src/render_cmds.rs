//! `render`, `lint` and `convert`: the Kubernetes objects of a job, the mistakes in a job
//! or manifest, and Kubeflow jobs as TrainingJobs. The work is done by `trainctl-kube`;
//! this module reads files, picks the output and sets the exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use trainctl_kube::{Conversion, Finding, RenderOptions, Severity, Target};
use trainctl_spec::{CloudProfile, GangScheduler, TrainingJob};

/// `render` arguments.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The job file.
    pub file: PathBuf,
    /// What kind of objects: plain (Jobs and Services, nothing to install), jobset,
    /// kubeflow (TFJob/PyTorchJob) or trainingjob (for the trainctl operator).
    #[arg(long, value_enum, default_value_t = TargetArg::Plain)]
    pub target: TargetArg,
    /// Cloud profile instead of spec.cloud.profile: generic, tencent-eks, tencent-tke,
    /// alibaba-eci or alibaba-ack.
    #[arg(long, value_parser = parse_name::<CloudProfile>)]
    pub profile: Option<CloudProfile>,
    /// Gang scheduler (turns gang scheduling on): volcano, coscheduling or kueue.
    #[arg(long, value_parser = parse_name::<GangScheduler>)]
    pub gang: Option<GangScheduler>,
    /// Namespace of the objects (default: metadata.namespace, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
}

/// `--target` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// Per replica a batch/v1 Job and a headless Service.
    Plain,
    /// One JobSet.
    Jobset,
    /// A Kubeflow TFJob or PyTorchJob.
    Kubeflow,
    /// The TrainingJob resource.
    Trainingjob,
}

/// `-o` values of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Multi-document YAML.
    Yaml,
    /// A v1 List.
    Json,
}

/// Parses a lower-case name the way the job file spells it.
fn parse_name<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(Value::String(s.to_string())).map_err(|e| e.to_string())
}

/// Reads and validates a job file, errors one per line with file:line:column.
pub fn load_job(file: &Path) -> Result<TrainingJob> {
    trainctl_spec::parse_job(file).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!("invalid job file\n{}", lines.join("\n"))
    })
}

/// Prints findings to stderr; fails when one is an error.
pub fn report(findings: &[Finding]) -> Result<()> {
    for f in findings {
        eprintln!("{f}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        bail!("lint found {errors} error(s); fix them first (`trainctl lint FILE` lists them)");
    }
    Ok(())
}

/// Runs lint on a job before it starts on this machine: warnings are printed, errors
/// refuse it. Rules about clusters only are left to `render` and `lint`.
pub fn lint_before_start(job: &TrainingJob) -> Result<()> {
    report(&trainctl_kube::lint_local(job))
}

/// `trainctl render`.
pub fn render(a: &RenderArgs) -> Result<ExitCode> {
    let mut job = load_job(&a.file)?;
    if let Some(profile) = a.profile {
        // Lint the job for the cloud it is rendered for.
        job.spec.cloud.profile = profile;
    }
    report(&trainctl_kube::lint_job(&job))?;
    let opts = RenderOptions {
        target: match a.target {
            TargetArg::Plain => Target::Plain,
            TargetArg::Jobset => Target::Jobset,
            TargetArg::Kubeflow => Target::Kubeflow,
            TargetArg::Trainingjob => Target::Trainingjob,
        },
        profile: a.profile,
        namespace: a.namespace.clone(),
        gang: a.gang,
    };
    let objects = trainctl_kube::render(&job, &opts)?;
    let text = match a.output {
        Format::Yaml => trainctl_kube::to_yaml(&objects)?,
        Format::Json => trainctl_kube::to_json_list(&objects) + "\n",
    };
    emit(&text)
}

/// Writes the command's result to stdout; a reader that stopped early (`| head`) is fine.
fn emit(text: &str) -> Result<ExitCode> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `trainctl lint`: a job file, or any Kubernetes manifest (multi-document YAML).
pub fn lint(file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let findings = if is_job_file(&text) {
        trainctl_kube::lint_job(&load_job(file)?)
    } else {
        trainctl_kube::lint_objects(&manifest_objects(&text, file)?)
    };
    if findings.is_empty() {
        eprintln!("{}: no problems found", file.display());
    }
    Ok(match report(&findings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    })
}

/// Whether the first document of a YAML text is a TrainingJob (or is no YAML at all, for
/// the job parser to explain).
fn is_job_file(text: &str) -> bool {
    serde_yaml_ng::Deserializer::from_str(text)
        .next()
        .map(Value::deserialize)
        .is_none_or(|first| first.map_or(true, |v| v["kind"] == trainctl_spec::KIND))
}

/// The objects of a multi-document manifest (a `List` is opened up).
fn manifest_objects(text: &str, file: &Path) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)
            .with_context(|| format!("{} is not valid YAML", file.display()))?;
        match value {
            Value::Null => {}
            Value::Object(_) if value["kind"] == "List" => {
                out.extend(value["items"].as_array().cloned().unwrap_or_default())
            }
            Value::Object(_) => out.push(value),
            _ => bail!("{}: a document is not a Kubernetes object", file.display()),
        }
    }
    Ok(out)
}

/// `trainctl convert`: prints the TrainingJob (or, from a Katib experiment, the Experiment);
/// what did not carry over goes to stderr.
pub fn convert(file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let converted =
        trainctl_kube::convert_document(&text).with_context(|| format!("{}", file.display()))?;
    let (doc, dropped) = match converted {
        Conversion::Job(c) => (trainctl_kube::job_document(&c.job), c.dropped),
        Conversion::Experiment(c) => (trainctl_kube::experiment_document(&c.experiment), c.dropped),
    };
    for d in &dropped {
        eprintln!("warning: not converted: {d}");
    }
    emit(&serde_yaml_ng::to_string(&doc)?)
}
