//! The simulated kubelet: bound pods start Running; they end Succeeded or Failed with an
//! exit code when the test says so, or when their script annotation
//! (`run 2s then exit 1`, `exit 0`) says so; pods of a killed node fail. Pods whose image
//! the simulated registry lacks wait in `ErrImagePull`, then `ImagePullBackOff`; GPU pods
//! on a node without the NVIDIA runtime fail as nvidia-smi does when NVML cannot load.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::index::{node_of, PodIndex, PodKey};
use super::printer::{parse_schedule, with_env};
use super::scheduler::requests;
use super::{builtin, record_event, write_pod, PRINT_ANNOTATION, SCRIPT_ANNOTATION};
use crate::control::NO_NVIDIA_RUNTIME;
use crate::server::LogLine;
use crate::store::{now, Store};

/// A parsed pod script: run for `run`, then exit with `exit_code` (None: run until told).
#[derive(Debug, PartialEq)]
struct Script {
    run: Duration,
    exit_code: Option<i64>,
}

/// Parses `500ms`, `2s`, `1.5m`, `1h`.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| text.split_at(i))?;
    let n: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Parses `run 2s then exit 1`, `run 500ms`, `exit 0`; None when malformed.
fn parse_script(text: &str) -> Option<Script> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (run, rest) = match words.as_slice() {
        ["run", duration, rest @ ..] => (parse_duration(duration)?, rest),
        rest => (Duration::ZERO, rest),
    };
    let exit_code = match rest {
        [] => None,
        ["then", "exit", code] | ["exit", code] => Some(code.parse().ok()?),
        _ => return None,
    };
    Some(Script { run, exit_code })
}

/// Sets the container statuses, phase and conditions of a pod whose containers are all in
/// `state` (`{"running": ...}` or `{"terminated": ...}`).
fn set_containers(pod: &mut Value, phase: &str, state: Value) {
    let running = state.get("running").is_some();
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"],
                   "imageID": format!("sim://{}", c["image"].as_str().unwrap_or_default()),
                   "containerID": format!("sim://{}", uuid::Uuid::new_v4().simple()),
                   "ready": running, "started": running, "restartCount": 0, "state": state})
        })
        .collect();
    let status = &mut pod["status"];
    status["phase"] = json!(phase);
    status["containerStatuses"] = json!(statuses);
    status["conditions"] = json!([
        condition("PodScheduled", true),
        condition("Initialized", true),
        condition("ContainersReady", running),
        condition("Ready", running),
    ]);
}

fn condition(kind: &str, status: bool) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" },
           "lastTransitionTime": now()})
}

fn start(pod: &mut Value, index: usize) {
    let started = now();
    set_containers(pod, "Running", json!({"running": {"startedAt": started}}));
    let status = &mut pod["status"];
    status["startTime"] = json!(started);
    status["hostIP"] = json!("10.0.0.1");
    status["podIP"] = json!(format!("10.244.{}.{}", index / 250, index % 250 + 2));
}

/// Ends a pod's containers with `exit_code` (0: Succeeded, else Failed).
pub(crate) fn terminate_pod(pod: &mut Value, exit_code: i64, reason: Option<&str>) {
    let (phase, container_reason) = match exit_code {
        0 => ("Succeeded", "Completed"),
        _ => ("Failed", "Error"),
    };
    let terminated = json!({"terminated": {"exitCode": exit_code, "reason": container_reason,
        "startedAt": pod["status"]["startTime"], "finishedAt": now()}});
    set_containers(pod, phase, terminated);
    if let Some(reason) = reason {
        pod["status"]["reason"] = json!(reason);
    }
}

/// Fails every pod still running or pending on `node`.
pub(crate) fn fail_pods_on_node(store: &mut Store, node: &str) {
    let pods = builtin(store, "", "pods");
    let doomed: Vec<Value> = store
        .list_refs(&pods, None)
        .filter(|pod| {
            let phase = pod["status"]["phase"].as_str().unwrap_or_default();
            node_of(pod) == Some(node) && (phase == "Running" || phase == "Pending")
        })
        .cloned()
        .collect();
    for mut pod in doomed {
        terminate_pod(&mut pod, 137, Some("NodeLost"));
        pod["status"]["message"] = json!(format!("node {node} is not ready"));
        write_pod(store, pod);
    }
}

/// What nvidia-smi prints when the container has no NVML library (exit code 12 in its
/// manual: "NVML Shared Library couldn't be found or loaded").
const NVML_MISSING: &str = "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make sure that the NVIDIA Display Driver is properly installed and present in your system.";

/// The first of a pod's images that the registry lacks.
fn unpullable<'a>(pod: &'a Value, missing: &HashSet<String>) -> Option<&'a str> {
    let containers = pod["spec"]["containers"].as_array();
    containers
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .find(|image| missing.contains(*image))
}

/// Moves a pod that cannot pull `image` one step along ErrImagePull -> ImagePullBackOff,
/// recording the kubelet's event; false when it is already backing off.
fn pull_failed(store: &mut Store, pod: &mut Value, image: &str) -> bool {
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
    let (reason, message, event) = match waiting.as_str() {
        Some("ImagePullBackOff") => return false,
        Some("ErrImagePull") => (
            "ImagePullBackOff",
            format!("Back-off pulling image \"{image}\""),
            "BackOff",
        ),
        _ => (
            "ErrImagePull",
            format!("Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"),
            "Failed",
        ),
    };
    record_event(store, pod, event, &message, "kubelet");
    set_containers(
        pod,
        "Pending",
        json!({"waiting": {"reason": reason, "message": message}}),
    );
    true
}

/// Whether a pod asks for GPUs on a node whose runtime does not give them the driver.
fn without_nvml(store: &Store, pod: &Value) -> bool {
    let Some(node) = node_of(pod) else {
        return false;
    };
    let nodes = builtin(store, "", "nodes");
    let annotated = store
        .find(&nodes, "", node)
        .is_some_and(|n| n["metadata"]["annotations"][NO_NVIDIA_RUNTIME] == "true");
    annotated && requests(pod)[2] > 0.0
}

/// What a running pod's script asks for now.
enum Due {
    /// Nothing yet.
    Wait,
    /// End with this exit code.
    Exit(i64),
    /// The script cannot be read (the text is given).
    Unreadable(String),
}

fn due(pod: &Value, since: Timestamp, now: Timestamp) -> Due {
    let Some(text) = pod["metadata"]["annotations"][SCRIPT_ANNOTATION].as_str() else {
        return Due::Wait;
    };
    match parse_script(text) {
        Some(Script {
            run,
            exit_code: Some(code),
        }) if now.duration_since(since).as_secs_f64() >= run.as_secs_f64() => Due::Exit(code),
        Some(_) => Due::Wait,
        None => Due::Unreadable(text.to_string()),
    }
}

/// The time a pod's script ends it, if it does.
fn end_of(pod: &Value, since: Timestamp) -> Option<Timestamp> {
    let text = pod["metadata"]["annotations"][SCRIPT_ANNOTATION].as_str()?;
    let script = parse_script(text).filter(|s| s.exit_code.is_some())?;
    since
        .checked_add(jiff::SignedDuration::try_from(script.run).ok()?)
        .ok()
}

/// The scheduled lines a pod has to print by `now` (and before its script ends it).
fn printing(pod: &Value, since: Timestamp, printed: u64, now: Timestamp) -> Vec<LogLine> {
    let Some(text) = pod["metadata"]["annotations"][PRINT_ANNOTATION].as_str() else {
        return Vec::new();
    };
    let Some(schedule) = parse_schedule(&with_env(text, pod)) else {
        let (ns, name) = crate::store::object_name(pod);
        eprintln!("kube-sim: pod {ns}/{name}: cannot read print schedule {text:?} (try `every 1s step {{n}}`)");
        return Vec::new();
    };
    let until = end_of(pod, since).map_or(now, |end| end.min(now));
    schedule.due(since, printed, until)
}

/// One kubelet pass at simulated time `now`: start bound pods, print scheduled lines, end
/// scripted pods whose time is up. Returns the printed lines by pod.
pub(super) fn step(
    store: &mut Store,
    index: &mut PodIndex,
    now: Timestamp,
    missing_images: &HashSet<String>,
) -> Vec<(PodKey, Vec<LogLine>)> {
    let pods = builtin(store, "", "pods");
    let to_start: Vec<PodKey> = index.to_start.iter().cloned().collect();
    let mut printed = Vec::new();
    for (ns, name) in to_start {
        let Some(mut pod) = store.find(&pods, &ns, &name).cloned() else {
            continue;
        };
        if let Some(image) = unpullable(&pod, missing_images).map(str::to_string) {
            if pull_failed(store, &mut pod, &image) {
                write_pod(store, pod);
            }
            continue;
        }
        start(&mut pod, index.starts);
        index.starts += 1;
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        index.started.insert(uid.to_string(), now);
        if without_nvml(store, &pod) {
            let line = LogLine {
                at: now,
                text: NVML_MISSING.into(),
            };
            printed.push(((ns, name), vec![line]));
            terminate_pod(&mut pod, 12, None);
        }
        write_pod(store, pod);
    }
    let mut ending = Vec::new();
    for (ns, name) in &index.scripted {
        let Some(pod) = store.find(&pods, ns, name) else {
            continue;
        };
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let since = *index.started.entry(uid.to_string()).or_insert(now);
        let count = index.printed.entry(uid.to_string()).or_default();
        let lines = printing(pod, since, *count, now);
        if !lines.is_empty() {
            *count += lines.len() as u64;
            printed.push(((ns.clone(), name.clone()), lines));
        }
        match due(pod, since, now) {
            Due::Wait => {}
            Due::Exit(code) => ending.push((pod.clone(), code, None)),
            Due::Unreadable(text) => {
                eprintln!("kube-sim: pod {ns}/{name}: cannot read script {text:?} (try `run 2s then exit 1`)");
                ending.push((pod.clone(), 128, Some("BadScript")));
            }
        }
    }
    for (mut pod, code, reason) in ending {
        terminate_pod(&mut pod, code, reason);
        write_pod(store, pod);
    }
    printed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_read_run_time_and_exit_code() {
        let script = |s| parse_script(s);
        assert_eq!(
            script("run 2s then exit 1"),
            Some(Script {
                run: Duration::from_secs(2),
                exit_code: Some(1)
            })
        );
        assert_eq!(
            script("exit 0"),
            Some(Script {
                run: Duration::ZERO,
                exit_code: Some(0)
            })
        );
        assert_eq!(
            script("run 250ms"),
            Some(Script {
                run: Duration::from_millis(250),
                exit_code: None
            })
        );
        assert_eq!(script("sleep forever"), None);
    }
}
