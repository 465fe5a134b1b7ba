//! The test-facing control API: nodes, pod outcomes, logs, gang scheduling, faults.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cluster::{builtin, fail_pods_on_node, terminate_pod};
use crate::faults::FaultRule;
use crate::server::{KubeSim, LogLine, PodLogs, Shared};
use crate::store::{now, EventType};

/// A simulated node: capacity and labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// Node name.
    pub name: String,
    /// CPU capacity as a quantity, e.g. `8`.
    #[serde(default = "default_cpu")]
    pub cpu: String,
    /// Memory capacity as a quantity, e.g. `32Gi`.
    #[serde(default = "default_memory")]
    pub memory: String,
    /// Number of `nvidia.com/gpu`.
    #[serde(default)]
    pub gpus: u32,
    /// Node labels (nodeSelector matches them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints: pods without a matching toleration are not scheduled here
    /// (`NoSchedule`, `NoExecute`).
    #[serde(default)]
    pub taints: Vec<NodeTaint>,
    /// Whether the container runtime gives GPU containers the NVIDIA driver; without it a
    /// container asking for `nvidia.com/gpu` here prints nvidia-smi's NVML error and exits 12.
    #[serde(default = "yes")]
    pub nvidia_runtime: bool,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTaint {
    /// Taint key, e.g. `dedicated`.
    pub key: String,
    /// Taint value ("" for none).
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl NodeTaint {
    /// A `NoSchedule` taint `key=value`.
    pub fn no_schedule(key: &str, value: &str) -> Self {
        NodeTaint {
            key: key.into(),
            value: value.into(),
            effect: "NoSchedule".into(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_cpu() -> String {
    "8".into()
}

fn default_memory() -> String {
    "32Gi".into()
}

impl NodeSpec {
    /// A node with 8 cpu, 32Gi memory, no GPU and no extra labels.
    pub fn new(name: &str) -> Self {
        NodeSpec {
            name: name.into(),
            cpu: default_cpu(),
            memory: default_memory(),
            gpus: 0,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            nvidia_runtime: true,
        }
    }

    /// The Node object for this spec.
    fn object(&self) -> Value {
        let mut labels = self.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), self.name.clone());
        let capacity = json!({"cpu": self.cpu, "memory": self.memory,
            "nvidia.com/gpu": self.gpus.to_string(), "pods": "110"});
        let mut annotations = serde_json::Map::new();
        if !self.nvidia_runtime {
            annotations.insert(NO_NVIDIA_RUNTIME.into(), json!("true"));
        }
        let mut spec = json!({});
        if !self.taints.is_empty() {
            spec["taints"] = json!(self.taints);
        }
        json!({
            "metadata": {"name": self.name, "labels": labels, "annotations": annotations},
            "spec": spec,
            "status": {
                "capacity": capacity, "allocatable": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
                "nodeInfo": {"kubeletVersion": "v1.33.0-kube-sim", "operatingSystem": "linux",
                             "architecture": "amd64", "containerRuntimeVersion": "sim://1",
                             "kubeProxyVersion": "v1.33.0-kube-sim", "kernelVersion": "6.1.0",
                             "osImage": "kube-sim", "machineID": self.name,
                             "systemUUID": self.name, "bootID": self.name},
            },
        })
    }
}

/// Node annotation that marks a node whose container runtime lacks the NVIDIA runtime.
pub(crate) const NO_NVIDIA_RUNTIME: &str = "kube-sim.trainctl.dev/no-nvidia-runtime";

/// The outcome of a control call.
pub type ControlResult = Result<(), crate::error::ApiError>;

impl Shared {
    /// See [`KubeSim::add_node`].
    pub(crate) fn add_node(&self, node: &NodeSpec) -> ControlResult {
        let mut store = self.store();
        let nodes = builtin(&store, "", "nodes");
        store.create(&nodes, "", node.object())?;
        drop(store);
        self.wake.notify_one();
        Ok(())
    }

    /// See [`KubeSim::kill_node`].
    pub(crate) fn kill_node(&self, name: &str) -> ControlResult {
        let mut store = self.store();
        let nodes = builtin(&store, "", "nodes");
        let mut node = store.get(&nodes, "", name)?;
        node["status"]["conditions"] = json!([{"type": "Ready", "status": "False",
            "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status.",
            "lastHeartbeatTime": now(), "lastTransitionTime": now()}]);
        store.put(&nodes, node, EventType::Modified);
        fail_pods_on_node(&mut store, name);
        Ok(())
    }

    /// See [`KubeSim::finish_pod`].
    pub(crate) fn finish_pod(&self, ns: &str, name: &str, exit_code: i64) -> ControlResult {
        let mut store = self.store();
        let pods = builtin(&store, "", "pods");
        let mut pod = store.get(&pods, ns, name)?;
        if pod["status"]["phase"] != "Running" {
            return Err(crate::error::ApiError::bad_request(format!(
                "pod {ns}/{name} is {}, not Running",
                pod["status"]["phase"].as_str().unwrap_or("unknown")
            )));
        }
        terminate_pod(&mut pod, exit_code, None);
        store.put(&pods, pod, EventType::Modified);
        Ok(())
    }

    /// See [`KubeSim::append_log`].
    pub(crate) fn append_log(&self, ns: &str, pod: &str, container: &str, lines: &[String]) {
        let at = self.now();
        let lines = lines.iter().map(|text| LogLine {
            at,
            text: text.clone(),
        });
        append_lines(&mut self.logs(), ns, pod, container, lines);
    }

    /// See [`KubeSim::set_clock_speed`].
    pub(crate) fn set_clock_speed(&self, speed: f64) {
        self.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_speed(speed);
        self.wake.notify_one();
    }

    /// See [`KubeSim::log_bytes_served`].
    pub(crate) fn log_bytes_served(&self, ns: &str, pod: &str) -> u64 {
        let served = self.log_bytes.lock().unwrap_or_else(|e| e.into_inner());
        served
            .get(&(ns.to_string(), pod.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// See [`KubeSim::set_gang_scheduling`].
    pub(crate) fn set_gang_scheduling(&self, enabled: bool) {
        *self
            .gang_scheduling
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = enabled;
        self.wake.notify_one();
    }

    /// See [`KubeSim::drop_watches`].
    pub(crate) fn drop_watches(&self) {
        self.watch_epoch.send_modify(|epoch| *epoch += 1);
    }
}

/// Appends lines to a pod's log (for all its containers when `container` is "").
pub(crate) fn append_lines(
    logs: &mut HashMap<(String, String), PodLogs>,
    ns: &str,
    pod: &str,
    container: &str,
    lines: impl IntoIterator<Item = LogLine>,
) {
    logs.entry((ns.to_string(), pod.to_string()))
        .or_default()
        .entry(container.to_string())
        .or_default()
        .extend(lines);
}

impl KubeSim {
    /// Adds a Ready node with this capacity and labels.
    pub fn add_node(&self, node: &NodeSpec) -> ControlResult {
        self.shared.add_node(node)
    }

    /// Marks a node NotReady and fails every pod running or pending on it.
    pub fn kill_node(&self, name: &str) -> ControlResult {
        self.shared.kill_node(name)
    }

    /// Ends a running pod's containers with `exit_code` (0: Succeeded, else Failed).
    pub fn finish_pod(&self, ns: &str, name: &str, exit_code: i64) -> ControlResult {
        self.shared.finish_pod(ns, name, exit_code)
    }

    /// Appends log lines for a pod (for all its containers when `container` is ""); the
    /// lines of one call share one timestamp, the simulated time of the call.
    pub fn append_log(&self, ns: &str, pod: &str, container: &str, lines: &[&str]) {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        self.shared.append_log(ns, pod, container, &lines);
    }

    /// Lets the gang-aware stand-in bind volcano/coscheduling pods a PodGroup at a time.
    pub fn set_gang_scheduling(&self, enabled: bool) {
        self.shared.set_gang_scheduling(enabled);
    }

    /// Takes `image` out of the simulated registry: pods using it wait in `ErrImagePull`,
    /// then `ImagePullBackOff`, with the kubelet's `Failed` and `BackOff` events.
    pub fn remove_image(&self, image: &str) {
        self.shared.missing_images().insert(image.to_string());
        self.shared.wake.notify_one();
    }

    /// Adds a fault rule.
    pub fn inject_fault(&self, rule: FaultRule) {
        self.shared.faults().add(rule);
    }

    /// Adds a fault rule that fires only for requests impersonating `user`.
    pub fn inject_fault_for_user(&self, user: &str, rule: FaultRule) {
        self.shared.faults().add_for_user(user, rule);
    }

    /// Adds `latency` to every resource request.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults().set_latency(latency);
    }

    /// Delivers the live watch events of `resource` (a plural: `pods`) `delay` late, to
    /// watches opened from now on (a watch cache lagging behind the store).
    pub fn set_watch_delay(&self, resource: &str, delay: Duration) {
        self.shared.faults().set_watch_delay(resource, delay);
    }

    /// Cuts every followed log (`follow=true`) opened from now on after it has sent `bytes`
    /// bytes, mid-line if the count runs out there (None: never): a dropped connection.
    pub fn cut_log_follows_after(&self, bytes: Option<u64>) {
        self.shared.faults().set_log_cut(bytes);
    }

    /// Runs the simulated clock (log timestamps, `sinceSeconds`, pod scripts and print
    /// schedules) `speed` times as fast as the wall clock from now on.
    pub fn set_clock_speed(&self, speed: f64) {
        self.shared.set_clock_speed(speed);
    }

    /// The simulated time now.
    pub fn now(&self) -> jiff::Timestamp {
        self.shared.now()
    }

    /// Bytes of a pod's log the pods/log endpoint has sent so far, all requests together
    /// (deleting the pod does not reset the count).
    pub fn log_bytes_served(&self, ns: &str, pod: &str) -> u64 {
        self.shared.log_bytes_served(ns, pod)
    }

    /// Removes every fault rule, the added latency, the watch delays and the log cut.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Ends every open watch stream (clients see the connection close).
    pub fn drop_watches(&self) {
        self.shared.drop_watches();
    }

    /// How many resource requests of each kind the server has answered (injected faults
    /// included: a request is counted when it arrives).
    pub fn requests(&self) -> crate::requests::RequestCounts {
        self.shared.requests().clone()
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }
}
