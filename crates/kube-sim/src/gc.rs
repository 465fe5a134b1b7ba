//! Garbage collection by `ownerReferences`: dependents whose owners are all gone are
//! deleted; foreground deletion waits for dependents; orphaning strips the reference.
//! Collection runs synchronously inside the delete that triggers it.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::registry::ResourceType;
use crate::store::{EventType, Store};
use crate::writes::{Propagation, FOREGROUND_FINALIZER};

/// An object found by a scan: its resource, namespace and name.
type Found = (ResourceType, String, String);

fn owner_uids(obj: &Value) -> Vec<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["uid"].as_str()).collect())
        .unwrap_or_default()
}

impl Store {
    /// Objects matching `keep`, as (resource, namespace, name).
    fn scan(&self, keep: impl Fn(&Value) -> bool) -> Vec<Found> {
        self.registry
            .all()
            .flat_map(|rt| {
                let objs = self.objects.get(&rt.key());
                objs.into_iter()
                    .flat_map(|o| o.iter())
                    .filter(|(_, obj)| keep(obj))
                    .map(move |((ns, name), _)| (rt.clone(), ns.clone(), name.clone()))
            })
            .collect()
    }

    fn live_uids(&self) -> HashSet<String> {
        self.objects
            .values()
            .flat_map(|objs| objs.values())
            .filter_map(|o| o["metadata"]["uid"].as_str().map(String::from))
            .collect()
    }

    /// Whether any object names `owner` in its ownerReferences.
    pub(crate) fn has_dependents(&self, owner: &Value) -> bool {
        let uid = owner["metadata"]["uid"].as_str().unwrap_or_default();
        !self.scan(|o| owner_uids(o).contains(&uid)).is_empty()
    }

    /// Removes the owner reference to `owner` from every dependent.
    pub(crate) fn orphan_dependents(&mut self, owner: &Value) {
        let uid = owner["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for (rt, ns, name) in self.scan(|o| owner_uids(o).contains(&uid.as_str())) {
            if let Ok(mut dependent) = self.get(&rt, &ns, &name) {
                if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"].as_str() != Some(&uid));
                }
                self.put(&rt, dependent, EventType::Modified);
            }
        }
    }

    /// Deletes every dependent of `owner` (foreground deletion).
    pub(crate) fn delete_dependents(&mut self, owner: &Value) {
        let uid = owner["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let found = self.scan(|o| {
            owner_uids(o).contains(&uid.as_str()) && o["metadata"]["deletionTimestamp"].is_null()
        });
        for (rt, ns, name) in found {
            let _ = self.delete(&rt, &ns, &name, Propagation::Background, None);
        }
    }

    /// Deletes objects none of whose owners exist any more.
    pub(crate) fn collect_garbage(&mut self) {
        let live = self.live_uids();
        let orphans = self.scan(|o| {
            let owners = owner_uids(o);
            !owners.is_empty()
                && owners.iter().all(|uid| !live.contains(*uid))
                && o["metadata"]["deletionTimestamp"].is_null()
        });
        for (rt, ns, name) in orphans {
            let _ = self.delete(&rt, &ns, &name, Propagation::Background, None);
        }
    }

    /// Finishes foreground deletions whose dependents are all gone.
    pub(crate) fn release_foreground_owners(&mut self) {
        let waiting = self.scan(|o| {
            o["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == FOREGROUND_FINALIZER))
                && o["metadata"]["deletionTimestamp"].is_string()
        });
        for (rt, ns, name) in waiting {
            let Ok(mut owner) = self.get(&rt, &ns, &name) else {
                continue;
            };
            if self.has_dependents(&owner) {
                continue;
            }
            let rest: Vec<Value> = owner["metadata"]["finalizers"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter(|f| *f != FOREGROUND_FINALIZER)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            owner["metadata"]["finalizers"] = json!(rest);
            owner["metadata"]["resourceVersion"] = json!("");
            let _ = self.update(&rt, &ns, &name, owner, crate::writes::Part::Main);
        }
    }
}
