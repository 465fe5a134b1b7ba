//! The Arena-like flag form of `submit`: a job described by flags, its command after `--`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use trainctl_spec::{
    Framework, HyperValue, ObjectMeta, ReplicaSpec, Replicas, Resources, TrainingJob,
    TrainingJobSpec, API_VERSION, KIND,
};

use crate::args::SubmitArgs;

/// Builds and validates the job the flags describe.
pub fn job_from_flags(a: &SubmitArgs) -> Result<TrainingJob> {
    let Some(name) = a.name.clone() else {
        bail!("give a job file, or describe the job with flags: --name NAME [--workers N] [--ps N] [--gpus N] -- COMMAND...");
    };
    if a.command.is_empty() {
        bail!("the flag form needs the command after `--`, e.g. trainctl submit --name {name} --workers 2 -- python3 train.py");
    }
    let framework = match a.framework.as_deref() {
        Some("tensorflow") => Framework::Tensorflow,
        Some("pytorch") => Framework::Pytorch,
        Some("generic") => Framework::Generic,
        Some(other) => bail!("--framework {other:?}: use tensorflow, pytorch or generic"),
        None if a.ps.is_some() || a.chief || a.evaluator => Framework::Tensorflow,
        None => Framework::Generic,
    };
    let gpu = a.gpus.filter(|g| *g > 0).map(f64::from);
    let role = |count: u32, with_gpu: bool| {
        (count > 0).then(|| ReplicaSpec {
            count,
            resources: Resources {
                gpu: if with_gpu { gpu } else { None },
                ..Resources::default()
            },
            ..ReplicaSpec::default()
        })
    };
    let replicas = Replicas {
        chief: role(a.chief as u32, true),
        ps: role(a.ps.unwrap_or(0), false),
        worker: role(a.workers.unwrap_or(1), true),
        evaluator: role(a.evaluator as u32, false),
        master: None,
    };
    let workdir = match &a.workdir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let job = TrainingJob {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: ObjectMeta {
            name,
            ..ObjectMeta::default()
        },
        spec: TrainingJobSpec {
            framework,
            image: a.image.clone(),
            command: a.command.clone(),
            env: pairs(&a.env, "--env")?,
            working_dir: Some(workdir.to_string_lossy().into_owned()),
            hyperparameters: pairs(&a.hyperparameters, "--hp")?
                .into_iter()
                .map(|(k, v)| (k, hyper_value(&v)))
                .collect(),
            replicas,
            ..TrainingJobSpec::default()
        },
    };
    let problems = trainctl_spec::validate(&job);
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        bail!("{}", lines.join("\n"));
    }
    Ok(job)
}

fn pairs(items: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag} {item:?}: use NAME=VALUE"),
        })
        .collect()
}

fn hyper_value(v: &str) -> HyperValue {
    if let Ok(i) = v.parse() {
        HyperValue::Int(i)
    } else if let Ok(x) = v.parse() {
        HyperValue::Float(x)
    } else if let Ok(b) = v.parse() {
        HyperValue::Bool(b)
    } else {
        HyperValue::String(v.to_string())
    }
}
