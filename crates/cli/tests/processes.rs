//! Stopping jobs: `delete` and Ctrl-C stop every process of the job and leave no orphans,
//! grandchildren included; a job submitted in one CLI process keeps running after it exits.

mod common;

use std::time::Duration;

use common::{job_processes, job_yaml, processes_left_after, Sandbox};

/// A replica that starts a grandchild in the background, then waits: both must go.
const WITH_GRANDCHILD: &str = "sleep 300 &\necho started\nwait\n";

fn running_job(sb: &Sandbox, name: &str) {
    sb.write("r.sh", WITH_GRANDCHILD);
    let file = sb.job(
        &format!("{name}.yaml"),
        &job_yaml(
            name,
            "  framework: tensorflow\n  command: [sh, r.sh]\n  replicas:\n    ps: {count: 1}\n    worker: {count: 2}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    sb.until(name, "all replicas running", |s| {
        s["status"]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "Running")
    });
}

#[test]
fn a_submitted_job_outlives_the_cli_and_delete_leaves_no_process() {
    let sb = Sandbox::new();
    running_job(&sb, "doomed");
    // 3 replicas, each a shell plus its sleeping grandchild.
    let start = std::time::Instant::now();
    while job_processes(&sb.home(), "doomed").len() < 6 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "grandchildren never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        sb.ok(&["delete", "doomed"]).trim(),
        "trainingjob/doomed deleted"
    );
    assert_eq!(job_processes(&sb.home(), "doomed"), Vec::<i32>::new());

    let out = sb.tc(&["get", "doomed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("job \"doomed\" not found"));
    assert!(!sb.home().join("jobs/doomed").exists());
}

#[test]
fn ctrl_c_on_run_stops_every_replica() {
    let sb = Sandbox::new();
    sb.write("r.sh", WITH_GRANDCHILD);
    let file = sb.job(
        "interrupt.yaml",
        &job_yaml(
            "interrupt",
            "  framework: tensorflow\n  command: [sh, r.sh]\n  replicas:\n    ps: {count: 1}\n    worker: {count: 1}\n",
        ),
    );
    let mut run = sb.spawn(&["run", file.to_str().unwrap()]);
    let start = std::time::Instant::now();
    while job_processes(&sb.home(), "interrupt").len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "replicas never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(job_processes(&sb.home(), "interrupt"), Vec::<i32>::new());
    let s = sb.status("interrupt");
    assert_eq!(s["status"]["phase"], "Failed");
    assert_eq!(s["status"]["reason"], "Stopped");
}

#[test]
fn a_crashed_supervisor_takes_its_replicas_with_it() {
    let sb = Sandbox::new();
    running_job(&sb, "orphan-check");
    let pid = {
        let out = sb.ok(&["get", "orphan-check", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["status"]["replicas"][0]["pid"].as_i64().unwrap()
    };
    // Kill the detached supervisor (the parent of the replicas) outright.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: plain kill(2).
    unsafe { libc::kill(ppid, libc::SIGKILL) };
    // The next CLI call notices, marks the job failed and kills what is left.
    let s = sb.until("orphan-check", "supervisor loss noticed", |s| {
        s["status"]["phase"] == "Failed"
    });
    assert_eq!(s["status"]["reason"], "SupervisorLost");
    assert_eq!(
        processes_left_after(&sb.home(), "orphan-check", 5),
        Vec::<i32>::new()
    );
}
