//! `doctor --smoke`: one real single-GPU job through the local engine per GPU, each running
//! the matrix-multiply program of `trainctl_gpu::smoke`, reported as checks.

use std::time::Duration;

use anyhow::{Context, Result};
use trainctl_core::ReplicaId;
use trainctl_gpu::doctor::{Check, Status};
use trainctl_gpu::smoke::{parse_result, SCRIPT};
use trainctl_local::{gpus, Home, LocalEngine};
use trainctl_spec::ReplicaType;

/// Runs the smoke jobs with `python` and waits for each at most `timeout`.
pub fn smoke(python: &str, timeout: Duration) -> Result<Vec<Check>> {
    let inventory = gpus::inventory();
    if inventory.is_empty() {
        return Ok(vec![check(
            Status::Fail,
            "no GPU to run the smoke test on".into(),
            Some("fix the checks above first"),
        )]);
    }
    let home = Home::from_env();
    let mut engine =
        LocalEngine::open(home.clone()).context("cannot open the trainctl state directory")?;
    let dir = home.root().join("doctor");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let script = dir.join("smoke.py");
    std::fs::write(&script, SCRIPT)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let exe = std::env::current_exe().context("cannot find the trainctl executable")?;
    let supervisor = vec![exe.to_string_lossy().into_owned(), "supervise".into()];
    // One job whose workers take one GPU each: the gang starts them together, so every GPU
    // gets its own worker.
    let name = format!("doctor-smoke-{}", std::process::id());
    let yaml = format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\nspec:\n  command: [{python:?}, {:?}]\n  replicas: {{worker: {{count: {}, resources: {{gpu: 1}}}}}}\n  runPolicy: {{successPolicy: AllWorkers, restartPolicy: Never}}\n",
        script.display().to_string(),
        inventory.len()
    );
    let job = trainctl_spec::parse_job_str("doctor smoke job", &yaml)
        .map_err(|e| anyhow::anyhow!("the smoke job does not validate: {e:?}"))?;
    engine.create(&job, &dir)?;
    engine.start_detached(&name, &supervisor)?;
    eprintln!(
        "doctor: running a smoke job on each of {} GPU(s) ...",
        inventory.len()
    );
    let waited = engine.wait(&name, Some(timeout));
    let mut checks = Vec::new();
    for index in 0..inventory.len() as u32 {
        let worker = ReplicaId {
            role: ReplicaType::Worker,
            index,
        };
        let log = std::fs::read_to_string(home.attempt_log(&name, worker, 0)).unwrap_or_default();
        checks.push(match (&waited, parse_result(&log)) {
            (_, Some(r)) => {
                let speed = match (r.tflops_fp32, r.tflops_fp16) {
                    (Some(f32), Some(f16)) => format!(": {f32} TFLOP/s FP32, {f16} TFLOP/s FP16"),
                    (Some(f32), None) => format!(": {f32} TFLOP/s FP32"),
                    _ => " (no framework with GPU support: nvidia-smi only)".into(),
                };
                check(Status::Ok, format!("GPU {}: {} on {}{speed}", r.gpu, r.backend, r.device), None)
            }
            (Ok(phase), None) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
                check(
                    Status::Fail,
                    format!("{worker} of the smoke job ended {} without a result; its last lines: {tail}", phase.as_str()),
                    Some("run the job's command by hand with CUDA_VISIBLE_DEVICES set to see the error"),
                )
            }
            (Err(e), None) => check(Status::Fail, format!("{e}"), Some("a GPU may be held by another job (trainctl top node)")),
        });
    }
    let _ = engine.delete(&name, Duration::from_secs(5));
    Ok(checks)
}

fn check(status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name: "smoke",
        status,
        detail,
        fix: fix.map(str::to_string),
    }
}
