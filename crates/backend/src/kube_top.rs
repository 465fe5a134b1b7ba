//! `top node --kube` and `top job --kube`: each node's GPUs and who holds them, counted from
//! pod requests as Arena does (the node's capacity and allocatable, the requests of its pods
//! that have not ended), and each job replica's pod; both with CPU and memory from
//! metrics.k8s.io and GPU utilization and memory from DCGM when those answer
//! ([`crate::kube_usage`]).

use anyhow::{anyhow, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde::Serialize;
use trainctl_kube_client::client::Cluster;

use crate::kube_doctor::{ended, node_facts, pod_gpus};
use crate::kube_usage::{self, GpuUse, Usage};

/// A pod holding GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuPod {
    /// `namespace/name`.
    pub pod: String,
    /// GPUs it requests.
    pub gpus: u64,
}

/// One node's GPUs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeGpus {
    /// The node.
    pub node: String,
    /// `nvidia.com/gpu` capacity.
    pub capacity: u64,
    /// `nvidia.com/gpu` allocatable (capacity minus unhealthy devices).
    pub allocatable: u64,
    /// GPUs requested by its pods that have not ended.
    pub allocated: u64,
    /// Those pods.
    pub pods: Vec<GpuPod>,
    /// Its CPU and memory in use (metrics.k8s.io), when known.
    pub usage: Option<Usage>,
    /// Its GPUs' utilization and memory (DCGM), when known.
    pub gpu: Option<GpuUse>,
}

/// Readings with the reasons some are missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Top<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Why readings are missing (metrics-server or Prometheus not answering).
    pub notes: Vec<String>,
}

/// The value of a reading, or its note.
fn split<T: Default>(reading: Result<T, String>, notes: &mut Vec<String>) -> T {
    reading.unwrap_or_else(|note| {
        notes.push(note);
        T::default()
    })
}

/// The DCGM series, read off the async runtime's threads (the Prometheus client blocks).
async fn dcgm(prometheus: Option<&str>) -> Result<kube_usage::DcgmSeries, String> {
    let url = prometheus.map(str::to_string);
    tokio::task::spawn_blocking(move || kube_usage::dcgm(url.as_deref()))
        .await
        .map_err(|e| format!("GPU utilization and memory: the Prometheus query stopped: {e}"))?
}

/// Every node that advertises GPUs, with the pods holding them and their usage.
pub async fn nodes_with_usage(
    cluster: &Cluster,
    prometheus: Option<&str>,
) -> Result<Top<NodeGpus>> {
    let mut notes = Vec::new();
    let usage = split(kube_usage::nodes(cluster).await, &mut notes);
    let gpus = split(dcgm(prometheus).await.map(|d| d.nodes()), &mut notes);
    let mut items = nodes(cluster).await?;
    for node in &mut items {
        node.usage = usage.get(&node.node).copied();
        node.gpu = gpus.get(&node.node).copied();
    }
    Ok(Top { items, notes })
}

/// Every node that advertises GPUs, with the pods holding them.
async fn nodes(cluster: &Cluster) -> Result<Vec<NodeGpus>> {
    let client = cluster.client().clone();
    let lp = ListParams::default();
    let nodes = Api::<Node>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| anyhow!("cannot list nodes on {}: {e}", cluster.url))?
        .items;
    let pods = Api::<Pod>::all(client)
        .list(&lp)
        .await
        .map_err(|e| anyhow!("cannot list pods on {}: {e}", cluster.url))?
        .items;
    Ok(node_facts(&nodes, &pods)
        .into_iter()
        .filter(|n| n.gpu_capacity > 0)
        .map(|n| NodeGpus {
            pods: pods
                .iter()
                .filter(|p| !ended(p) && pod_gpus(p) > 0)
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&n.name))
                .map(|p| GpuPod {
                    pod: format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()),
                    gpus: pod_gpus(p),
                })
                .collect(),
            node: n.name,
            capacity: n.gpu_capacity,
            allocatable: n.gpu_allocatable,
            allocated: n.gpu_requested,
            usage: None,
            gpu: None,
        })
        .collect())
}

/// One replica's pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaPod {
    /// The job.
    pub job: String,
    /// The replica (`worker-0`).
    pub replica: String,
    /// The pod.
    pub pod: String,
    /// Its phase.
    pub phase: String,
    /// The node it runs on.
    pub node: Option<String>,
    /// GPUs it requests.
    pub gpus: u64,
    /// Its CPU and memory in use (metrics.k8s.io), when known.
    pub usage: Option<Usage>,
    /// Its GPUs' utilization and memory (DCGM), when known.
    pub gpu: Option<GpuUse>,
}

fn label<'a>(pod: &'a Pod, key: &str) -> &'a str {
    pod.labels().get(key).map_or("", String::as_str)
}

/// The pods (not ended) of `job`, or of every trainctl job, in the cluster's namespace,
/// with their usage.
pub async fn replicas(
    cluster: &Cluster,
    job: Option<&str>,
    prometheus: Option<&str>,
) -> Result<Top<ReplicaPod>> {
    use trainctl_kube::render::{JOB_NAME, REPLICA_INDEX, REPLICA_TYPE};
    let pods = match job {
        Some(name) => {
            cluster.get(name).await?;
            cluster.job_pods(name).await?
        }
        None => {
            Api::<Pod>::namespaced(cluster.client().clone(), &cluster.namespace)
                .list(&ListParams::default().labels(JOB_NAME))
                .await
                .map_err(|e| anyhow!("cannot list pods on {}: {e}", cluster.url))?
                .items
        }
    };
    let mut notes = Vec::new();
    let usage = split(kube_usage::pods(cluster).await, &mut notes);
    let gpus = split(
        dcgm(prometheus).await.map(|d| d.pods(&cluster.namespace)),
        &mut notes,
    );
    let mut items: Vec<ReplicaPod> = pods
        .iter()
        .filter(|p| !ended(p))
        .map(|p| ReplicaPod {
            job: label(p, JOB_NAME).to_string(),
            replica: format!("{}-{}", label(p, REPLICA_TYPE), label(p, REPLICA_INDEX)),
            pod: p.name_any(),
            phase: p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into()),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            gpus: pod_gpus(p),
            usage: usage.get(&p.name_any()).copied(),
            gpu: gpus.get(&p.name_any()).copied(),
        })
        .collect();
    items.sort_by(|a, b| (&a.job, &a.replica).cmp(&(&b.job, &b.replica)));
    Ok(Top { items, notes })
}
