//! Jobs of small scripts run end to end by the local engine: every row of the scenario table
//! (crate `trainctl-scenarios`) with real processes, and what only local jobs have: the
//! checkpoint directory across attempts, a missing program, the TTL of a finished job.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{job_yaml, replica_name, Sandbox};
use serde_json::Value;
use trainctl_scenarios::{End, Scenario};

fn submit(sb: &Sandbox, name: &str, spec: &str) {
    submit_yaml(sb, name, &job_yaml(name, spec));
}

fn submit_yaml(sb: &Sandbox, name: &str, yaml: &str) {
    let file = sb.job(&format!("{name}.yaml"), yaml);
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

// ---------------------------------------------------------------------------------------------
// The scenario table
// ---------------------------------------------------------------------------------------------

/// The program of every replica: it waits for its go file (`<replica>.<attempt>` in `go`),
/// then ends as the file says (`exit N` or `kill N`); without one it runs until stopped.
fn replica_program(go: &Path) -> String {
    format!(
        "go=\"{}/$TRAINCTL_REPLICA_TYPE-$TRAINCTL_REPLICA_INDEX.$TRAINCTL_ATTEMPT\"\n\
         while [ ! -e \"$go\" ]; do sleep 0.05; done\n\
         read how code < \"$go\"\n\
         if [ \"$how\" = kill ]; then kill -\"$code\" $$; fi\n\
         exit \"$code\"\n",
        go.display()
    )
}

/// Tells attempt `attempt` of `replica` to end as `end` (written whole, then renamed).
fn release(go: &Path, replica: &str, attempt: u32, end: End) {
    let text = match end {
        End::Exit(code) => format!("exit {code}\n"),
        End::Killed(signal) => format!("kill {signal}\n"),
    };
    let file = go.join(format!("{replica}.{attempt}"));
    let partial = file.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, &file).unwrap();
}

fn is_terminal(status: &Value) -> bool {
    matches!(
        status["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Whether attempt `attempt` of `replica` is running.
fn runs(status: &Value, replica: &str, attempt: u32) -> bool {
    let r = Sandbox::replica(status, replica);
    r["state"] == "Running" && r["attempt"] == attempt
}

/// Plays a scenario with real processes and checks how the job ends.
fn run(s: &Scenario) {
    let sb = Sandbox::new();
    let go = sb.work().join("go");
    std::fs::create_dir_all(&go).unwrap();
    sb.write("replica.sh", &replica_program(&go));
    let name = s.job_name();
    let started = Instant::now();
    submit_yaml(
        &sb,
        &name,
        &s.job_yaml(&name, "  command: [sh, replica.sh]\n"),
    );
    play(&sb, s, &go);
    assert_eq!(sb.wait(&name), s.phase, "{}: phase", s.name);
    check_status(&sb.status(&name), s);
    if let Some(deadline) = parse_deadline(s) {
        let ran = started.elapsed().as_secs_f64();
        assert!(
            ran >= deadline as f64 - 0.1,
            "{}: ended after {ran}s",
            s.name
        );
    }
    if !s.left_running().is_empty() {
        sb.ok(&["delete", &name]);
    }
    let left = common::processes_left_after(&sb.home(), &name, 5);
    assert!(left.is_empty(), "{}: processes left: {left:?}", s.name);
}

/// Ends the replicas' attempts as the steps say, each once the engine runs it; waits for
/// the engine to see each end (and for the restart the row expects after it).
fn play(sb: &Sandbox, s: &Scenario, go: &Path) {
    let name = s.job_name();
    if !s.steps.is_empty() {
        sb.until(&name, "every replica to run", |st| {
            s.replica_ids().iter().all(|r| runs(st, r, 0))
        });
    }
    for step in s.steps {
        let (replica, attempt) = (step.replica, step.attempt);
        let st = sb.until(
            &name,
            &format!("{replica} attempt {attempt} to run"),
            |st| runs(st, replica, attempt) || is_terminal(st),
        );
        assert!(
            !is_terminal(&st),
            "{}: the job ended before {step:?}: {st:#}",
            s.name
        );
        release(go, replica, attempt, step.end);
        sb.until(
            &name,
            &format!("{replica} attempt {attempt} to end"),
            |st| !runs(st, replica, attempt),
        );
        if s.is_restarted_after(step) {
            sb.until(&name, &format!("{replica} to restart"), |st| {
                runs(st, replica, attempt + 1)
            });
        }
    }
}

/// Checks the ended job's status: reason, message, restarts, each replica's state, exit
/// code and attempt, and each step's attempt record.
fn check_status(st: &Value, s: &Scenario) {
    let status = &st["status"];
    assert_eq!(
        (&status["reason"], &status["message"], &status["restarts"]),
        (
            &Value::from(s.reason),
            &Value::from(s.message),
            &Value::from(s.restarts)
        ),
        "{}: reason, message, restarts",
        s.name
    );
    for replica in s.replica_ids() {
        let r = Sandbox::replica(st, &replica);
        let want = match s.final_end(&replica) {
            _ if s.is_stopped(&replica) => ("Stopped", Some(143)),
            Some(End::Exit(0)) => ("Succeeded", Some(0)),
            Some(end) => ("Failed", Some(end.exit_code())),
            None => ("Running", None),
        };
        assert_eq!(
            (r["state"].as_str().unwrap(), r["exitCode"].as_i64()),
            (want.0, want.1.map(i64::from)),
            "{}: {replica}",
            s.name
        );
        assert_eq!(
            r["attempt"],
            s.final_attempt(&replica),
            "{}: attempt of {replica}",
            s.name
        );
    }
    let attempts = status["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        s.attempts_run().len(),
        "{}: attempts",
        s.name
    );
    for step in s.steps {
        let recorded = attempts
            .iter()
            .find(|a| replica_name(a) == step.replica && a["attempt"] == step.attempt)
            .unwrap_or_else(|| panic!("{}: no attempt for {step:?}", s.name));
        assert_eq!(
            recorded["exitCode"],
            step.end.exit_code(),
            "{}: {step:?}",
            s.name
        );
    }
}

/// The job's activeDeadlineSeconds.
fn parse_deadline(s: &Scenario) -> Option<u64> {
    let job = trainctl_spec::parse_job_str("job.yaml", &s.job_yaml("j", "  command: [sh]\n"))
        .expect("a valid job");
    job.spec.run_policy.active_deadline_seconds
}

trainctl_scenarios::scenario_tests!(fn run);

// ---------------------------------------------------------------------------------------------
// Local jobs only
// ---------------------------------------------------------------------------------------------

#[test]
fn a_restarted_replica_finds_its_checkpoint_dir_and_logs_each_attempt() {
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

#[test]
fn kind_words_name_jobs_as_in_kubectl() {
    let sb = Sandbox::new();
    submit(
        &sb,
        "kinded",
        "  command: [\"true\"]\n  replicas: {worker: {}}\n",
    );
    assert_eq!(sb.wait("kinded"), "Succeeded");
    for kind in ["jobs", "job", "trainingjobs", "tj"] {
        let listing = sb.ok(&["get", kind]);
        assert!(listing.contains("kinded"), "get {kind}: {listing}");
        let one: Value =
            serde_json::from_str(&sb.ok(&["get", kind, "kinded", "-o", "json"])).unwrap();
        assert_eq!(one["metadata"]["name"], "kinded", "get {kind} kinded");
    }
    assert!(sb.ok(&["describe", "job", "kinded"]).contains("kinded"));
    let bare = sb.tc(&["describe", "job"]);
    assert_eq!(bare.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bare.stderr).contains("trainctl describe job NAME"));
    sb.ok(&["delete", "job", "kinded"]);
    assert_eq!(sb.tc(&["get", "kinded"]).status.code(), Some(1), "deleted");
}
