//! `trainctl queue`: this machine's GPU queue in the order jobs will be served, with each
//! job's reservation or why it waits, and the preemptions of the last hour.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use trainctl_backend::view::{age, list_object, rfc3339, table};
use trainctl_core::queue::{human_duration, WaitReason};
use trainctl_local::store::{EventRow, Store};
use trainctl_local::{admission, gpus, now, Home};

use crate::args::Output;

/// How far back `trainctl queue` lists preemptions.
const RECENT_PREEMPTIONS_S: f64 = 3_600.0;

/// Prints the queue as a table, or as JSON or YAML objects.
pub fn queue(output: Option<Output>) -> Result<ExitCode> {
    let mut store = Store::open(&Home::from_env().db_path())
        .context("cannot open the trainctl state directory")?;
    let t = now();
    let entries = admission::queue(&mut store, &gpus::inventory(), t)?;
    let preempted = store.events_since("Preempted", t - RECENT_PREEMPTIONS_S)?;
    let preemptions: Vec<serde_json::Value> = preempted
        .iter()
        .map(|(job, e)| json!({"job": job, "time": rfc3339(e.time), "message": e.message}))
        .collect();
    let objects: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let reserved_at = match e.reason {
                WaitReason::Reserved { at: Some(at) } => Some(rfc3339(at)),
                _ => None,
            };
            json!({
                "position": e.position,
                "name": e.key,
                "gpus": e.gpus,
                "level": e.level,
                "promoted": e.promoted,
                "reservedAt": reserved_at,
                "expectedRunSeconds": e.expected_run_s,
                "message": e.reason.message(t),
            })
        })
        .collect();
    let mut list = list_object(objects.clone());
    list["recentPreemptions"] = serde_json::Value::Array(preemptions);
    match output {
        Some(Output::Json) => println!("{}", serde_json::to_string_pretty(&list)?),
        Some(Output::Yaml) => print!("{}", serde_yaml_ng::to_string(&list)?),
        Some(Output::Wide) | None if entries.is_empty() => {
            eprintln!("No jobs wait for GPUs.");
            print_preemptions(&preempted, t);
        }
        Some(Output::Wide) | None => {
            let rows: Vec<Vec<String>> = objects
                .iter()
                .map(|o| {
                    [
                        "position",
                        "name",
                        "gpus",
                        "expectedRunSeconds",
                        "reservedAt",
                        "message",
                    ]
                    .iter()
                    .map(|k| match &o[*k] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null if *k == "expectedRunSeconds" => {
                            "unknown".to_string()
                        }
                        serde_json::Value::Null => "-".to_string(),
                        serde_json::Value::Number(n) if *k == "expectedRunSeconds" => {
                            human_duration(n.as_f64().unwrap_or_default())
                        }
                        v => v.to_string(),
                    })
                    .collect()
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "POSITION",
                        "NAME",
                        "GPUS",
                        "EXPECTED RUN",
                        "RESERVED",
                        "WHY"
                    ],
                    &rows
                )
            );
            print_preemptions(&preempted, t);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The preemptions of the last hour under the table, newest last.
fn print_preemptions(preempted: &[(String, EventRow)], now: f64) {
    if preempted.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = preempted
        .iter()
        .map(|(job, e)| vec![age(now - e.time), job.clone(), e.message.clone()])
        .collect();
    print!(
        "\nPreempted in the last hour:\n{}",
        table(&["AGE", "JOB", "MESSAGE"], &rows)
    );
}
