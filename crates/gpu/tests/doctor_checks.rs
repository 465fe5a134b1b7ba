//! The doctor's checklist over machines built to fail in each way it knows, table-driven:
//! which check fails, with what status, and that a fix is offered.

use std::collections::{BTreeMap, BTreeSet};

use trainctl_gpu::cuda::FrameworkCuda;
use trainctl_gpu::doctor::{check, verdict, Check, ContainerRuntimes, Machine, Status};
use trainctl_gpu::{Driver, Gpu, GpuProcess, Reading, Source};

fn h200(index: u32) -> Gpu {
    Gpu {
        uuid: Some(format!("GPU-{index}")),
        name: Some("NVIDIA H200".into()),
        memory_total_mib: Some(143_771),
        memory_used_mib: Some(0),
        utilization_pct: Some(0),
        temperature_c: Some(30),
        power_w: Some(75.0),
        ecc_uncorrected: Some(0),
        ..Gpu::bare(index)
    }
}

/// A machine on which everything is right: two H200s read through NVML, a driver for
/// CUDA 12.4, PyTorch built for CUDA 12.1, no container engine.
fn healthy() -> Machine {
    Machine {
        nvidia_pci_devices: 2,
        driver_proc: Some(
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n".into(),
        ),
        reading: Reading {
            source: Source::Nvml,
            driver: Driver {
                version: Some("550.54.15".into()),
                cuda: Some("12.4".into()),
            },
            gpus: vec![h200(0), h200(1)],
            failures: vec![],
        },
        fixed_inventory: None,
        frameworks: Ok(vec![FrameworkCuda {
            framework: "torch".into(),
            cuda: Some("12.1".into()),
        }]),
        xid_lines: vec![],
        runtimes: ContainerRuntimes::default(),
        cuda_visible_devices: None,
        own_pids: BTreeSet::new(),
        process_names: BTreeMap::new(),
    }
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

#[test]
fn a_healthy_machine_passes_every_check() {
    let checks = check(&healthy());
    assert_eq!(verdict(&checks), Status::Ok, "{checks:#?}");
    assert!(find(&checks, "driver").detail.contains("550.54.15"));
    assert!(find(&checks, "gpus")
        .detail
        .contains("2 x NVIDIA H200, 140 GiB"));
    assert_eq!(find(&checks, "container-runtime").status, Status::Info);
}

#[test]
fn each_broken_machine_fails_the_check_that_explains_it_with_a_fix() {
    type Break = fn(&mut Machine);
    let cases: Vec<(&str, Break, &str, Status, &str)> = vec![
        (
            "no NVIDIA hardware",
            |m| {
                m.nvidia_pci_devices = 0;
                m.driver_proc = None;
                m.reading = Reading {
                    source: Source::None,
                    driver: Driver::default(),
                    gpus: vec![],
                    failures: vec![
                        "NVML: a libloading error occurred".into(),
                        "nvidia-smi: cannot run nvidia-smi: No such file or directory".into(),
                    ],
                };
            },
            "driver",
            Status::Fail,
            "no NVIDIA GPU on this machine",
        ),
        (
            "GPU without a driver",
            |m| {
                m.driver_proc = None;
                m.reading = Reading {
                    source: Source::None,
                    driver: Driver::default(),
                    gpus: vec![],
                    failures: vec!["NVML: a libloading error occurred".into()],
                };
            },
            "driver",
            Status::Fail,
            "2 NVIDIA GPU(s) on the PCI bus but no NVIDIA kernel driver",
        ),
        (
            "NVML missing, nvidia-smi answers",
            |m| {
                m.reading.source = Source::NvidiaSmi;
                m.reading.failures = vec!["NVML: a libloading error occurred".into()];
            },
            "nvml",
            Status::Warn,
            "through nvidia-smi instead",
        ),
        (
            "framework built for a newer CUDA major",
            |m| {
                m.frameworks = Ok(vec![FrameworkCuda {
                    framework: "torch".into(),
                    cuda: Some("13.0".into()),
                }]);
            },
            "cuda",
            Status::Fail,
            "torch built for CUDA 13.0",
        ),
        (
            "framework built for a newer CUDA minor",
            |m| {
                m.frameworks = Ok(vec![FrameworkCuda {
                    framework: "tensorflow".into(),
                    cuda: Some("12.6".into()),
                }]);
            },
            "cuda",
            Status::Warn,
            "minor-version compatibility",
        ),
        (
            "CPU-only framework",
            |m| {
                m.frameworks = Ok(vec![FrameworkCuda {
                    framework: "torch".into(),
                    cuda: None,
                }]);
            },
            "cuda",
            Status::Warn,
            "CPU-only build",
        ),
        (
            "uncorrected ECC errors",
            |m| {
                m.reading.gpus[1].ecc_uncorrected = Some(3);
            },
            "ecc",
            Status::Fail,
            "GPU 1 has 3 uncorrected ECC errors",
        ),
        (
            "Xid in the kernel log",
            |m| {
                m.xid_lines = vec![
                    "[ 12.3] NVRM: Xid (PCI:0000:18:00): 79, pid=123, GPU has fallen off the bus."
                        .into(),
                ];
            },
            "xid",
            Status::Warn,
            "fallen off the bus",
        ),
        (
            "GPU busy with someone else's process",
            |m| {
                m.reading.gpus[0].processes = vec![
                    GpuProcess {
                        pid: 4242,
                        memory_mib: Some(8000),
                    },
                    GpuProcess {
                        pid: 77,
                        memory_mib: Some(10),
                    },
                ];
                m.own_pids = BTreeSet::from([77]);
                m.process_names = BTreeMap::from([(4242, "python3".to_string())]);
            },
            "foreign-processes",
            Status::Warn,
            "GPU 0: pid 4242 (python3), 8000 MiB",
        ),
        (
            "docker without the NVIDIA runtime",
            |m| {
                m.runtimes = ContainerRuntimes {
                    engines: BTreeMap::from([("docker".to_string(), false)]),
                    nvidia_ctk: true,
                };
            },
            "container-runtime",
            Status::Warn,
            "no NVIDIA runtime configured for docker",
        ),
        (
            "CUDA_VISIBLE_DEVICES preset",
            |m| {
                m.cuda_visible_devices = Some("1".into());
            },
            "cuda-visible-devices",
            Status::Warn,
            "CUDA_VISIBLE_DEVICES=1",
        ),
    ];
    for (case, breaks, name, status, says) in cases {
        let mut machine = healthy();
        breaks(&mut machine);
        let checks = check(&machine);
        let got = find(&checks, name);
        assert_eq!(got.status, status, "{case}: {got:#?}");
        assert!(
            got.detail.contains(says),
            "{case}: {:?} lacks {says:?}",
            got.detail
        );
        assert!(got.fix.is_some(), "{case}: no fix offered");
        assert_eq!(verdict(&checks), status.max(Status::Ok), "{case}");
    }
}

#[test]
fn the_docker_fix_names_the_engine_that_lacks_the_runtime() {
    let mut machine = healthy();
    machine.runtimes = ContainerRuntimes {
        engines: BTreeMap::from([
            ("containerd".to_string(), true),
            ("docker".to_string(), false),
        ]),
        nvidia_ctk: true,
    };
    let checks = check(&machine);
    let fix = find(&checks, "container-runtime").fix.clone().unwrap();
    assert!(fix.contains("--runtime=docker"), "{fix}");
}
