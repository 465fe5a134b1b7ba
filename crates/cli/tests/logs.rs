//! Logs: every attempt kept in its own file and readable after the job ended and after the
//! CLI that started it exited; `--replica`, `--attempt`, `--tail` and `-f`.

mod common;

use common::{job_yaml, Sandbox};

#[test]
fn every_attempt_is_readable_after_the_job_and_its_cli_are_gone() {
    let sb = Sandbox::new();
    sb.write(
        "flaky.sh",
        "echo \"worker $TRAINCTL_REPLICA_INDEX attempt $TRAINCTL_ATTEMPT\"\necho oops >&2\n[ \"$TRAINCTL_ATTEMPT\" -ge 1 ] || exit 1\n",
    );
    let file = sb.job(
        "flaky.yaml",
        &job_yaml(
            "flaky",
            "  command: [sh, flaky.sh]\n  replicas: {worker: {count: 2}}\n  runPolicy: {restartPolicy: OnFailure, backoffLimit: 4, successPolicy: AllWorkers}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    assert_eq!(sb.wait("flaky"), "Succeeded");

    // Each command below is a new process reading the stored state.
    let first = sb.ok(&["logs", "flaky", "--replica", "worker-1", "--attempt", "0"]);
    assert_eq!(first, "worker 1 attempt 0\noops\n");
    let latest = sb.ok(&["logs", "flaky", "--replica", "worker-1"]);
    assert_eq!(latest, "worker 1 attempt 1\noops\n");

    let all = sb.ok(&["logs", "flaky"]);
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "[worker-0] oops",
            "[worker-0] worker 0 attempt 1",
            "[worker-1] oops",
            "[worker-1] worker 1 attempt 1",
        ]
    );
}

#[test]
fn tail_shows_the_last_lines() {
    let sb = Sandbox::new();
    sb.write(
        "count.sh",
        "i=1; while [ $i -le 500 ]; do echo line $i; i=$((i+1)); done\n",
    );
    let file = sb.job(
        "count.yaml",
        &job_yaml(
            "count",
            "  command: [sh, count.sh]\n  replicas: {worker: {}}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    sb.wait("count");
    assert_eq!(
        sb.ok(&["logs", "count", "-r", "worker-0", "--tail", "3"]),
        "line 498\nline 499\nline 500\n"
    );
    assert_eq!(
        sb.ok(&["logs", "count", "-r", "worker-0", "--tail", "0"]),
        ""
    );
    assert_eq!(
        sb.ok(&["logs", "count", "-r", "worker-0"]).lines().count(),
        500
    );
}

#[test]
fn follow_streams_until_the_job_ends_across_restarts() {
    let sb = Sandbox::new();
    sb.write(
        "slow.sh",
        "for i in 1 2 3; do echo \"a$TRAINCTL_ATTEMPT step $i\"; sleep 0.2; done\n[ \"$TRAINCTL_ATTEMPT\" = 1 ] || exit 5\n",
    );
    let file = sb.job(
        "follow.yaml",
        &job_yaml(
            "follow",
            "  command: [sh, slow.sh]\n  replicas: {worker: {}}\n  runPolicy: {restartPolicy: OnFailure}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    let out = sb.ok(&["logs", "follow", "-f", "-r", "worker-0"]);
    assert_eq!(
        out,
        "a0 step 1\na0 step 2\na0 step 3\na1 step 1\na1 step 2\na1 step 3\n"
    );
    assert_eq!(sb.phase("follow"), "Succeeded");
}

#[test]
fn unknown_replica_is_a_clear_error() {
    let sb = Sandbox::new();
    let file = sb.job(
        "one.yaml",
        &job_yaml("one", "  command: [\"true\"]\n  replicas: {worker: {}}\n"),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    sb.wait("one");
    let out = sb.tc(&["logs", "one", "--replica", "worker-7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("job one has no replica worker-7; it has worker-0"));
    let out = sb.tc(&["logs", "one", "--replica", "banana"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a replica name"));
}

#[test]
fn an_attempt_that_does_not_exist_is_an_error_naming_those_that_do() {
    let sb = Sandbox::new();
    sb.write(
        "twice.sh",
        "echo attempt $TRAINCTL_ATTEMPT\n[ \"$TRAINCTL_ATTEMPT\" -ge 1 ] || exit 1\n",
    );
    let file = sb.job(
        "twice.yaml",
        &job_yaml(
            "twice",
            "  command: [sh, twice.sh]\n  replicas: {worker: {count: 2}}\n  runPolicy: {restartPolicy: OnFailure, backoffLimit: 4, successPolicy: AllWorkers}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    assert_eq!(sb.wait("twice"), "Succeeded");

    let out = sb.tc(&["logs", "twice", "--attempt", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: job twice has no attempt 999; it has attempts 0, 1\n"
    );
    let out = sb.tc(&["logs", "twice", "-r", "worker-1", "--attempt", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: worker-1 of job twice has no attempt 2; it has attempts 0, 1\n"
    );
    // The attempts that exist still print.
    assert_eq!(
        sb.ok(&["logs", "twice", "-r", "worker-1", "--attempt", "1"]),
        "attempt 1\n"
    );
}
