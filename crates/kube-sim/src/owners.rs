//! The ownership graph of the stored objects: where the object with a uid is, and which
//! objects name a uid in their `ownerReferences`. Garbage collection looks up the
//! dependents of the object it removed here instead of scanning every stored object (which
//! made each delete cost as much as the whole store, with the store locked). A real
//! server's garbage collector keeps such a graph too.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

/// Where an object is stored: resource key ([`crate::registry::ResourceType::key`]),
/// namespace, name.
pub(crate) type Place = (String, String, String);

/// The uids of an object's owners.
pub(crate) fn owner_uids(obj: &Value) -> Vec<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["uid"].as_str()).collect())
        .unwrap_or_default()
}

/// An object's uid.
pub(crate) fn uid(obj: &Value) -> Option<&str> {
    obj["metadata"]["uid"].as_str()
}

fn place(key: &str, obj: &Value) -> Place {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        key.to_string(),
        text(&obj["metadata"]["namespace"]),
        text(&obj["metadata"]["name"]),
    )
}

/// Objects by uid, and dependents by owner uid.
#[derive(Debug, Default)]
pub(crate) struct OwnerIndex {
    places: HashMap<String, Place>,
    dependents: HashMap<String, BTreeSet<Place>>,
}

impl OwnerIndex {
    /// Adds an object stored under resource `key`.
    pub(crate) fn insert(&mut self, key: &str, obj: &Value) {
        let at = place(key, obj);
        if let Some(uid) = uid(obj) {
            self.places.insert(uid.to_string(), at.clone());
        }
        for owner in owner_uids(obj) {
            self.dependents
                .entry(owner.to_string())
                .or_default()
                .insert(at.clone());
        }
    }

    /// Removes an object stored under resource `key` (as it was stored).
    pub(crate) fn remove(&mut self, key: &str, obj: &Value) {
        let at = place(key, obj);
        if let Some(uid) = uid(obj) {
            if self.places.get(uid) == Some(&at) {
                self.places.remove(uid);
            }
        }
        for owner in owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(&at);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
    }

    /// Whether an object with this uid is stored.
    pub(crate) fn exists(&self, uid: &str) -> bool {
        self.places.contains_key(uid)
    }

    /// Where the object with this uid is stored.
    pub(crate) fn place(&self, uid: &str) -> Option<&Place> {
        self.places.get(uid)
    }

    /// The objects that name `owner_uid` as an owner.
    pub(crate) fn dependents(&self, owner_uid: &str) -> Vec<Place> {
        self.dependents
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, uid: &str, owners: &[&str]) -> Value {
        let refs: Vec<Value> = owners.iter().map(|o| json!({"uid": o})).collect();
        json!({"metadata": {"name": name, "namespace": "ns", "uid": uid, "ownerReferences": refs}})
    }

    #[test]
    fn follows_objects_and_their_owners_through_updates_and_removals() {
        let mut index = OwnerIndex::default();
        index.insert("configmaps", &obj("owner", "u1", &[]));
        index.insert("pods", &obj("a", "u2", &["u1"]));
        index.insert("pods", &obj("b", "u3", &["u1", "u9"]));
        assert!(index.exists("u1") && !index.exists("u9"));
        let names = |index: &OwnerIndex, uid| -> Vec<String> {
            index.dependents(uid).into_iter().map(|p| p.2).collect()
        };
        assert_eq!(names(&index, "u1"), ["a", "b"]);
        assert_eq!(names(&index, "u9"), ["b"]);
        assert_eq!(
            index.place("u2"),
            Some(&("pods".into(), "ns".into(), "a".into()))
        );

        // An update that drops an owner reference.
        index.remove("pods", &obj("b", "u3", &["u1", "u9"]));
        index.insert("pods", &obj("b", "u3", &["u1"]));
        assert!(names(&index, "u9").is_empty());

        index.remove("pods", &obj("a", "u2", &["u1"]));
        assert_eq!(names(&index, "u1"), ["b"]);
        assert!(!index.exists("u2"));
    }
}
