//! Running the Python scripts of `tests/py` with the test packages (tensorboard, tensorboardX).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A script under `tests/py`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Runs `python3 tests/py/<name> ARGS` (python3 from PATH, as `scripts/test` sets it up) and
/// parses its stdout as JSON.
pub fn python_json(name: &str, args: &[&Path]) -> Value {
    let out = Command::new("python3")
        .arg(script(name))
        .args(args)
        .output()
        .expect("python3 on PATH");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!(
            "the Python test packages are missing; run scripts/test (it installs \
             tests/requirements.txt into .venv and puts it on PATH)\n{stderr}"
        );
    }
    assert!(out.status.success(), "{name} failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("JSON from the script")
}
