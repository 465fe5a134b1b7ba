//! Rules on the job file itself, one function per rule.

use trainctl_spec::{ReplicaType, TrainingJob, Volume};

use super::{Finding, Severity};
use crate::profiles::{self, table};
use crate::render::is_under;

/// Programs that take a shell script after `-c`: their argv is shell syntax on purpose.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ash", "ksh"];
/// Words of an image reference that mean it was built for GPUs.
const GPU_IMAGE_HINTS: &[&str] = &["gpu", "cuda", "cudnn", "nvidia", "nvcr.io", "tensorrt"];

/// A rule on the job file.
type Rule = fn(&TrainingJob, &mut Vec<Finding>);

/// Rules that hold wherever the job runs.
const EVERYWHERE: &[Rule] = &[shell_syntax, ps_without_workers];
/// Rules about running on a cluster: images, pods that go away, cluster networking.
const ON_CLUSTERS: &[Rule] = &[
    gpu_image,
    checkpoint_not_persistent,
    download_without_egress,
];

/// The findings of the rules that hold wherever the job runs.
pub fn check_everywhere(job: &TrainingJob) -> Vec<Finding> {
    run(job, EVERYWHERE)
}

/// The findings of every rule on the job file.
pub fn check(job: &TrainingJob) -> Vec<Finding> {
    let mut out = run(job, EVERYWHERE);
    out.extend(run(job, ON_CLUSTERS));
    out
}

fn run(job: &TrainingJob, rules: &[Rule]) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in rules {
        rule(job, &mut out);
    }
    out
}

/// Each argv of the job with its field path: the job's command, then the roles' own.
fn commands(job: &TrainingJob) -> Vec<(String, &[String])> {
    let mut out = vec![("spec.command".to_string(), job.spec.command.as_slice())];
    for (role, r) in job.spec.replicas.roles() {
        if !r.command.is_empty() {
            out.push((
                format!("spec.replicas.{role}.command"),
                r.command.as_slice(),
            ));
        }
    }
    out
}

/// Whether a word holds shell syntax that only a shell would act on.
fn looks_like_shell(word: &str) -> bool {
    const OPERATORS: &[&str] = &["&&", "||", "|", ";", ">", ">>", "<", "2>&1"];
    if OPERATORS.contains(&word) || word.contains("&&") || word.contains(" | ") {
        return true;
    }
    let bytes = word.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'$' && (w[1] == b'{' || w[1] == b'_' || w[1].is_ascii_alphabetic()))
}

fn shell_syntax(job: &TrainingJob, out: &mut Vec<Finding>) {
    if job.spec.shell {
        return;
    }
    for (path, argv) in commands(job) {
        let program = argv
            .first()
            .map_or("", |p| p.rsplit('/').next().unwrap_or(p));
        if SHELLS.contains(&program) {
            continue;
        }
        for (i, word) in argv.iter().enumerate() {
            let is_inline_code = i > 0 && argv[i - 1] == "-c";
            if !is_inline_code && looks_like_shell(word) {
                out.push(Finding::new(
                    Severity::Error,
                    "shell-syntax",
                    format!("{path}[{i}]"),
                    format!("{word:?} is shell syntax, but the command is run as argv without a shell, so it reaches the program verbatim"),
                    "set `shell: true` to run the command through sh -c, or drop the shell syntax",
                ));
            }
        }
    }
}

fn gpu_image(job: &TrainingJob, out: &mut Vec<Finding>) {
    for (role, r) in job.spec.replicas.roles() {
        if r.resources.gpus() == 0 {
            continue;
        }
        let (path, image) = match (&r.image, &job.spec.image) {
            (Some(image), _) => (format!("spec.replicas.{role}.image"), image),
            (None, Some(image)) => ("spec.image".to_string(), image),
            (None, None) => continue,
        };
        let lower = image.to_lowercase();
        let gpu_built = GPU_IMAGE_HINTS.iter().any(|h| lower.contains(h))
            || lower.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
                w.strip_prefix("cu")
                    .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            });
        if !gpu_built {
            out.push(Finding::new(
                Severity::Warning,
                "gpu-image",
                path,
                format!("{role} replicas ask for GPUs but {image:?} does not look built for GPUs (no gpu/cuda in its name or tag); a CPU build silently trains on the CPU"),
                "use a CUDA build of the image (for example a -gpu or -cuda tag)",
            ));
        }
    }
}

fn ps_without_workers(job: &TrainingJob, out: &mut Vec<Finding>) {
    let replicas = &job.spec.replicas;
    if replicas.count(ReplicaType::Ps) > 0 && replicas.count(ReplicaType::Worker) == 0 {
        out.push(Finding::new(
            Severity::Error,
            "ps-without-workers",
            "spec.replicas.ps",
            "parameter servers hold variables for workers, and this job has no workers",
            "add `worker: {count: N}`, or remove the ps replicas",
        ));
    }
}

/// Whether a volume outlives the pod that mounts it.
fn is_persistent(v: &Volume) -> bool {
    v.nfs.is_some() || v.persistent_volume_claim.is_some()
}

fn checkpoint_not_persistent(job: &TrainingJob, out: &mut Vec<Finding>) {
    let Some(dir) = &job.spec.checkpoint_dir else {
        return;
    };
    let holder = job
        .spec
        .volumes
        .iter()
        .filter(|v| is_under(dir, &v.mount_path))
        .max_by_key(|v| v.mount_path.len());
    if !holder.is_some_and(is_persistent) {
        out.push(Finding::new(
            Severity::Warning,
            "checkpoint-not-persistent",
            "spec.checkpointDir",
            format!("{dir} is not on an nfs or persistentVolumeClaim volume: on a cluster the checkpoints are lost with the pod, and a restarted replica starts over"),
            "mount an nfs or persistentVolumeClaim volume at or above the checkpointDir",
        ));
    }
}

fn download_without_egress(job: &TrainingJob, out: &mut Vec<Finding>) {
    let cloud = &job.spec.cloud;
    if profiles::has_egress(cloud, table(cloud.profile)) {
        return;
    }
    let mut places: Vec<String> = Vec::new();
    for (path, argv) in commands(job) {
        for (i, word) in argv.iter().enumerate() {
            if word.to_lowercase().starts_with("--download") {
                places.push(format!("{path}[{i}]"));
            }
        }
    }
    for (name, value) in &job.spec.hyperparameters {
        if name.to_lowercase().contains("download") && value.to_string() != "false" {
            places.push(format!("spec.hyperparameters.{name}"));
        }
    }
    for path in places {
        out.push(Finding::new(
            Severity::Warning,
            "download-without-egress",
            path,
            "the job downloads at start, but pods on this profile have no internet access by default",
            "put the data on a volume (nfs/NAS) beforehand, or give the cluster a NAT gateway and set spec.cloud.egress: true",
        ));
    }
}
