//! `trainctl doctor` end to end: the real binary, reading GPUs through a fake `nvidia-smi`
//! on PATH that prints what the real one prints, and a fake `python` for the frameworks.

mod common;

use common::{fake_gpus, Sandbox};
use serde_json::Value;

/// The fake `nvidia-smi` (with `pid` on GPU 0) and a `python` that reports PyTorch built
/// for `torch_cuda`; returns the PATH to use.
fn fake_tools(sandbox: &Sandbox, pid: u32, torch_cuda: &str) -> String {
    let path = fake_gpus::install(sandbox.dir.path());
    std::fs::write(
        fake_gpus::gpu_pids_file(sandbox.dir.path()),
        format!("{pid}\n"),
    )
    .unwrap();
    fake_gpus::executable(
        &sandbox.dir.path().join("bin/python"),
        &format!("#!/bin/sh\necho torch {torch_cuda}\n"),
    );
    path
}

fn doctor(sandbox: &Sandbox, path: &str, extra: &[&str]) -> (i32, String) {
    let python = sandbox.dir.path().join("bin/python");
    let mut args = vec!["doctor", "--python", python.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = sandbox
        .command(&args)
        .env("PATH", path)
        .env("TRAINCTL_GPU_SOURCE", "nvidia-smi")
        .env_remove("TRAINCTL_GPUS")
        .env_remove("CUDA_VISIBLE_DEVICES")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn status_of(report: &Value, name: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
}

#[test]
fn doctor_reads_gpus_through_nvidia_smi_and_fails_on_ecc_errors_with_exit_1() {
    let sandbox = Sandbox::new();
    let path = fake_tools(&sandbox, std::process::id(), "12.1");
    let (code, out) = doctor(&sandbox, &path, &["-o", "json"]);
    let report: Value = serde_json::from_str(&out).expect("doctor -o json prints JSON");
    assert_eq!(report["machine"]["reading"]["source"], "nvidia-smi");
    assert_eq!(
        report["machine"]["reading"]["gpus"][0]["utilization_pct"],
        87
    );
    assert_eq!(report["machine"]["reading"]["driver"]["cuda"], "12.4");
    assert_eq!(status_of(&report, "driver"), "ok");
    assert_eq!(status_of(&report, "gpus"), "ok");
    assert_eq!(status_of(&report, "nvml"), "warn");
    assert_eq!(status_of(&report, "cuda"), "ok");
    assert_eq!(
        status_of(&report, "ecc"),
        "fail",
        "GPU 1 reports 2 uncorrected errors"
    );
    assert_eq!(report["verdict"], "fail");
    assert_eq!(code, 1, "a blocking problem exits 1");
}

#[test]
fn a_process_of_someone_else_on_a_gpu_is_named_in_the_checklist() {
    let sandbox = Sandbox::new();
    let mut stranger = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let path = fake_tools(&sandbox, stranger.id(), "13.0");
    let (_, out) = doctor(&sandbox, &path, &[]);
    stranger.kill().unwrap();
    let _ = stranger.wait();
    assert!(
        out.contains(&format!("GPU 0: pid {} (sleep), 2048 MiB", stranger.id())),
        "{out}"
    );
    assert!(out.contains("torch built for CUDA 13.0"), "{out}");
    assert!(out.contains("fix: update the NVIDIA driver"), "{out}");
    assert!(out.contains("verdict: FAIL"), "{out}");
}

#[test]
fn doctor_smoke_runs_a_real_job_on_every_gpu_and_reports_its_speed() {
    let sandbox = Sandbox::new();
    let path = fake_gpus::install(sandbox.dir.path());
    // A python that answers the framework probe, and runs the smoke program as a GPU
    // framework would: printing its result line for the GPU it was given.
    let python = sandbox.dir.path().join("bin/python");
    fake_gpus::executable(
        &python,
        "#!/bin/sh\nif [ \"$1\" = -c ]; then echo torch 12.1; exit 0; fi\necho \"smoke backend=torch gpu=$CUDA_VISIBLE_DEVICES device='Fake GPU' tflops_fp32=1.5 tflops_fp16=3.25\"\n",
    );
    let out = sandbox
        .command(&[
            "doctor",
            "--smoke",
            "--python",
            python.to_str().unwrap(),
            "-o",
            "json",
        ])
        .env("PATH", &path)
        .env("TRAINCTL_GPUS", "0,1")
        .env("TRAINCTL_GPU_SOURCE", "nvidia-smi")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut smoke: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "smoke")
        .map(|c| {
            format!(
                "{} {}",
                c["status"].as_str().unwrap(),
                c["detail"].as_str().unwrap()
            )
        })
        .collect();
    smoke.sort();
    assert_eq!(
        smoke,
        [
            "ok GPU 0: torch on Fake GPU: 1.5 TFLOP/s FP32, 3.25 TFLOP/s FP16",
            "ok GPU 1: torch on Fake GPU: 1.5 TFLOP/s FP32, 3.25 TFLOP/s FP16",
        ],
        "{report:#}"
    );
    let jobs = sandbox.ok(&["get", "-o", "json"]);
    assert!(
        !jobs.contains("doctor-smoke"),
        "smoke jobs are deleted: {jobs}"
    );
}
