//! This machine's GPUs as trainctl sees them: read through NVML (loaded at run time, so
//! trainctl builds and runs where no driver is installed), with `nvidia-smi` as a fallback
//! and `TRAINCTL_GPUS` overriding the inventory. [`doctor`] checks that the machine can
//! run GPU jobs.

pub mod cuda;
pub mod doctor;
pub mod kube_doctor;
pub mod kube_smoke;
pub mod lease;
mod nvml;
pub mod smi;
pub mod smoke;
mod timed;
pub mod usage;

use serde::Serialize;

/// The environment variable that fixes the inventory: comma-separated device indices.
pub const GPUS_VAR: &str = "TRAINCTL_GPUS";

/// One GPU and what it is doing now. Readings a source cannot give are `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpu {
    /// Device index, as `CUDA_VISIBLE_DEVICES` counts.
    pub index: u32,
    /// `GPU-...` identifier.
    pub uuid: Option<String>,
    /// Model name, e.g. `NVIDIA H200`.
    pub name: Option<String>,
    /// Memory installed, MiB.
    pub memory_total_mib: Option<u64>,
    /// Memory allocated, MiB.
    pub memory_used_mib: Option<u64>,
    /// Percent of the last sample period a kernel ran.
    pub utilization_pct: Option<u32>,
    /// Die temperature, degrees Celsius.
    pub temperature_c: Option<u32>,
    /// Power draw, watts.
    pub power_w: Option<f64>,
    /// Uncorrected ECC errors since the driver loaded.
    pub ecc_uncorrected: Option<u64>,
    /// Compute processes on this GPU.
    pub processes: Vec<GpuProcess>,
}

impl Gpu {
    /// A GPU known only by its index (the `TRAINCTL_GPUS` inventory).
    pub fn bare(index: u32) -> Gpu {
        Gpu {
            index,
            uuid: None,
            name: None,
            memory_total_mib: None,
            memory_used_mib: None,
            utilization_pct: None,
            temperature_c: None,
            power_w: None,
            ecc_uncorrected: None,
            processes: Vec::new(),
        }
    }
}

/// A compute process on a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuProcess {
    /// Its process id.
    pub pid: u32,
    /// GPU memory it holds, MiB, when the driver says.
    pub memory_mib: Option<u64>,
}

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The `TRAINCTL_GPUS` variable (indices only).
    Variable,
    /// The NVIDIA Management Library.
    Nvml,
    /// The `nvidia-smi` command.
    NvidiaSmi,
    /// Nothing answered: no GPUs.
    None,
}

impl Source {
    /// The name used in messages.
    pub fn label(self) -> &'static str {
        match self {
            Source::Variable => GPUS_VAR,
            Source::Nvml => "NVML",
            Source::NvidiaSmi => "nvidia-smi",
            Source::None => "neither NVML nor nvidia-smi answered",
        }
    }
}

/// The driver as the source reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Driver {
    /// Driver version, e.g. `550.54.15`.
    pub version: Option<String>,
    /// Newest CUDA version the driver supports, e.g. `12.4`.
    pub cuda: Option<String>,
}

/// One reading of the machine's GPUs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// Who answered.
    pub source: Source,
    /// The driver, when the source knows it.
    pub driver: Driver,
    /// The GPUs, by index.
    pub gpus: Vec<Gpu>,
    /// Why each source tried before this one did not answer.
    pub failures: Vec<String>,
}

/// Something that reads the GPUs: the real sources, or a fake in tests.
pub trait GpuReader {
    /// Reads every GPU now.
    fn read(&self) -> Reading;
}

/// The real machine: `TRAINCTL_GPUS` if set, else NVML, else `nvidia-smi`, else none.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl GpuReader for System {
    fn read(&self) -> Reading {
        if let Ok(list) = std::env::var(GPUS_VAR) {
            return Reading {
                source: Source::Variable,
                driver: Driver::default(),
                gpus: parse_index_list(&list).into_iter().map(Gpu::bare).collect(),
                failures: Vec::new(),
            };
        }
        read_devices()
    }
}

/// The environment variable that picks one source: `nvml` or `nvidia-smi` (default: NVML,
/// then nvidia-smi).
pub const SOURCE_VAR: &str = "TRAINCTL_GPU_SOURCE";

/// Reads the devices themselves (ignoring `TRAINCTL_GPUS`): NVML, else `nvidia-smi`, unless
/// [`SOURCE_VAR`] names one of them.
pub fn read_devices() -> Reading {
    let only = std::env::var(SOURCE_VAR).unwrap_or_default();
    let mut failures = Vec::new();
    let nvml = if only == "nvidia-smi" {
        Err(format!("skipped ({SOURCE_VAR}=nvidia-smi)"))
    } else {
        nvml::read()
    };
    match nvml {
        Ok((driver, gpus)) => {
            return Reading {
                source: Source::Nvml,
                driver,
                gpus,
                failures,
            }
        }
        Err(e) => failures.push(format!("NVML: {e}")),
    }
    let smi = if only == "nvml" {
        Err(format!("skipped ({SOURCE_VAR}=nvml)"))
    } else {
        smi::read()
    };
    match smi {
        Ok((driver, gpus)) => Reading {
            source: Source::NvidiaSmi,
            driver,
            gpus,
            failures,
        },
        Err(e) => {
            failures.push(format!("nvidia-smi: {e}"));
            Reading {
                source: Source::None,
                driver: Driver::default(),
                gpus: Vec::new(),
                failures,
            }
        }
    }
}

/// The process group of `pid` (from `/proc/PID/stat`): trainctl starts each replica as the
/// leader of its own group, so a GPU process belongs to the replica whose pid is its group.
pub fn process_group(pid: u32) -> Option<u32> {
    usage::read_stat(pid).map(|s| s.group)
}

/// Parses a comma-separated list of device indices leniently: blanks and junk are skipped,
/// duplicates dropped, the result sorted.
pub fn parse_index_list(list: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = list
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::parse_index_list;

    #[test]
    fn a_process_group_is_read_from_proc() {
        let me = std::process::id();
        let group = super::process_group(me).expect("own stat is readable");
        // SAFETY: getpgrp has no preconditions and cannot fail.
        let expected = unsafe { libc::getpgrp() };
        assert_eq!(group as i32, expected);
        assert_eq!(super::process_group(u32::MAX), None);
    }

    #[test]
    fn index_lists_are_parsed_leniently() {
        assert_eq!(parse_index_list("0,1, 3"), vec![0, 1, 3]);
        assert_eq!(parse_index_list(""), Vec::<u32>::new());
        assert_eq!(parse_index_list("2,2,x,0"), vec![0, 2]);
    }
}
