//! Schema validation on write: built-in kinds against the official JSON schemas shipped in
//! the PyPI package `kubernetes-validate` (loaded from the installed package at start, never
//! vendored), custom resources against their CRD's `openAPIV3Schema`. Failures are 422.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;

/// The Kubernetes minor the built-in schemas are taken for (k8s-openapi's `v1_33`).
pub const SCHEMA_VERSION: &str = "v1.33.0-local";

/// The `$id` the schemas use for their shared definitions file.
const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";

/// Where built-in schemas come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// Ask `python3` on PATH where `kubernetes_validate` is installed; no built-in validation
    /// when it is not.
    Auto,
    /// A `kubernetes-json-schema/<version>` directory.
    Dir(PathBuf),
    /// No validation of built-in kinds.
    Off,
}

/// Finds the schema directory of the installed `kubernetes_validate` package.
pub fn find_installed_schemas() -> anyhow::Result<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))",
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run python3: {e}"))?;
    if !output.status.success() {
        anyhow::bail!(
            "the Python package kubernetes-validate is not installed for python3 on PATH (run scripts/test, or pip install -r tests/requirements.txt): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let package = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let dir = package.join("kubernetes-json-schema").join(SCHEMA_VERSION);
    anyhow::ensure!(
        dir.join("_definitions.json").is_file(),
        "no schemas for {SCHEMA_VERSION} under {}",
        package.display()
    );
    Ok(dir)
}

/// Compiled validators, built on first use of each kind.
#[derive(Default)]
pub struct Validator {
    schema_dir: Option<PathBuf>,
    definitions: Option<Value>,
    compiled: HashMap<String, Option<Arc<jsonschema::Validator>>>,
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// `spec.containers[0].image` from the JSON pointer `/spec/containers/0/image`.
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.chars().all(|c| c.is_ascii_digit()) {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    if path.is_empty() {
        "<root>".into()
    } else {
        path
    }
}

impl Validator {
    /// A validator for built-in kinds from `source` (custom resources are always validated).
    pub fn new(source: &SchemaSource) -> anyhow::Result<Self> {
        let schema_dir = match source {
            SchemaSource::Off => None,
            SchemaSource::Dir(dir) => Some(dir.clone()),
            SchemaSource::Auto => match find_installed_schemas() {
                Ok(dir) => Some(dir),
                Err(e) => {
                    eprintln!("kube-sim: built-in kinds are not validated: {e}");
                    None
                }
            },
        };
        let definitions = match &schema_dir {
            Some(dir) => Some(read_json(&dir.join("_definitions.json"))?),
            None => None,
        };
        Ok(Validator {
            schema_dir,
            definitions,
            compiled: HashMap::new(),
        })
    }

    /// Whether built-in kinds are validated.
    pub fn validates_builtins(&self) -> bool {
        self.schema_dir.is_some()
    }

    /// Forgets compiled CRD schemas (after a CRD changed).
    pub fn forget(&mut self, rt: &ResourceType) {
        self.compiled.remove(&rt.key());
    }

    fn builtin_schema_file(&self, rt: &ResourceType) -> Option<PathBuf> {
        let dir = self.schema_dir.as_ref()?;
        let kind = rt.kind.to_lowercase();
        let file = match rt.group.split('.').next() {
            Some("") | None => format!("{kind}-{}.json", rt.version),
            Some(group) => format!("{kind}-{group}-{}.json", rt.version),
        };
        Some(dir.join(file)).filter(|p| p.is_file())
    }

    fn compile(&self, rt: &ResourceType) -> ApiResult<Option<Arc<jsonschema::Validator>>> {
        let internal = |e: String| ApiError::internal(format!("schema for {}: {e}", rt.kind));
        let mut options = jsonschema::options().with_draft(jsonschema::Draft::Draft202012);
        let schema = match (&rt.schema, self.builtin_schema_file(rt)) {
            (Some(schema), _) => schema.clone(),
            (None, Some(file)) => {
                let definitions = self.definitions.clone().unwrap_or_default();
                let resource = jsonschema::Resource::from_contents(definitions)
                    .map_err(|e| internal(e.to_string()))?;
                options = options.with_resource(DEFINITIONS_URI, resource);
                read_json(&file).map_err(|e| internal(e.to_string()))?
            }
            (None, None) => return Ok(None),
        };
        let validator = options
            .build(&schema)
            .map_err(|e| internal(e.to_string()))?;
        Ok(Some(Arc::new(validator)))
    }

    /// Checks `obj` against the schema of its kind: 422 listing each failing field.
    pub fn validate(&mut self, rt: &ResourceType, obj: &Value, name: &str) -> ApiResult<()> {
        let key = rt.key();
        if !self.compiled.contains_key(&key) {
            let compiled = self.compile(rt)?;
            self.compiled.insert(key.clone(), compiled);
        }
        let Some(validator) = self.compiled[&key].clone() else {
            return Ok(());
        };
        let causes: Vec<(String, String)> = validator
            .iter_errors(obj)
            .map(|e| (field_path(&e.instance_path.to_string()), e.to_string()))
            .collect();
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&rt.kind, name, causes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_resources_are_checked_against_their_openapi_schema() {
        let rt = ResourceType {
            group: "x.io".into(),
            version: "v1".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            kind: "Widget".into(),
            namespaced: true,
            short_names: vec![],
            status_subresource: false,
            log_subresource: false,
            schema: Some(
                json!({"type": "object", "properties": {"spec": {"type": "object",
                "required": ["size"], "properties": {"size": {"type": "integer"}}}}}),
            ),
        };
        let mut validator = Validator::new(&SchemaSource::Off).unwrap();
        assert!(validator
            .validate(&rt, &json!({"spec": {"size": 3}}), "w")
            .is_ok());
        let err = validator
            .validate(&rt, &json!({"spec": {"size": "big"}}), "w")
            .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(err.message.contains("spec.size"), "{}", err.message);
        assert_eq!(
            field_path("/spec/containers/0/image"),
            "spec.containers[0].image"
        );
    }
}
