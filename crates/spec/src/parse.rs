//! Reading a job or experiment file: YAML -> typed document (with the field path of any type error), then
//! validation, with every error located at file:line:column.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::errors::{SpecError, Violation};
use crate::experiment::{Experiment, EXPERIMENT_KIND};
use crate::experiment_validate::validate_experiment;
use crate::locate::Locations;
use crate::types::{TrainingJob, API_VERSION, KIND, MAX_REPLICAS};
use crate::validate::validate;

/// Reads, parses and validates the job file at `path`.
pub fn parse_job(path: &Path) -> Result<TrainingJob, Vec<SpecError>> {
    parse_job_str(&path.display().to_string(), &read(path, "job")?)
}

/// The text of the file at `path`, or an error that says which file (`what`) could not be read.
fn read(path: &Path, what: &str) -> Result<String, Vec<SpecError>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![SpecError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!("cannot read the {what} file: {e}"),
        }]
    })
}

/// Parses and validates job file text; `file` is only used in messages.
pub fn parse_job_str(file: &str, text: &str) -> Result<TrainingJob, Vec<SpecError>> {
    parse_located(file, text, KIND, validate)
}

/// Reads, parses and validates the experiment file at `path`.
pub fn parse_experiment(path: &Path) -> Result<Experiment, Vec<SpecError>> {
    parse_experiment_str(&path.display().to_string(), &read(path, "experiment")?)
}

/// Parses and validates experiment file text; `file` is only used in messages.
pub fn parse_experiment_str(file: &str, text: &str) -> Result<Experiment, Vec<SpecError>> {
    parse_located(file, text, EXPERIMENT_KIND, validate_experiment)
}

/// YAML -> `T` (a type error located at its field), then `check`'s violations located.
fn parse_located<T: DeserializeOwned>(
    file: &str,
    text: &str,
    kind: &str,
    check: fn(&T) -> Vec<Violation>,
) -> Result<T, Vec<SpecError>> {
    let locations = Locations::index(text);
    let at = |path: &str, message: String| {
        let (line, column) = locations.find(path);
        SpecError {
            file: file.to_string(),
            line,
            column,
            path: path.to_string(),
            message,
        }
    };

    if text.trim().is_empty() {
        return Err(vec![at(
            "",
            format!("the file is empty; a {kind} file starts with apiVersion: {API_VERSION}"),
        )]);
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    let doc: T = match serde_path_to_error::deserialize(deserializer) {
        Ok(doc) => doc,
        Err(err) => {
            let path = field_path(&err);
            let inner = err.into_inner();
            let (line, column) = match inner.location() {
                Some(l) => (l.line(), l.column()),
                None => locations.find(&path),
            };
            return Err(vec![SpecError {
                file: file.to_string(),
                line,
                column,
                message: explain(&path, &inner.to_string()),
                path,
            }]);
        }
    };

    let violations = check(&doc);
    if violations.is_empty() {
        Ok(doc)
    } else {
        Err(violations
            .into_iter()
            .map(|v| at(&v.path, v.message))
            .collect())
    }
}

/// The field path of a deserialization error, without serde_path_to_error's `.` for "root".
fn field_path(err: &serde_path_to_error::Error<serde_yaml_ng::Error>) -> String {
    let p = err.path().to_string();
    if p == "." {
        String::new()
    } else {
        p
    }
}

/// Drops serde_yaml's trailing "at line L column C" (we print the position up front) and
/// turns serde's wording into advice.
fn explain(path: &str, message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    let message = message.trim_end_matches(',');
    // serde_yaml names the field path itself; we print it up front already.
    let message = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') && !path.is_empty() => rest,
        _ => message,
    }
    .to_string();
    if path.starts_with("spec.replicas.") && path.ends_with(".count") {
        return format!("{message}: use a whole number from 0 to {MAX_REPLICAS}");
    }
    if message.contains("expected u32") || message.contains("expected u64") {
        return format!("{message}: use a whole number >= 0");
    }
    message
}
