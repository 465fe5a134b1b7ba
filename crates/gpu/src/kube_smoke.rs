//! `trainctl doctor --kube --smoke`: what became of a one-GPU pod running `nvidia-smi`,
//! told in the user's words. The pod and the nodes are read elsewhere ([`SmokePod`],
//! [`NodeFacts`]); [`explain`] is pure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::doctor::{Check, Status};
use crate::kube_doctor::NodeFacts;

/// A toleration of the smoke pod (`operator: Exists` when `value` is None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toleration {
    /// The taint key it tolerates (None: every key).
    pub key: Option<String>,
    /// The value it needs (None: any).
    pub value: Option<String>,
    /// The effect it tolerates (None: every effect).
    pub effect: Option<String>,
}

/// The smoke pod as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmokePod {
    /// Its image.
    pub image: String,
    /// Pending, Running, Succeeded or Failed.
    pub phase: String,
    /// The node it was bound to.
    pub node: Option<String>,
    /// The PodScheduled=False message, when the scheduler could not place it.
    pub unschedulable: Option<String>,
    /// The container's waiting reason and message (e.g. `ErrImagePull`).
    pub waiting: Option<(String, String)>,
    /// The container's exit code once it ended.
    pub exit_code: Option<i32>,
    /// Its log.
    pub log: String,
    /// Its node selector.
    pub node_selector: BTreeMap<String, String>,
    /// Its tolerations.
    pub tolerations: Vec<Toleration>,
    /// Whether the wait ran out before the pod ended.
    pub timed_out: bool,
}

/// Waiting reasons that mean the image could not be pulled.
const PULL_FAILURES: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// What a container without the NVIDIA driver's libraries prints.
const NVML_FAILURES: [&str; 5] = [
    "Failed to initialize NVML",
    "couldn't communicate with the NVIDIA driver",
    "could not load NVML",
    "libnvidia-ml.so",
    "nvidia-smi: not found",
];

fn check_of(status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name: "smoke",
        status,
        detail,
        fix: fix.map(str::to_string),
    }
}

/// Why `node` cannot take the pod, or None when it could.
fn why_not(node: &NodeFacts, pod: &SmokePod) -> Option<String> {
    if !node.ready {
        return Some("NotReady or cordoned".into());
    }
    let mismatched: Vec<String> = pod
        .node_selector
        .iter()
        .filter(|(k, v)| node.labels.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !mismatched.is_empty() {
        return Some(format!(
            "does not match the node selector {}",
            mismatched.join(",")
        ));
    }
    let blocking: Vec<String> = node
        .taints
        .iter()
        .filter(|t| t.effect != "PreferNoSchedule")
        .filter(|t| !pod.tolerations.iter().any(|tol| tolerates(tol, t)))
        .map(ToString::to_string)
        .collect();
    if !blocking.is_empty() {
        return Some(format!("taint {} not tolerated", blocking.join(", ")));
    }
    if node.gpu_allocatable == 0 {
        return Some(if node.gpu_capacity > 0 {
            format!("all {} GPUs unhealthy", node.gpu_capacity)
        } else {
            "no GPUs".into()
        });
    }
    if node.gpu_requested >= node.gpu_allocatable {
        return Some(format!(
            "all {} GPUs allocated to other pods",
            node.gpu_allocatable
        ));
    }
    None
}

fn tolerates(tol: &Toleration, taint: &crate::kube_doctor::Taint) -> bool {
    tol.key.as_ref().is_none_or(|k| *k == taint.key)
        && tol.value.as_ref().is_none_or(|v| *v == taint.value)
        && tol.effect.as_ref().is_none_or(|e| *e == taint.effect)
}

/// The verdict on the smoke pod, with the fix for each way it fails.
pub fn explain(pod: &SmokePod, nodes: &[NodeFacts]) -> Check {
    let on = pod
        .node
        .as_deref()
        .map_or(String::new(), |n| format!(" on node {n}"));
    if pod.phase == "Succeeded" {
        let gpu = pod
            .log
            .lines()
            .find(|l| l.contains("NVIDIA") || l.starts_with("GPU "))
            .map_or("nvidia-smi ran".into(), |l| l.trim().to_string());
        return check_of(
            Status::Ok,
            format!("a one-GPU pod ran nvidia-smi{on}: {gpu}"),
            None,
        );
    }
    if let Some((reason, message)) = &pod.waiting {
        if PULL_FAILURES.contains(&reason.as_str()) {
            return check_of(
                Status::Fail,
                format!("cannot pull image {}{on}: {reason}: {message}", pod.image),
                Some("check the image name and tag, that the nodes reach its registry (serverless profiles have no internet without a NAT gateway), and imagePullSecrets; --smoke-image picks another"),
            );
        }
    }
    if let Some(line) = NVML_FAILURES
        .iter()
        .find_map(|p| pod.log.lines().find(|l| l.contains(p)))
    {
        return check_of(
            Status::Fail,
            format!("the container cannot load NVML{on}: {}", line.trim()),
            Some("the container runtime did not give the container the NVIDIA driver: configure it (nvidia-ctk runtime configure --runtime=containerd --set-as-default, then restart containerd) or create RuntimeClass nvidia and pass --runtime-class nvidia"),
        );
    }
    if pod.phase == "Failed" {
        let tail: Vec<&str> = pod.log.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return check_of(
            Status::Fail,
            format!(
                "nvidia-smi failed{on} with exit code {}: {}",
                pod.exit_code.map_or("?".into(), |c| c.to_string()),
                if tail.is_empty() {
                    "no output".into()
                } else {
                    tail.join(" / ")
                }
            ),
            Some("run `kubectl logs` on the pod's node's device plugin and `trainctl doctor` on the node"),
        );
    }
    if let Some(message) = &pod.unschedulable {
        let reasons: Vec<String> = nodes
            .iter()
            .filter_map(|n| why_not(n, pod).map(|why| format!("{}: {why}", n.name)))
            .collect();
        let detail = if reasons.is_empty() {
            format!("Pending, Insufficient nvidia.com/gpu ({message})")
        } else {
            format!(
                "Pending, Insufficient nvidia.com/gpu: {} (the scheduler: {message})",
                reasons.join("; ")
            )
        };
        return check_of(
            Status::Fail,
            detail,
            Some("free or add GPUs, tolerate the taints, or fix the selector (`doctor --kube` lists each node's GPUs)"),
        );
    }
    let state = match &pod.waiting {
        Some((reason, message)) => format!("{}: {reason} {message}", pod.phase),
        None => pod.phase.clone(),
    };
    let detail = if pod.timed_out {
        format!("the pod was still {state}{on} when the wait ran out")
    } else {
        format!("the pod is {state}{on}")
    };
    check_of(
        Status::Fail,
        detail,
        Some("kubectl describe pod on it, or a longer --smoke-timeout"),
    )
}
