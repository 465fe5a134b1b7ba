//! `top node --kube`: each node's GPUs and who holds them, counted from pod requests as Arena
//! does (the node's capacity and allocatable, the requests of its pods that have not ended).

use anyhow::{anyhow, Result};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde::Serialize;
use trainctl_kube_client::client::Cluster;

use crate::kube_doctor::{ended, node_facts, pod_gpus};

/// A pod holding GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuPod {
    /// `namespace/name`.
    pub pod: String,
    /// GPUs it requests.
    pub gpus: u64,
}

/// One node's GPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

/// Every node that advertises GPUs, with the pods holding them.
pub async fn nodes(cluster: &Cluster) -> Result<Vec<NodeGpus>> {
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
        })
        .collect())
}
