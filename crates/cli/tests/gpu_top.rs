//! `trainctl top`: a GPU job's replica joined to the GPU it holds and the GPU memory its
//! process uses (read through a fake `nvidia-smi`), with its real CPU and memory.

mod common;

use common::{fake_gpus, job_yaml, Sandbox};
use serde_json::Value;

#[test]
fn top_shows_a_gpu_replica_with_its_gpu_its_gpu_memory_and_its_memory() {
    let mut sandbox = Sandbox::new();
    sandbox.gpus = Some("0,1".into());
    let path = fake_gpus::install(sandbox.dir.path());
    let pids = fake_gpus::gpu_pids_file(sandbox.dir.path());
    // The replica writes its own pid where the fake nvidia-smi reads its compute processes.
    let script = format!("echo $$ > {}; exec sleep 60", pids.display());
    let file = sandbox.job(
        "gpu.yaml",
        &job_yaml(
            "gpujob",
            &format!("  command: [sh, -c, {script:?}]\n  replicas:\n    worker: {{count: 1, resources: {{gpu: 1}}}}\n"),
        ),
    );
    let top = |args: &[&str]| -> Value {
        let out = sandbox.ok_with(
            args,
            &[("PATH", &path), ("TRAINCTL_GPU_SOURCE", "nvidia-smi")],
        );
        serde_json::from_str(&out).expect("json")
    };
    sandbox.ok(&["submit", file.to_str().unwrap()]);
    let start = std::time::Instant::now();
    while std::fs::metadata(&pids).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            start.elapsed().as_secs() < 30,
            "the replica never started its shell"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let node = top(&["top", "node", "-o", "json"]);
    assert_eq!(node["total"], 2, "{node:#}");
    assert_eq!(node["allocated"], 1, "{node:#}");
    assert_eq!(
        node["gpus"][0]["allocated_to"], "gpujob/worker-0",
        "{node:#}"
    );
    assert_eq!(node["gpus"][0]["utilization_pct"], 87);
    assert_eq!(node["gpus"][1]["allocated_to"], Value::Null);

    let replicas = top(&["top", "job", "gpujob", "-o", "json", "--interval", "0.2s"]);
    let worker = &replicas[0];
    assert_eq!(worker["replica"], "worker-0", "{replicas:#}");
    assert_eq!(worker["gpus"], serde_json::json!([0]));
    assert_eq!(worker["gpu_utilization_pct"], 87);
    assert_eq!(
        worker["gpu_memory_mib"], 2048,
        "the fake reports the replica's shell on GPU 0"
    );
    assert!(worker["rss_mib"].as_u64().is_some(), "{worker:#}");

    let missing = sandbox.tc(&["top", "job", "nosuchjob"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("job \"nosuchjob\" not found"));
    sandbox.ok(&["delete", "gpujob"]);
}

#[test]
fn top_on_a_machine_where_trainctl_never_ran_creates_no_state_directory() {
    let mut sandbox = Sandbox::new();
    sandbox.gpus = Some("0".into());
    let node: Value = serde_json::from_str(&sandbox.ok(&["top", "node", "-o", "json"])).unwrap();
    assert_eq!(node["total"], 1, "{node:#}");
    assert_eq!(node["allocated"], 0, "{node:#}");
    let replicas = sandbox.ok(&["top", "job", "--interval", "0.1s"]);
    assert_eq!(replicas, "no running replicas\n");
    let missing = sandbox.tc(&["top", "job", "somejob"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("job \"somejob\" not found"));
    assert!(
        !sandbox.home().exists(),
        "top created {}",
        sandbox.home().display()
    );
}
