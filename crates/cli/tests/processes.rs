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

/// Waits (at most 10 s) until the job has `n` processes.
fn until_processes(sb: &Sandbox, job: &str, n: usize) {
    let start = std::time::Instant::now();
    while job_processes(&sb.home(), job).len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the replicas of {job} never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_submitted_job_outlives_the_cli_and_delete_leaves_no_process() {
    let sb = Sandbox::new();
    running_job(&sb, "doomed");
    // 3 replicas, each a shell plus its sleeping grandchild.
    until_processes(&sb, "doomed", 6);
    assert_eq!(
        sb.ok(&["delete", "doomed"]).trim(),
        "trainingjob/doomed deleted"
    );
    assert_eq!(job_processes(&sb.home(), "doomed"), Vec::<i32>::new());

    let out = sb.tc(&["get", "doomed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("job \"doomed\" not found"));
    assert!(!sb.home().join("jobs/doomed").exists());
    // Its files were moved aside at once and are unlinked in the background.
    let trash = sb.home().join("trash");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&trash).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the deleted job's files stay in {}",
            trash.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    until_processes(&sb, "interrupt", 4);
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
fn a_crashed_supervisor_takes_its_replicas_with_it_and_closes_every_attempt() {
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
    // Nothing is left open: no replica shown Running, every attempt has an end.
    for r in s["status"]["replicas"].as_array().unwrap() {
        assert_eq!(r["state"], "Stopped", "{r:#}");
    }
    let attempts = s["status"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for a in attempts {
        assert!(a["finished"].is_f64(), "attempt without an end: {a:#}");
    }
    let table = sb.ok(&["get", "orphan-check"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["orphan-check", "Failed", "0/3"], "{table}");
}

#[test]
fn a_killed_run_is_reported_as_lost_without_pointing_at_a_supervisor_log() {
    let sb = Sandbox::new();
    sb.write("r.sh", WITH_GRANDCHILD);
    let file = sb.job(
        "killed.yaml",
        &job_yaml(
            "killed",
            "  command: [sh, r.sh]\n  replicas: {worker: {count: 2}}\n",
        ),
    );
    let mut run = sb.spawn(&["run", file.to_str().unwrap()]);
    until_processes(&sb, "killed", 4);
    run.kill().unwrap();
    run.wait().unwrap();
    let s = sb.until("killed", "the lost run noticed", |s| {
        s["status"]["phase"] == "Failed"
    });
    assert_eq!(s["status"]["reason"], "SupervisorLost");
    let message = s["status"]["message"].as_str().unwrap();
    assert!(!message.contains("supervisor.log"), "{message}");
    assert!(message.contains("trainctl run"), "{message}");
    assert!(!sb.home().join("jobs/killed/supervisor.log").exists());
    assert_eq!(
        processes_left_after(&sb.home(), "killed", 5),
        Vec::<i32>::new()
    );
}
