//! `doctor --kube` against a real cluster: reads the facts the checks of
//! [`trainctl_gpu::kube_doctor`] judge, and runs the smoke pod whose end
//! [`trainctl_gpu::kube_smoke::explain`] tells.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use trainctl_gpu::kube_doctor::{
    ClusterFacts, DaemonSetFacts, DeploymentFacts, NodeFacts, ProfileNeeds, Taint, GPU_RESOURCE,
};
use trainctl_gpu::kube_smoke::{SmokePod, Toleration};
use trainctl_kube::profiles::{self, GpuTypeKey};
use trainctl_kube_client::client::Cluster;
use trainctl_spec::CloudProfile;

/// The image the smoke pod runs when none is given: the cloud profile's (a CUDA image that
/// the NVIDIA container runtime gives `nvidia-smi`, from a registry the cluster reaches).
pub fn smoke_image(profile: CloudProfile) -> &'static str {
    profiles::table(profile).smoke_image
}

/// The label of the operator's Deployment (charts/trainctl).
const OPERATOR_LABEL: &str = "app.kubernetes.io/name=trainctl-operator";

/// The CRD of TrainingJobs.
const CRD_NAME: &str = "trainingjobs.trainctl.dev";

/// What `profile` needs of a cluster, for `gpu_type` (if asked about).
pub fn profile_needs(profile: CloudProfile, gpu_type: Option<&str>) -> ProfileNeeds {
    let table = profiles::table(profile);
    let (gpu_label, gpu_annotation) = match table.gpu_type {
        GpuTypeKey::NodeLabel(l) => (Some(l.to_string()), None),
        GpuTypeKey::Annotation(a) => (None, Some(a.to_string())),
        GpuTypeKey::None => (None, table.instance_type_annotation.map(str::to_string)),
    };
    ProfileNeeds {
        profile: serde_json::to_value(profile)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        gpu_label,
        gpu_annotation,
        gpu_type: gpu_type.map(str::to_string),
    }
}

/// A kube error in a line: the API's message where there is one.
fn said(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.code == 404 => {
            format!("not served by this API server ({})", status.message)
        }
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    }
}

/// GPUs a pod asks for (limits stand in for missing requests, as the scheduler counts).
pub(crate) fn pod_gpus(pod: &Pod) -> u64 {
    let Some(spec) = &pod.spec else { return 0 };
    spec.containers
        .iter()
        .filter_map(|c| c.resources.as_ref())
        .filter_map(|r| {
            r.requests
                .as_ref()
                .and_then(|q| q.get(GPU_RESOURCE))
                .or_else(|| r.limits.as_ref().and_then(|q| q.get(GPU_RESOURCE)))
        })
        .filter_map(|q| q.0.parse::<u64>().ok())
        .sum()
}

pub(crate) fn ended(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The nodes, with the GPUs that the live `pods` bound to each request.
pub(crate) fn node_facts(nodes: &[Node], pods: &[Pod]) -> Vec<NodeFacts> {
    let mut requested: BTreeMap<&str, u64> = BTreeMap::new();
    for pod in pods.iter().filter(|p| !ended(p)) {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *requested.entry(node).or_default() += pod_gpus(pod);
        }
    }
    nodes
        .iter()
        .map(|n| {
            let status = n.status.as_ref();
            let gpus = |q: Option<
                &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >| {
                q.and_then(|q| q.get(GPU_RESOURCE))
                    .and_then(|q| q.0.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .is_none_or(|c| c.status == "True")
                && n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true);
            NodeFacts {
                name: n.name_any(),
                ready,
                gpu_capacity: gpus(status.and_then(|s| s.capacity.as_ref())),
                gpu_allocatable: gpus(status.and_then(|s| s.allocatable.as_ref())),
                gpu_requested: requested.get(n.name_any().as_str()).copied().unwrap_or(0),
                labels: n.labels().clone(),
                taints: n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|t| Taint {
                        key: t.key.clone(),
                        value: t.value.clone().unwrap_or_default(),
                        effect: t.effect.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The DaemonSets that look like the NVIDIA device plugin, with the nodes where their pods
/// are ready.
fn device_plugins(sets: &[DaemonSet], pods: &[Pod]) -> Vec<DaemonSetFacts> {
    sets.iter()
        .filter(|d| {
            d.name_any().contains("nvidia-device-plugin")
                || d.labels()
                    .values()
                    .any(|v| v.contains("nvidia-device-plugin"))
        })
        .map(|d| {
            let owned = |p: &&Pod| {
                p.owner_references()
                    .iter()
                    .any(|o| o.kind == "DaemonSet" && o.name == d.name_any())
                    && p.namespace() == d.namespace()
            };
            let status = d.status.as_ref();
            DaemonSetFacts {
                namespace: d.namespace().unwrap_or_default(),
                name: d.name_any(),
                desired: status.map_or(0, |s| s.desired_number_scheduled.max(0) as u32),
                ready: status.map_or(0, |s| s.number_ready.max(0) as u32),
                ready_nodes: pods
                    .iter()
                    .filter(owned)
                    .filter(|p| pod_ready(p))
                    .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                    .collect(),
            }
        })
        .collect()
}

/// Reads everything `doctor --kube` checks. Each list that fails is reported as such.
pub async fn facts(cluster: &Cluster, profile: ProfileNeeds) -> ClusterFacts {
    let client = cluster.client().clone();
    let lp = ListParams::default();
    let nodes = Api::<Node>::all(client.clone())
        .list(&lp)
        .await
        .map(|l| l.items);
    let pods = Api::<Pod>::all(client.clone())
        .list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let sets = Api::<DaemonSet>::all(client.clone()).list(&lp).await;
    let classes = Api::<RuntimeClass>::all(client.clone()).list(&lp).await;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt(CRD_NAME)
        .await;
    let operators = Api::<Deployment>::all(client)
        .list(&ListParams::default().labels(OPERATOR_LABEL))
        .await;
    ClusterFacts {
        server: cluster.url.clone(),
        nodes: nodes.map(|n| node_facts(&n, &pods)).map_err(said),
        device_plugins: sets.map(|s| device_plugins(&s.items, &pods)).map_err(said),
        runtime_classes: classes
            .map(|l| l.items.iter().map(ResourceExt::name_any).collect())
            .map_err(said),
        crd_versions: crd
            .map(|c| {
                c.map(|c| {
                    c.spec
                        .versions
                        .iter()
                        .filter(|v| v.served)
                        .map(|v| v.name.clone())
                        .collect()
                })
            })
            .map_err(said),
        operators: operators
            .map(|l| {
                l.items
                    .iter()
                    .map(|d| DeploymentFacts {
                        namespace: d.namespace().unwrap_or_default(),
                        name: d.name_any(),
                        desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
                            as u32,
                        available: d
                            .status
                            .as_ref()
                            .and_then(|s| s.available_replicas)
                            .unwrap_or(0)
                            .max(0) as u32,
                    })
                    .collect()
            })
            .map_err(said),
        profile,
    }
}

/// How the smoke pod is made.
#[derive(Debug, Clone)]
pub struct SmokeSpec {
    /// Its image.
    pub image: String,
    /// Its RuntimeClass, if any.
    pub runtime_class: Option<String>,
    /// How long to wait for it.
    pub timeout: Duration,
}

/// What the smoke pod, as last read, says.
fn smoke_pod(pod: &Pod, image: &str, timed_out: bool) -> SmokePod {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    let container = status.container_statuses.iter().flatten().next();
    let state = container.and_then(|c| c.state.clone()).unwrap_or_default();
    SmokePod {
        image: image.to_string(),
        phase: status.phase.clone().unwrap_or_else(|| "Pending".into()),
        node: spec.node_name.clone(),
        unschedulable: unschedulable.map(|c| c.message.clone().unwrap_or_default()),
        waiting: state
            .waiting
            .map(|w| (w.reason.unwrap_or_default(), w.message.unwrap_or_default())),
        exit_code: state.terminated.map(|t| t.exit_code),
        log: String::new(),
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        tolerations: spec
            .tolerations
            .iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
            })
            .collect(),
        timed_out,
    }
}

/// Whether the smoke pod has come to a verdict: ended, unschedulable, or failing to pull.
fn decided(pod: &SmokePod) -> bool {
    matches!(pod.phase.as_str(), "Succeeded" | "Failed")
        || pod.unschedulable.is_some()
        || pod.waiting.as_ref().is_some_and(|(r, _)| {
            matches!(
                r.as_str(),
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "CreateContainerError"
            )
        })
}

/// Runs a one-GPU pod with `nvidia-smi` in the cluster's namespace, waits for its verdict
/// (printing progress on stderr), reads its log, deletes it; returns what became of it.
pub async fn smoke(cluster: &Cluster, needs: &ProfileNeeds, spec: &SmokeSpec) -> Result<SmokePod> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().clone(), &cluster.namespace);
    let mut selector = serde_json::Map::new();
    if let (Some(label), Some(wanted)) = (&needs.gpu_label, &needs.gpu_type) {
        selector.insert(label.clone(), json!(wanted));
    }
    let mut annotations = serde_json::Map::new();
    if let (Some(key), Some(wanted)) = (&needs.gpu_annotation, &needs.gpu_type) {
        annotations.insert(key.clone(), json!(wanted));
    }
    let manifest: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "trainctl-doctor-smoke-",
                     "labels": {"app.kubernetes.io/name": "trainctl-doctor"},
                     "annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "runtimeClassName": spec.runtime_class,
            "nodeSelector": selector,
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "smoke", "image": spec.image, "command": ["nvidia-smi"],
                            "resources": {"limits": {GPU_RESOURCE: "1"}}}],
        },
    }))
    .context("the smoke pod's manifest")?;
    let created = pods
        .create(&PostParams::default(), &manifest)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create the smoke pod in namespace {}: {}",
                cluster.namespace,
                said(e)
            )
        })?;
    let name = created.name_any();
    eprintln!(
        "smoke: pod {}/{name} runs nvidia-smi on one GPU (waiting up to {:?})",
        cluster.namespace, spec.timeout
    );
    let started = Instant::now();
    let mut seen = smoke_pod(&created, &spec.image, false);
    loop {
        if let Some(pod) = pods
            .get_opt(&name)
            .await
            .map_err(|e| anyhow::anyhow!(said(e)))?
        {
            seen = smoke_pod(&pod, &spec.image, false);
        }
        if decided(&seen) {
            break;
        }
        if started.elapsed() >= spec.timeout {
            seen.timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if matches!(seen.phase.as_str(), "Succeeded" | "Failed") {
        seen.log = pods
            .logs(&name, &LogParams::default())
            .await
            .unwrap_or_default();
    }
    let _ = pods.delete(&name, &DeleteParams::default()).await;
    Ok(seen)
}
