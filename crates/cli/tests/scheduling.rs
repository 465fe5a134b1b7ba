//! Ports and GPUs: two jobs never share a port or a GPU, and a job whose GPUs are taken waits
//! in the queue and starts whole when they free up.

mod common;

use std::collections::BTreeSet;

use common::{job_yaml, Sandbox};

fn ports(status: &serde_json::Value) -> BTreeSet<u64> {
    status["status"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["port"].as_u64().unwrap())
        .collect()
}

#[test]
fn concurrent_jobs_get_distinct_ports_and_tf_config_uses_them() {
    let sb = Sandbox::new();
    sb.write("show.sh", "echo \"$TF_CONFIG\"\nexec sleep 300\n");
    for name in ["left", "right"] {
        let file = sb.job(
            &format!("{name}.yaml"),
            &job_yaml(
                name,
                "  framework: tensorflow\n  command: [sh, show.sh]\n  replicas:\n    ps: {count: 1}\n    worker: {count: 2}\n",
            ),
        );
        sb.ok(&["submit", file.to_str().unwrap()]);
    }
    let running = |s: &serde_json::Value| {
        s["status"]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "Running")
    };
    let left = sb.until("left", "left running", running);
    let right = sb.until("right", "right running", running);
    let (l, r) = (ports(&left), ports(&right));
    assert_eq!(l.len(), 3);
    assert_eq!(r.len(), 3);
    assert!(l.is_disjoint(&r), "{l:?} vs {r:?}");

    let port =
        |s: &serde_json::Value, i: usize| s["status"]["replicas"][i]["port"].as_u64().unwrap();
    let expected = format!(
        "{{\"cluster\":{{\"ps\":[\"127.0.0.1:{}\"],\"worker\":[\"127.0.0.1:{}\",\"127.0.0.1:{}\"]}},\"task\":{{\"type\":\"worker\",\"index\":1}},\"environment\":\"cloud\"}}",
        port(&left, 0),
        port(&left, 1),
        port(&left, 2)
    );
    let start = std::time::Instant::now();
    while sb.attempt_log("left", "worker-1", 0).is_empty() && start.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        sb.attempt_log("left", "worker-1", 0),
        format!("{expected}\n")
    );
    sb.ok(&["delete", "left", "right"]);
}

#[test]
fn a_job_whose_gpus_are_taken_waits_then_starts_whole() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    sb.write(
        "gpu.sh",
        "echo \"CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES\"\nsleep \"$HOLD\"\n",
    );
    let small = sb.job(
        "small.yaml",
        &job_yaml("small", "  command: [sh, gpu.sh]\n  env: {HOLD: \"1.5\"}\n  replicas: {worker: {resources: {gpu: 1}}}\n"),
    );
    let big = sb.job(
        "big.yaml",
        &job_yaml("big", "  command: [sh, gpu.sh]\n  env: {HOLD: \"0\"}\n  replicas: {worker: {count: 2, resources: {gpu: 1}}}\n  runPolicy: {successPolicy: AllWorkers}\n"),
    );
    sb.ok(&["submit", small.to_str().unwrap()]);
    sb.until("small", "small running", |s| {
        s["status"]["phase"] == "Running"
    });
    sb.ok(&["submit", big.to_str().unwrap()]);

    // While `small` holds GPU 0, `big` (2 GPUs) waits without starting any replica.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let waiting = sb.status("big");
    assert_eq!(waiting["status"]["phase"], "Pending");
    assert_eq!(waiting["status"]["reason"], "Queued");
    assert!(waiting["status"]["attempts"].as_array().unwrap().is_empty());

    assert_eq!(sb.wait("big"), "Succeeded");
    let small_done = sb.status("small")["status"]["completionTime"].clone();
    assert_eq!(sb.phase("small"), "Succeeded");
    assert_eq!(
        sb.attempt_log("small", "worker-0", 0),
        "CUDA_VISIBLE_DEVICES=0\n"
    );
    let mut seen = [
        sb.attempt_log("big", "worker-0", 0),
        sb.attempt_log("big", "worker-1", 0),
    ];
    seen.sort();
    assert_eq!(
        seen,
        ["CUDA_VISIBLE_DEVICES=0\n", "CUDA_VISIBLE_DEVICES=1\n"]
    );
    let big_start = sb.status("big")["status"]["startTime"].clone();
    assert!(
        big_start.as_str() >= small_done.as_str(),
        "{big_start} < {small_done}"
    );
}

#[test]
fn more_gpus_than_the_machine_has_is_refused_at_submit() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0".into());
    let file = sb.job(
        "huge.yaml",
        &job_yaml(
            "huge",
            "  command: [\"true\"]\n  replicas: {worker: {count: 2, resources: {gpu: 1}}}\n",
        ),
    );
    let out = sb.tc(&["submit", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs 2 GPUs at once but this machine has 1 (from TRAINCTL_GPUS)"),
        "{err}"
    );
    assert!(sb.tc(&["get", "huge"]).status.code() == Some(1));
}

#[test]
fn two_homes_on_one_machine_never_put_two_jobs_on_one_gpu() {
    let first = Sandbox::new();
    let leases = first.gpu_leases();
    let mut homes = [first, Sandbox::new()];
    let record = homes[0].dir.path().join("gpu-use.log");
    for sb in &mut homes {
        sb.gpus = Some("0,1".into());
        sb.leases = Some(leases.clone());
        sb.write(
            "use.sh",
            &format!(
                "s=$(date +%s.%N); sleep 0.7; echo \"$CUDA_VISIBLE_DEVICES $s $(date +%s.%N)\" >> {}\n",
                record.display()
            ),
        );
    }
    let mut names = Vec::new();
    for (h, sb) in homes.iter().enumerate() {
        for j in 0..3 {
            let name = format!("h{h}-j{j}");
            let file = sb.job(
                &format!("{name}.yaml"),
                &job_yaml(
                    &name,
                    "  command: [sh, use.sh]\n  replicas: {worker: {resources: {gpu: 1}}}\n",
                ),
            );
            names.push((h, name));
            sb.ok(&["submit", file.to_str().unwrap()]);
        }
    }
    for (h, name) in &names {
        assert_eq!(homes[*h].wait(name), "Succeeded", "{name}");
    }
    let log = std::fs::read_to_string(&record).unwrap();
    let mut uses: Vec<(String, f64, f64)> = log
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(uses.len(), 6, "{log}");
    uses.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (i, (gpu, start, _)) in uses.iter().enumerate() {
        for (other, _, end) in &uses[..i] {
            assert!(
                other != gpu || end <= start,
                "two jobs on GPU {gpu} at once:\n{log}"
            );
        }
    }
}

#[test]
fn a_gpu_busy_with_someone_elses_process_is_not_handed_out() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    let path = common::fake_gpus::install(sb.dir.path());
    // The fake nvidia-smi reports this stranger on GPU 0.
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::fs::write(
        common::fake_gpus::gpu_pids_file(sb.dir.path()),
        format!("{}\n", stranger.id()),
    )
    .unwrap();
    sb.write(
        "gpu.sh",
        "echo \"CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES\"\n",
    );
    let one = sb.job(
        "one.yaml",
        &job_yaml(
            "one",
            "  command: [sh, gpu.sh]\n  replicas: {worker: {resources: {gpu: 1}}}\n",
        ),
    );
    let submit = |file: &std::path::Path, share: &str| {
        sb.ok_with(
            &["submit", file.to_str().unwrap()],
            &[
                ("PATH", &path),
                ("TRAINCTL_GPU_SOURCE", "nvidia-smi"),
                ("TRAINCTL_SHARE_BUSY_GPUS", share),
            ],
        );
    };
    submit(&one, "0");
    assert_eq!(sb.wait("one"), "Succeeded");
    assert_eq!(
        sb.attempt_log("one", "worker-0", 0),
        "CUDA_VISIBLE_DEVICES=1\n"
    );
    let described = sb.ok(&["describe", "one"]);
    assert!(
        described.contains(&format!(
            "GPU 0 runs pid {} not started by trainctl",
            stranger.id()
        )),
        "{described}"
    );

    let two = sb.job(
        "two.yaml",
        &job_yaml(
            "two",
            "  command: [sh, gpu.sh]\n  replicas: {worker: {count: 2, resources: {gpu: 1}}}\n",
        ),
    );
    submit(&two, "1");
    assert_eq!(sb.wait("two"), "Succeeded", "allowed to share the busy GPU");
    stranger.kill().unwrap();
    let _ = stranger.wait();
}
