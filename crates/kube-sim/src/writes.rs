//! The write verbs on the store: create, update (main and status), delete with finalizers,
//! with the metadata rules of the real server (uid, generateName, resourceVersion
//! preconditions, generation bumps, status only through the status subresource).

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::registry::{types_from_crd, ResourceType};
use crate::store::{now, object_name, qualified, EventType, Store};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` when the status subresource is enabled.
    Main,
    /// The `status` subresource: only `status`.
    Status,
}

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Delete the owner now, its dependents right after.
    Background,
    /// Delete the dependents first; the owner waits with a `foregroundDeletion` finalizer.
    Foreground,
    /// Keep the dependents, removing their owner reference.
    Orphan,
}

impl Propagation {
    /// Parses `propagationPolicy`; absent means Background.
    pub fn parse(text: Option<&str>) -> ApiResult<Self> {
        match text {
            None | Some("") | Some("Background") => Ok(Propagation::Background),
            Some("Foreground") => Ok(Propagation::Foreground),
            Some("Orphan") => Ok(Propagation::Orphan),
            Some(other) => Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {other:?}: must be Background, Foreground or Orphan"
            ))),
        }
    }
}

/// The finalizer that holds an owner during foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// The object without `metadata` and `status`: what `metadata.generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut rest = obj.as_object().cloned().unwrap_or_default();
    for key in ["metadata", "status", "apiVersion", "kind"] {
        rest.remove(key);
    }
    Value::Object(rest)
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// Creates an object in namespace `ns` ("" for cluster-scoped): assigns name (from
    /// generateName), uid, creationTimestamp, generation and resourceVersion.
    pub fn create(&mut self, rt: &ResourceType, ns: &str, mut obj: Value) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let name = match obj["metadata"]["name"].as_str() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => match obj["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].into();
                    format!("{prefix}{suffix}")
                }
                _ => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        vec![(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                    ))
                }
            },
        };
        if rt.namespaced {
            let body_ns = obj["metadata"]["namespace"].as_str().unwrap_or(ns);
            if body_ns != ns {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                )));
            }
            self.require_namespace(ns)?;
            obj["metadata"]["namespace"] = json!(ns);
        } else if let Some(meta) = obj["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        if self.get(rt, ns, &name).is_ok() {
            return Err(ApiError::already_exists(&qualified(rt), &name));
        }
        self.validator.validate(rt, &obj, &name)?;
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        if let Some(meta) = meta.as_object_mut() {
            meta.remove("deletionTimestamp");
            meta.remove("resourceVersion");
        }
        if rt.status_subresource {
            initial_status(rt, &mut obj);
        }
        if rt.key() == "customresourcedefinitions.apiextensions.k8s.io/v1" {
            establish_crd(&mut obj);
            self.serve_crd(&name, &obj);
        }
        Ok(self.put(rt, obj, EventType::Added))
    }

    fn require_namespace(&self, ns: &str) -> ApiResult<()> {
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .ok_or_else(ApiError::no_route)?;
        self.get(&namespaces, "", ns).map(|_| ())
    }

    /// Replaces an object (or its status). A non-empty `metadata.resourceVersion` in `new`
    /// must match the stored one (409 otherwise); `generation` bumps when the spec changed.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut new: Value,
        part: Part,
    ) -> ApiResult<Value> {
        let old = self.get(rt, ns, name)?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if let Some(body_name) = new["metadata"]["name"].as_str() {
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        match new["metadata"]["resourceVersion"].as_str() {
            Some(rv)
                if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() =>
            {
                return Err(ApiError::conflict(&qualified(rt), name));
            }
            _ => {}
        }
        let mut merged = match part {
            Part::Status => {
                let mut merged = old.clone();
                merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                merged
            }
            Part::Main => {
                if rt.status_subresource {
                    match old.get("status") {
                        Some(status) => new["status"] = status.clone(),
                        None => drop(new.as_object_mut().map(|o| o.remove("status"))),
                    }
                }
                keep_system_metadata(&old, &mut new);
                new
            }
        };
        if merged.get("status") == Some(&Value::Null) {
            merged.as_object_mut().map(|o| o.remove("status"));
        }
        merged["apiVersion"] = json!(rt.api_version());
        merged["kind"] = json!(rt.kind);
        self.validator.validate(rt, &merged, name)?;
        if spec_part(&old) != spec_part(&merged) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            merged["metadata"]["generation"] = json!(generation + 1);
        }
        if rt.key() == "customresourcedefinitions.apiextensions.k8s.io/v1" {
            establish_crd(&mut merged);
            self.serve_crd(name, &merged);
        }
        let deleting = merged["metadata"]["deletionTimestamp"].is_string();
        if deleting && finalizers(&merged).is_empty() {
            return self.finish_delete(rt, ns, name);
        }
        Ok(self.put(rt, merged, EventType::Modified))
    }

    /// Deletes an object: with finalizers (or foreground propagation) it only gets a
    /// `deletionTimestamp`; otherwise it is removed and its dependents are collected.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        propagation: Propagation,
        precondition_rv: Option<&str>,
    ) -> ApiResult<Value> {
        let mut obj = self.get(rt, ns, name)?;
        if let Some(rv) = precondition_rv {
            if Some(rv) != obj["metadata"]["resourceVersion"].as_str() {
                return Err(ApiError::conflict(&qualified(rt), name));
            }
        }
        let mut pending = finalizers(&obj);
        if propagation == Propagation::Foreground
            && !pending.iter().any(|f| f == FOREGROUND_FINALIZER)
            && self.has_dependents(&obj)
        {
            pending.push(FOREGROUND_FINALIZER.into());
        }
        if propagation == Propagation::Orphan {
            self.orphan_dependents(&obj);
        }
        if pending.is_empty() {
            return self.finish_delete(rt, ns, name);
        }
        if obj["metadata"]["deletionTimestamp"].is_null() {
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        obj["metadata"]["finalizers"] = json!(pending);
        let obj = self.put(rt, obj, EventType::Modified);
        if pending.iter().any(|f| f == FOREGROUND_FINALIZER) {
            self.delete_dependents(&obj);
            let own_uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
            self.release_foreground_owners(&[own_uid.to_string()]);
        }
        self.get(rt, ns, name).or(Ok(obj))
    }

    /// Removes an object whose finalizers are done, then what depended on it.
    fn finish_delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        let obj = self.remove(rt, ns, name)?;
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            self.drop_crd(&obj);
        }
        if rt.kind == "Namespace" && rt.group.is_empty() {
            self.empty_namespace(name);
        }
        self.collect_garbage(&obj);
        let owners: Vec<String> = crate::owners::owner_uids(&obj)
            .into_iter()
            .map(String::from)
            .collect();
        self.release_foreground_owners(&owners);
        Ok(obj)
    }

    /// Unserves a deleted CRD's resources and removes their objects.
    fn drop_crd(&mut self, crd: &Value) {
        let (_, crd_name) = object_name(crd);
        let served: Vec<ResourceType> = self
            .registry
            .all()
            .filter(|r| format!("{}.{}", r.plural, r.group) == crd_name)
            .cloned()
            .collect();
        for rt in &served {
            for obj in self.list(rt, None) {
                let (ns, name) = object_name(&obj);
                let _ = self.remove(rt, &ns, &name);
            }
        }
        self.registry.set_crd_types(&crd_name, Vec::new());
    }

    /// Serves (or re-serves) the resources of a CRD, forgetting their old schemas.
    fn serve_crd(&mut self, crd_name: &str, crd: &Value) {
        let types = types_from_crd(crd);
        for rt in &types {
            self.validator.forget(rt);
        }
        self.registry.set_crd_types(crd_name, types);
    }

    /// Removes every object of a deleted namespace.
    fn empty_namespace(&mut self, ns: &str) {
        let types: Vec<ResourceType> = self
            .registry
            .all()
            .filter(|r| r.namespaced)
            .cloned()
            .collect();
        for rt in &types {
            for obj in self.list(rt, Some(ns)) {
                let (_, name) = object_name(&obj);
                let _ = self.remove(rt, ns, &name);
            }
        }
    }
}

/// Copies what clients cannot change (uid, creationTimestamp, deletionTimestamp, generation)
/// from the stored object into the new one.
fn keep_system_metadata(old: &Value, new: &mut Value) {
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old["metadata"].get(key) {
            Some(v) => new["metadata"][key] = v.clone(),
            None => drop(new["metadata"].as_object_mut().map(|m| m.remove(key))),
        }
    }
}

/// The status a freshly created object starts with when status is a subresource.
fn initial_status(rt: &ResourceType, obj: &mut Value) {
    let status = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => json!({"phase": "Pending", "qosClass": "BestEffort"}),
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "Node") | ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => {
            obj.get("status").cloned().unwrap_or(json!({}))
        }
        _ => Value::Null,
    };
    match status {
        Value::Null => drop(obj.as_object_mut().map(|o| o.remove("status"))),
        status => obj["status"] = status,
    }
}

/// Marks a CRD Established and NamesAccepted, as the real apiextensions controller does.
fn establish_crd(crd: &mut Value) {
    let time = now();
    let condition = |kind: &str, reason: &str| json!({"type": kind, "status": "True", "reason": reason, "message": "", "lastTransitionTime": time});
    let mut status = Map::new();
    status.insert("acceptedNames".into(), crd["spec"]["names"].clone());
    status.insert(
        "conditions".into(),
        json!([
            condition("NamesAccepted", "NoConflicts"),
            condition("Established", "InitialNamesAccepted")
        ]),
    );
    let versions: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    status.insert("storedVersions".into(), json!(versions));
    crd["status"] = Value::Object(status);
}
