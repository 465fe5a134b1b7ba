//! What the simulated cluster knows about pods, kept up to date from the store's change
//! stream, so that a pass looks only at the pods with work to do (unbound pending pods,
//! bound pods to start, running pods with a script) and knows what each node has in use
//! without listing every pod.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::scheduler::{requests, Amounts};
use super::{builtin, PRINT_ANNOTATION, SCRIPT_ANNOTATION};
use crate::store::{object_name, Change, EventType, Store};

/// A pod's (namespace, name).
pub(super) type PodKey = (String, String);

/// The storage key of core/v1 pods ([`crate::registry::ResourceType::key`]).
const PODS_KEY: &str = "pods./v1";

/// The pods the simulated cluster has work for, and what it remembers between passes.
#[derive(Default)]
pub(super) struct PodIndex {
    /// Pending pods without a node and not being deleted, oldest first (by the
    /// resourceVersion they were created with), as the scheduler's queue takes them.
    pub unbound: BTreeSet<(u64, PodKey)>,
    /// Pending pods bound to a node: the kubelet starts them.
    pub to_start: BTreeSet<PodKey>,
    /// Running pods with a script or print annotation: the kubelet ends them when the
    /// script says so and prints their scheduled lines.
    pub scripted: BTreeSet<PodKey>,
    /// When each running pod (by uid) started (simulated time), for scripts and printing.
    pub started: HashMap<String, jiff::Timestamp>,
    /// How many lines of its print schedule each running pod (by uid) has printed.
    pub printed: HashMap<String, u64>,
    /// Pods (by uid) already reported unschedulable.
    pub reported: HashSet<String>,
    /// How many pods the kubelet has started (numbers their pod IPs).
    pub starts: usize,
    /// The resourceVersion each pod was created with (first seen with).
    created: HashMap<PodKey, u64>,
    /// The node and requests of each bound pod that has not ended.
    held: HashMap<PodKey, (String, Amounts)>,
    /// The summed requests of `held`, per node.
    used: HashMap<String, Amounts>,
    /// Pods deleted since [`PodIndex::take_deleted`] last ran.
    deleted: Vec<PodKey>,
    /// Whether changes were missed (the receiver lagged): rebuild from the store.
    stale: bool,
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or_default()
}

/// The node a pod is bound to, if any.
pub(super) fn node_of(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

impl PodIndex {
    /// An index of the pods in `store` now.
    pub fn new(store: &Store) -> Self {
        let mut index = PodIndex::default();
        index.rebuild(store);
        index
    }

    /// Notes one received change; false when the store is gone.
    pub fn receive(&mut self, received: Result<Arc<Change>, RecvError>) -> bool {
        match received {
            Ok(change) => self.absorb(&change),
            Err(RecvError::Lagged(_)) => self.stale = true,
            Err(RecvError::Closed) => return false,
        }
        true
    }

    /// Notes every change not yet received. Call it holding the store lock: every change
    /// is sent while the lock is held, so afterwards the index matches `store`.
    pub fn catch_up(&mut self, changes: &mut broadcast::Receiver<Arc<Change>>, store: &Store) {
        loop {
            match changes.try_recv() {
                Ok(change) => self.absorb(&change),
                Err(TryRecvError::Lagged(_)) => self.stale = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if self.stale {
            self.rebuild(store);
        }
    }

    /// The requests in use on `node` by bound pods that have not ended.
    pub fn used(&self, node: &str) -> Amounts {
        self.used.get(node).copied().unwrap_or_default()
    }

    /// The pods deleted since the last call.
    pub fn take_deleted(&mut self) -> Vec<PodKey> {
        std::mem::take(&mut self.deleted)
    }

    /// Rebuilds the pod sets from the store (after missed changes, or at the start).
    fn rebuild(&mut self, store: &Store) {
        self.unbound.clear();
        self.to_start.clear();
        self.scripted.clear();
        self.held.clear();
        self.used.clear();
        let mut live = HashSet::new();
        let mut keys = HashSet::new();
        for pod in store.list_refs(&builtin(store, "", "pods"), None) {
            live.insert(pod["metadata"]["uid"].as_str().unwrap_or_default());
            let key = object_name(pod);
            keys.insert(key.clone());
            self.classify(key, pod);
        }
        self.created.retain(|key, _| keys.contains(key));
        self.started.retain(|uid, _| live.contains(uid.as_str()));
        self.printed.retain(|uid, _| live.contains(uid.as_str()));
        self.reported.retain(|uid| live.contains(uid.as_str()));
        self.stale = false;
    }

    fn absorb(&mut self, change: &Change) {
        if change.resource != PODS_KEY {
            return;
        }
        let pod = &change.object;
        let key = object_name(pod);
        self.forget(&key);
        if change.event == EventType::Deleted {
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
            self.started.remove(uid);
            self.printed.remove(uid);
            self.reported.remove(uid);
            self.created.remove(&key);
            self.deleted.push(key);
        } else {
            self.classify(key, pod);
        }
    }

    /// Removes a pod from every set and its requests from its node.
    fn forget(&mut self, key: &PodKey) {
        if let Some(created) = self.created.get(key) {
            self.unbound.remove(&(*created, key.clone()));
        }
        self.to_start.remove(key);
        self.scripted.remove(key);
        if let Some((node, need)) = self.held.remove(key) {
            if let Some(used) = self.used.get_mut(&node) {
                for (u, n) in used.iter_mut().zip(need) {
                    *u -= n;
                }
            }
        }
    }

    /// Puts a pod (not in any set) into the sets its state calls for.
    fn classify(&mut self, key: PodKey, pod: &Value) {
        let node = node_of(pod);
        let phase = phase(pod);
        if let Some(node) = node.filter(|_| !matches!(phase, "Succeeded" | "Failed")) {
            let need = requests(pod);
            let used = self.used.entry(node.to_string()).or_default();
            for (u, n) in used.iter_mut().zip(need) {
                *u += n;
            }
            self.held.insert(key.clone(), (node.to_string(), need));
        }
        match phase {
            "Pending" if node.is_some() => {
                self.to_start.insert(key);
            }
            "Pending" if pod["metadata"]["deletionTimestamp"].is_null() => {
                let version = pod["metadata"]["resourceVersion"].as_str();
                let created = *self
                    .created
                    .entry(key.clone())
                    .or_insert_with(|| version.and_then(|v| v.parse().ok()).unwrap_or(0));
                self.unbound.insert((created, key));
            }
            "Running"
                if pod["metadata"]["annotations"][SCRIPT_ANNOTATION].is_string()
                    || pod["metadata"]["annotations"][PRINT_ANNOTATION].is_string() =>
            {
                self.scripted.insert(key);
            }
            _ => {}
        }
    }
}
