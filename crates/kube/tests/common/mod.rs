//! Shared helpers of the trainctl-kube tests: job files, other projects' CRDs, and the Python
//! validator.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use trainctl_spec::TrainingJob;

/// This crate's directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A seed job file under tests/jobs.
pub fn seed(name: &str) -> TrainingJob {
    let path = crate_dir().join("tests/jobs").join(name);
    trainctl_spec::parse_job(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

/// A job from YAML text (validated like a job file).
pub fn job(yaml: &str) -> TrainingJob {
    trainctl_spec::parse_job_str("test.yaml", yaml).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Other projects' CRDs, the repository's test data (`tests/crds`, sources in SOURCES.md).
pub fn crds_dir() -> PathBuf {
    crate_dir().join("../../tests/crds")
}

/// `python3` from PATH, checked to have the test packages.
pub fn python() -> Command {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes_validate, jsonschema, yaml"])
        .output();
    match probe {
        Ok(o) if o.status.success() => Command::new("python3"),
        _ => panic!(
            "python3 on PATH lacks kubernetes-validate/jsonschema/PyYAML: run scripts/test \
             (it installs tests/requirements.txt into .venv and puts it first on PATH)"
        ),
    }
}

/// Runs tests/validate_objects.py: built-in kinds with kubernetes-validate --strict for
/// every Kubernetes version given, other kinds with their CRD's schema. Returns whether all
/// passed, and the report.
pub fn run_validator(files: &[PathBuf], versions: &[&str]) -> (bool, String) {
    let schema = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        schema.path(),
        serde_json::to_string(&TrainingJob::json_schema()).unwrap(),
    )
    .unwrap();
    let mut cmd = python();
    cmd.arg(crate_dir().join("tests/validate_objects.py"))
        .arg("--crds")
        .arg(crds_dir())
        .arg("--crds")
        .arg(crate_dir().join("tests/schemas"))
        .arg("--trainingjob-schema")
        .arg(schema.path());
    for v in versions {
        cmd.args(["--kubernetes-version", v]);
    }
    let out = cmd.args(files).output().expect("run validate_objects.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// Like [`run_validator`], but panics with the report unless everything passed.
pub fn validate(files: &[PathBuf], versions: &[&str]) -> String {
    let (ok, report) = run_validator(files, versions);
    assert!(ok, "validation failed:\n{report}");
    report
}

/// Writes objects as YAML to `dir/name`; returns the path.
pub fn write_yaml(dir: &Path, name: &str, objects: &[Value]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, trainctl_kube::to_yaml(objects).unwrap()).unwrap();
    path
}

/// The env of a container as name -> value (valueFrom entries left out).
pub fn env_of(container: &Value) -> std::collections::BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}
