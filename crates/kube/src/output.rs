//! Printing rendered objects: multi-document YAML, or a `v1` List in JSON. Keys are sorted
//! so the output is the same whatever serde_json features the build enables. A TrainingJob
//! keeps its fields' order.

use serde_json::{json, Map, Value};
use trainctl_spec::{Experiment, TrainingJob};

/// `value` with every object's keys in sorted order.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k.clone(), sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The objects as multi-document YAML (`---` between documents).
pub fn to_yaml(objects: &[Value]) -> Result<String, serde_yaml_ng::Error> {
    let docs = objects
        .iter()
        .map(|o| serde_yaml_ng::to_string(&sorted(o)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(docs.join("---\n"))
}

/// The objects as a pretty-printed `v1` List.
pub fn to_json_list(objects: &[Value]) -> String {
    let list = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": objects.iter().map(sorted).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&list).unwrap_or_default()
}

/// A TrainingJob as a YAML document in its fields' order, with GPU counts as the whole
/// numbers they are (`gpu: 1`, not the `1.0` of their floating-point field).
pub fn job_document(job: &TrainingJob) -> serde_yaml_ng::Value {
    let mut doc = serde_yaml_ng::to_value(job).unwrap_or_default();
    if let Some(spec) = doc.get_mut("spec") {
        whole_gpus(spec);
    }
    doc
}

/// An Experiment as a YAML document in its fields' order, its trial template's GPU counts
/// whole numbers as in [`job_document`].
pub fn experiment_document(experiment: &Experiment) -> serde_yaml_ng::Value {
    let mut doc = serde_yaml_ng::to_value(experiment).unwrap_or_default();
    let template = doc
        .get_mut("spec")
        .and_then(|spec| spec.get_mut("trialTemplate"))
        .and_then(|t| t.get_mut("spec"));
    if let Some(spec) = template {
        whole_gpus(spec);
    }
    doc
}

/// Writes the replicas' GPU counts of a TrainingJob spec as whole numbers.
fn whole_gpus(spec: &mut serde_yaml_ng::Value) {
    let replicas = spec
        .get_mut("replicas")
        .and_then(serde_yaml_ng::Value::as_mapping_mut);
    for (_, replica) in replicas.into_iter().flatten() {
        let gpu = replica
            .get_mut("resources")
            .and_then(|resources| resources.get_mut("gpu"));
        if let Some(gpu) = gpu {
            if let Some(whole) = gpu.as_f64().filter(|g| g.fract() == 0.0 && *g >= 0.0) {
                *gpu = serde_yaml_ng::Value::from(whole as u64);
            }
        }
    }
}
