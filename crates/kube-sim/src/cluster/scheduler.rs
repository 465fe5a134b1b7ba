//! The simulated scheduler: binds pending pods to Ready nodes with room for their requests
//! (cpu, memory, `nvidia.com/gpu`), a matching nodeSelector and tolerations for their
//! `NoSchedule`/`NoExecute` taints; unschedulable pods stay Pending with a
//! `FailedScheduling` event worded as the real scheduler's. Pods of gang schedulers (volcano,
//! coscheduling) are bound a whole PodGroup at a time, and only when the test enables it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::index::{PodIndex, PodKey};
use super::{builtin, record_event, write_pod};
use crate::quantity;
use crate::registry::ResourceType;
use crate::store::{object_name, Store};

/// Resources the scheduler counts.
const RESOURCES: [&str; 3] = ["cpu", "memory", "nvidia.com/gpu"];

/// The scheduler name pods get when they name none.
const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Amounts of the counted resources, in `RESOURCES` order.
pub(super) type Amounts = [f64; 3];

/// The summed requests of a pod's containers (limits stand in for missing requests).
pub(super) fn requests(pod: &Value) -> Amounts {
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

/// Why no pod may go to a node whatever it asks (not Ready, cordoned), as the real
/// scheduler words it.
fn closed(node: &Value) -> Option<String> {
    let conditions = node["status"]["conditions"].as_array();
    let ready = conditions.and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
    if node["spec"]["unschedulable"] == true {
        Some("node(s) were unschedulable".into())
    } else if ready.is_some_and(|c| c["status"] != "True") {
        Some("node(s) had untolerated taint {node.kubernetes.io/not-ready: }".into())
    } else {
        None
    }
}

/// Whether one of `pod`'s tolerations tolerates `taint` (the API's matching rules).
fn tolerates(pod: &Value, taint: &Value) -> bool {
    let tolerations = pod["spec"]["tolerations"].as_array();
    tolerations.into_iter().flatten().any(|t| {
        let key = t["key"].as_str().unwrap_or_default();
        let effect = t["effect"].as_str().unwrap_or_default();
        let exists = t["operator"] == "Exists";
        let effect_ok = effect.is_empty() || taint["effect"] == effect;
        let key_ok = (key.is_empty() && exists) || taint["key"] == key;
        let value_ok = exists
            || t["value"].as_str().unwrap_or_default()
                == taint["value"].as_str().unwrap_or_default();
        effect_ok && key_ok && value_ok
    })
}

/// A node and what is still free on it.
#[derive(Clone)]
struct Room {
    name: String,
    labels: Value,
    taints: Vec<Value>,
    closed: Option<String>,
    free: Amounts,
}

impl Room {
    fn fits(&self, pod: &Value, need: &Amounts) -> bool {
        self.why_not(pod, need).is_empty()
    }

    /// Why `pod` cannot go here, in the real scheduler's words and filter order (nothing:
    /// it fits).
    fn why_not(&self, pod: &Value, need: &Amounts) -> Vec<String> {
        if let Some(closed) = &self.closed {
            return vec![closed.clone()];
        }
        let untolerated = self.taints.iter().find(|t| {
            matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")) && !tolerates(pod, t)
        });
        if let Some(taint) = untolerated {
            return vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint["key"].as_str().unwrap_or_default(),
                taint["value"].as_str().unwrap_or_default()
            )];
        }
        let selector = pod["spec"]["nodeSelector"].as_object();
        let labels_match = selector
            .into_iter()
            .flatten()
            .all(|(k, v)| self.labels.get(k) == Some(v));
        if !labels_match {
            return vec!["node(s) didn't match Pod's node affinity/selector".into()];
        }
        RESOURCES
            .iter()
            .zip(need.iter().zip(self.free))
            .filter(|(_, (n, f))| **n > f + 1e-9)
            .map(|(r, _)| format!("Insufficient {r}"))
            .collect()
    }

    fn take(&mut self, need: &Amounts) {
        for (free, n) in self.free.iter_mut().zip(need) {
            *free -= n;
        }
    }
}

/// The real scheduler's FailedScheduling message: how many nodes gave each reason, the
/// `count reason` texts sorted.
fn unschedulable_message(rooms: &[Room], pod: &Value, need: &Amounts) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for reason in rooms.iter().flat_map(|r| r.why_not(pod, need)) {
        *counts.entry(reason).or_default() += 1;
    }
    let mut reasons: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    reasons.sort();
    format!(
        "0/{} nodes are available: {}.",
        rooms.len(),
        reasons.join(", ")
    )
}

/// Every node with its free resources.
fn rooms(store: &Store, index: &PodIndex) -> Vec<Room> {
    store
        .list_refs(&builtin(store, "", "nodes"), None)
        .map(|node| {
            let (_, name) = object_name(node);
            let allocatable = &node["status"]["allocatable"];
            let used = index.used(&name);
            let mut free = [0.0; 3];
            for (i, r) in RESOURCES.iter().enumerate() {
                let total = allocatable.get(*r).and_then(quantity::parse).unwrap_or(0.0);
                free[i] = total - used[i];
            }
            Room {
                labels: node["metadata"]["labels"].clone(),
                taints: node["spec"]["taints"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                closed: closed(node),
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
        let pg = store.find(rt, ns, group)?;
        pg["spec"]["minMember"].as_u64().map(|n| n as usize)
    })
}

/// A write the scheduler decided on, made once the pass has looked at every pod.
enum Decision {
    /// Bind the pod to the node.
    Bind(PodKey, String),
    /// Mark the pod unschedulable with this message (once per pod).
    Unschedulable(PodKey, String),
}

fn bind(pod: &mut Value, node: &str) {
    pod["spec"]["nodeName"] = json!(node);
    set_scheduled(
        pod,
        json!({"type": "PodScheduled", "status": "True",
        "lastTransitionTime": crate::store::now()}),
    );
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

fn mark_unschedulable(store: &mut Store, pod: &mut Value, message: &str, scheduler: &str) {
    record_event(store, pod, "FailedScheduling", message, scheduler);
    set_scheduled(
        pod,
        json!({"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": message,
        "lastTransitionTime": crate::store::now()}),
    );
}

fn uid(pod: &Value) -> &str {
    pod["metadata"]["uid"].as_str().unwrap_or_default()
}

/// One scheduling pass over every pending, unbound pod.
pub(super) fn schedule(store: &mut Store, gang: bool, index: &mut PodIndex) {
    if index.unbound.is_empty() {
        return;
    }
    let pods = builtin(store, "", "pods");
    let decisions = decide(store, &pods, gang, index);
    for decision in decisions {
        let (Decision::Bind(key, _) | Decision::Unschedulable(key, _)) = &decision;
        let Some(mut pod) = store.find(&pods, &key.0, &key.1).cloned() else {
            continue;
        };
        match &decision {
            Decision::Bind(_, node) => bind(&mut pod, node),
            Decision::Unschedulable(_, message) => {
                index.reported.insert(uid(&pod).to_string());
                mark_unschedulable(store, &mut pod, message, DEFAULT_SCHEDULER);
            }
        }
        write_pod(store, pod);
    }
}

/// Where each unbound pod goes, looking at the pods by reference.
fn decide(store: &Store, pods: &ResourceType, gang: bool, index: &PodIndex) -> Vec<Decision> {
    let mut rooms = rooms(store, index);
    let mut decisions = Vec::new();
    let mut gangs: BTreeMap<(String, String), Vec<(&PodKey, &Value)>> = BTreeMap::new();
    for (_, key) in &index.unbound {
        let Some(pod) = store.find(pods, &key.0, &key.1) else {
            continue;
        };
        let scheduler = pod["spec"]["schedulerName"]
            .as_str()
            .unwrap_or(DEFAULT_SCHEDULER);
        if scheduler != DEFAULT_SCHEDULER {
            if let (true, Some(group)) = (gang, pod_group(pod)) {
                gangs.entry(group).or_default().push((key, pod));
            }
            continue;
        }
        let need = requests(pod);
        match rooms.iter_mut().find(|r| r.fits(pod, &need)) {
            Some(room) => {
                room.take(&need);
                decisions.push(Decision::Bind(key.clone(), room.name.clone()));
            }
            None if index.reported.contains(uid(pod)) => {}
            None => {
                let message = unschedulable_message(&rooms, pod, &need);
                decisions.push(Decision::Unschedulable(key.clone(), message));
            }
        }
    }
    for ((ns, group), members) in gangs {
        let needed = min_member(store, &ns, &group).unwrap_or(members.len());
        let mut placement = Vec::new();
        let mut trial = rooms.clone();
        for (key, pod) in &members {
            let need = requests(pod);
            if let Some(room) = trial.iter_mut().find(|r| r.fits(pod, &need)) {
                room.take(&need);
                placement.push(Decision::Bind((*key).clone(), room.name.clone()));
            }
        }
        if members.len() >= needed && placement.len() == members.len() {
            rooms = trial;
            decisions.extend(placement);
        }
    }
    decisions
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

    fn room(name: &str, gpus: f64, taints: Value) -> Room {
        Room {
            name: name.into(),
            labels: json!({}),
            taints: taints.as_array().cloned().unwrap_or_default(),
            closed: None,
            free: [8.0, 1e12, gpus],
        }
    }

    #[test]
    fn the_message_counts_each_nodes_reason_as_the_real_scheduler_words_it() {
        let rooms = [
            room(
                "a",
                8.0,
                json!([{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]),
            ),
            room("b", 0.0, json!([])),
            room(
                "c",
                0.0,
                json!([{"key": "soft", "value": "", "effect": "PreferNoSchedule"}]),
            ),
        ];
        let pod =
            json!({"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": 1}}}]}});
        let need = requests(&pod);
        assert_eq!(
            unschedulable_message(&rooms, &pod, &need),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: ml}, 2 Insufficient nvidia.com/gpu."
        );
    }

    #[test]
    fn tolerations_match_by_key_value_and_effect_or_exists() {
        let taint = json!({"key": "dedicated", "value": "ml", "effect": "NoSchedule"});
        let with = |t: Value| json!({"spec": {"tolerations": [t]}});
        assert!(tolerates(
            &with(json!({"key": "dedicated", "operator": "Equal", "value": "ml"})),
            &taint
        ));
        assert!(tolerates(
            &with(json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(tolerates(&with(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(
            &with(json!({"key": "dedicated", "value": "web"})),
            &taint
        ));
        assert!(!tolerates(
            &with(json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
        assert!(!tolerates(&json!({"spec": {}}), &taint));
    }
}
