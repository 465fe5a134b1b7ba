//! Kubeflow `kubeflow.org/v1` TFJob and PyTorchJob manifests and `batch/v1` Jobs to
//! TrainingJobs, and Katib experiments to Experiment files ([`katib`]). What has a
//! TrainingJob field carries over; what has none (sidecars, node selectors, env from
//! secrets...) is reported, never dropped silently. The `--name=value` words that end
//! every replica's argv become hyperparameters ([`hyperparameters`]).

mod hyperparameters;
pub mod katib;
mod katib_algorithm;
mod placeholders;

use std::collections::BTreeMap;

use serde_json::Value;
use trainctl_core::wiring::{cluster_port, hyperparameter_env_name};
use trainctl_spec::{
    validate, CleanPodPolicy, Framework, HostPathSource, NfsSource, ObjectMeta, PvcSource,
    Quantity, ReplicaSpec, ReplicaType, Resources, RestartPolicy, SuccessPolicy, TrainingJob,
    TrainingJobSpec, Volume, API_VERSION, KIND,
};

use crate::lint::pods::array;
use crate::render::kubeflow::kind_of;

/// The prefix of the variables trainctl sets itself.
const TRAINCTL_PREFIX: &str = "TRAINCTL_";
/// The prefix of the labels trainctl puts on what it renders.
const TRAINCTL_LABEL_PREFIX: &str = "trainctl.dev/";

/// A converted job and what did not carry over.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The equivalent TrainingJob.
    pub job: TrainingJob,
    /// One line per setting that has no TrainingJob field and was left out.
    pub dropped: Vec<String>,
}

/// Why a manifest cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Not YAML.
    #[error("not a YAML document: {0}")]
    Yaml(String),
    /// Not a Kubeflow job of a kind we read.
    #[error("{0}")]
    Unsupported(String),
    /// The result breaks a TrainingJob or Experiment rule.
    #[error("the converted job or experiment is not valid:\n{0}")]
    Invalid(String),
}

/// What one Kubeflow replica spec holds.
struct Replica {
    role: ReplicaType,
    spec: ReplicaSpec,
    restart: Option<String>,
    argv: Vec<String>,
    volumes: Vec<Volume>,
}

/// A converted manifest: a job, or a Katib experiment.
#[derive(Debug, Clone)]
pub enum Conversion {
    /// From a TFJob, PyTorchJob or batch/v1 Job.
    Job(Box<Converted>),
    /// From a Katib Experiment.
    Experiment(Box<katib::ConvertedExperiment>),
}

/// Converts the text of a TFJob, PyTorchJob, batch/v1 Job or Katib Experiment.
pub fn convert_document(text: &str) -> Result<Conversion, ConvertError> {
    let doc = parse(text)?;
    if katib::is_katib_experiment(&doc) {
        katib::convert_experiment(&doc).map(|c| Conversion::Experiment(Box::new(c)))
    } else {
        convert_job(&doc).map(|c| Conversion::Job(Box::new(c)))
    }
}

/// Converts the text of a TFJob, PyTorchJob or batch/v1 Job manifest.
pub fn convert(text: &str) -> Result<Converted, ConvertError> {
    convert_job(&parse(text)?)
}

/// The YAML document of a manifest.
pub(crate) fn parse(text: &str) -> Result<Value, ConvertError> {
    serde_yaml_ng::from_str(text).map_err(|e| ConvertError::Yaml(e.to_string()))
}

/// Converts a parsed TFJob, PyTorchJob or batch/v1 Job (a single worker of the generic
/// framework).
pub fn convert_job(doc: &Value) -> Result<Converted, ConvertError> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let mut dropped = Vec::new();
    let mut replicas = Vec::new();
    let framework = match (doc["apiVersion"].as_str(), kind) {
        (Some("batch/v1"), "Job") => {
            for field in ["parallelism", "completions"] {
                if doc["spec"][field].as_u64().is_some_and(|n| n > 1) {
                    dropped.push(format!(
                        "spec.{field}: a Job's pods are independent; the TrainingJob runs one worker"
                    ));
                }
            }
            let role = ReplicaType::Worker;
            let rs = &doc["spec"];
            replicas.push(replica(role, rs, Framework::Generic, "spec", &mut dropped)?);
            Framework::Generic
        }
        (Some("kubeflow.org/v1"), "TFJob") => Framework::Tensorflow,
        (Some("kubeflow.org/v1"), "PyTorchJob") => Framework::Pytorch,
        (api, _) => {
            return Err(ConvertError::Unsupported(format!(
                "expected a kubeflow.org/v1 TFJob or PyTorchJob or a batch/v1 Job, got {} {kind:?}",
                api.unwrap_or("no apiVersion")
            )))
        }
    };
    if framework != Framework::Generic {
        let specs_field = kind_of(framework).1;
        let Some(specs) = doc["spec"][specs_field].as_object() else {
            return Err(ConvertError::Unsupported(format!(
                "spec.{specs_field} is missing: the job has no replicas"
            )));
        };
        for (name, rs) in specs {
            let at = format!("spec.{specs_field}.{name}");
            let role = ReplicaType::parse(&name.to_lowercase()).ok_or_else(|| {
                ConvertError::Unsupported(format!("{at}: unknown replica type {name:?}"))
            })?;
            replicas.push(replica(role, rs, framework, &at, &mut dropped)?);
        }
    }

    let mut job = TrainingJob {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        metadata: metadata(&doc["metadata"]),
        spec: TrainingJobSpec {
            framework,
            ..TrainingJobSpec::default()
        },
    };
    job.spec.run_policy.restart_policy = restart_policy(&replicas, &mut dropped);
    job.spec.hyperparameters =
        hyperparameters::take_shared(replicas.iter_mut().map(|r| &mut r.argv).collect());
    // trainctl sets HP_<NAME> from each hyperparameter again.
    for (name, value) in &job.spec.hyperparameters {
        let var = hyperparameter_env_name(name);
        for r in replicas.iter_mut() {
            if r.spec.env.get(&var) == Some(&value.to_string()) {
                r.spec.env.remove(&var);
            }
        }
    }
    hoist_shared(&mut job, &mut replicas);
    for r in replicas {
        for v in r.volumes {
            if !job.spec.volumes.iter().any(|w| w.name == v.name) {
                job.spec.volumes.push(v);
            }
        }
        *job.spec.replicas.slot_mut(r.role) = Some(r.spec);
    }
    run_policy(&doc["spec"], &mut job, &mut dropped);
    // A port equal to the framework default says nothing; leave it out.
    for role in ReplicaType::ALL {
        let default = {
            let mut bare = job.clone();
            if let Some(r) = bare.spec.replicas.slot_mut(role).as_mut() {
                r.port = None;
            }
            cluster_port(&bare, role)
        };
        if let Some(r) = job.spec.replicas.slot_mut(role).as_mut() {
            r.port = r.port.filter(|p| *p != default);
        }
    }
    valid(validate(&job))?;
    Ok(Converted { job, dropped })
}

/// An error listing the violations, one per line, if there are any.
pub(crate) fn valid(violations: Vec<trainctl_spec::Violation>) -> Result<(), ConvertError> {
    if violations.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = violations
        .iter()
        .map(|v| format!("  {}: {}", v.path, v.message))
        .collect();
    Err(ConvertError::Invalid(lines.join("\n")))
}

pub(crate) fn metadata(meta: &Value) -> ObjectMeta {
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut labels = map(&meta["labels"]);
    labels.retain(|k, _| !k.starts_with(TRAINCTL_LABEL_PREFIX));
    ObjectMeta {
        name: meta["name"].as_str().unwrap_or_default().to_string(),
        namespace: meta["namespace"].as_str().map(str::to_string),
        labels,
        annotations: map(&meta["annotations"]),
    }
}

/// The container of a replica: the one the operator wires (named after the framework),
/// else the first.
fn main_container(pod: &Value, framework: Framework) -> Option<(usize, &Value)> {
    let containers = array(&pod["containers"]);
    let wired = crate::render::container_name(framework);
    containers
        .iter()
        .enumerate()
        .find(|(_, c)| c["name"] == wired)
        .or_else(|| containers.iter().enumerate().next())
}

fn strings(v: &Value) -> Vec<String> {
    array(v)
        .iter()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn replica(
    role: ReplicaType,
    rs: &Value,
    framework: Framework,
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<Replica, ConvertError> {
    let pod = &rs["template"]["spec"];
    let Some((index, c)) = main_container(pod, framework) else {
        return Err(ConvertError::Unsupported(format!(
            "{at}.template.spec.containers: the replica has no container"
        )));
    };
    let cat = format!("{at}.template.spec.containers[{index}]");
    for (i, other) in array(&pod["containers"]).iter().enumerate() {
        if i != index {
            dropped.push(format!(
                "{at}.template.spec.containers[{i}] ({}): sidecar containers",
                other["name"].as_str().unwrap_or("?")
            ));
        }
    }
    for field in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "initContainers",
        "serviceAccountName",
        "imagePullSecrets",
        "securityContext",
    ] {
        if !pod[field].is_null() {
            dropped.push(format!("{at}.template.spec.{field}"));
        }
    }
    let mut argv = strings(&c["command"]);
    argv.extend(strings(&c["args"]));
    if c["command"].is_null() && !argv.is_empty() {
        dropped.push(format!(
            "{cat}.command: not set, so the image's entrypoint ran before args; the args are now the whole command"
        ));
    }
    let mut env = BTreeMap::new();
    for (i, e) in array(&c["env"]).iter().enumerate() {
        let name = e["name"].as_str().unwrap_or_default();
        match e["value"].as_str() {
            _ if name == "TF_CONFIG" => {
                dropped.push(format!("{cat}.env[{i}] (TF_CONFIG): set by trainctl"))
            }
            // What trainctl sets on every replica (a job rendered by trainctl has them).
            _ if name.starts_with(TRAINCTL_PREFIX) => {}
            Some(value) => {
                env.insert(name.to_string(), value.to_string());
            }
            None if e["valueFrom"].is_object() => {
                dropped.push(format!("{cat}.env[{i}] ({name}): valueFrom"))
            }
            None => {
                env.insert(name.to_string(), String::new());
            }
        }
    }
    let port_name = crate::render::port_name(framework);
    let port = array(&c["ports"])
        .iter()
        .find(|p| p["name"] == port_name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let spec = ReplicaSpec {
        count: rs["replicas"]
            .as_u64()
            .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        port,
        resources: resources(&c["resources"]),
        command: Vec::new(),
        image: c["image"].as_str().map(str::to_string),
        env,
    };
    Ok(Replica {
        role,
        spec,
        // A Kubeflow replica spec holds it; a batch Job's pod template does.
        restart: rs["restartPolicy"]
            .as_str()
            .or(pod["restartPolicy"]
                .as_str()
                .filter(|_| framework == Framework::Generic))
            .map(str::to_string),
        argv,
        volumes: volumes(pod, c, at, dropped),
    })
}

fn resources(r: &Value) -> Resources {
    let pick = |name: &str| {
        let v = &r["limits"][name];
        let v = if v.is_null() { &r["requests"][name] } else { v };
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Resources {
        cpu: pick("cpu").map(Quantity),
        memory: pick("memory").map(Quantity),
        gpu: pick("nvidia.com/gpu").and_then(|g| g.parse().ok()),
        gpu_type: None,
    }
}

fn volumes(pod: &Value, c: &Value, at: &str, dropped: &mut Vec<String>) -> Vec<Volume> {
    let mut out = Vec::new();
    for (i, m) in array(&c["volumeMounts"]).iter().enumerate() {
        let name = m["name"].as_str().unwrap_or_default();
        let Some(source) = array(&pod["volumes"]).iter().find(|v| v["name"] == name) else {
            continue;
        };
        let mut v = Volume {
            name: name.to_string(),
            mount_path: m["mountPath"].as_str().unwrap_or_default().to_string(),
            read_only: m["readOnly"].as_bool().unwrap_or(false),
            nfs: None,
            persistent_volume_claim: None,
            host_path: None,
            empty_dir: None,
            persistent_volume: None,
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        if source["nfs"].is_object() {
            v.nfs = Some(NfsSource {
                server: text(&source["nfs"]["server"]),
                path: text(&source["nfs"]["path"]),
                nas_flex_volume: false,
            });
        } else if source["flexVolume"]["driver"] == "alibaba/nas" {
            let options = &source["flexVolume"]["options"];
            v.nfs = Some(NfsSource {
                server: text(&options["server"]),
                path: text(&options["path"]),
                nas_flex_volume: true,
            });
        } else if source["persistentVolumeClaim"].is_object() {
            v.persistent_volume_claim = Some(PvcSource {
                claim_name: text(&source["persistentVolumeClaim"]["claimName"]),
            });
        } else if source["hostPath"].is_object() {
            v.host_path = Some(HostPathSource {
                path: text(&source["hostPath"]["path"]),
            });
        } else if source["emptyDir"].is_object() {
            v.empty_dir = Some(trainctl_spec::EmptyDirSource {
                size_limit: source["emptyDir"]["sizeLimit"]
                    .as_str()
                    .map(|s| Quantity(s.to_string())),
            });
        } else {
            dropped.push(format!(
                "{at}.template.spec.volumes ({name}) mounted at volumeMounts[{i}]: a volume type TrainingJobs do not have"
            ));
            continue;
        }
        out.push(v);
    }
    out
}

/// The job's restart policy: the replicas' when they agree, else the workers'.
fn restart_policy(replicas: &[Replica], dropped: &mut Vec<String>) -> RestartPolicy {
    let chosen = replicas
        .iter()
        .find(|r| r.role == ReplicaType::Worker)
        .or(replicas.first())
        .and_then(|r| r.restart.clone())
        .unwrap_or_else(|| "Never".into());
    if replicas
        .iter()
        .any(|r| r.restart.as_deref().unwrap_or("Never") != chosen)
    {
        dropped.push(format!(
            "per-replica restartPolicy: the replicas differ; the job uses {chosen} for all"
        ));
    }
    match chosen.as_str() {
        "OnFailure" => RestartPolicy::OnFailure,
        "ExitCode" => RestartPolicy::ExitCode,
        "Always" => {
            dropped.push(
                "restartPolicy Always: a finished replica must stay finished; OnFailure instead"
                    .into(),
            );
            RestartPolicy::OnFailure
        }
        _ => RestartPolicy::Never,
    }
}

/// Image, command and env shared by every replica move up to the job.
fn hoist_shared(job: &mut TrainingJob, replicas: &mut [Replica]) {
    let Some(first) = replicas.first() else {
        return;
    };
    let (image, argv, first_env) = (
        first.spec.image.clone(),
        first.argv.clone(),
        first.spec.env.clone(),
    );
    if replicas.iter().all(|r| r.spec.image == image) {
        job.spec.image = image;
        replicas.iter_mut().for_each(|r| r.spec.image = None);
    }
    if replicas.iter().all(|r| r.argv == argv) {
        job.spec.command = argv;
    } else {
        replicas
            .iter_mut()
            .for_each(|r| r.spec.command = r.argv.clone());
    }
    let shared: BTreeMap<String, String> = first_env
        .iter()
        .filter(|(k, v)| replicas.iter().all(|r| r.spec.env.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for r in replicas.iter_mut() {
        r.spec.env.retain(|k, _| !shared.contains_key(k));
    }
    job.spec.env = shared;
}

fn run_policy(spec: &Value, job: &mut TrainingJob, dropped: &mut Vec<String>) {
    // Kubeflow v1 also accepted these at spec level before runPolicy existed.
    let rp = if spec["runPolicy"].is_object() {
        &spec["runPolicy"]
    } else {
        spec
    };
    let run = &mut job.spec.run_policy;
    run.clean_pod_policy = match rp["cleanPodPolicy"].as_str() {
        Some("All") => CleanPodPolicy::All,
        Some("None") => CleanPodPolicy::None,
        _ => CleanPodPolicy::Running,
    };
    if let Some(n) = rp["backoffLimit"].as_u64() {
        run.backoff_limit = u32::try_from(n).unwrap_or(u32::MAX);
    }
    run.active_deadline_seconds = rp["activeDeadlineSeconds"].as_u64();
    run.ttl_seconds_after_finished = rp["ttlSecondsAfterFinished"].as_u64();
    run.suspend = rp["suspend"].as_bool().unwrap_or(false);
    if spec["successPolicy"] == "AllWorkers" {
        run.success_policy = SuccessPolicy::AllWorkers;
    }
    let sp = &rp["schedulingPolicy"];
    if sp.is_object() {
        job.spec.scheduling.gang = true;
        if let Some(queue) = sp["queue"].as_str() {
            job.spec.scheduling.queue = queue.to_string();
        }
        if !sp["priorityClass"].is_null() {
            dropped.push("runPolicy.schedulingPolicy.priorityClass".into());
        }
    }
}
