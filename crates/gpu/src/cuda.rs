//! CUDA versions: what the driver supports, what the installed frameworks were built with,
//! and whether the two fit (NVIDIA's minimum driver per CUDA major version, Linux).

use std::process::Command;
use std::time::Duration;

use serde::Serialize;

/// Minimum Linux driver for each CUDA major version under minor-version compatibility
/// (NVIDIA's CUDA Toolkit release notes, table "CUDA Toolkit and Corresponding Driver
/// Versions").
pub const MINIMUM_DRIVER: &[(u32, &str)] =
    &[(11, "450.80.02"), (12, "525.60.13"), (13, "580.65.06")];

/// `12040` (NVML's encoding) as `12.4`.
pub fn version_from_number(n: i32) -> String {
    format!("{}.{}", n / 1000, (n % 1000) / 10)
}

/// Parses a dotted version into numbers; `None` when a part is not a number.
pub fn parse_version(v: &str) -> Option<Vec<u32>> {
    v.trim().split('.').map(|p| p.parse().ok()).collect()
}

/// A framework's CUDA build as `python3` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrameworkCuda {
    /// `torch` or `tensorflow`.
    pub framework: String,
    /// The CUDA version it was built with; `None` for a CPU-only build.
    pub cuda: Option<String>,
}

/// Whether a framework's CUDA fits the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// The driver supports this CUDA version.
    Yes,
    /// Same major version, older minor: runs under minor-version compatibility, but
    /// kernels compiled for the newer minor (PTX JIT) may fail.
    MinorCompatible,
    /// The driver is too old: the reason and the minimum driver.
    No(String),
}

/// Whether a framework built with CUDA `wanted` runs on a driver of `driver_version`
/// supporting up to CUDA `driver_cuda` (when known).
pub fn fits(wanted: &str, driver_version: Option<&str>, driver_cuda: Option<&str>) -> Fit {
    let Some(want) = parse_version(wanted) else {
        return Fit::No(format!("cannot read CUDA version {wanted:?}"));
    };
    let major = want.first().copied().unwrap_or(0);
    if let Some(have) = driver_cuda.and_then(parse_version) {
        if have >= want {
            return Fit::Yes;
        }
        if have.first() != Some(&major) {
            return Fit::No(format!(
                "the driver supports CUDA up to {}; CUDA {wanted} needs {}",
                driver_cuda.unwrap_or_default(),
                minimum_for(major)
                    .map_or("a newer driver".into(), |m| format!("driver {m} or newer"))
            ));
        }
    }
    let (Some(minimum), Some(driver)) = (minimum_for(major), driver_version) else {
        return Fit::No(format!("no known driver requirement for CUDA {wanted}"));
    };
    match (parse_version(driver), parse_version(minimum)) {
        (Some(have), Some(need)) if have >= need => {
            if driver_cuda.is_some() {
                Fit::MinorCompatible
            } else {
                Fit::Yes
            }
        }
        _ => Fit::No(format!(
            "CUDA {wanted} needs driver {minimum} or newer, found {driver}"
        )),
    }
}

fn minimum_for(major: u32) -> Option<&'static str> {
    MINIMUM_DRIVER
        .iter()
        .find(|(m, _)| *m == major)
        .map(|(_, v)| *v)
}

/// The script that prints one `framework cuda-or-none` line per installed framework.
const PROBE: &str = r#"
import importlib.util
if importlib.util.find_spec("torch"):
    import torch
    print("torch", torch.version.cuda or "none")
if importlib.util.find_spec("tensorflow"):
    import tensorflow as tf
    print("tensorflow", tf.sysconfig.get_build_info().get("cuda_version") or "none")
"#;

/// Asks `python3` which frameworks are installed and their CUDA builds, waiting at most
/// `timeout`. Errors say why the question got no answer.
pub fn installed_frameworks(python: &str, timeout: Duration) -> Result<Vec<FrameworkCuda>, String> {
    let out = crate::timed::output_within(Command::new(python).args(["-c", PROBE]), timeout)?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(framework, cuda)| FrameworkCuda {
            framework: framework.to_string(),
            cuda: (cuda != "none").then(|| cuda.to_string()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_cuda_numbers_read_as_dotted_versions() {
        assert_eq!(version_from_number(12040), "12.4");
        assert_eq!(version_from_number(11080), "11.8");
        assert_eq!(version_from_number(13000), "13.0");
    }

    #[test]
    fn driver_and_framework_cuda_fit_as_nvidia_documents() {
        let cases = [
            // (framework cuda, driver, driver cuda, expected)
            ("12.1", Some("550.54.15"), Some("12.4"), Fit::Yes),
            (
                "12.4",
                Some("535.54.03"),
                Some("12.2"),
                Fit::MinorCompatible,
            ),
            (
                "12.4",
                Some("470.82.01"),
                Some("11.4"),
                Fit::No(String::new()),
            ),
            (
                "13.0",
                Some("550.54.15"),
                Some("12.4"),
                Fit::No(String::new()),
            ),
            ("11.8", Some("450.80.02"), None, Fit::Yes),
            ("12.1", Some("515.43.04"), None, Fit::No(String::new())),
        ];
        for (cuda, driver, driver_cuda, expected) in cases {
            let got = fits(cuda, driver, driver_cuda);
            match (&got, &expected) {
                (Fit::No(why), Fit::No(_)) => assert!(why.contains("driver"), "{why}"),
                _ => assert_eq!(got, expected, "{cuda} on {driver:?}/{driver_cuda:?}"),
            }
        }
    }

    #[test]
    fn the_framework_probe_gives_up_on_a_python_that_hangs_or_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let slow = dir.path().join("slow-python");
        std::fs::write(&slow, "#!/bin/sh\nsleep 5\n").unwrap();
        let mut perms = std::fs::metadata(&slow).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&slow, perms).unwrap();
        let err =
            installed_frameworks(slow.to_str().unwrap(), Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
        let missing =
            installed_frameworks("/nonexistent/python3", Duration::from_secs(1)).unwrap_err();
        assert!(missing.contains("cannot run"), "{missing}");
    }
}
