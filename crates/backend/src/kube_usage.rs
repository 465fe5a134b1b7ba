//! What a cluster's pods and nodes use now: CPU and memory from `metrics.k8s.io` (served by
//! metrics-server), GPU utilization and memory from the DCGM exporter's series
//! (`DCGM_FI_DEV_GPU_UTIL`, `DCGM_FI_DEV_FB_USED`) in Prometheus. Either source may be
//! missing: each reading is then absent and a note says why.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use trainctl_kube_client::client::Cluster;

use crate::prometheus::{self, Sample};

/// How long a Prometheus query may take.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

/// CPU and memory in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// CPU in millicores.
    pub cpu_millicores: u64,
    /// Memory (working set) in MiB.
    pub memory_mib: u64,
}

/// The GPUs of a pod or node as DCGM reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GpuUse {
    /// Mean utilization over its GPUs, in percent.
    pub utilization_pct: Option<f64>,
    /// Framebuffer memory used, summed over its GPUs, in MiB.
    pub memory_mib: Option<u64>,
}

fn metrics_resource(plural: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The usage of one `usage` object (`{"cpu": "250m", "memory": "1Gi"}`).
fn usage_of(usage: &Value) -> Usage {
    let amount = |key: &str| {
        usage[key]
            .as_str()
            .and_then(trainctl_spec::quantity_amount)
            .unwrap_or(0.0)
    };
    Usage {
        cpu_millicores: (amount("cpu") * 1000.0).round() as u64,
        memory_mib: (amount("memory") / 1_048_576.0).round() as u64,
    }
}

/// A pod's usage: its containers' summed.
fn pod_usage(object: &DynamicObject) -> Usage {
    let containers = object.data["containers"].as_array();
    containers
        .into_iter()
        .flatten()
        .map(|c| usage_of(&c["usage"]))
        .fold(Usage::default(), |a, b| Usage {
            cpu_millicores: a.cpu_millicores + b.cpu_millicores,
            memory_mib: a.memory_mib + b.memory_mib,
        })
}

/// Why metrics.k8s.io gave nothing, in a note.
fn metrics_note(e: kube::Error) -> String {
    let why = match e {
        kube::Error::Api(status) if status.code == 404 => {
            "is not served (install metrics-server)".to_string()
        }
        kube::Error::Api(status) => format!("answered {}: {}", status.code, status.message),
        other => format!("does not answer: {other}"),
    };
    format!("CPU and memory: metrics.k8s.io {why}")
}

/// Each pod's usage in the cluster's namespace, by pod name.
pub async fn pods(cluster: &Cluster) -> Result<BTreeMap<String, Usage>, String> {
    let resource = metrics_resource("pods", "PodMetrics");
    let api = Api::namespaced_with(cluster.client().clone(), &cluster.namespace, &resource);
    usage_by_name(api, pod_usage).await
}

/// Each node's usage, by node name.
pub async fn nodes(cluster: &Cluster) -> Result<BTreeMap<String, Usage>, String> {
    let resource = metrics_resource("nodes", "NodeMetrics");
    let api = Api::all_with(cluster.client().clone(), &resource);
    usage_by_name(api, |n| usage_of(&n.data["usage"])).await
}

/// Lists the metrics objects of `api` and reads each one's usage with `usage`, by name.
async fn usage_by_name(
    api: Api<DynamicObject>,
    usage: impl Fn(&DynamicObject) -> Usage,
) -> Result<BTreeMap<String, Usage>, String> {
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(metrics_note)?;
    Ok(list
        .items
        .iter()
        .map(|o| (o.name_any(), usage(o)))
        .collect())
}

/// The DCGM exporter's series now: utilization and framebuffer used, one sample per GPU.
#[derive(Debug, Clone, Default)]
pub struct DcgmSeries {
    /// `DCGM_FI_DEV_GPU_UTIL` (percent).
    pub utilization: Vec<Sample>,
    /// `DCGM_FI_DEV_FB_USED` (MiB).
    pub memory: Vec<Sample>,
}

/// Labels naming a GPU's pod (the exporter's, or Prometheus' when it renames clashing ones).
const POD_LABELS: [&str; 2] = ["pod", "exported_pod"];
const NAMESPACE_LABELS: [&str; 2] = ["namespace", "exported_namespace"];
/// Labels naming a GPU's node.
const NODE_LABELS: [&str; 3] = ["Hostname", "kubernetes_node", "node"];

/// Reads the DCGM series from Prometheus at `url`; the note says why when it cannot.
pub fn dcgm(url: Option<&str>) -> Result<DcgmSeries, String> {
    let Some(url) = url else {
        return Err(
            "GPU utilization and memory: pass --prometheus URL (a Prometheus that scrapes the DCGM exporter)"
                .into(),
        );
    };
    let read = |metric: &str| {
        prometheus::query(url, metric, PROMETHEUS_TIMEOUT)
            .map_err(|e| format!("GPU utilization and memory: Prometheus does not answer: {e:#}"))
    };
    let series = DcgmSeries {
        utilization: read("DCGM_FI_DEV_GPU_UTIL")?,
        memory: read("DCGM_FI_DEV_FB_USED")?,
    };
    if series.utilization.is_empty() && series.memory.is_empty() {
        return Err(format!(
            "GPU utilization and memory: Prometheus at {url} has no DCGM_FI_DEV_GPU_UTIL series (is the DCGM exporter scraped?)"
        ));
    }
    Ok(series)
}

impl DcgmSeries {
    /// The GPUs of each key `key` gives a sample (mean utilization, summed memory).
    fn by<K: Ord>(&self, key: impl Fn(&Sample) -> Option<K>) -> BTreeMap<K, GpuUse> {
        let mut out: BTreeMap<K, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for s in &self.utilization {
            if let Some(k) = key(s) {
                out.entry(k).or_default().0.push(s.value);
            }
        }
        for s in &self.memory {
            if let Some(k) = key(s) {
                out.entry(k).or_default().1.push(s.value);
            }
        }
        out.into_iter()
            .map(|(k, (util, memory))| {
                let utilization_pct =
                    (!util.is_empty()).then(|| util.iter().sum::<f64>() / util.len() as f64);
                let memory_mib = (!memory.is_empty()).then(|| memory.iter().sum::<f64>() as u64);
                (
                    k,
                    GpuUse {
                        utilization_pct,
                        memory_mib,
                    },
                )
            })
            .collect()
    }

    /// GPU use by pod name, of the pods in `namespace`.
    pub fn pods(&self, namespace: &str) -> BTreeMap<String, GpuUse> {
        self.by(|s| {
            (s.label(&NAMESPACE_LABELS) == Some(namespace))
                .then(|| s.label(&POD_LABELS).map(str::to_string))
                .flatten()
        })
    }

    /// GPU use by node name.
    pub fn nodes(&self) -> BTreeMap<String, GpuUse> {
        self.by(|s| s.label(&NODE_LABELS).map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(value: f64, labels: &[(&str, &str)]) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    #[test]
    fn gpu_use_is_the_mean_utilization_and_summed_memory_of_each_pods_gpus() {
        let series = DcgmSeries {
            utilization: vec![
                sample(
                    90.0,
                    &[("pod", "a"), ("namespace", "ml"), ("Hostname", "n1")],
                ),
                sample(
                    70.0,
                    &[("pod", "a"), ("namespace", "ml"), ("Hostname", "n1")],
                ),
                sample(
                    5.0,
                    &[
                        ("exported_pod", "b"),
                        ("exported_namespace", "ml"),
                        ("Hostname", "n2"),
                    ],
                ),
                sample(
                    50.0,
                    &[("pod", "a"), ("namespace", "other"), ("Hostname", "n2")],
                ),
            ],
            memory: vec![
                sample(
                    1000.0,
                    &[("pod", "a"), ("namespace", "ml"), ("Hostname", "n1")],
                ),
                sample(
                    24.0,
                    &[("pod", "a"), ("namespace", "ml"), ("Hostname", "n1")],
                ),
            ],
        };
        let pods = series.pods("ml");
        assert_eq!(pods["a"].utilization_pct, Some(80.0));
        assert_eq!(pods["a"].memory_mib, Some(1024));
        assert_eq!(pods["b"].memory_mib, None);
        assert_eq!(pods.len(), 2, "the other namespace's pod a is not ours");
        assert_eq!(series.nodes()["n2"].utilization_pct, Some(27.5));
    }

    #[test]
    fn quantities_become_millicores_and_mib() {
        let usage = usage_of(&serde_json::json!({"cpu": "1500m", "memory": "2Gi"}));
        assert_eq!(
            usage,
            Usage {
                cpu_millicores: 1500,
                memory_mib: 2048
            }
        );
        let nanocores = usage_of(&serde_json::json!({"cpu": "250000000n", "memory": "512Ki"}));
        assert_eq!(
            nanocores,
            Usage {
                cpu_millicores: 250,
                memory_mib: 1
            }
        );
    }
}
