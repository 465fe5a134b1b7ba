//! Object storage: JSON objects per resource, one global resourceVersion counter, and a
//! bounded history of change events that watches replay from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::owners::OwnerIndex;
use crate::registry::{Registry, ResourceType};
use crate::validation::Validator;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as stored in the history and sent to watchers.
#[derive(Debug)]
pub struct Change {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage key of the resource ([`ResourceType::key`]).
    pub resource: String,
    /// What happened.
    pub event: EventType,
    /// The object after the change (before it, for deletions, with the new resourceVersion).
    pub object: Value,
}

/// Changes already made (oldest first) and a receiver of the ones to come.
pub type ChangesSince = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// The objects of one resource, by (namespace, name); cluster-scoped objects use "".
type Objects = BTreeMap<(String, String), Value>;

/// All stored objects and their change history.
pub struct Store {
    /// The served resources; CRDs add to it.
    pub registry: Registry,
    pub(crate) objects: HashMap<String, Objects>,
    /// Who owns what, kept in step with `objects` by `put` and `remove`.
    pub(crate) owners: OwnerIndex,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// resourceVersion of the newest change dropped from the history (0: none dropped).
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
    /// Schema validation on write.
    pub(crate) validator: Validator,
}

/// The `namespace/name` of an object, for messages and keys.
pub fn object_name(obj: &Value) -> (String, String) {
    let meta = &obj["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (text(&meta["namespace"]), text(&meta["name"]))
}

/// The resource name as it appears in messages: `pods` or `jobs.batch`.
pub fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

/// The current time as the API's RFC 3339 seconds (`2024-01-02T03:04:05Z`).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Store {
    /// An empty store keeping the last `history_limit` changes for watches.
    pub fn new(history_limit: usize, validator: Validator) -> Self {
        let (changes, _) = broadcast::channel(history_limit.max(1024));
        Store {
            registry: Registry::default(),
            objects: HashMap::new(),
            owners: OwnerIndex::default(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            changes,
            validator,
        }
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The stored object, or 404.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.find(rt, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&qualified(rt), name))
    }

    /// The objects of a resource, in one namespace or (None) all of them.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.list_refs(rt, ns).cloned().collect()
    }

    /// The objects of a type by reference, in one namespace or all, in name order.
    pub fn list_refs<'a>(
        &'a self,
        rt: &ResourceType,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        let Some(objs) = self.objects.get(&rt.key()) else {
            return Box::new(std::iter::empty());
        };
        match ns {
            Some(ns) => Box::new(
                objs.range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns)
                    .map(|(_, v)| v),
            ),
            None => Box::new(objs.values()),
        }
    }

    /// The stored object by reference, if there is one.
    pub fn find(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&rt.key())
            .and_then(|objs| objs.get(&(ns.to_string(), name.to_string())))
    }

    /// Stores `obj` as it is (metadata already complete) and records the change.
    pub fn put(&mut self, rt: &ResourceType, mut obj: Value, event: EventType) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let key = object_name(&obj);
        let rt_key = rt.key();
        if let Some(old) = self
            .objects
            .entry(rt_key.clone())
            .or_default()
            .insert(key, obj.clone())
        {
            self.owners.remove(&rt_key, &old);
        }
        self.owners.insert(&rt_key, &obj);
        self.record(rt, event, obj.clone());
        obj
    }

    /// Removes an object and records its deletion; returns the object as last seen.
    pub fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        let mut obj = self
            .objects
            .get_mut(&rt.key())
            .and_then(|objs| objs.remove(&(ns.to_string(), name.to_string())))
            .ok_or_else(|| ApiError::not_found(&qualified(rt), name))?;
        self.owners.remove(&rt.key(), &obj);
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(rt, EventType::Deleted, obj.clone());
        Ok(obj)
    }

    fn record(&mut self, rt: &ResourceType, event: EventType, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            resource: rt.key(),
            event,
            object,
        });
        if self.history.len() == self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        self.history.push_back(change.clone());
        let _ = self.changes.send(change);
    }

    /// Changes after `since` (oldest first) and a receiver for the ones still to come, taken
    /// together so that none is missed or repeated; 410 when the history no longer reaches back.
    pub fn changes_since(&self, since: u64) -> ApiResult<ChangesSince> {
        if since < self.compacted {
            return Err(ApiError::gone(format!(
                "too old resource version: {since} ({})",
                self.compacted + 1
            )));
        }
        let past = self
            .history
            .iter()
            .filter(|c| c.rv > since)
            .cloned()
            .collect();
        Ok((past, self.changes.subscribe()))
    }

    /// A receiver of every change from now on (the simulated cluster listens with it).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin_types;
    use crate::validation::SchemaSource;

    fn configmaps() -> ResourceType {
        builtin_types()
            .into_iter()
            .find(|r| r.plural == "configmaps")
            .unwrap()
    }

    #[test]
    fn history_older_than_the_ring_is_gone() {
        let mut store = Store::new(2, Validator::new(&SchemaSource::Off).unwrap());
        let rt = configmaps();
        for name in ["a", "b", "c"] {
            store.put(
                &rt,
                json!({"metadata": {"namespace": "d", "name": name}}),
                EventType::Added,
            );
        }
        assert_eq!(store.changes_since(0).unwrap_err().code, 410);
        let (past, _) = store.changes_since(1).unwrap();
        let rvs: Vec<u64> = past.iter().map(|c| c.rv).collect();
        assert_eq!(rvs, vec![2, 3]);
    }
}
