//! `trainctl doctor` on this machine: what is observed ([`Machine`], the only I/O) and the
//! checks over it ([`check`], pure, so every failure is testable without a GPU).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::cuda::{self, Fit, FrameworkCuda};
use crate::{Reading, Source};

/// Where the loaded kernel driver tells its version.
pub const DRIVER_PROC_FILE: &str = "/proc/driver/nvidia/version";

/// How long the framework and kernel-log probes may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Nothing to judge; for the reader's information.
    Info,
    /// GPU jobs run, but something may bite.
    Warn,
    /// GPU jobs cannot run (or will fail) until it is fixed.
    Fail,
}

impl Status {
    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Info => "INFO",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name, e.g. `driver`.
    pub name: &'static str,
    /// Its verdict.
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// What to do about a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Container engines and whether each is set up for NVIDIA GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerRuntimes {
    /// Engines installed (`dockerd`, `podman` or `containerd` on PATH; a client alone does
    /// not count), each with whether its configuration names the NVIDIA runtime.
    pub engines: BTreeMap<String, bool>,
    /// Whether the NVIDIA Container Toolkit's `nvidia-ctk` is installed.
    pub nvidia_ctk: bool,
}

/// Everything the checks look at, observed once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// NVIDIA display or 3D controllers on the PCI bus.
    pub nvidia_pci_devices: usize,
    /// The contents of [`DRIVER_PROC_FILE`] when the kernel driver is loaded.
    pub driver_proc: Option<String>,
    /// The GPUs as NVML or nvidia-smi read them (ignoring `TRAINCTL_GPUS`).
    pub reading: Reading,
    /// `TRAINCTL_GPUS` when set.
    pub fixed_inventory: Option<String>,
    /// Installed frameworks and their CUDA builds, or why python could not tell.
    pub frameworks: Result<Vec<FrameworkCuda>, String>,
    /// Kernel log lines with NVIDIA Xid errors (empty when none or unreadable).
    pub xid_lines: Vec<String>,
    /// Container engines.
    pub runtimes: ContainerRuntimes,
    /// `CUDA_VISIBLE_DEVICES` in the user's environment.
    pub cuda_visible_devices: Option<String>,
    /// Processes on GPUs that belong to trainctl's replicas.
    pub own_pids: BTreeSet<u32>,
    /// Command names of the other processes on GPUs, by pid.
    pub process_names: BTreeMap<u32, String>,
}

impl Machine {
    /// Observes this machine; `python` answers for the frameworks, `replica_groups` are
    /// the process groups of trainctl's running replicas.
    pub fn observe(python: &str, replica_groups: &BTreeSet<u32>) -> Machine {
        let reading = crate::read_devices();
        let own_pids = reading
            .gpus
            .iter()
            .flat_map(|g| &g.processes)
            .map(|p| p.pid)
            .filter(|pid| crate::process_group(*pid).is_some_and(|g| replica_groups.contains(&g)))
            .collect();
        let process_names = reading
            .gpus
            .iter()
            .flat_map(|g| &g.processes)
            .filter_map(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{}/comm", p.pid)).ok()?;
                Some((p.pid, comm.trim().to_string()))
            })
            .collect();
        Machine {
            nvidia_pci_devices: nvidia_pci_devices(Path::new("/sys/bus/pci/devices")),
            driver_proc: std::fs::read_to_string(DRIVER_PROC_FILE).ok(),
            reading,
            fixed_inventory: std::env::var(crate::GPUS_VAR).ok(),
            frameworks: cuda::installed_frameworks(python, PROBE_TIMEOUT),
            xid_lines: xid_lines(),
            runtimes: container_runtimes(),
            cuda_visible_devices: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
            own_pids,
            process_names,
        }
    }
}

fn nvidia_pci_devices(bus: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(bus) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
            read("vendor").trim() == "0x10de" && read("class").trim().starts_with("0x03")
        })
        .count()
}

fn xid_lines() -> Vec<String> {
    let journal = crate::timed::output_within(
        Command::new("journalctl").args(["-k", "-q", "--no-pager", "-g", "NVRM: Xid"]),
        PROBE_TIMEOUT,
    );
    let log =
        journal.or_else(|_| crate::timed::output_within(&mut Command::new("dmesg"), PROBE_TIMEOUT));
    log.unwrap_or_default()
        .lines()
        .filter(|l| l.contains("NVRM: Xid"))
        .map(str::to_string)
        .collect()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn mentions_nvidia(file: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|s| s.contains("nvidia"))
}

fn container_runtimes() -> ContainerRuntimes {
    // (engine, its daemon or binary, the configuration that names the NVIDIA runtime)
    let configs = [
        ("docker", "dockerd", "/etc/docker/daemon.json"),
        ("podman", "podman", "/etc/cdi/nvidia.yaml"),
        ("containerd", "containerd", "/etc/containerd/config.toml"),
    ];
    ContainerRuntimes {
        engines: configs
            .iter()
            .filter(|(_, binary, _)| on_path(binary))
            .map(|(engine, _, config)| (engine.to_string(), mentions_nvidia(config)))
            .collect(),
        nvidia_ctk: on_path("nvidia-ctk"),
    }
}

fn check_of(name: &'static str, status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name,
        status,
        detail,
        fix: fix.map(str::to_string),
    }
}

/// The checklist for `machine`, in the order a person would fix things.
pub fn check(machine: &Machine) -> Vec<Check> {
    let mut checks = vec![driver(machine), nvml(machine), gpus(machine)];
    checks.extend(frameworks(machine));
    checks.push(ecc(machine));
    checks.push(xid(machine));
    checks.push(foreign_processes(machine));
    checks.push(runtimes(&machine.runtimes));
    if let Some(value) = &machine.cuda_visible_devices {
        checks.push(check_of(
            "cuda-visible-devices",
            Status::Warn,
            format!("CUDA_VISIBLE_DEVICES={value} is set in your environment"),
            Some("trainctl sets it per replica from the GPUs it grants; unset it so that programs you start yourself see the same GPUs as doctor"),
        ));
    }
    if let Some(list) = &machine.fixed_inventory {
        checks.push(check_of(
            "inventory",
            Status::Info,
            format!("TRAINCTL_GPUS={list:?} fixes the GPUs trainctl hands out"),
            None,
        ));
    }
    checks
}

/// The worst verdict: a `Fail` anywhere fails the machine.
pub fn verdict(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status)
        .filter(|s| *s != Status::Info)
        .max()
        .unwrap_or(Status::Ok)
}

fn driver(m: &Machine) -> Check {
    let from_proc = m.driver_proc.as_deref().and_then(|text| {
        let re = regex::Regex::new(r"Kernel Module\s+(?:for \S+\s+)?([0-9]+(?:\.[0-9]+)+)")
            .expect("valid regex");
        re.captures(text).map(|c| c[1].to_string())
    });
    match from_proc.or_else(|| m.reading.driver.version.clone()) {
        Some(version) => check_of("driver", Status::Ok, format!("NVIDIA driver {version} loaded"), None),
        None if m.nvidia_pci_devices > 0 => check_of(
            "driver",
            Status::Fail,
            format!(
                "{} NVIDIA GPU(s) on the PCI bus but no NVIDIA kernel driver loaded ({DRIVER_PROC_FILE} missing)",
                m.nvidia_pci_devices
            ),
            Some("install the NVIDIA driver for your distribution (e.g. `apt install nvidia-driver` or NVIDIA's CUDA repository), then reboot or `modprobe nvidia`"),
        ),
        None => check_of(
            "driver",
            Status::Fail,
            "no NVIDIA GPU on this machine and no NVIDIA driver loaded".into(),
            Some("run GPU jobs on a machine with NVIDIA GPUs (or on a cluster with --kube); CPU jobs run here as they are"),
        ),
    }
}

fn nvml(m: &Machine) -> Check {
    let why = m.reading.failures.iter().find(|f| f.starts_with("NVML"));
    match (m.reading.source, why) {
        (Source::Nvml, _) => check_of("nvml", Status::Ok, "NVML loaded".into(), None),
        (Source::NvidiaSmi, Some(why)) => check_of(
            "nvml",
            Status::Warn,
            format!("{why}; reading GPUs through nvidia-smi instead"),
            Some("make libnvidia-ml.so.1 loadable: `ldconfig -p | grep nvidia-ml` should list it; otherwise add the driver's library directory to LD_LIBRARY_PATH"),
        ),
        _ => check_of(
            "nvml",
            Status::Fail,
            m.reading.failures.join("; "),
            Some("NVML ships with the NVIDIA driver (libnvidia-ml.so.1): install the driver, or its utilities package if the library is missing"),
        ),
    }
}

fn gpus(m: &Machine) -> Check {
    if m.reading.gpus.is_empty() {
        return check_of(
            "gpus",
            Status::Fail,
            "no GPU visible".into(),
            Some("fix the checks above; `nvidia-smi -L` must list the GPUs"),
        );
    }
    let mut models: BTreeMap<String, usize> = BTreeMap::new();
    for g in &m.reading.gpus {
        let memory = g
            .memory_total_mib
            .map_or(String::new(), |mib| format!(", {} GiB", mib / 1024));
        let name = g.name.clone().unwrap_or_else(|| "unknown model".into());
        *models.entry(format!("{name}{memory}")).or_default() += 1;
    }
    let list: Vec<String> = models.iter().map(|(m, n)| format!("{n} x {m}")).collect();
    check_of(
        "gpus",
        Status::Ok,
        format!(
            "{} visible through {}: {}",
            m.reading.gpus.len(),
            m.reading.source.label(),
            list.join(", ")
        ),
        None,
    )
}

fn frameworks(m: &Machine) -> Vec<Check> {
    let found = match &m.frameworks {
        Err(why) => {
            return vec![check_of(
                "cuda",
                Status::Info,
                format!("could not ask python for the installed frameworks: {why}"),
                None,
            )]
        }
        Ok(found) if found.is_empty() => {
            return vec![check_of(
                "cuda",
                Status::Info,
                "neither PyTorch nor TensorFlow is installed for python3".into(),
                None,
            )]
        }
        Ok(found) => found,
    };
    let driver = m.reading.driver.version.as_deref();
    let driver_cuda = m.reading.driver.cuda.as_deref();
    found
        .iter()
        .map(|f| match &f.cuda {
            None => check_of(
                "cuda",
                Status::Warn,
                format!("{} is a CPU-only build: it will not use the GPUs", f.framework),
                Some("install a CUDA build of it (e.g. `pip install torch --index-url https://download.pytorch.org/whl/cu124`)"),
            ),
            Some(wanted) => match cuda::fits(wanted, driver, driver_cuda) {
                Fit::Yes => check_of(
                    "cuda",
                    Status::Ok,
                    format!("{} built for CUDA {wanted}; the driver supports it", f.framework),
                    None,
                ),
                Fit::MinorCompatible => check_of(
                    "cuda",
                    Status::Warn,
                    format!(
                        "{} built for CUDA {wanted}; the driver supports up to {} (minor-version compatibility: kernels that need newer PTX fail)",
                        f.framework,
                        driver_cuda.unwrap_or("?")
                    ),
                    Some("update the driver, or install a build of the framework for the driver's CUDA version"),
                ),
                Fit::No(why) => check_of(
                    "cuda",
                    Status::Fail,
                    format!("{} built for CUDA {wanted}: {why}", f.framework),
                    Some("update the NVIDIA driver, or install a build of the framework for an older CUDA"),
                ),
            },
        })
        .collect()
}

fn ecc(m: &Machine) -> Check {
    let bad: Vec<String> = m
        .reading
        .gpus
        .iter()
        .filter(|g| g.ecc_uncorrected.unwrap_or(0) > 0)
        .map(|g| {
            format!(
                "GPU {} has {} uncorrected ECC errors",
                g.index,
                g.ecc_uncorrected.unwrap_or(0)
            )
        })
        .collect();
    if bad.is_empty() {
        check_of(
            "ecc",
            Status::Ok,
            "no uncorrected ECC errors reported".into(),
            None,
        )
    } else {
        check_of(
            "ecc",
            Status::Fail,
            bad.join("; "),
            Some("drain the GPU and reset it (`nvidia-smi -r -i N`) or reboot; if errors come back, have the GPU replaced"),
        )
    }
}

fn xid(m: &Machine) -> Check {
    match m.xid_lines.last() {
        None => check_of("xid", Status::Ok, "no Xid errors in the kernel log".into(), None),
        Some(last) => check_of(
            "xid",
            Status::Warn,
            format!("{} Xid error(s) in the kernel log, last: {}", m.xid_lines.len(), last.trim()),
            Some("look the Xid up in NVIDIA's Xid catalog; 48, 63, 64, 74, 79 and 94/95 point at failing hardware"),
        ),
    }
}

fn foreign_processes(m: &Machine) -> Check {
    let foreign: Vec<String> = m
        .reading
        .gpus
        .iter()
        .flat_map(|g| g.processes.iter().map(move |p| (g.index, p)))
        .filter(|(_, p)| !m.own_pids.contains(&p.pid))
        .map(|(index, p)| {
            let name = m
                .process_names
                .get(&p.pid)
                .map_or(String::new(), |n| format!(" ({n})"));
            let memory = p
                .memory_mib
                .map_or(String::new(), |mib| format!(", {mib} MiB"));
            format!("GPU {index}: pid {}{name}{memory}", p.pid)
        })
        .collect();
    if foreign.is_empty() {
        check_of(
            "foreign-processes",
            Status::Ok,
            "no process outside trainctl uses a GPU".into(),
            None,
        )
    } else {
        check_of(
            "foreign-processes",
            Status::Warn,
            format!(
                "busy with processes that are not trainctl's: {}",
                foreign.join("; ")
            ),
            Some("stop them, or leave those GPUs out with TRAINCTL_GPUS"),
        )
    }
}

fn runtimes(r: &ContainerRuntimes) -> Check {
    if r.engines.is_empty() {
        return check_of(
            "container-runtime",
            Status::Info,
            "no container engine installed; local jobs run as processes and do not need one".into(),
            None,
        );
    }
    let missing: Vec<&str> = r
        .engines
        .iter()
        .filter(|(_, configured)| !**configured)
        .map(|(engine, _)| engine.as_str())
        .collect();
    let engines = r.engines.keys().cloned().collect::<Vec<_>>().join(", ");
    if missing.is_empty() {
        check_of(
            "container-runtime",
            Status::Ok,
            format!("NVIDIA runtime configured for {engines}"),
            None,
        )
    } else {
        let fix = if r.nvidia_ctk {
            format!(
                "`sudo nvidia-ctk runtime configure --runtime={}` and restart it",
                missing[0]
            )
        } else {
            "install the NVIDIA Container Toolkit, then `sudo nvidia-ctk runtime configure --runtime=<engine>`".into()
        };
        check_of(
            "container-runtime",
            Status::Warn,
            format!("no NVIDIA runtime configured for {}", missing.join(", ")),
            Some(&fix),
        )
    }
}
