//! Resource history: while a local job runs, its replicas' CPU and memory (and GPU use, read
//! here through a fake `nvidia-smi`) are recorded beside its metrics, and a GPU held but
//! idle gets a warning event.

mod common;

use common::{fake_gpus, job_yaml, Sandbox};
use serde_json::Value;

fn series<'a>(metrics: &'a Value, run: &str, tag: &str) -> &'a Value {
    metrics["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["run"] == run && s["tag"] == tag)
        .unwrap_or_else(|| panic!("no {run} {tag} in {metrics:#}"))
}

#[test]
fn a_busy_replicas_cpu_and_memory_are_recorded_as_metrics_while_it_runs() {
    let sb = Sandbox::new();
    let file = sb.job(
        "busy.yaml",
        &job_yaml(
            "busy",
            "  command: [sh, -c, 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done']\n  replicas: {worker: {count: 1}}\n",
        ),
    );
    sb.ok_with(
        &["submit", file.to_str().unwrap()],
        &[("TRAINCTL_RESOURCE_INTERVAL_SECONDS", "0.1")],
    );
    assert_eq!(sb.wait("busy"), "Succeeded");
    let metrics: Value = serde_json::from_str(&sb.ok(&["metrics", "busy", "-o", "json"])).unwrap();
    let cpu = series(&metrics, "resources/worker-0", "cpu_percent");
    assert!(cpu["points"].as_u64().unwrap() >= 2, "{cpu}");
    assert!(
        cpu["max"].as_f64().unwrap() > 0.0,
        "a spinning shell uses CPU: {cpu}"
    );
    let memory = series(&metrics, "resources/worker-0", "memory_mib");
    assert!(memory["max"].as_f64().is_some(), "{memory}");
    let listed = sb.ok(&["get"]);
    assert!(
        listed.contains("Succeeded") && !listed.contains("GpuIdle"),
        "{listed}"
    );
}

#[test]
fn a_gpu_held_but_idle_gets_a_warning_event() {
    let mut sb = Sandbox::new();
    // GPU 1 of the fake nvidia-smi is at 0% utilization.
    sb.gpus = Some("1".into());
    let path = fake_gpus::install(sb.dir.path());
    let file = sb.job(
        "idle.yaml",
        &job_yaml(
            "idle",
            "  command: [sleep, '2']\n  replicas: {worker: {resources: {gpu: 1}}}\n",
        ),
    );
    sb.ok_with(
        &["submit", file.to_str().unwrap()],
        &[
            ("PATH", &path),
            ("TRAINCTL_GPU_SOURCE", "nvidia-smi"),
            ("TRAINCTL_RESOURCE_INTERVAL_SECONDS", "0.1"),
            ("TRAINCTL_GPU_IDLE_MINUTES", "0.01"),
        ],
    );
    assert_eq!(sb.wait("idle"), "Succeeded");
    let described = sb.ok(&["describe", "idle"]);
    assert!(described.contains("GpuIdle"), "{described}");
    assert!(
        described.contains("worker-0 holds GPU 1 but used under 5% of it"),
        "{described}"
    );
    // The mark in `get`, kubectl style (like a node's `Ready,SchedulingDisabled`).
    let listed = sb.ok(&["get"]);
    assert!(listed.contains("Succeeded,GpuIdle"), "{listed}");
    let status = sb.status("idle");
    assert!(
        status["status"]["gpuIdle"]
            .as_str()
            .is_some_and(|m| m.contains("holds GPU 1")),
        "{status:#}"
    );
    let metrics: Value = serde_json::from_str(&sb.ok(&["metrics", "idle", "-o", "json"])).unwrap();
    assert_eq!(
        series(&metrics, "resources/worker-0", "gpu_utilization_percent")["max"],
        0.0
    );
}
