//! `trainctl doctor --kube`: a cluster's readiness for GPU jobs. The facts are gathered
//! elsewhere ([`ClusterFacts`], plain data); [`check`] turns them into the checklist, pure,
//! so every broken cluster is a table row in the tests.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::doctor::{Check, Status};

/// The extended resource the NVIDIA device plugin advertises.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// GPU Feature Discovery's labels that trainctl and people read.
pub const GFD_LABELS: [&str; 3] = [
    "nvidia.com/gpu.product",
    "nvidia.com/gpu.memory",
    "nvidia.com/cuda.driver-version.major",
];

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taint {
    /// Its key.
    pub key: String,
    /// Its value (may be empty).
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
}

impl std::fmt::Display for Taint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

/// One node as the checks see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeFacts {
    /// Its name.
    pub name: String,
    /// Whether it is Ready and schedulable.
    pub ready: bool,
    /// `nvidia.com/gpu` in its capacity.
    pub gpu_capacity: u64,
    /// `nvidia.com/gpu` in its allocatable (capacity minus unhealthy devices).
    pub gpu_allocatable: u64,
    /// GPUs requested by the pods bound to it that have not ended.
    pub gpu_requested: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its taints.
    pub taints: Vec<Taint>,
}

/// A DaemonSet (the device plugin's) and where its pods are ready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DaemonSetFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Pods it should run.
    pub desired: u32,
    /// Pods of it that are ready.
    pub ready: u32,
    /// The nodes where one of its pods is ready.
    pub ready_nodes: Vec<String>,
}

/// A Deployment (the operator's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Replicas it wants.
    pub desired: u32,
    /// Replicas available.
    pub available: u32,
}

/// What the chosen cloud profile needs of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileNeeds {
    /// The profile's name, e.g. `generic`.
    pub profile: String,
    /// The node label carrying the GPU model, where the profile selects nodes by it.
    pub gpu_label: Option<String>,
    /// The annotation carrying the GPU model, where the profile asks for it that way.
    pub gpu_annotation: Option<String>,
    /// The GPU model the user asked about (`--gpu-type`).
    pub gpu_type: Option<String>,
}

/// Everything `doctor --kube` looks at. A list the client could not read is an `Err` with
/// the reason (RBAC, a resource the server does not serve).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterFacts {
    /// The API server, for messages.
    pub server: String,
    /// Every node.
    pub nodes: Result<Vec<NodeFacts>, String>,
    /// DaemonSets that look like the NVIDIA device plugin, in any namespace.
    pub device_plugins: Result<Vec<DaemonSetFacts>, String>,
    /// Names of the RuntimeClasses.
    pub runtime_classes: Result<Vec<String>, String>,
    /// Served versions of the `trainingjobs.trainctl.dev` CRD (None: not installed).
    pub crd_versions: Result<Option<Vec<String>>, String>,
    /// The trainctl operator's Deployments, in any namespace.
    pub operators: Result<Vec<DeploymentFacts>, String>,
    /// The cloud profile's needs.
    pub profile: ProfileNeeds,
}

fn check_of(name: &'static str, status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name,
        status,
        detail,
        fix: fix.map(str::to_string),
    }
}

/// A list that could not be read: a warning saying why.
fn unreadable(name: &'static str, what: &str, why: &str) -> Check {
    check_of(
        name,
        Status::Warn,
        format!("cannot list {what}: {why}"),
        Some("run doctor with credentials that may read it (kubectl auth can-i list ...)"),
    )
}

/// The nodes that advertise GPUs.
fn gpu_nodes(nodes: &[NodeFacts]) -> Vec<&NodeFacts> {
    nodes.iter().filter(|n| n.gpu_capacity > 0).collect()
}

/// The checklist for a cluster, in the order a person would fix things.
pub fn check(facts: &ClusterFacts) -> Vec<Check> {
    let nodes = facts.nodes.as_ref().map(Vec::as_slice);
    let mut checks = vec![match nodes {
        Ok(nodes) => gpu_capacity(nodes),
        Err(e) => unreadable("gpu-nodes", "nodes", e),
    }];
    if let Ok(nodes) = nodes {
        checks.push(feature_labels(nodes));
    }
    checks.push(match (&facts.device_plugins, nodes) {
        (Ok(plugins), Ok(nodes)) => device_plugin(plugins, nodes),
        (Ok(plugins), Err(_)) => device_plugin(plugins, &[]),
        (Err(e), _) => unreadable("device-plugin", "DaemonSets", e),
    });
    checks.push(match &facts.runtime_classes {
        Ok(classes) => runtime_class(classes),
        Err(e) => unreadable("runtime-class", "RuntimeClasses", e),
    });
    checks.push(match &facts.crd_versions {
        Ok(versions) => crd(versions.as_deref()),
        Err(e) => unreadable("crd", "CustomResourceDefinitions", e),
    });
    checks.push(match &facts.operators {
        Ok(deployments) => operator(deployments),
        Err(e) => unreadable("operator", "Deployments", e),
    });
    if let Ok(nodes) = nodes {
        checks.push(profile(&facts.profile, nodes));
    }
    checks
}

fn gpu_capacity(nodes: &[NodeFacts]) -> Check {
    let gpu = gpu_nodes(nodes);
    if gpu.is_empty() {
        return check_of(
            "gpu-nodes",
            Status::Fail,
            format!(
                "none of the {} node(s) advertises {GPU_RESOURCE}",
                nodes.len()
            ),
            Some("add GPU nodes, and install the NVIDIA device plugin (or the GPU Operator) so that they advertise their GPUs"),
        );
    }
    let listed: Vec<String> = gpu
        .iter()
        .map(|n| {
            let unhealthy = n.gpu_capacity.saturating_sub(n.gpu_allocatable);
            let mut text = format!(
                "{} {}/{} allocatable, {} requested",
                n.name, n.gpu_allocatable, n.gpu_capacity, n.gpu_requested
            );
            if unhealthy > 0 {
                text.push_str(&format!(", {unhealthy} unhealthy"));
            }
            if !n.ready {
                text.push_str(", NotReady");
            }
            text
        })
        .collect();
    let unhealthy: u64 = gpu
        .iter()
        .map(|n| n.gpu_capacity.saturating_sub(n.gpu_allocatable))
        .sum();
    let not_ready = gpu.iter().filter(|n| !n.ready).count();
    let (status, fix) = if unhealthy > 0 || not_ready > 0 {
        (
            Status::Warn,
            Some("unhealthy GPUs are ones the device plugin withdrew (XID errors, ECC): run `trainctl doctor` on those nodes; NotReady nodes take no pods"),
        )
    } else {
        (Status::Ok, None)
    };
    check_of("gpu-nodes", status, listed.join("; "), fix)
}

fn feature_labels(nodes: &[NodeFacts]) -> Check {
    let gpu = gpu_nodes(nodes);
    if gpu.is_empty() {
        return check_of(
            "gpu-labels",
            Status::Info,
            "no GPU nodes to label".into(),
            None,
        );
    }
    let mut missing = Vec::new();
    let mut seen = Vec::new();
    for n in &gpu {
        let absent: Vec<&str> = GFD_LABELS
            .iter()
            .copied()
            .filter(|l| !n.labels.contains_key(*l))
            .collect();
        if absent.is_empty() {
            let value = |l: &str| n.labels.get(l).cloned().unwrap_or_default();
            seen.push(format!(
                "{} {} ({} MiB, CUDA driver {})",
                n.name,
                value(GFD_LABELS[0]),
                value(GFD_LABELS[1]),
                value(GFD_LABELS[2])
            ));
        } else {
            missing.push(format!("{} lacks {}", n.name, absent.join(", ")));
        }
    }
    if missing.is_empty() {
        check_of("gpu-labels", Status::Ok, seen.join("; "), None)
    } else {
        check_of(
            "gpu-labels",
            Status::Warn,
            missing.join("; "),
            Some("install GPU Feature Discovery (part of the GPU Operator and of the device plugin's Helm chart with gfd.enabled=true): jobs select GPU models by these labels"),
        )
    }
}

fn device_plugin(plugins: &[DaemonSetFacts], nodes: &[NodeFacts]) -> Check {
    const INSTALL: &str = "helm install nvidia-device-plugin nvdp/nvidia-device-plugin -n nvidia-device-plugin --create-namespace (repo https://nvidia.github.io/k8s-device-plugin), or install the GPU Operator";
    let gpu = gpu_nodes(nodes);
    if plugins.is_empty() {
        return if gpu.is_empty() {
            check_of(
                "device-plugin",
                Status::Fail,
                "no NVIDIA device plugin DaemonSet in any namespace".into(),
                Some(INSTALL),
            )
        } else {
            check_of(
                "device-plugin",
                Status::Info,
                "no NVIDIA device plugin DaemonSet found, yet nodes advertise GPUs (the cloud manages the plugin)".into(),
                None,
            )
        };
    }
    let mut lines = Vec::new();
    let mut status = Status::Ok;
    for p in plugins {
        lines.push(format!(
            "{}/{} {}/{} ready",
            p.namespace, p.name, p.ready, p.desired
        ));
        if p.ready < p.desired {
            status = status.max(Status::Warn);
        }
    }
    let without: Vec<&str> = gpu
        .iter()
        .filter(|n| !plugins.iter().any(|p| p.ready_nodes.contains(&n.name)))
        .map(|n| n.name.as_str())
        .collect();
    if !without.is_empty() {
        status = status.max(Status::Warn);
        lines.push(format!(
            "no ready plugin pod on GPU node(s) {}",
            without.join(", ")
        ));
    }
    if plugins.iter().all(|p| p.ready == 0) {
        status = Status::Fail;
    }
    let fix = (status != Status::Ok).then_some(
        "kubectl -n <namespace> describe daemonset <name>, and the logs of its pods: `could not load NVML` there means the node's container runtime is not configured for NVIDIA",
    );
    check_of("device-plugin", status, lines.join("; "), fix)
}

fn runtime_class(classes: &[String]) -> Check {
    if classes.iter().any(|c| c == "nvidia") {
        return check_of(
            "runtime-class",
            Status::Ok,
            "RuntimeClass nvidia exists".into(),
            None,
        );
    }
    check_of(
        "runtime-class",
        Status::Warn,
        format!(
            "no RuntimeClass nvidia (classes: {})",
            if classes.is_empty() {
                "none".into()
            } else {
                classes.join(", ")
            }
        ),
        Some("fine where the NVIDIA runtime is the nodes' default (GPU Operator, most managed clusters); otherwise create RuntimeClass nvidia with handler nvidia (`--smoke` tells whether containers see the GPUs)"),
    )
}

fn crd(versions: Option<&[String]>) -> Check {
    match versions {
        Some(v) => check_of(
            "crd",
            Status::Ok,
            format!("trainingjobs.trainctl.dev serves {}", v.join(", ")),
            None,
        ),
        None => check_of(
            "crd",
            Status::Fail,
            "the TrainingJob CRD (trainingjobs.trainctl.dev) is not installed".into(),
            Some("trainctl crd | kubectl apply -f - (or helm install trainctl charts/trainctl)"),
        ),
    }
}

fn operator(deployments: &[DeploymentFacts]) -> Check {
    if deployments.is_empty() {
        return check_of(
            "operator",
            Status::Fail,
            "no trainctl operator Deployment (label app.kubernetes.io/name=trainctl-operator) in any namespace: TrainingJobs would stay Pending".into(),
            Some("helm install trainctl charts/trainctl"),
        );
    }
    let listed: Vec<String> = deployments
        .iter()
        .map(|d| {
            format!(
                "{}/{} {}/{} available",
                d.namespace, d.name, d.available, d.desired
            )
        })
        .collect();
    if deployments.iter().any(|d| d.available > 0) {
        check_of("operator", Status::Ok, listed.join("; "), None)
    } else {
        check_of(
            "operator",
            Status::Fail,
            listed.join("; "),
            Some("kubectl -n <namespace> describe deployment <name> and read its pods' logs"),
        )
    }
}

fn profile(needs: &ProfileNeeds, nodes: &[NodeFacts]) -> Check {
    let name = needs.profile.as_str();
    let Some(label) = &needs.gpu_label else {
        let how = needs
            .gpu_annotation
            .as_ref()
            .map_or("its instance type annotation".to_string(), |a| {
                format!("the pod annotation {a}")
            });
        return check_of(
            "cloud-profile",
            Status::Info,
            format!("profile {name}: the GPU model is chosen by {how}; the cloud places the pod"),
            None,
        );
    };
    let offered: Vec<&str> = gpu_nodes(nodes)
        .iter()
        .filter_map(|n| n.labels.get(label).map(String::as_str))
        .collect();
    let mut models = offered.clone();
    models.sort_unstable();
    models.dedup();
    match &needs.gpu_type {
        Some(wanted) if !offered.contains(&wanted.as_str()) => check_of(
            "cloud-profile",
            Status::Fail,
            format!(
                "profile {name}: no node offers gpu type {wanted:?} (label {label}; offered: {})",
                if models.is_empty() { "none".into() } else { models.join(", ") }
            ),
            Some("pick a gpuType that a node offers, or add a node pool with that GPU"),
        ),
        _ if models.is_empty() => check_of(
            "cloud-profile",
            Status::Warn,
            format!("profile {name}: no GPU node carries the label {label}, so jobs with a gpuType cannot be placed"),
            Some("label the GPU nodes (GPU Feature Discovery does it), or set spec.cloud.gpuNodeLabel to the label they carry"),
        ),
        _ => check_of(
            "cloud-profile",
            Status::Ok,
            format!("profile {name}: gpu types offered ({label}): {}", models.join(", ")),
            None,
        ),
    }
}
