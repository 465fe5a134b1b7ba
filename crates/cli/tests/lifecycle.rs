//! Jobs of small scripts run end to end: success policies, parameter servers stopped after
//! success, restarts, exit-code rules, backoff limit and deadline.

mod common;

use common::{job_yaml, Sandbox};

/// A replica that serves forever, like a parameter server.
const FOREVER: &str = "exec sleep 300\n";

fn submit(sb: &Sandbox, name: &str, spec: &str) {
    let file = sb.job(&format!("{name}.yaml"), &job_yaml(name, spec));
    let out = sb.ok(&["submit", file.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("trainingjob/{name} created"));
}

fn state(sb: &Sandbox, job: &str, replica: &str) -> (String, Option<i64>) {
    let s = sb.status(job);
    let r = Sandbox::replica(&s, replica);
    (
        r["state"].as_str().unwrap().to_string(),
        r["exitCode"].as_i64(),
    )
}

#[test]
fn worker0_success_ends_a_ps_job_and_stops_the_ps() {
    let sb = Sandbox::new();
    sb.write("ps.sh", FOREVER);
    sb.write("worker.sh", "sleep 0.3; echo trained\n");
    submit(
        &sb,
        "ps-job",
        "  framework: tensorflow\n  replicas:\n    ps: {count: 1, command: [sh, ps.sh]}\n    worker: {count: 2, command: [sh, worker.sh]}\n",
    );
    assert_eq!(sb.wait("ps-job"), "Succeeded");
    let s = sb.status("ps-job");
    assert_eq!(s["status"]["message"], "worker-0 succeeded");
    assert_eq!(
        state(&sb, "ps-job", "worker-0"),
        ("Succeeded".into(), Some(0))
    );
    // The PS never exits by itself: the success policy stopped it with SIGTERM.
    assert_eq!(state(&sb, "ps-job", "ps-0"), ("Stopped".into(), Some(143)));
    assert!(common::processes_left_after(&sb.home(), "ps-job", 5).is_empty());
}

#[test]
fn the_chief_decides_success_even_while_workers_run() {
    let sb = Sandbox::new();
    sb.write("chief.sh", "sleep 0.2\n");
    sb.write("worker.sh", FOREVER);
    submit(
        &sb,
        "chief-job",
        "  framework: tensorflow\n  replicas:\n    chief: {command: [sh, chief.sh]}\n    worker: {count: 2, command: [sh, worker.sh]}\n",
    );
    assert_eq!(sb.wait("chief-job"), "Succeeded");
    assert_eq!(
        sb.status("chief-job")["status"]["message"],
        "chief-0 succeeded"
    );
    assert_eq!(state(&sb, "chief-job", "worker-1").0, "Stopped");
}

#[test]
fn all_workers_policy_waits_for_every_worker() {
    let sb = Sandbox::new();
    // worker-0 is quick; worker-1 takes longer. Under AllWorkers the job ends with worker-1.
    sb.write(
        "worker.sh",
        "if [ \"$TRAINCTL_REPLICA_INDEX\" = 1 ]; then sleep 1; fi\necho done $TRAINCTL_REPLICA_INDEX\n",
    );
    submit(
        &sb,
        "all-workers",
        "  command: [sh, worker.sh]\n  replicas:\n    worker: {count: 2}\n  runPolicy: {successPolicy: AllWorkers}\n",
    );
    assert_eq!(sb.wait("all-workers"), "Succeeded");
    assert_eq!(
        sb.status("all-workers")["status"]["message"],
        "all 2 workers succeeded"
    );
    assert_eq!(
        state(&sb, "all-workers", "worker-1"),
        ("Succeeded".into(), Some(0))
    );
}

#[test]
fn on_failure_restarts_with_a_new_attempt_and_keeps_the_checkpoint_dir() {
    let sb = Sandbox::new();
    sb.write(
        "train.sh",
        r#"echo "attempt $TRAINCTL_ATTEMPT"
if [ "$TRAINCTL_ATTEMPT" = 0 ]; then echo saved > "$TRAINCTL_CHECKPOINT_DIR/ckpt"; exit 3; fi
echo "resumed from $(cat "$TRAINCTL_CHECKPOINT_DIR/ckpt")"
"#,
    );
    submit(
        &sb,
        "restarts",
        "  command: [sh, train.sh]\n  replicas: {worker: {}}\n  runPolicy: {restartPolicy: OnFailure, backoffLimit: 2}\n",
    );
    assert_eq!(sb.wait("restarts"), "Succeeded");
    let s = sb.status("restarts");
    assert_eq!(s["status"]["restarts"], 1);
    assert_eq!(sb.attempt_log("restarts", "worker-0", 0), "attempt 0\n");
    assert_eq!(
        sb.attempt_log("restarts", "worker-0", 1),
        "attempt 1\nresumed from saved\n"
    );
    let attempts = s["status"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["exitCode"], 3);
    assert_eq!(attempts[1]["exitCode"], 0);
}

#[test]
fn exit_code_policy_retries_130_but_not_1() {
    let sb = Sandbox::new();
    sb.write(
        "retry.sh",
        "if [ \"$TRAINCTL_ATTEMPT\" = 0 ]; then exit 130; fi\n",
    );
    sb.write("fatal.sh", "exit 1\n");
    let policy = "  runPolicy: {restartPolicy: ExitCode, backoffLimit: 3}\n";
    submit(
        &sb,
        "retryable",
        &format!("  command: [sh, retry.sh]\n  replicas: {{worker: {{}}}}\n{policy}"),
    );
    submit(
        &sb,
        "fatal",
        &format!("  command: [sh, fatal.sh]\n  replicas: {{worker: {{}}}}\n{policy}"),
    );

    assert_eq!(sb.wait("retryable"), "Succeeded");
    assert_eq!(sb.status("retryable")["status"]["restarts"], 1);

    assert_eq!(sb.wait("fatal"), "Failed");
    let s = sb.status("fatal");
    assert_eq!(s["status"]["reason"], "ReplicaFailed");
    assert_eq!(s["status"]["restarts"], 0);
    assert!(s["status"]["message"]
        .as_str()
        .unwrap()
        .contains("exited with code 1"));
}

#[test]
fn a_signal_death_counts_as_128_plus_the_signal_and_is_retried() {
    let sb = Sandbox::new();
    sb.write(
        "killed.sh",
        "if [ \"$TRAINCTL_ATTEMPT\" = 0 ]; then kill -9 $$; fi\n",
    );
    submit(
        &sb,
        "oom-like",
        "  command: [sh, killed.sh]\n  replicas: {worker: {}}\n  runPolicy: {restartPolicy: ExitCode}\n",
    );
    assert_eq!(sb.wait("oom-like"), "Succeeded");
    let s = sb.status("oom-like");
    assert_eq!(s["status"]["attempts"][0]["exitCode"], 137);
}

#[test]
fn backoff_limit_exhausted_fails_the_job() {
    let sb = Sandbox::new();
    sb.write("always-fails.sh", "echo try $TRAINCTL_ATTEMPT; exit 2\n");
    submit(
        &sb,
        "backoff",
        "  command: [sh, always-fails.sh]\n  replicas: {worker: {}}\n  runPolicy: {restartPolicy: OnFailure, backoffLimit: 2}\n",
    );
    assert_eq!(sb.wait("backoff"), "Failed");
    let s = sb.status("backoff");
    assert_eq!(s["status"]["reason"], "BackoffLimitExceeded");
    assert_eq!(s["status"]["restarts"], 2);
    assert_eq!(s["status"]["attempts"].as_array().unwrap().len(), 3);
}

#[test]
fn never_policy_fails_the_job_on_the_first_failure_and_stops_the_rest() {
    let sb = Sandbox::new();
    sb.write(
        "w.sh",
        "if [ \"$TRAINCTL_REPLICA_INDEX\" = 1 ]; then exit 4; fi\nexec sleep 300\n",
    );
    submit(
        &sb,
        "never",
        "  command: [sh, w.sh]\n  replicas: {worker: {count: 2}}\n",
    );
    assert_eq!(sb.wait("never"), "Failed");
    assert_eq!(state(&sb, "never", "worker-1"), ("Failed".into(), Some(4)));
    assert_eq!(state(&sb, "never", "worker-0").0, "Stopped");
    assert!(common::processes_left_after(&sb.home(), "never", 5).is_empty());
}

#[test]
fn active_deadline_fails_a_job_that_runs_too_long() {
    let sb = Sandbox::new();
    sb.write("slow.sh", FOREVER);
    submit(
        &sb,
        "deadline",
        "  command: [sh, slow.sh]\n  replicas: {worker: {}}\n  runPolicy: {activeDeadlineSeconds: 1}\n",
    );
    let started = std::time::Instant::now();
    assert_eq!(sb.wait("deadline"), "Failed");
    assert!(started.elapsed().as_secs_f64() >= 0.9);
    let s = sb.status("deadline");
    assert_eq!(s["status"]["reason"], "DeadlineExceeded");
    assert_eq!(state(&sb, "deadline", "worker-0").0, "Stopped");
    assert!(common::processes_left_after(&sb.home(), "deadline", 5).is_empty());
}

#[test]
fn a_command_that_does_not_exist_fails_with_127_and_says_why() {
    let sb = Sandbox::new();
    submit(
        &sb,
        "missing",
        "  command: [no-such-program-xyz]\n  replicas: {worker: {}}\n",
    );
    assert_eq!(sb.wait("missing"), "Failed");
    assert_eq!(
        state(&sb, "missing", "worker-0"),
        ("Failed".into(), Some(127))
    );
    let log = sb.attempt_log("missing", "worker-0", 0);
    assert!(
        log.contains("cannot start \"no-such-program-xyz\""),
        "{log}"
    );
}

#[test]
fn a_finished_job_is_removed_after_its_ttl() {
    let sb = Sandbox::new();
    submit(
        &sb,
        "short-lived",
        "  command: [\"true\"]\n  replicas: {worker: {}}\n  runPolicy: {ttlSecondsAfterFinished: 1}\n",
    );
    assert_eq!(sb.wait("short-lived"), "Succeeded");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let out = sb.tc(&["get", "short-lived"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!sb.home().join("jobs/short-lived").exists());
}
