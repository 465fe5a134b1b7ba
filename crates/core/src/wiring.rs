//! The environment a replica gets, per docs/job-file.md and Kubeflow training-operator v1:
//! `TF_CONFIG` for TensorFlow, `MASTER_ADDR`/`WORLD_SIZE`/`RANK`/`PET_*` for PyTorch, and the
//! `TRAINCTL_*` variables and hyperparameters for everyone.

use std::collections::BTreeMap;

use serde::Serialize;
use trainctl_spec::{Framework, ReplicaType, TrainingJob};

use crate::ReplicaId;

/// The `HP_` variable of a hyperparameter (the rule lives with the job file's validation).
pub use trainctl_spec::hyperparameter_env_name;

/// Kubeflow's default TensorFlow port.
pub const DEFAULT_TF_PORT: u16 = 2222;
/// Kubeflow's default PyTorch master port.
pub const DEFAULT_PYTORCH_PORT: u16 = 23456;

/// How replicas find each other.
#[derive(Debug, Clone)]
pub enum Hosts<'a> {
    /// On Kubernetes: each replica behind a headless Service `<job>-<role>-<i>`.
    Cluster {
        /// The job's namespace.
        namespace: &'a str,
    },
    /// On this machine: 127.0.0.1 and the port the engine picked for each replica.
    Local {
        /// The port of every replica.
        ports: &'a BTreeMap<ReplicaId, u16>,
    },
}

/// The port a replica listens on in a cluster: its role's, else the framework default.
pub fn cluster_port(job: &TrainingJob, role: ReplicaType) -> u16 {
    job.spec
        .replicas
        .get(role)
        .and_then(|r| r.port)
        .unwrap_or(match job.spec.framework {
            Framework::Pytorch => DEFAULT_PYTORCH_PORT,
            Framework::Tensorflow | Framework::Generic => DEFAULT_TF_PORT,
        })
}

/// The object name of a replica on Kubernetes (Pod, Service): `<job>-<role>-<i>`.
pub fn replica_object_name(job: &TrainingJob, id: ReplicaId) -> String {
    format!("{}-{}-{}", job.name(), id.role, id.index)
}

impl Hosts<'_> {
    /// The `host:port` other replicas use to reach `id`, in TF_CONFIG form.
    pub fn tf_address(&self, job: &TrainingJob, id: ReplicaId) -> String {
        match self {
            Hosts::Cluster { namespace } => format!(
                "{}.{namespace}.svc:{}",
                replica_object_name(job, id),
                cluster_port(job, id.role)
            ),
            Hosts::Local { ports } => format!("127.0.0.1:{}", ports.get(&id).copied().unwrap_or(0)),
        }
    }

    /// The host and port of the PyTorch rendezvous (rank 0). Kubeflow names the master's
    /// Service without the namespace suffix.
    fn rendezvous(&self, job: &TrainingJob, rank0: ReplicaId) -> (String, u16) {
        match self {
            Hosts::Cluster { .. } => (
                replica_object_name(job, rank0),
                cluster_port(job, rank0.role),
            ),
            Hosts::Local { ports } => (
                "127.0.0.1".to_string(),
                ports.get(&rank0).copied().unwrap_or(0),
            ),
        }
    }
}

#[derive(Serialize)]
struct TfConfig<'a> {
    cluster: BTreeMap<&'static str, Vec<String>>,
    task: TfTask,
    environment: &'a str,
}

#[derive(Serialize)]
struct TfTask {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

/// `TF_CONFIG` for `id`, or None for a job with a single replica (Kubeflow sets it only for
/// distributed jobs). Compact JSON, roles lower-case and sorted, the evaluator included.
pub fn tf_config(job: &TrainingJob, id: ReplicaId, hosts: &Hosts) -> Option<String> {
    if job.spec.replicas.total() <= 1 {
        return None;
    }
    let mut cluster = BTreeMap::new();
    for (role, r) in job.spec.replicas.roles() {
        let addrs = (0..r.count)
            .map(|i| hosts.tf_address(job, ReplicaId::new(role, i)))
            .collect();
        cluster.insert(role.as_str(), addrs);
    }
    let config = TfConfig {
        cluster,
        task: TfTask {
            kind: id.role.as_str(),
            index: id.index,
        },
        environment: "cloud",
    };
    serde_json::to_string(&config).ok()
}

/// Rank and world size of a PyTorch replica: master is rank 0 and workers follow it; with
/// no master, worker 0 is rank 0.
pub fn pytorch_rank(job: &TrainingJob, id: ReplicaId) -> (u32, u32) {
    let masters = job.spec.replicas.count(ReplicaType::Master);
    let world = masters + job.spec.replicas.count(ReplicaType::Worker);
    let rank = match id.role {
        ReplicaType::Worker => id.index + masters,
        _ => id.index,
    };
    (rank, world)
}

/// What the engine knows about the attempt it is starting.
#[derive(Debug, Clone)]
pub struct AttemptContext<'a> {
    /// 0 for the first run of the replica, then 1, 2, ... on each restart.
    pub attempt: u32,
    /// The checkpoint directory as the replica sees it.
    pub checkpoint_dir: &'a str,
    /// The log (TensorBoard) directory as the replica sees it.
    pub log_dir: &'a str,
}

/// The full environment of a replica: the job's env, the role's env, then the wiring, which
/// wins over user values of the same name.
pub fn replica_env(
    job: &TrainingJob,
    id: ReplicaId,
    hosts: &Hosts,
    ctx: &AttemptContext,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = job.spec.env.clone();
    if let Some(r) = job.spec.replicas.get(id.role) {
        env.extend(r.env.clone());
    }
    for (name, value) in &job.spec.hyperparameters {
        env.insert(hyperparameter_env_name(name), value.to_string());
    }
    match job.spec.framework {
        Framework::Tensorflow => {
            if let Some(tf) = tf_config(job, id, hosts) {
                env.insert("TF_CONFIG".into(), tf);
            }
        }
        Framework::Pytorch => {
            let rank0 = if job.spec.replicas.count(ReplicaType::Master) > 0 {
                ReplicaId::new(ReplicaType::Master, 0)
            } else {
                ReplicaId::new(ReplicaType::Worker, 0)
            };
            let (addr, port) = hosts.rendezvous(job, rank0);
            let (rank, world) = pytorch_rank(job, id);
            for (k, v) in [
                ("MASTER_ADDR", addr.clone()),
                ("MASTER_PORT", port.to_string()),
                ("WORLD_SIZE", world.to_string()),
                ("RANK", rank.to_string()),
                ("PET_MASTER_ADDR", addr),
                ("PET_MASTER_PORT", port.to_string()),
                ("PET_NNODES", world.to_string()),
                ("PET_NODE_RANK", rank.to_string()),
                ("PET_NPROC_PER_NODE", "1".to_string()),
                ("PYTHONUNBUFFERED", "1".to_string()),
            ] {
                env.insert(k.into(), v);
            }
        }
        Framework::Generic => {}
    }
    for (k, v) in [
        ("TRAINCTL_JOB", job.name().to_string()),
        ("TRAINCTL_REPLICA_TYPE", id.role.as_str().to_string()),
        ("TRAINCTL_REPLICA_INDEX", id.index.to_string()),
        ("TRAINCTL_ATTEMPT", ctx.attempt.to_string()),
        ("TRAINCTL_CHECKPOINT_DIR", ctx.checkpoint_dir.to_string()),
        ("TRAINCTL_LOG_DIR", ctx.log_dir.to_string()),
    ] {
        env.insert(k.into(), v);
    }
    env
}

/// The argv of a replica: its command followed by one `--name=value` per hyperparameter.
/// With `shell: true` the command words are joined into one `sh -c` script (the user asked
/// for shell syntax there) and the hyperparameter arguments are appended shell-quoted, so a
/// value is never interpreted by the shell.
pub fn replica_argv(job: &TrainingJob, role: ReplicaType) -> Vec<String> {
    let args = job
        .spec
        .hyperparameters
        .iter()
        .map(|(k, v)| format!("--{k}={v}"));
    let command = job.command_of(role);
    if job.spec.shell {
        let script = std::iter::once(command.join(" "))
            .chain(args.map(|a| shell_quote(&a)))
            .collect::<Vec<_>>()
            .join(" ");
        vec!["sh".into(), "-c".into(), script]
    } else {
        command.iter().cloned().chain(args).collect()
    }
}

/// `word` as one POSIX shell word.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=.,/:@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
