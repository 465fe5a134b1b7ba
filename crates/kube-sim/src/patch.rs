//! Patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! (lists merged by the merge keys of the kinds we use, with the `$patch`,
//! `$setElementOrder`, `$deleteFromPrimitiveList` and `$retainKeys` directives), and the
//! body of a server-side apply (merged like a strategic patch, see the fidelity page).

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// A PATCH request's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchType {
    /// The patch type named by a Content-Type header.
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies `patch` (already parsed) to `target` and returns the result.
pub fn apply_patch(kind: PatchType, target: &Value, patch: &Value) -> ApiResult<Value> {
    let mut doc = target.clone();
    match kind {
        PatchType::Merge => json_patch::merge(&mut doc, patch),
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &ops)
                .map_err(|e| ApiError::invalid("", "", vec![("patch".into(), e.to_string())]))?;
        }
        PatchType::Strategic | PatchType::Apply => strategic_merge(&mut doc, patch),
    }
    Ok(doc)
}

/// The key list items of field `field` are merged by, if the field is a keyed list.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => Some("containerPort"),
        "ports" => Some("port"),
        _ => None,
    }
}

/// Primitive lists that strategic merge treats as sets.
fn is_primitive_set(field: &str) -> bool {
    field == "finalizers"
}

fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch_map.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(existing), Some(remove)) = (
                target_map.get_mut(list).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                existing.retain(|v| !remove.contains(v));
            }
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(target_map.entry(key.clone()).or_insert(Value::Null), value)
            }
            Value::Array(items) => {
                let merged = merge_list(key, target_map.get(key), items);
                target_map.insert(key.clone(), merged);
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(field: &str, existing: Option<&Value>, patch_items: &[Value]) -> Value {
    let existing: Vec<Value> = existing
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if is_primitive_set(field) {
        let mut merged = existing;
        for item in patch_items {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        return Value::Array(merged);
    }
    let Some(key) = merge_key(field, patch_items) else {
        let kept: Vec<Value> = patch_items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return Value::Array(kept);
    };
    let mut merged = existing;
    for item in patch_items {
        let id = item.get(key);
        let position = merged.iter().position(|m| id.is_some() && m.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                merged.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut merged[i], item),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item);
                merged.push(fresh);
            }
        }
    }
    Value::Array(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_honours_directives() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]},
            "metadata": {"finalizers": ["f1"], "labels": {"keep": "1", "drop": "1"}}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                           {"name": "b", "$patch": "delete"}]},
            "metadata": {"finalizers": ["f2"], "labels": {"drop": null}}});
        let out = apply_patch(PatchType::Strategic, &pod, &patch).unwrap();
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(out["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            out["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
        assert_eq!(out["metadata"]["labels"], json!({"keep": "1"}));
    }

    #[test]
    fn merge_patch_replaces_lists_and_json_patch_tests_fail_as_invalid() {
        let obj = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let out = apply_patch(
            PatchType::Merge,
            &obj,
            &json!({"spec": {"containers": [{"name": "c"}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "c"}]));
        let failed = apply_patch(
            PatchType::Json,
            &obj,
            &json!([{"op": "test", "path": "/spec/x", "value": 1}]),
        );
        assert_eq!(failed.unwrap_err().code, 422);
    }
}
