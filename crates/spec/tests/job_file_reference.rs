//! docs/job-file.md is the job file's full reference: it has a row for every field of the
//! types (found through their JSON schema, so a new field cannot be forgotten), no row for
//! a field that does not exist, every value of each choice, and examples that parse.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use trainctl_spec::{parse_job_str, ReplicaType, TrainingJob};

mod common;

/// Every field of the job file by its path as the reference writes it (`spec.volumes[].name`,
/// `spec.replicas.<role>.count`), with the values it may take when it is a choice.
fn fields_of_the_types() -> BTreeMap<String, Vec<String>> {
    let schema = TrainingJob::json_schema();
    let mut fields = BTreeMap::new();
    collect_fields(&schema, &schema, "", &mut fields);
    // The roles share one replica spec: the reference describes its fields once.
    let mut shared = BTreeMap::new();
    for (path, values) in fields {
        let path = ReplicaType::ALL
            .iter()
            .find_map(|role| {
                path.strip_prefix(&format!("spec.replicas.{role}."))
                    .map(|rest| format!("spec.replicas.<role>.{rest}"))
            })
            .unwrap_or(path);
        shared.insert(path, values);
    }
    shared
}

/// Adds the fields under `schema` (at `prefix`) to `out`, following `$ref`s into the root's
/// `$defs` and the alternatives of optional and untagged types.
fn collect_fields(
    schema: &Value,
    root: &Value,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<String>>,
) {
    let schema = resolve(schema, root);
    for key in ["anyOf", "oneOf", "allOf"] {
        for alternative in schema[key].as_array().into_iter().flatten() {
            collect_fields(alternative, root, prefix, out);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, field) in properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            out.insert(path.clone(), choices(field, root));
            collect_fields(field, root, &path, out);
        }
    }
    if schema["items"].is_object() {
        collect_fields(&schema["items"], root, &format!("{prefix}[]"), out);
    }
}

/// The definition a `$ref` into the root's `$defs` points at, else the schema itself.
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => &root["$defs"][name],
        None => schema,
    }
}

/// The string values a field may take when it is a choice (an enum), else nothing.
fn choices(schema: &Value, root: &Value) -> Vec<String> {
    let schema = resolve(schema, root);
    let mut values: Vec<String> = schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&schema["const"]])
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for key in ["anyOf", "oneOf", "allOf"] {
        for alternative in schema[key].as_array().into_iter().flatten() {
            values.extend(choices(alternative, root));
        }
    }
    values
}

/// The reference's table rows by the field in their first column (`| `spec.shell` | ...`).
fn documented_rows() -> BTreeMap<String, String> {
    common::reference()
        .lines()
        .filter_map(|line| {
            let field = line.strip_prefix("| `")?.split_once("` |")?.0;
            Some((field.to_string(), line.to_string()))
        })
        .collect()
}

#[test]
fn the_job_file_reference_documents_every_field() {
    let rows = documented_rows();
    let missing: Vec<String> = fields_of_the_types()
        .into_keys()
        .filter(|path| !rows.contains_key(path))
        .collect();
    assert!(
        missing.is_empty(),
        "{} has no row for these fields of the TrainingJob types: {missing:?}",
        common::reference_path().display()
    );
}

#[test]
fn the_job_file_reference_documents_no_field_the_types_lack() {
    let fields = fields_of_the_types();
    let unknown: Vec<String> = documented_rows()
        .into_keys()
        .filter(|path| !fields.contains_key(path))
        .collect();
    assert!(
        unknown.is_empty(),
        "{} documents fields the TrainingJob types do not have: {unknown:?}",
        common::reference_path().display()
    );
}

#[test]
fn the_job_file_reference_names_every_value_of_each_choice() {
    let rows = documented_rows();
    let mut missing = BTreeSet::new();
    for (path, values) in fields_of_the_types() {
        let Some(row) = rows.get(&path) else { continue };
        for value in values {
            if !row.contains(&format!("`{value}`")) {
                missing.insert(format!("{path}: {value}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} leaves out these values of choice fields: {missing:?}",
        common::reference_path().display()
    );
}

#[test]
fn every_example_job_of_the_reference_parses() {
    let examples = common::reference_examples();
    assert!(examples.len() >= 2, "the reference has its examples");
    for example in examples {
        if let Err(errors) = parse_job_str("docs/job-file.md", &example) {
            panic!("an example of the reference does not parse: {errors:?}\n{example}");
        }
    }
}
