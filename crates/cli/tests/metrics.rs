//! `trainctl metrics` and `trainctl tensorboard` end to end: real jobs whose replicas print
//! metrics and write event files (with TensorBoard's own writer, from the test packages).

mod common;

use common::{job_yaml, Sandbox};
use serde_json::Value;

/// Prints progress lines, Katib pairs and junk, and writes an event file with TensorBoard's
/// writer to `$TRAINCTL_LOG_DIR/eval`.
const TRAIN_PY: &str = r#"
import os, sys
try:
    from tensorboard.summary import Writer
except ModuleNotFoundError:
    sys.exit("tensorboard is missing: run scripts/test (it installs tests/requirements.txt into .venv)")
w = Writer(os.path.join(os.environ["TRAINCTL_LOG_DIR"], "eval"))
for i in range(1, 31):
    print(f"Step: {i * 10}, Epoch: {(i - 1) // 10 + 1}, Batch: {(i - 1) % 10 + 1} of 10, "
          f"Cost: {3.0 / i:.4f}, AvgTime: 1.5ms", flush=True)
    print("junk = = and x=1y", flush=True)
    if i % 10 == 0:
        w.add_scalar("eval_loss", 3.0 / i + 0.5, step=i * 10)
w.close()
print("accuracy=0.875", end="")
"#;

fn run_job(sb: &Sandbox, name: &str, spec: &str) {
    let file = sb.job(&format!("{name}.yaml"), &job_yaml(name, spec));
    let out = sb.tc(&["run", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sb.attempt_log(name, "worker-0", 0)
    );
}

/// A job whose one replica prints `loss=1`.
fn run_one_loss_job(sb: &Sandbox, name: &str) {
    sb.write("ok.py", "print('loss=1')\n");
    let spec = "  command: [python3, ok.py]\n  replicas:\n    worker: {count: 1}\n";
    run_job(sb, name, spec);
}

fn series<'a>(json: &'a Value, run: &str, tag: &str) -> &'a Value {
    json["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["run"] == run && s["tag"] == tag)
        .unwrap_or_else(|| panic!("no {run}/{tag} in {json:#}"))
}

fn stats(s: &Value) -> (u64, i64, f64, f64, f64) {
    (
        s["points"].as_u64().unwrap(),
        s["step"].as_i64().unwrap(),
        s["last"].as_f64().unwrap(),
        s["min"].as_f64().unwrap(),
        s["max"].as_f64().unwrap(),
    )
}

/// Width and height of a PNG, after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_jobs_printed_and_written_metrics_show_as_json_table_and_png() {
    let sb = Sandbox::new();
    sb.write("train.py", TRAIN_PY);
    run_job(
        &sb,
        "curves",
        "  command: [python3, train.py]\n  replicas:\n    worker: {count: 1}\n",
    );

    let json: Value = serde_json::from_str(&sb.ok(&["metrics", "curves", "-o", "json"])).unwrap();
    assert_eq!(
        stats(series(&json, "stdout/worker-0", "cost")),
        (30, 300, 0.1, 0.1, 3.0)
    );
    assert_eq!(
        stats(series(&json, "stdout/worker-0", "avgtime")),
        (30, 300, 1.5, 1.5, 1.5)
    );
    // The last line had no newline; it counts once the job has ended.
    assert_eq!(
        stats(series(&json, "stdout/worker-0", "accuracy")),
        (1, 300, 0.875, 0.875, 0.875)
    );
    let eval = stats(series(&json, "eval", "eval_loss"));
    assert_eq!((eval.0, eval.1), (3, 300));
    assert_eq!(eval.2, f64::from(0.6f32));
    let training = json["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["run"].as_str().unwrap().starts_with("resources/"))
        .count();
    assert_eq!(training, 4, "the resource history aside: {json:#}");

    let table = sb.ok(&["metrics", "curves"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("RUN"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["stdout/worker-0", "cost", "30", "300", "0.1", "0.1", "3"]),
        "{table}"
    );

    // TensorBoard sees the printed metrics too: they were copied to event files.
    let tb = sb.home().join("jobs/curves/tensorboard/stdout");
    let copy: Value =
        serde_json::from_str(&sb.ok(&["metrics", "--logdir", tb.to_str().unwrap(), "-o", "json"]))
            .unwrap();
    assert_eq!(
        stats(series(&copy, "worker-0", "cost")),
        (30, 300, f64::from(0.1f32), f64::from(0.1f32), 3.0)
    );

    let png = sb.dir.path().join("cost.png");
    let out = sb.ok(&["metrics", "curves", "--plot", png.to_str().unwrap()]);
    assert!(out.contains("(cost, 1 run(s))"), "{out}");
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (960, 540));
    let out = sb.ok(&[
        "metrics",
        "curves",
        "--plot",
        png.to_str().unwrap(),
        "--tag",
        "eval_loss",
    ]);
    assert!(out.contains("(eval_loss, 1 run(s))"), "{out}");
}

#[test]
fn the_quickstart_reports_cost_and_accuracy() {
    let sb = Sandbox::new();
    let job = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/job.yaml"
    );
    sb.ok(&["run", job]);
    let json: Value =
        serde_json::from_str(&sb.ok(&["metrics", "quickstart", "-o", "json"])).unwrap();
    for worker in ["worker-0", "worker-1"] {
        let (points, _, last, min, max) = stats(series(&json, &format!("stdout/{worker}"), "cost"));
        assert!(points >= 10, "{worker}: {points} points");
        assert!(
            max > 1.0 && last < 0.7 && min <= last,
            "{worker} learns: {json:#}"
        );
    }
    let (_, _, accuracy, _, _) = stats(series(&json, "stdout/worker-0", "accuracy"));
    assert!(accuracy > 0.9, "{accuracy}");
}

#[test]
fn a_regex_in_the_job_file_replaces_the_built_in_formats() {
    let sb = Sandbox::new();
    let spec = r#"  command: [sh, -c, 'for i in 1 2 3; do echo "iter $i loss 0.$i"; echo loss=9; done']
  replicas:
    worker: {count: 1}
  metrics: {format: regex, regex: 'iter (?P<step>\d+) loss (?P<loss>[0-9.]+)'}
"#;
    run_job(&sb, "custom", spec);
    let json: Value = serde_json::from_str(&sb.ok(&["metrics", "custom", "-o", "json"])).unwrap();
    assert_eq!(
        stats(series(&json, "stdout/worker-0", "loss")),
        (3, 3, 0.3, 0.1, 0.3)
    );
}

#[test]
fn bad_requests_fail_with_a_clear_message() {
    let sb = Sandbox::new();
    let fails = |args: &[&str], says: &str| {
        let out = sb.tc(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr.into_owned()
    };
    fails(&["metrics", "nosuchjob"], "job \"nosuchjob\" not found");
    fails(
        &["metrics", "--logdir", "/nonexistent"],
        "cannot read /nonexistent",
    );
    let bad = sb.job(
        "bad.yaml",
        &job_yaml(
            "bad",
            "  command: [sh, -c, 'echo step=1 loss=2']\n  replicas:\n    worker: {count: 1}\n  metrics: {regex: '(unclosed'}\n",
        ),
    );
    fails(
        &["run", bad.to_str().unwrap()],
        "bad.yaml:9:13: spec.metrics.regex:",
    );
    fails(&["metrics", "bad"], "job \"bad\" not found");
    run_one_loss_job(&sb, "ok");
    let png = sb.dir.path().join("x.png");
    let listed = fails(
        &[
            "metrics",
            "ok",
            "--plot",
            png.to_str().unwrap(),
            "--tag",
            "nope",
        ],
        // The resource history (cpu_percent, memory_mib) may be listed too, when a sample
        // caught the replica running.
        "has no metric \"nope\"; it has: ",
    );
    assert!(listed.contains("loss"), "{listed}");
    assert!(!png.exists());
}

#[test]
fn tensorboard_runs_on_the_jobs_event_files_or_says_how_to_install_it() {
    let sb = Sandbox::new();
    run_one_loss_job(&sb, "tb");
    let bin = sb.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();

    // Not installed: says how to install it.
    let out = sb
        .command(&["tensorboard", "tb"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pip install tensorboard"), "{stderr}");

    // Installed: started on the job's log dir, with its exit status passed on.
    let seen = sb.dir.path().join("args.txt");
    let fake = bin.join("tensorboard");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" > {}\nexit 3\n", seen.display()),
    )
    .unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&fake, executable).unwrap();
    let out = sb
        .command(&["tensorboard", "tb", "--port", "6123"])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let logdir = sb.home().join("jobs/tb/tensorboard");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap().trim(),
        format!("--logdir {} --port 6123", logdir.display())
    );
    assert!(
        logdir.join("stdout/worker-0").is_dir(),
        "collected before starting"
    );
}

/// Writes one `loss` point to an event file in `dir`.
fn event_file(dir: &std::path::Path) {
    let path = dir.join("events.out.tfevents.1.test");
    let mut w = trainctl_metrics::writer::EventWriter::append(path, 1.0).unwrap();
    w.add_scalar("loss", 1, 1.0, 0.5);
    w.flush().unwrap();
}

/// `trainctl ...` as a user the file modes apply to: root reads every file, so as root the
/// command runs without the capabilities that let it (setpriv, from util-linux).
fn as_plain_user(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = sb.command(args);
    if root {
        let plain = std::process::Command::new("setpriv")
            .arg("--bounding-set")
            .arg("-dac_override,-dac_read_search")
            .arg(command.get_program())
            .args(command.get_args())
            .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir(sb.work())
            .output()
            .expect("setpriv (util-linux) drops root's right to read every file");
        return plain;
    }
    command.output().unwrap()
}

#[test]
fn an_unreadable_directory_under_logdir_is_skipped_with_a_warning_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let logdir = sb.dir.path().join("tb");
    for run in ["a", "locked/b", "c", "d"] {
        std::fs::create_dir_all(logdir.join(run)).unwrap();
        event_file(&logdir.join(run));
    }
    let locked = logdir.join("locked");
    let unreadable = logdir.join("d/events.out.tfevents.1.test");
    let mode = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(&locked, 0o000);
    mode(&unreadable, 0o000);
    let out = as_plain_user(
        &sb,
        &[
            "metrics",
            "--logdir",
            logdir.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    mode(&locked, 0o755);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: skipped {}: Permission denied",
            locked.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: skipped run d: {}: Permission denied",
            unreadable.display()
        )),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs: Vec<&str> = json["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["run"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["a", "c"]);
}

#[test]
fn every_io_error_of_logdir_names_its_path() {
    let sb = Sandbox::new();
    let file = sb.write("notes.txt", "not a directory");
    let below = file.join("runs");
    let out = sb.tc(&["metrics", "--logdir", below.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: Not a directory", below.display())),
        "{stderr}"
    );
}
