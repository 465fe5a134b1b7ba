//! Garbage collection by `ownerReferences`: dependents whose owners are all gone are
//! deleted; foreground deletion waits for dependents; orphaning strips the reference.
//! Collection runs synchronously inside the delete that triggers it, and looks only at the
//! dependents and owners of the object deleted (through [`crate::owners`]).

use serde_json::{json, Value};

use crate::owners::{owner_uids, Place};
use crate::registry::ResourceType;
use crate::store::{EventType, Store};
use crate::writes::{Propagation, FOREGROUND_FINALIZER};

fn uid(obj: &Value) -> &str {
    crate::owners::uid(obj).unwrap_or_default()
}

impl Store {
    /// The resource type and stored object at `place`, if both still exist.
    fn at(&self, (key, ns, name): &Place) -> Option<(ResourceType, Value)> {
        let rt = self.registry.all().find(|r| &r.key() == key)?.clone();
        let obj = self.find(&rt, ns, name)?.clone();
        Some((rt, obj))
    }

    /// The dependents of `owner` that still exist.
    fn dependents_of(&self, owner: &Value) -> Vec<(ResourceType, Value)> {
        self.owners
            .dependents(uid(owner))
            .iter()
            .filter_map(|place| self.at(place))
            .collect()
    }

    /// Whether any object names `owner` in its ownerReferences.
    pub(crate) fn has_dependents(&self, owner: &Value) -> bool {
        !self.owners.dependents(uid(owner)).is_empty()
    }

    /// Removes the owner reference to `owner` from every dependent.
    pub(crate) fn orphan_dependents(&mut self, owner: &Value) {
        let owner_uid = uid(owner).to_string();
        for (rt, mut dependent) in self.dependents_of(owner) {
            if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"].as_str() != Some(&owner_uid));
            }
            self.put(&rt, dependent, EventType::Modified);
        }
    }

    /// Deletes every dependent of `owner` (foreground deletion).
    pub(crate) fn delete_dependents(&mut self, owner: &Value) {
        for (rt, dependent) in self.dependents_of(owner) {
            if dependent["metadata"]["deletionTimestamp"].is_null() {
                let (ns, name) = crate::store::object_name(&dependent);
                let _ = self.delete(&rt, &ns, &name, Propagation::Background, None);
            }
        }
    }

    /// Deletes the dependents of `removed` (an object just removed) none of whose owners
    /// exist any more.
    pub(crate) fn collect_garbage(&mut self, removed: &Value) {
        for (rt, dependent) in self.dependents_of(removed) {
            let orphaned = owner_uids(&dependent)
                .iter()
                .all(|owner| !self.owners.exists(owner));
            if orphaned && dependent["metadata"]["deletionTimestamp"].is_null() {
                let (ns, name) = crate::store::object_name(&dependent);
                let _ = self.delete(&rt, &ns, &name, Propagation::Background, None);
            }
        }
    }

    /// Finishes the foreground deletion of any of these owners whose dependents are all
    /// gone.
    pub(crate) fn release_foreground_owners(&mut self, owners: &[String]) {
        for owner_uid in owners {
            let Some((rt, mut owner)) = self
                .owners
                .place(owner_uid)
                .cloned()
                .and_then(|place| self.at(&place))
            else {
                continue;
            };
            let waiting = owner["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == FOREGROUND_FINALIZER))
                && owner["metadata"]["deletionTimestamp"].is_string();
            if !waiting || self.has_dependents(&owner) {
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
            let (ns, name) = crate::store::object_name(&owner);
            let _ = self.update(&rt, &ns, &name, owner, crate::writes::Part::Main);
        }
    }
}
