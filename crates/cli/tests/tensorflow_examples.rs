//! The TensorFlow examples (examples/tensorflow) run for real by the local engine: real
//! TensorFlow processes wired only by trainctl's TF_CONFIG. Each example succeeds when its
//! chief does, with the servers that block forever stopped; `trainctl metrics` reads
//! TensorFlow's own event files and the printed progress lines; a worker killed with SIGKILL
//! is restarted and resumes from its checkpoint; a suspended job resumes at the step its chief
//! saved on SIGTERM, a job that lost its supervisor resumes from its last checkpoint; and the
//! examples render to valid cluster objects with the checkpoints on a PVC.
//!
//! TensorFlow comes from tests/requirements.txt (scripts/test installs it into .venv and puts
//! that first on PATH); without it these tests fail and say so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{processes_left_after, Sandbox};
use serde_json::Value;

/// How long a TensorFlow job may take here: each replica is a whole TensorFlow runtime, and a
/// small machine starts several of them at once.
const JOB_TIMEOUT: &str = "600s";

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/tensorflow")
        .join(name)
        .join("job.yaml")
}

/// Fails the test with the fix when `python3` on PATH has no TensorFlow.
fn require_tensorflow() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)",
        ])
        .status();
    assert!(
        matches!(probe, Ok(s) if s.success()),
        "python3 on PATH has no tensorflow: run scripts/test (it installs tests/requirements.txt, \
         tensorflow-cpu included, into .venv and puts it first on PATH)"
    );
}

/// Submits an example and waits for it to end; returns its status.
fn run_example(sb: &Sandbox, name: &str, job: &str) -> Value {
    require_tensorflow();
    sb.ok(&["submit", example(name).to_str().unwrap()]);
    finish(sb, job)
}

/// Waits for the job to end; insists that it succeeded and that none of its processes is left.
/// Returns its status once no replica is running any more (the servers are stopped after the
/// job has succeeded).
fn finish(sb: &Sandbox, job: &str) -> Value {
    let out = sb.tc(&["wait", job, "--timeout", JOB_TIMEOUT]);
    let status = sb.status(job);
    assert!(
        out.status.success(),
        "{job} did not succeed: {status:#}\n{}",
        sb.tc(&["logs", job]).stdout.escape_ascii()
    );
    assert_eq!(status["status"]["phase"], "Succeeded", "{status:#}");
    let left = processes_left_after(&sb.home(), job, 10);
    assert!(left.is_empty(), "processes of {job} left: {left:?}");
    sb.until(job, "every replica to have ended", |s| {
        states(s).iter().all(|(_, state)| state != "Running")
    })
}

/// The state of every replica, by name.
fn states(status: &Value) -> Vec<(String, String)> {
    status["status"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                common::replica_name(r),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn state_of(status: &Value, replica: &str) -> String {
    Sandbox::replica(status, replica)["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `trainctl metrics JOB -o json`: (points, last step, last value) of `run`/`tag`.
fn metric(sb: &Sandbox, job: &str, run: &str, tag: &str) -> (u64, i64, f64) {
    let json: Value = serde_json::from_str(&sb.ok(&["metrics", job, "-o", "json"])).unwrap();
    let s = json["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["run"] == run && s["tag"] == tag)
        .unwrap_or_else(|| panic!("no {run}/{tag} in {json:#}"));
    (
        s["points"].as_u64().unwrap(),
        s["step"].as_i64().unwrap(),
        s["last"].as_f64().unwrap(),
    )
}

#[test]
fn parameter_server_strategy_succeeds_with_its_servers_stopped_and_its_tf2_scalars_readable() {
    let sb = Sandbox::new();
    let status = run_example(&sb, "ps-strategy", "tf-ps-strategy");
    assert_eq!(
        states(&status),
        [
            ("chief-0".into(), "Succeeded".into()),
            ("ps-0".into(), "Stopped".into()),
            ("worker-0".into(), "Stopped".into()),
            ("worker-1".into(), "Stopped".into()),
        ]
    );
    // tf.summary.scalar in TF2 writes tensors, not simple values: 5 epochs of 125 steps,
    // one point per 100 steps and one at the end.
    let (points, step, loss) = metric(&sb, "tf-ps-strategy", "chief", "loss");
    assert_eq!((points, step), (7, 625));
    assert!(loss > 0.0 && loss < 1.0, "loss {loss}");
    let (_, _, accuracy) = metric(&sb, "tf-ps-strategy", "chief", "accuracy");
    assert!(accuracy > 0.5, "accuracy {accuracy}");
    let checkpoints = sb.home().join("jobs/tf-ps-strategy/checkpoints/checkpoint");
    let index = std::fs::read_to_string(&checkpoints).unwrap();
    assert!(index.contains("ckpt-625"), "{index}");
}

#[test]
fn multi_worker_mirrored_strategy_succeeds_and_its_chief_writes_the_scalars() {
    let sb = Sandbox::new();
    let status = run_example(&sb, "multi-worker", "tf-multi-worker");
    assert_eq!(state_of(&status, "worker-0"), "Succeeded");
    let (points, step, accuracy) = metric(&sb, "tf-multi-worker", "worker-0", "accuracy");
    assert_eq!((points, step), (4, 310));
    assert!(accuracy > 0.9, "accuracy {accuracy}");
    // Both workers ran the same synchronous steps.
    for worker in ["worker-0", "worker-1"] {
        let log = sb.attempt_log("tf-multi-worker", worker, 0);
        assert!(log.contains("step 310 of 310"), "{worker}: {log}");
    }
}

/// The global step of the newest checkpoint in `dir` (from TensorFlow's `checkpoint` index).
fn checkpoint_step(dir: &Path) -> Option<u64> {
    let index = std::fs::read_to_string(dir.join("checkpoint")).ok()?;
    let line = index.lines().next()?;
    line.rsplit('-').next()?.trim_end_matches('"').parse().ok()
}

#[test]
fn between_graph_worker_killed_mid_training_resumes_from_its_checkpoint_and_prints_progress() {
    let sb = Sandbox::new();
    require_tensorflow();
    sb.ok(&["submit", example("between-graph").to_str().unwrap()]);
    let job = "tf-between-graph";
    let saved = until_checkpoint(&sb, job, 1);
    let status = sb.status(job);
    let pid = Sandbox::replica(&status, "worker-0")["pid"]
        .as_i64()
        .unwrap();
    // SAFETY: kill(2) on a pid of this test's own job; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);

    let status = finish(&sb, job);
    let chief = Sandbox::replica(&status, "worker-0");
    assert_eq!(chief["state"], "Succeeded");
    assert_eq!(chief["attempt"], 1, "{status:#}");
    assert_eq!(status["status"]["restarts"], 1, "{status:#}");
    for ps in ["ps-0", "ps-1"] {
        assert_eq!(state_of(&status, ps), "Stopped");
    }
    let log = sb.attempt_log(job, "worker-0", 1);
    let restored = number_after(&log, "Restored step: ")
        .unwrap_or_else(|| panic!("attempt 1 did not restore a checkpoint:\n{log}"));
    assert!(
        restored >= saved,
        "restored step {restored}, saved {saved}:\n{log}"
    );
    assert!(log.contains("Test-Accuracy: "), "{log}");

    // The `Step: ..., Cost: ..., AvgTime: ...` lines are metrics of each attempt.
    let (points, step, cost) = metric(&sb, job, "stdout/worker-0", "cost");
    assert!(points >= 10, "{points} cost points");
    assert!(step > restored as i64, "last step {step}");
    assert!(cost > 0.0 && cost < 1.5, "cost {cost}");
    let (_, _, avgtime) = metric(&sb, job, "stdout/worker-1", "avgtime");
    assert!(avgtime > 0.0);
}

/// The between-graph example as a job file in the sandbox (working directory: the example's)
/// with `epochs` epochs.
fn between_graph_with_epochs(sb: &Sandbox, epochs: u32) -> PathBuf {
    let file = example("between-graph");
    let text = std::fs::read_to_string(&file).unwrap();
    let dir = file.parent().unwrap().canonicalize().unwrap();
    let text = text
        .replace("epochs: 5,", &format!("epochs: {epochs},"))
        .replace(
            "  command:",
            &format!("  workingDir: {}\n  command:", dir.display()),
        );
    sb.job("between-graph.yaml", &text)
}

/// Polls `probe` every 50 ms until it gives a value (at most 10 minutes: TensorFlow jobs
/// start slowly on a busy machine); `what` names what is waited for.
fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "no {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the job's newest checkpoint is at least `step`; returns its step.
fn until_checkpoint(sb: &Sandbox, job: &str, step: u64) -> u64 {
    let checkpoints = sb.home().join("jobs").join(job).join("checkpoints");
    poll(&format!("checkpoint at step {step}"), || {
        let phase = sb.phase(job);
        assert!(
            phase != "Succeeded" && phase != "Failed",
            "{job} {phase} before a checkpoint at step {step}"
        );
        checkpoint_step(&checkpoints).filter(|s| *s >= step)
    })
}

/// The first number after `prefix` at the start of a line of `log`.
fn number_after(log: &str, prefix: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
}

/// Waits until attempt `attempt` of worker 0 has said which step it restored; returns it.
fn restored_step(sb: &Sandbox, job: &str, attempt: u32) -> u64 {
    poll(&format!("restored step in attempt {attempt}"), || {
        number_after(&sb.attempt_log(job, "worker-0", attempt), "Restored step: ")
    })
}

#[test]
fn between_graph_resumes_at_its_saved_step_after_suspend_and_after_losing_its_supervisor() {
    let sb = Sandbox::new();
    require_tensorflow();
    let job = "tf-between-graph";
    sb.ok(&[
        "submit",
        between_graph_with_epochs(&sb, 8).to_str().unwrap(),
    ]);
    until_checkpoint(&sb, job, 1);

    // Suspend: the chief saves on SIGTERM (the PS serve on for it), the resumed chief restores
    // exactly that step.
    sb.ok(&["suspend", job]);
    assert_eq!(sb.phase(job), "Suspended");
    assert!(processes_left_after(&sb.home(), job, 5).is_empty());
    let log = sb.attempt_log(job, "worker-0", 0);
    let saved = number_after(&log, "SIGTERM: saved step ")
        .unwrap_or_else(|| panic!("worker 0 did not save on SIGTERM:\n{log}"));
    sb.ok(&["resume", job]);
    assert_eq!(restored_step(&sb, job, 1), saved);

    // Lost supervisor: the replicas die with it (SIGKILL); `resume` continues from the last
    // periodic checkpoint, past the step resumed at.
    let periodic = until_checkpoint(&sb, job, saved + 1);
    let status = sb.status(job);
    let pid = Sandbox::replica(&status, "worker-0")["pid"]
        .as_i64()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let supervisor: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of this test's own job's supervisor; no memory is involved.
    assert_eq!(unsafe { libc::kill(supervisor, libc::SIGKILL) }, 0);
    let s = sb.until(job, "the lost supervisor noticed", |s| {
        s["status"]["phase"] != "Running"
    });
    assert_eq!(
        (&s["status"]["phase"], &s["status"]["reason"]),
        (&"Suspended".into(), &"SupervisorLost".into()),
        "{s:#}"
    );
    sb.ok(&["resume", job]);
    assert!(restored_step(&sb, job, 2) >= periodic);
    let status = finish(&sb, job);
    assert_eq!(state_of(&status, "worker-0"), "Succeeded");
    assert!(sb
        .attempt_log(job, "worker-0", 2)
        .contains("Test-Accuracy: "));
}

/// Runs the repository's object validator (crates/kube/tests/validate_objects.py) on files.
fn validate(dir: &Path, files: &[PathBuf]) -> String {
    let schema = dir.join("trainingjob.schema.json");
    let json_schema = trainctl_spec::TrainingJob::json_schema();
    std::fs::write(&schema, serde_json::to_string(&json_schema).unwrap()).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(root.join("crates/kube/tests/validate_objects.py"))
        .arg("--crds")
        .arg(root.join("tests/crds"))
        .arg("--trainingjob-schema")
        .arg(&schema)
        .args(["--kubernetes-version", "1.37"])
        .args(files)
        .output()
        .expect("validate_objects.py runs");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "validation failed (a missing module means: run scripts/test):\n{report}"
    );
    report
}

#[test]
fn tensorflow_examples_render_to_valid_cluster_objects_with_checkpoints_on_a_pvc() {
    let sb = Sandbox::new();
    let mut files = Vec::new();
    for name in ["ps-strategy", "multi-worker", "between-graph"] {
        let file = example(name);
        let file = file.to_str().unwrap();
        let lint = sb.tc(&["lint", file]);
        let said = String::from_utf8_lossy(&lint.stderr);
        assert!(
            lint.status.success() && said.contains("no problems found"),
            "{said}"
        );
        for target in ["plain", "kubeflow", "jobset", "trainingjob"] {
            let yaml = sb.ok(&["render", file, "--target", target, "-n", "ml"]);
            let path = sb.dir.path().join(format!("{name}-{target}.yaml"));
            std::fs::write(&path, yaml).unwrap();
            files.push(path);
        }
        // Every replica mounts the claim where its TRAINCTL_CHECKPOINT_DIR lies.
        let json: Value =
            serde_json::from_str(&sb.ok(&["render", file, "-o", "json"])).expect("json");
        let jobs: Vec<&Value> = json["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "Job")
            .collect();
        assert!(jobs.len() >= 2, "{name}: {json:#}");
        for job in jobs {
            let pod = &job["spec"]["template"]["spec"];
            assert_eq!(
                pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "tf-checkpoints",
                "{name}"
            );
            let container = &pod["containers"][0];
            let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
            let dir = container["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == "TRAINCTL_CHECKPOINT_DIR")
                .and_then(|e| e["value"].as_str())
                .unwrap_or_else(|| panic!("{name}: no TRAINCTL_CHECKPOINT_DIR"));
            assert!(dir.starts_with(&format!("{mount}/")), "{name}: {dir}");
        }
    }
    let report = validate(sb.dir.path(), &files);
    for kind in ["Job/", "Service/", "TFJob/", "JobSet/", "TrainingJob/"] {
        assert!(
            report.contains(kind),
            "nothing of {kind} validated:\n{report}"
        );
    }
}
