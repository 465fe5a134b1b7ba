//! Suspend and resume on this machine, run for real with the quickstart trainer (it follows
//! the checkpoint contract of docs/checkpoints.md): a suspended job stops every replica and
//! keeps its checkpoints, a resumed one continues from them as new attempts; a job whose
//! supervisor is killed becomes resumable unless its restart policy is `Never`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{job_processes, job_yaml, processes_left_after, Sandbox};
use serde_json::Value;

/// The quickstart (1 ps, 2 workers) as job `name`, training `epochs` epochs, with
/// `run_policy` (YAML flow mapping entries) added to its runPolicy.
fn quickstart(sb: &Sandbox, name: &str, epochs: u32, run_policy: &str) -> PathBuf {
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/train.py");
    std::fs::copy(train, sb.work().join("train.py")).unwrap();
    sb.job(
        &format!("{name}.yaml"),
        &job_yaml(
            name,
            &format!(
                "  framework: tensorflow\n  command: [python3, train.py]\n  \
                 hyperparameters: {{epochs: {epochs}, batch_size: 16}}\n  replicas:\n    \
                 ps: {{count: 1}}\n    worker: {{count: 2}}\n  \
                 runPolicy: {{restartPolicy: ExitCode, backoffLimit: 1{run_policy}}}\n"
            ),
        ),
    )
}

/// The last `Step: N` that a log shows (0 before the first).
fn last_step(log: &str) -> u64 {
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Step: ")?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits (at most 60 s) until worker-0's first attempt has trained past step `past`.
fn until_trained(sb: &Sandbox, job: &str, past: u64) {
    let start = Instant::now();
    while last_step(&sb.attempt_log(job, "worker-0", 0)) <= past {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "worker-0 never passed step {past}: {}",
            sb.attempt_log(job, "worker-0", 0)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The step a resumed attempt's log says it resumed from.
fn resumed_step(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.starts_with("Resumed from step "))?;
    line["Resumed from step ".len()..]
        .split(' ')
        .next()?
        .parse()
        .ok()
}

fn reasons(status: &Value) -> Vec<String> {
    status["status"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect()
}

/// Checks a job that was resumed once and ran to the end: every replica ran attempt 1,
/// worker-0 continued from its checkpoint, and no restart was counted.
fn assert_resumed_and_succeeded(sb: &Sandbox, job: &str) {
    assert_eq!(sb.wait(job), "Succeeded", "{:#}", sb.status(job));
    let log = sb.attempt_log(job, "worker-0", 1);
    let step = resumed_step(&log).unwrap_or_else(|| panic!("no resumed step in: {log}"));
    assert!(step > 0, "{log}");
    assert!(
        last_step(&log) > step,
        "it trained on after resuming: {log}"
    );
    let s = sb.status(job);
    assert_eq!(s["status"]["restarts"], 0, "a resume is not a restart");
    let attempts = s["status"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 6, "two attempts per replica: {attempts:#?}");
    assert!(reasons(&s).contains(&"Resumed".to_string()), "{s:#}");
}

#[test]
fn a_suspended_job_keeps_its_checkpoints_and_resumes_from_them_as_new_attempts() {
    let sb = Sandbox::new();
    let file = quickstart(&sb, "pause", 12, "");
    sb.ok(&["submit", file.to_str().unwrap()]);
    until_trained(&sb, "pause", 20);

    assert_eq!(
        sb.ok(&["suspend", "pause"]),
        "trainingjob/pause suspended\n"
    );
    let s = sb.status("pause");
    assert_eq!(s["status"]["phase"], "Suspended", "{s:#}");
    assert_eq!(job_processes(&sb.home(), "pause"), Vec::<i32>::new());
    for r in s["status"]["replicas"].as_array().unwrap() {
        assert_eq!(r["state"], "Stopped", "{r:#}");
    }
    assert!(reasons(&s).contains(&"Suspended".to_string()), "{s:#}");
    let saved = sb.attempt_log("pause", "worker-0", 0);
    assert!(
        saved.contains("checkpoint saved"),
        "SIGTERM, then a save: {saved}"
    );
    let table = sb.ok(&["get", "pause"]);
    assert!(table.contains("Suspended"), "{table}");

    assert_eq!(sb.ok(&["resume", "pause"]), "trainingjob/pause resumed\n");
    assert_resumed_and_succeeded(&sb, "pause");
}

#[test]
fn a_job_submitted_suspended_waits_until_resumed() {
    let sb = Sandbox::new();
    let file = sb.job(
        "later.yaml",
        &job_yaml(
            "later",
            "  command: [sh, -c, 'echo attempt $TRAINCTL_ATTEMPT']\n  \
             replicas: {worker: {count: 1}}\n  runPolicy: {suspend: true}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    let s = sb.until("later", "suspended", |s| {
        s["status"]["phase"] == "Suspended"
    });
    std::thread::sleep(Duration::from_millis(500));
    let s2 = sb.status("later");
    assert_eq!(s2["status"]["phase"], "Suspended", "it stays: {s2:#}");
    assert_eq!(s["status"]["attempts"].as_array().unwrap().len(), 0);

    sb.ok(&["resume", "later"]);
    assert_eq!(sb.wait("later"), "Succeeded");
    assert_eq!(sb.attempt_log("later", "worker-0", 0), "attempt 0\n");
}

#[test]
fn a_replica_gets_the_grace_period_of_its_run_policy_to_save_before_it_is_killed() {
    let sb = Sandbox::new();
    // Saving takes 4 s; the sandbox's engine default (TRAINCTL_STOP_GRACE_SECONDS) is 3 s.
    sb.write(
        "slow_save.sh",
        "trap 'sleep 4; echo saved; exit 143' TERM\necho up\nwhile :; do sleep 0.1; done\n",
    );
    let file = sb.job(
        "slow.yaml",
        &job_yaml(
            "slow",
            "  command: [sh, slow_save.sh]\n  replicas: {worker: {count: 1}}\n  \
             runPolicy: {terminationGracePeriodSeconds: 20}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    sb.until("slow", "running", |s| s["status"]["phase"] == "Running");
    while sb.attempt_log("slow", "worker-0", 0).is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    sb.ok(&["suspend", "slow"]);
    let log = sb.attempt_log("slow", "worker-0", 0);
    assert!(log.starts_with("up\n") && log.ends_with("saved\n"), "{log}");
    assert_eq!(sb.phase("slow"), "Suspended");
}

/// Kills the process that supervises `job` (the parent of its replicas) with SIGKILL;
/// returns the job's status once the loss is noticed.
fn kill_supervisor(sb: &Sandbox, job: &str) -> Value {
    let s = sb.status(job);
    let pid = s["status"]["replicas"][0]["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let supervisor: i32 = after.split(' ').nth(1).unwrap().parse().unwrap();
    // SAFETY: plain kill(2) of the job's supervisor.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    let s = sb.until(job, "the loss noticed", |s| {
        s["status"]["phase"] != "Running"
    });
    assert_eq!(s["status"]["reason"], "SupervisorLost", "{s:#}");
    s
}

#[test]
fn a_killed_supervisor_leaves_a_resumable_job_and_resume_lost_continues_it() {
    let sb = Sandbox::new();
    let file = quickstart(&sb, "orphan", 12, "");
    sb.ok(&["submit", file.to_str().unwrap()]);
    // The replicas die with their supervisor (SIGKILL, no time to save): past the first
    // epoch (94 steps), whose end the trainer saves, the periodic checkpoint is there.
    until_trained(&sb, "orphan", 100);
    let s = kill_supervisor(&sb, "orphan");
    assert_eq!(s["status"]["phase"], "Suspended", "{s:#}");
    let message = s["status"]["message"].as_str().unwrap();
    assert!(message.contains("trainctl resume"), "{message}");
    assert_eq!(
        processes_left_after(&sb.home(), "orphan", 5),
        Vec::<i32>::new()
    );

    assert_eq!(sb.ok(&["resume", "--lost"]), "trainingjob/orphan resumed\n");
    assert_eq!(sb.ok(&["resume", "--lost"]), "no job lost its supervisor\n");
    assert_resumed_and_succeeded(&sb, "orphan");
}

#[test]
fn a_killed_supervisor_still_fails_a_job_that_never_restarts() {
    let sb = Sandbox::new();
    sb.write("idle.sh", "echo up\nexec sleep 300\n");
    let file = sb.job(
        "never.yaml",
        &job_yaml(
            "never",
            "  command: [sh, idle.sh]\n  replicas: {worker: {count: 1}}\n  \
             runPolicy: {restartPolicy: Never}\n",
        ),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    sb.until("never", "running", |s| {
        s["status"]["replicas"][0]["state"] == "Running" && s["status"]["replicas"][0]["pid"] != 0
    });
    let s = kill_supervisor(&sb, "never");
    assert_eq!(s["status"]["phase"], "Failed", "{s:#}");
    let out = sb.tc(&["resume", "never"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not suspended (phase Failed)"), "{err}");
}

/// A job of one worker on `gpus` fake GPUs that prints its name and sleeps `secs`.
fn gpu_job(sb: &Sandbox, name: &str, scheduling: &str, secs: &str) -> String {
    let file = sb.job(
        &format!("{name}.yaml"),
        &job_yaml(
            name,
            &format!(
                "  command: [sh, -c, 'echo {name} on $CUDA_VISIBLE_DEVICES; sleep {secs}']\n  \
                 replicas: {{worker: {{count: 1, resources: {{gpu: 2}}}}}}\n  \
                 scheduling: {scheduling}\n"
            ),
        ),
    );
    file.to_string_lossy().into_owned()
}

fn event_messages(status: &Value, reason: &str) -> Vec<String> {
    status["status"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_long_preemptible_job_gives_its_gpus_to_a_higher_priority_one_and_resumes_from_its_checkpoint()
{
    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    let file = quickstart(&sb, "long", 12, "");
    let yaml = std::fs::read_to_string(&file).unwrap().replace(
        "worker: {count: 2}",
        "worker: {count: 2, resources: {gpu: 1}}",
    ) + "  scheduling: {preemptible: true}\n";
    std::fs::write(&file, yaml).unwrap();
    sb.ok(&["submit", file.to_str().unwrap()]);
    until_trained(&sb, "long", 20);

    let urgent = gpu_job(&sb, "urgent", "{priority: 10}", "1");
    sb.ok(&["submit", &urgent]);
    assert_eq!(sb.wait("urgent"), "Succeeded");
    assert_eq!(sb.attempt_log("urgent", "worker-0", 0), "urgent on 0,1\n");
    let u = sb.status("urgent");
    let preempting = event_messages(&u, "Preempting");
    assert_eq!(preempting.len(), 1, "{u:#}");
    assert!(
        preempting[0].starts_with("preempting long"),
        "{preempting:?}"
    );

    let l = sb.status("long");
    let preempted = event_messages(&l, "Preempted");
    assert_eq!(preempted.len(), 1, "{l:#}");
    assert!(
        preempted[0].starts_with("preempted by urgent"),
        "{preempted:?}"
    );
    // It resumed by itself once urgent had finished.
    assert_resumed_and_succeeded_without_resume(&sb, "long");
}

/// Like [`assert_resumed_and_succeeded`] for a job the queue resumed on its own.
fn assert_resumed_and_succeeded_without_resume(sb: &Sandbox, job: &str) {
    assert_eq!(sb.wait(job), "Succeeded", "{:#}", sb.status(job));
    let log = sb.attempt_log(job, "worker-0", 1);
    let step = resumed_step(&log).unwrap_or_else(|| panic!("no resumed step in: {log}"));
    assert!(step > 0, "{log}");
    let s = sb.status(job);
    assert_eq!(s["status"]["restarts"], 0, "a preemption is not a restart");
    assert_eq!(s["status"]["attempts"].as_array().unwrap().len(), 6);
}

#[test]
fn a_job_that_is_not_preemptible_is_never_suspended_for_a_higher_priority_one() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    let steady = gpu_job(&sb, "steady", "{priority: 0}", "3");
    sb.ok(&["submit", &steady]);
    sb.until("steady", "running", |s| s["status"]["phase"] == "Running");
    let urgent = gpu_job(&sb, "urgent", "{priority: 10}", "0.2");
    sb.ok(&["submit", &urgent]);
    assert_eq!(sb.wait("urgent"), "Succeeded");
    let s = sb.status("steady");
    assert_eq!(
        s["status"]["phase"], "Succeeded",
        "steady ran to its end first"
    );
    assert!(event_messages(&s, "Preempted").is_empty(), "{s:#}");
    assert_eq!(s["status"]["attempts"].as_array().unwrap().len(), 1);
    let u = sb.status("urgent");
    assert!(event_messages(&u, "Preempting").is_empty(), "{u:#}");
}

#[test]
fn under_least_attained_service_a_long_job_is_suspended_for_a_new_short_one_and_resumes() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    // Levels at 4 GPU-seconds: after about 2 s on its 2 GPUs the long job is in level 1,
    // below any new job; it may be preempted after 1 s of running.
    let las = [
        ("TRAINCTL_QUEUE_POLICY", "las"),
        ("TRAINCTL_LAS_THRESHOLDS_GPU_SECONDS", "4"),
        ("TRAINCTL_LAS_MIN_RUN_SECONDS", "1"),
    ];
    let file = quickstart(&sb, "long", 60, "");
    let yaml = std::fs::read_to_string(&file).unwrap().replace(
        "worker: {count: 2}",
        "worker: {count: 2, resources: {gpu: 1}}",
    ) + "  scheduling: {preemptible: true}\n";
    std::fs::write(&file, yaml).unwrap();
    sb.ok_with(&["submit", file.to_str().unwrap()], &las);
    until_trained(&sb, "long", 20);
    std::thread::sleep(Duration::from_secs(3));

    // Same priority: only the GPU time received tells them apart.
    let short = gpu_job(&sb, "short", "{preemptible: true}", "1");
    sb.ok_with(&["submit", &short], &las);
    assert_eq!(sb.wait("short"), "Succeeded", "{:#}", sb.status("short"));
    let s = sb.status("short");
    let preempting = event_messages(&s, "Preempting");
    let l = sb.status("long");
    assert_eq!(preempting.len(), 1, "{s:#}\n{l:#}");
    assert!(
        preempting[0].starts_with("preempting long"),
        "{preempting:?}"
    );
    assert_eq!(event_messages(&l, "Preempted").len(), 1, "{l:#}");
    assert_resumed_and_succeeded_without_resume(&sb, "long");

    // The queue is empty again and lists the preemption.
    let table = sb.ok(&["queue"]);
    assert!(table.contains("Preempted in the last hour:"), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("long"))
        .unwrap_or_default();
    assert!(row.contains("preempted by short"), "{table}");
    let list: Value = serde_json::from_str(&sb.ok(&["queue", "-o", "json"])).unwrap();
    let recent = list["recentPreemptions"].as_array().unwrap();
    assert_eq!(recent.len(), 1, "{list:#}");
    assert_eq!(recent[0]["job"], "long");
}
