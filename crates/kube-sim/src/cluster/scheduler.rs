//! The simulated scheduler: binds pending pods to Ready nodes with room for their requests
//! (cpu, memory, `nvidia.com/gpu`) and a matching nodeSelector; unschedulable pods stay
//! Pending with a `FailedScheduling` event. Pods of gang schedulers (volcano,
//! coscheduling) are bound a whole PodGroup at a time, and only when the test enables it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use super::{builtin, record_event, write_pod};
use crate::quantity;
use crate::store::{object_name, Store};

/// Resources the scheduler counts.
const RESOURCES: [&str; 3] = ["cpu", "memory", "nvidia.com/gpu"];

/// The scheduler name pods get when they name none.
const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Amounts of the counted resources, in `RESOURCES` order.
type Amounts = [f64; 3];

/// The summed requests of a pod's containers (limits stand in for missing requests).
fn requests(pod: &Value) -> Amounts {
    let mut total = [0.0; 3];
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let resources = &container["resources"];
        for (i, name) in RESOURCES.iter().enumerate() {
            let amount = resources["requests"]
                .get(*name)
                .or_else(|| resources["limits"].get(*name));
            total[i] += amount.and_then(quantity::parse).unwrap_or(0.0);
        }
    }
    total
}

fn is_ready(node: &Value) -> bool {
    let conditions = node["status"]["conditions"].as_array();
    let ready = conditions.and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    ready.is_none_or(|c| c["status"] == "True") && node["spec"]["unschedulable"] != true
}

fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    )
}

/// A node and what is still free on it.
#[derive(Clone)]
struct Room {
    name: String,
    labels: Value,
    free: Amounts,
}

impl Room {
    fn fits(&self, pod: &Value, need: &Amounts) -> bool {
        let selector = pod["spec"]["nodeSelector"].as_object();
        let labels_match = selector
            .into_iter()
            .flatten()
            .all(|(k, v)| self.labels.get(k) == Some(v));
        labels_match && need.iter().zip(self.free).all(|(n, f)| *n <= f + 1e-9)
    }

    fn take(&mut self, need: &Amounts) {
        for (free, n) in self.free.iter_mut().zip(need) {
            *free -= n;
        }
    }
}

/// The Ready nodes with their free resources.
fn rooms(store: &Store) -> Vec<Room> {
    let nodes = store.list(&builtin(store, "", "nodes"), None);
    let pods = store.list(&builtin(store, "", "pods"), None);
    let mut used: HashMap<String, Amounts> = HashMap::new();
    for pod in pods.iter().filter(|p| !is_terminal(p)) {
        if let Some(node) = pod["spec"]["nodeName"].as_str() {
            let entry = used.entry(node.to_string()).or_insert([0.0; 3]);
            for (u, r) in entry.iter_mut().zip(requests(pod)) {
                *u += r;
            }
        }
    }
    nodes
        .iter()
        .filter(|n| is_ready(n))
        .map(|node| {
            let (_, name) = object_name(node);
            let allocatable = &node["status"]["allocatable"];
            let mut free = [0.0; 3];
            for (i, r) in RESOURCES.iter().enumerate() {
                let total = allocatable.get(*r).and_then(quantity::parse).unwrap_or(0.0);
                free[i] = total - used.get(&name).map_or(0.0, |u| u[i]);
            }
            Room {
                labels: node["metadata"]["labels"].clone(),
                name,
                free,
            }
        })
        .collect()
}

/// The PodGroup a gang-scheduled pod belongs to, as (namespace, group name).
fn pod_group(pod: &Value) -> Option<(String, String)> {
    let meta = &pod["metadata"];
    let group = meta["annotations"]["scheduling.k8s.io/group-name"]
        .as_str()
        .or_else(|| meta["labels"]["scheduling.x-k8s.io/pod-group"].as_str())
        .or_else(|| meta["labels"]["pod-group.scheduling.sigs.k8s.io"].as_str())?;
    Some((object_name(pod).0, group.to_string()))
}

/// `spec.minMember` of the PodGroup object (volcano or coscheduling), if one is stored.
fn min_member(store: &Store, ns: &str, group: &str) -> Option<usize> {
    let kinds = [
        ("scheduling.volcano.sh", "v1beta1"),
        ("scheduling.x-k8s.io", "v1alpha1"),
    ];
    kinds.iter().find_map(|(g, v)| {
        let rt = store.registry.find(g, v, "podgroups")?;
        let pg = store.get(rt, ns, group).ok()?;
        pg["spec"]["minMember"].as_u64().map(|n| n as usize)
    })
}

fn bind(store: &mut Store, mut pod: Value, node: &str) {
    pod["spec"]["nodeName"] = json!(node);
    set_scheduled(
        &mut pod,
        json!({"type": "PodScheduled", "status": "True",
        "lastTransitionTime": crate::store::now()}),
    );
    write_pod(store, pod);
}

fn set_scheduled(pod: &mut Value, condition: Value) {
    let mut conditions: Vec<Value> = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != "PodScheduled");
    conditions.push(condition);
    pod["status"]["conditions"] = json!(conditions);
}

fn report_unschedulable(
    store: &mut Store,
    mut pod: Value,
    message: &str,
    scheduler: &str,
    reported: &mut HashSet<String>,
) {
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !reported.insert(uid) {
        return;
    }
    record_event(store, &pod, "FailedScheduling", message, scheduler);
    set_scheduled(
        &mut pod,
        json!({"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": message,
        "lastTransitionTime": crate::store::now()}),
    );
    write_pod(store, pod);
}

/// One scheduling pass over every pending, unbound pod.
pub(super) fn schedule(store: &mut Store, gang: bool, reported: &mut HashSet<String>) {
    let pods = store.list(&builtin(store, "", "pods"), None);
    let pending: Vec<Value> = pods
        .into_iter()
        .filter(|p| {
            p["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
                && p["status"]["phase"] == "Pending"
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect();
    if pending.is_empty() {
        return;
    }
    let mut rooms = rooms(store);
    let mut gangs: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for pod in pending {
        let scheduler = pod["spec"]["schedulerName"]
            .as_str()
            .unwrap_or(DEFAULT_SCHEDULER)
            .to_string();
        if scheduler != DEFAULT_SCHEDULER {
            if let (true, Some(group)) = (gang, pod_group(&pod)) {
                gangs.entry(group).or_default().push(pod);
            }
            continue;
        }
        let need = requests(&pod);
        match rooms.iter_mut().find(|r| r.fits(&pod, &need)) {
            Some(room) => {
                room.take(&need);
                let node = room.name.clone();
                bind(store, pod, &node);
            }
            None => {
                let message = format!(
                    "0/{} nodes are available: insufficient resources or node selector mismatch.",
                    rooms.len()
                );
                report_unschedulable(store, pod, &message, DEFAULT_SCHEDULER, reported);
            }
        }
    }
    for ((ns, group), members) in gangs {
        let needed = min_member(store, &ns, &group).unwrap_or(members.len());
        let mut placement = Vec::new();
        let mut trial = rooms.clone();
        for pod in &members {
            let need = requests(pod);
            if let Some(room) = trial.iter_mut().find(|r| r.fits(pod, &need)) {
                room.take(&need);
                placement.push((pod.clone(), room.name.clone()));
            }
        }
        if members.len() >= needed && placement.len() == members.len() {
            rooms = trial;
            for (pod, node) in placement {
                bind(store, pod, &node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let pod = json!({"spec": {"containers": [
            {"resources": {"limits": {"nvidia.com/gpu": 2, "cpu": "1"}, "requests": {"cpu": "500m"}}},
            {"resources": {"requests": {"memory": "1Gi"}}}]}});
        assert_eq!(requests(&pod), [0.5, 1024f64.powi(3), 2.0]);
    }
}
