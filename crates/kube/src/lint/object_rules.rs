//! Rules on the pod specs of Kubernetes objects, one function per rule.

use serde_json::Value;

use super::pods::{array, PodSite, BATCH_KINDS};
use super::{Finding, Severity};
use crate::profiles::TENCENT_EKS;
use crate::quantity;

/// The device plugin's GPU resource.
const GPU: &str = "nvidia.com/gpu";
/// The GPU resource of Kubernetes before device plugins (removed in 1.11).
const LEGACY_GPU: &str = "alpha.kubernetes.io/nvidia-gpu";
/// Node paths of NVIDIA devices and drivers, which the device plugin mounts itself.
const DRIVER_PATHS: &[&str] = &[
    "/dev/nvidia",
    "/usr/local/nvidia",
    "/usr/lib/nvidia",
    "/usr/lib64/nvidia",
    "/var/lib/nvidia",
    "/usr/local/cuda",
];

/// Every finding of one pod spec.
pub fn check(site: &PodSite) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in [
        gpu_requests,
        fractional_gpu,
        legacy_gpu_resource,
        driver_host_path,
        restart_always,
        eks_gpu_count,
    ] {
        rule(site, &mut out);
    }
    out
}

/// `kind/name: <pod spec path>.<field>`.
fn at(site: &PodSite, field: &str) -> String {
    let spec = if site.path.is_empty() {
        "spec".to_string()
    } else {
        format!("{}.spec", site.path)
    };
    format!("{}: {spec}.{field}", site.object)
}

/// Every container of the pod with its field path.
fn containers<'a>(site: &PodSite<'a>) -> Vec<(String, &'a Value)> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(|list| {
            array(&site.spec[list])
                .iter()
                .enumerate()
                .map(move |(i, c)| (format!("{list}[{i}]"), c))
        })
        .collect()
}

/// The amount of a quantity as a number (`500m` is 0.5), if it is one.
fn amount(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => quantity::amount(s),
        _ => None,
    }
}

fn gpu_requests(site: &PodSite, out: &mut Vec<Finding>) {
    for (path, c) in containers(site) {
        let requests = &c["resources"]["requests"][GPU];
        let limits = &c["resources"]["limits"][GPU];
        if requests.is_null() {
            continue;
        }
        if limits.is_null() {
            out.push(Finding::new(
                Severity::Error,
                "gpu-requests",
                at(site, &format!("{path}.resources.requests")),
                "nvidia.com/gpu is only in requests; extended resources must be set in limits",
                "move nvidia.com/gpu to resources.limits (requests default to the limits)",
            ));
        } else if amount(requests) != amount(limits) {
            out.push(Finding::new(
                Severity::Error,
                "gpu-requests",
                at(site, &format!("{path}.resources.requests")),
                format!("nvidia.com/gpu requests ({requests}) differ from limits ({limits})"),
                "set requests equal to limits, or leave the GPU out of requests",
            ));
        }
    }
}

/// Every amount of `resource` a container sets, with the field path of its limits or
/// requests.
fn amounts_of<'a>(site: &PodSite<'a>, resource: &str) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    for (path, c) in containers(site) {
        for part in ["limits", "requests"] {
            let value = &c["resources"][part][resource];
            if !value.is_null() {
                out.push((at(site, &format!("{path}.resources.{part}")), value));
            }
        }
    }
    out
}

fn fractional_gpu(site: &PodSite, out: &mut Vec<Finding>) {
    for (path, value) in amounts_of(site, GPU) {
        if amount(value).is_some_and(|g| g.fract() != 0.0) {
            out.push(Finding::new(
                Severity::Error,
                "fractional-gpu",
                path,
                format!("nvidia.com/gpu: {value} is a fraction; the device plugin hands out whole GPUs"),
                "use a whole number of GPUs (share one with MIG or time-slicing set up in the device plugin)",
            ));
        }
    }
}

fn legacy_gpu_resource(site: &PodSite, out: &mut Vec<Finding>) {
    for (path, _) in amounts_of(site, LEGACY_GPU) {
        out.push(Finding::new(
            Severity::Error,
            "legacy-gpu-resource",
            path,
            format!("{LEGACY_GPU} was removed in Kubernetes 1.11; no node offers it"),
            "ask for nvidia.com/gpu in resources.limits (the NVIDIA device plugin)",
        ));
    }
}

fn driver_host_path(site: &PodSite, out: &mut Vec<Finding>) {
    for (i, v) in array(&site.spec["volumes"]).iter().enumerate() {
        let Some(path) = v["hostPath"]["path"].as_str() else {
            continue;
        };
        if DRIVER_PATHS.iter().any(|p| path.starts_with(p)) {
            out.push(Finding::new(
                Severity::Warning,
                "gpu-driver-hostpath",
                at(site, &format!("volumes[{i}].hostPath.path")),
                format!("mounting {path} from the node by hand breaks when the node's driver changes"),
                "remove the volume and its mount; the device plugin and the NVIDIA container toolkit mount devices and driver for pods that ask for nvidia.com/gpu",
            ));
        }
    }
}

fn restart_always(site: &PodSite, out: &mut Vec<Finding>) {
    if !BATCH_KINDS.contains(&site.kind.as_str()) {
        return;
    }
    let fix = "use restartPolicy Never or OnFailure (ExitCode on Kubeflow), so a finished replica stays finished";
    if let Some((path, policy)) = &site.replica_restart {
        if policy.as_str() == Some("Always") {
            out.push(Finding::new(
                Severity::Error,
                "restart-always",
                format!("{}: {path}", site.object),
                "restartPolicy Always restarts a replica that finished training, forever",
                fix,
            ));
        }
    }
    let policy = site.spec["restartPolicy"].as_str();
    let always = policy == Some("Always") || (site.kind == "Pod" && policy.is_none());
    if always {
        out.push(Finding::new(
            Severity::Error,
            "restart-always",
            at(site, "restartPolicy"),
            format!(
                "restartPolicy {} on a {} restarts a finished training run forever",
                policy.unwrap_or("Always (the default)"),
                site.kind
            ),
            fix,
        ));
    }
}

fn eks_gpu_count(site: &PodSite, out: &mut Vec<Finding>) {
    let Some(prefix) = TENCENT_EKS.pin_annotation_prefix else {
        return;
    };
    let Some(annotations) = site.metadata.and_then(|m| m["annotations"].as_object()) else {
        return;
    };
    if !annotations.contains_key(&format!("{prefix}gpu-count")) {
        return;
    }
    let missing: Vec<String> = ["cpu", "mem"]
        .into_iter()
        .map(|k| format!("{prefix}{k}"))
        .filter(|k| !annotations.contains_key(k))
        .collect();
    if !missing.is_empty() {
        let meta = if site.path.is_empty() {
            "metadata.annotations".to_string()
        } else {
            format!("{}.metadata.annotations", site.path)
        };
        out.push(Finding::new(
            Severity::Error,
            "eks-gpu-count",
            format!("{}: {meta}", site.object),
            format!("{prefix}gpu-count is set without {}; EKS rejects the pod", missing.join(" and ")),
            "set cpu, mem and gpu-count together to one of EKS's GPU specifications (spec.cloud.pinResources with resources cpu and memory), or leave gpu-count out",
        ));
    }
}
