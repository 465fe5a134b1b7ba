//! The progress bar of `run` and `logs -f`: drawn on a terminal (a pseudo-terminal from
//! util-linux `script`), and absent when stdout is a pipe, where the lines come out unchanged.

mod common;

use std::process::Command;

use common::{job_yaml, Sandbox};

/// Three epochs of four batches, a step every 0.1 s.
const TRAIN_PY: &str = r#"
import time
for i in range(1, 13):
    print(f"Step: {i}, Epoch: {(i - 1) // 4 + 1}, Batch: {(i - 1) % 4 + 1} of 4, Cost: {1.0 / i:.3f}", flush=True)
    time.sleep(0.1)
"#;

fn progress_job(sb: &Sandbox) -> String {
    sb.write("train.py", TRAIN_PY);
    let spec = "  command: [python3, train.py]\n  hyperparameters: {epochs: 3}\n  replicas:\n    worker: {count: 1}\n";
    let file = sb.job("progress.yaml", &job_yaml("progress", spec));
    file.to_str().unwrap().to_string()
}

fn expected_lines(prefix: &str) -> String {
    (1..=12)
        .map(|i| {
            format!(
                "{prefix}Step: {i}, Epoch: {}, Batch: {} of 4, Cost: {:.3}\n",
                (i - 1) / 4 + 1,
                (i - 1) % 4 + 1,
                1.0 / i as f64
            )
        })
        .collect()
}

#[test]
fn without_a_terminal_run_and_logs_print_the_lines_alone() {
    let sb = Sandbox::new();
    let file = progress_job(&sb);
    let out = sb.tc(&["run", &file]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected_lines("[worker-0] ")
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains('\x1b') && !err.contains("Epoch"), "{err}");

    let out = sb.tc(&["logs", "progress", "-f"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected_lines("[worker-0] ")
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn on_a_terminal_run_shows_the_epoch_out_of_the_total() {
    let sb = Sandbox::new();
    let file = progress_job(&sb);
    let trainctl = env!("CARGO_BIN_EXE_trainctl");
    let out = Command::new("script")
        .args(["-qfec", &format!("{trainctl} run {file}"), "/dev/null"])
        .current_dir(sb.work())
        .env("TRAINCTL_HOME", sb.home())
        .env("TRAINCTL_GPUS", "")
        .env("TERM", "xterm")
        .output()
        .expect("util-linux script");
    assert!(out.status.success(), "{out:?}");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("Epoch 3/3 · step "), "{screen}");
    assert!(screen.contains("Epoch 1/3 · step "), "{screen}");
    assert!(screen.contains("steps/s"), "{screen}");
    assert!(
        screen.contains("[worker-0] Step: 12, Epoch: 3, Batch: 4 of 4"),
        "{screen}"
    );
}
