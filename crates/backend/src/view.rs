//! How jobs look to users: Kubernetes-style objects for `-o json|yaml` and the dashboard,
//! tables, ages and timestamps.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use trainctl_local::store::{EventRow, ReplicaRow, ReplicaStatus, UnreadableJob};
use trainctl_local::JobDetail;

/// A job as a Kubernetes-style object with a status, for `-o json|yaml`.
pub fn job_object(d: &JobDetail) -> Value {
    let job = &d.job;
    let mut per_role: BTreeMap<String, BTreeMap<&str, u32>> = BTreeMap::new();
    for r in &d.replicas {
        let counts = per_role.entry(r.replica.role.to_string()).or_default();
        let key = match r.state {
            ReplicaStatus::Running => "active",
            ReplicaStatus::Succeeded => "succeeded",
            ReplicaStatus::Failed => "failed",
            ReplicaStatus::Stopped => "stopped",
            ReplicaStatus::NotStarted => "pending",
        };
        *counts.entry(key).or_default() += 1;
    }
    let mut object = serde_json::to_value(&job.spec).unwrap_or(Value::Null);
    object["metadata"]["creationTimestamp"] = json!(rfc3339(job.created));
    object["status"] = json!({
        "phase": job.phase.as_str(),
        "reason": job.reason,
        "message": job.message,
        "startTime": job.started.map(rfc3339),
        "completionTime": job.finished.map(rfc3339),
        "restarts": job.restarts,
        "gpus": job.gpus,
        "workdir": job.workdir,
        "replicaStatuses": per_role,
        "replicas": d.replicas,
        "attempts": d.attempts,
        "events": d.events,
        "gpuIdle": gpu_idle(&d.events).map(|e| &e.message),
    });
    object
}

/// The reason of the event a job gets when it holds GPUs while barely using them.
pub const GPU_IDLE_REASON: &str = "GpuIdle";

/// The latest GPU-idle warning among a job's events: the job is marked idle in `get` and
/// on the dashboard once it has one.
pub fn gpu_idle(events: &[EventRow]) -> Option<&EventRow> {
    events.iter().rev().find(|e| e.reason == GPU_IDLE_REASON)
}

/// A job whose record does not read, for `-o json|yaml`: its name and what is wrong.
pub fn unreadable_object(u: &UnreadableJob) -> Value {
    json!({
        "apiVersion": trainctl_spec::API_VERSION,
        "kind": trainctl_spec::KIND,
        "metadata": {
            "name": u.name,
            "creationTimestamp": u.created.map(rfc3339),
        },
        "status": {
            "phase": "Unreadable",
            "reason": "Unreadable",
            "message": format!("{}; `trainctl delete {}` removes it", u.problem, u.name),
        },
    })
}

/// A list of objects, as kubectl prints it.
pub fn list_object(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// `running/total` replicas.
pub fn replica_summary(replicas: &[ReplicaRow]) -> String {
    let running = replicas
        .iter()
        .filter(|r| r.state == ReplicaStatus::Running)
        .count();
    format!("{running}/{}", replicas.len())
}

/// Comma-separated values, or `-` when empty.
pub fn list_or_dash<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Left-aligned columns separated by three spaces, like kubectl.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == row.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// A titled block of `describe`: a blank line, `Title:`, then the table indented by two spaces.
pub fn section(title: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let body: String = table(header, rows)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    format!("\n{title}:\n{body}")
}

/// kubectl-style age: 45s, 3m12s, 2h5m, 4d.
pub fn age(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d", s / 86400),
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-11-23T16:26:39Z`).
pub fn rfc3339(t: f64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(t.max(0.0) as i64)
        .unwrap_or(k8s_openapi::jiff::Timestamp::MAX)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_ages() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_451_199.0), "2026-11-23T16:26:39Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(age(5.2), "5s");
        assert_eq!(age(192.0), "3m12s");
        assert_eq!(age(7500.0), "2h5m");
        assert_eq!(age(400_000.0), "4d");
    }

    #[test]
    fn aligns_columns() {
        let t = table(
            &["NAME", "PHASE"],
            &[vec!["a-long-name".into(), "Running".into()]],
        );
        assert_eq!(t, "NAME          PHASE\na-long-name   Running\n");
    }
}
