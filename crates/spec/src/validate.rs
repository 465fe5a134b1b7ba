//! Rules a parsed job must satisfy beyond its types. Each rule names the field path and
//! says what would be right.

use std::collections::{BTreeMap, BTreeSet};

use crate::errors::Violation;
use crate::types::{Framework, ReplicaType, TrainingJob, API_VERSION, KIND, MAX_REPLICAS};

/// True for a DNS-1035 label: lower-case letters, digits and `-`, starting with a letter,
/// ending with a letter or digit, at most 63 characters.
pub fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every rule the job breaks; empty when it is valid.
pub fn validate(job: &TrainingJob) -> Vec<Violation> {
    let mut out = Vec::new();
    let spec = &job.spec;

    if job.api_version != API_VERSION {
        out.push(Violation::new(
            "apiVersion",
            format!(
                "unsupported apiVersion {:?}; use {API_VERSION}",
                job.api_version
            ),
        ));
    }
    if job.kind != KIND {
        out.push(Violation::new(
            "kind",
            format!("unsupported kind {:?}; use {KIND}", job.kind),
        ));
    }
    let name = &job.metadata.name;
    if name.is_empty() {
        out.push(Violation::new("metadata.name", "the job needs a name"));
    } else if !is_dns1035_label(name) {
        out.push(Violation::new(
            "metadata.name",
            format!(
                "{name:?} is not a DNS-1035 label: use at most 63 lower-case letters, digits \
                 and '-', starting with a letter and not ending with '-' (for example {:?})",
                suggest_name(name)
            ),
        ));
    }

    check_replicas(job, &mut out);
    check_env(&spec.env, "spec.env", &mut out);
    check_hyperparameters(job, &mut out);
    check_volumes(job, &mut out);
    if let Some(Err(e)) = spec.metrics.as_ref().map(|m| m.compiled_regex()) {
        out.push(Violation::new(e.path(), e.to_string()));
    }
    if spec.run_policy.active_deadline_seconds == Some(0) {
        out.push(Violation::new(
            "spec.runPolicy.activeDeadlineSeconds",
            "must be at least 1 second; leave it out for no deadline",
        ));
    }
    out
}

fn suggest_name(name: &str) -> String {
    let mut s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s = s.trim_matches('-').to_string();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = format!("job-{s}");
    }
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

fn check_env(env: &std::collections::BTreeMap<String, String>, at: &str, out: &mut Vec<Violation>) {
    for key in env.keys() {
        if !is_env_name(key) {
            out.push(Violation::new(
                format!("{at}.{key}"),
                "an environment variable name must match [A-Za-z_][A-Za-z0-9_]*",
            ));
        }
    }
}

/// True for a hyperparameter name that is a command-line flag name as the replicas get it
/// (`--NAME=value`): letters, digits, `-` and `_`, starting with a letter.
pub fn is_hyperparameter_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The `HP_` variable a hyperparameter is passed as: `learning_rate` -> `HP_LEARNING_RATE`,
/// `num-layers` -> `HP_NUM_LAYERS` (every character that cannot be in a variable name
/// becomes `_`).
pub fn hyperparameter_env_name(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("HP_{upper}")
}

fn check_hyperparameters(job: &TrainingJob, out: &mut Vec<Violation>) {
    let mut variables: BTreeMap<String, &str> = BTreeMap::new();
    for name in job.spec.hyperparameters.keys() {
        let at = format!("spec.hyperparameters.{name}");
        if !is_hyperparameter_name(name) {
            let stripped = name.trim_start_matches('-');
            let hint = if name.starts_with('-') && is_hyperparameter_name(stripped) {
                format!(" (write {stripped:?} for --{stripped})")
            } else {
                String::new()
            };
            out.push(Violation::new(
                at,
                format!(
                    "{name:?} is not a flag name: a hyperparameter is passed as --NAME=value, so \
                     its name holds letters, digits, '-' and '_', starting with a letter{hint}"
                ),
            ));
            continue;
        }
        let variable = hyperparameter_env_name(name);
        if let Some(first) = variables.get(&variable) {
            out.push(Violation::new(
                at,
                format!(
                    "{first:?} and {name:?} are both passed as {variable}, so one value would \
                     be lost: rename one of them"
                ),
            ));
        } else {
            variables.insert(variable, name);
        }
    }
}

/// The program of a command: a shell script that is blank, or a first word that is blank,
/// can never run (it fails with 127 when the replica starts).
fn check_program(command: &[String], shell: bool, at: &str, out: &mut Vec<Violation>) {
    if command.is_empty() {
        return; // "no command" is reported per role
    }
    if shell {
        if command.iter().all(|w| w.trim().is_empty()) {
            out.push(Violation::new(
                at,
                "the shell script is empty (shell: true joins the words of the command into \
                 one script); write what to run, such as [\"python3 train.py\"]",
            ));
        }
    } else if command[0].trim().is_empty() {
        out.push(Violation::new(
            format!("{at}[0]"),
            "the program name (the first word of the command) is empty; write the program to \
             run, such as [\"python3\", \"train.py\"]",
        ));
    }
}

/// Refuses counts above [`MAX_REPLICAS`], per role and in all, using only the counts (no
/// allocation that grows with them). True when every count is within the limit, so that
/// the rules after it may sum and compare counts.
fn check_replica_counts(job: &TrainingJob, out: &mut Vec<Violation>) -> bool {
    let replicas = &job.spec.replicas;
    let mut within = true;
    for role in ReplicaType::ALL {
        let n = replicas.count(role);
        if n > MAX_REPLICAS {
            within = false;
            out.push(Violation::new(
                format!("spec.replicas.{role}.count"),
                format!(
                    "{n} replicas is more than a job may have: use at most {MAX_REPLICAS} per \
                     role and {MAX_REPLICAS} in all"
                ),
            ));
        }
    }
    if !within {
        return false;
    }
    let total: u64 = ReplicaType::ALL
        .iter()
        .map(|r| u64::from(replicas.count(*r)))
        .sum();
    if total > u64::from(MAX_REPLICAS) {
        let parts: Vec<String> = replicas
            .roles()
            .map(|(role, r)| format!("{role} {}", r.count))
            .collect();
        out.push(Violation::new(
            "spec.replicas",
            format!(
                "the job has {total} replicas ({}); a job may have at most {MAX_REPLICAS} in all",
                parts.join(", ")
            ),
        ));
        return false;
    }
    true
}

fn check_replicas(job: &TrainingJob, out: &mut Vec<Violation>) {
    let spec = &job.spec;
    let replicas = &spec.replicas;
    if !check_replica_counts(job, out) {
        // The other rules about counts would only repeat the same numbers.
        check_roles(job, out);
        return;
    }
    if replicas.total() == 0 {
        out.push(Violation::new(
            "spec.replicas",
            "the job has no replicas; add for example `worker: {count: 1}`",
        ));
    } else if replicas.count(ReplicaType::Chief)
        + replicas.count(ReplicaType::Master)
        + replicas.count(ReplicaType::Worker)
        == 0
    {
        out.push(Violation::new(
            "spec.replicas",
            "nothing decides when this job succeeds: add a chief, master or worker",
        ));
    }
    for role in [
        ReplicaType::Master,
        ReplicaType::Chief,
        ReplicaType::Evaluator,
    ] {
        let n = replicas.count(role);
        if n > 1 {
            out.push(Violation::new(
                format!("spec.replicas.{role}.count"),
                format!("a job has at most one {role} (got {n}); set count: 1"),
            ));
        }
    }
    if replicas.count(ReplicaType::Master) > 0 && replicas.count(ReplicaType::Chief) > 0 {
        out.push(Violation::new(
            "spec.replicas.master",
            "a job has a chief or a master, not both; keep one of them",
        ));
    }
    match spec.framework {
        Framework::Pytorch => {
            if replicas.count(ReplicaType::Master) + replicas.count(ReplicaType::Worker) == 0 {
                out.push(Violation::new(
                    "spec.replicas",
                    "a pytorch job needs a master or workers; add `master: {count: 1}`",
                ));
            }
            for role in [ReplicaType::Chief, ReplicaType::Ps, ReplicaType::Evaluator] {
                if replicas.count(role) > 0 {
                    out.push(Violation::new(
                        format!("spec.replicas.{role}"),
                        format!("pytorch jobs have master and worker replicas, not {role}"),
                    ));
                }
            }
        }
        Framework::Tensorflow | Framework::Generic => {}
    }

    check_roles(job, out);
}

/// The rules of each role's own fields: command, port, resources and env.
fn check_roles(job: &TrainingJob, out: &mut Vec<Violation>) {
    let spec = &job.spec;
    check_program(&spec.command, spec.shell, "spec.command", out);
    for (role, r) in spec.replicas.roles() {
        let at = format!("spec.replicas.{role}");
        check_program(&r.command, spec.shell, &format!("{at}.command"), out);
        if job.command_of(role).is_empty() {
            out.push(Violation::new(
                if spec.command.is_empty() && r.command.is_empty() {
                    "spec.command".to_string()
                } else {
                    format!("{at}.command")
                },
                format!(
                    "{role} replicas have no command; set spec.command (an argv list such as \
                     [\"python3\", \"train.py\"]) or {at}.command"
                ),
            ));
        }
        if r.port == Some(0) {
            out.push(Violation::new(
                format!("{at}.port"),
                "port must be between 1 and 65535",
            ));
        }
        if let Some(g) = r.resources.gpu {
            if g < 0.0 || g.fract() != 0.0 || !g.is_finite() {
                out.push(Violation::new(
                    format!("{at}.resources.gpu"),
                    format!("GPUs are whole devices: use a whole number >= 0 (got {g})"),
                ));
            }
        }
        for (field, q) in [("cpu", &r.resources.cpu), ("memory", &r.resources.memory)] {
            if let Some(q) = q {
                if !q.is_valid() {
                    out.push(Violation::new(
                        format!("{at}.resources.{field}"),
                        format!(
                            "{:?} is not a Kubernetes quantity; use e.g. 1, 500m or 2Gi",
                            q.0
                        ),
                    ));
                }
            }
        }
        check_env(&r.env, &format!("{at}.env"), out);
    }
}

fn check_volumes(job: &TrainingJob, out: &mut Vec<Violation>) {
    let mut names = BTreeSet::new();
    for (i, v) in job.spec.volumes.iter().enumerate() {
        let at = format!("spec.volumes[{i}]");
        if !is_dns1123_label(&v.name) {
            out.push(Violation::new(
                format!("{at}.name"),
                format!(
                    "{:?} is not a DNS-1123 label (lower-case letters, digits, '-')",
                    v.name
                ),
            ));
        } else if !names.insert(v.name.as_str()) {
            out.push(Violation::new(
                format!("{at}.name"),
                format!("volume name {:?} is used twice", v.name),
            ));
        }
        if !v.mount_path.starts_with('/') {
            out.push(Violation::new(
                format!("{at}.mountPath"),
                "mountPath must be an absolute path",
            ));
        }
        let sources = [
            v.nfs.is_some(),
            v.persistent_volume_claim.is_some(),
            v.host_path.is_some(),
            v.empty_dir.is_some(),
        ]
        .into_iter()
        .filter(|s| *s)
        .count();
        if v.persistent_volume.is_some() && v.nfs.is_none() {
            out.push(Violation::new(
                format!("{at}.persistentVolume"),
                "persistentVolume creates a volume for an NFS/NAS share: add `nfs: {server: ..., \
                 path: ...}` to this volume, or use persistentVolumeClaim for an existing claim",
            ));
        }
        if sources != 1 {
            out.push(Violation::new(
                at,
                format!(
                    "a volume needs exactly one of nfs, persistentVolumeClaim, hostPath, emptyDir \
                     (got {sources})"
                ),
            ));
        }
    }
}
