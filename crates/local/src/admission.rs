//! Who gets this machine's resources: the queue policy of `trainctl-core` decides which
//! jobs get their GPUs, and every admitted replica gets a free local port. The decision and
//! the grant happen in one store transaction ([`Store::allocation`]), so no two jobs share a
//! GPU or a port.
//!
//! The policy here is FIFO with backfilling ([`PolicyKind::Backfill`]; `TRAINCTL_QUEUE_POLICY`
//! picks another: `fifo`, `backfill`, `las`): priority first, then the user with the least
//! recent GPU use (fair share; the user is the job's `trainctl.dev/user` label, else everyone
//! is one user), then arrival; the first job that does not fit gets a reservation at the
//! earliest time running jobs are expected to end (`activeDeadlineSeconds` from their start;
//! unknown means long), and later jobs start now only if they do not delay it.
//!
//! Preemption is on: when the policy gives a waiting job the GPUs of running
//! `preemptible` jobs (whole gangs, the fewest and lowest placed; under `las` by least
//! attained service), the waiting job waits for them ([`Admission::Preempting`]) while each
//! victim's supervisor, asking [`preempted_by`], suspends its replicas, gives the GPUs back
//! and queues again to resume from its checkpoints.

use std::net::TcpListener;

use trainctl_core::queue::fair_share::{decayed_usage, Usage, DEFAULT_HALF_LIFE_S};
use trainctl_core::queue::{
    decide, estimate, explain, Decisions, Policy, PolicyKind, QueueEntry, QueueJob,
};
use trainctl_core::ReplicaId;
use trainctl_spec::TrainingJob;

use crate::store::{Allocation, Claims, GpuJob, ReplicaGrant, Store, StoreError};

/// The label that names a job's user for fair share.
pub const USER_LABEL: &str = "trainctl.dev/user";

/// What the queue said.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Resources granted: GPUs per replica and ports.
    Granted,
    /// Not yet: the job's place in the queue and why it waits.
    Wait(String),
    /// Not yet: these running jobs are being preempted to free the job's GPUs.
    Preempting(Vec<String>),
}

/// The variable that picks the local queue policy.
pub const POLICY_VAR: &str = "TRAINCTL_QUEUE_POLICY";

/// The variable with the least-attained-service levels: ascending GPU-second thresholds,
/// comma-separated (default 3600,36000,360000).
pub const LAS_THRESHOLDS_VAR: &str = "TRAINCTL_LAS_THRESHOLDS_GPU_SECONDS";

/// The variable with the shortest run of a preemptible job under `las`, in seconds
/// (default 600).
pub const LAS_MIN_RUN_VAR: &str = "TRAINCTL_LAS_MIN_RUN_SECONDS";

/// The policy the local engine runs: `TRAINCTL_QUEUE_POLICY` (`fifo`, `backfill`, `las`;
/// default `backfill`), always with preemption of preemptible jobs; the levels and the
/// shortest run of `las` from [`LAS_THRESHOLDS_VAR`] and [`LAS_MIN_RUN_VAR`]. A value that
/// does not parse leaves the default.
fn policy() -> Policy {
    let kind = std::env::var(POLICY_VAR)
        .ok()
        .and_then(|v| serde_json::from_value(serde_json::Value::String(v)).ok())
        .filter(|k| matches!(k, PolicyKind::Fifo | PolicyKind::Backfill | PolicyKind::Las))
        .unwrap_or(PolicyKind::Backfill);
    let mut policy = Policy {
        preemption: true,
        ..Policy::new(kind)
    };
    if let Some(t) = std::env::var(LAS_THRESHOLDS_VAR)
        .ok()
        .and_then(|v| las_thresholds(&v))
    {
        policy.las.thresholds_gpu_s = t;
    }
    if let Some(s) = std::env::var(LAS_MIN_RUN_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
    {
        policy.las.min_run_s = s;
    }
    policy
}

/// Comma-separated GPU-second thresholds, when every one is a positive number and they
/// ascend.
fn las_thresholds(text: &str) -> Option<Vec<f64>> {
    let t = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
        })
        .collect::<Option<Vec<f64>>>()?;
    (!t.is_empty() && t.windows(2).all(|w| w[0] < w[1])).then_some(t)
}

/// The queue's decision at `now` over every job, with the GPUs of `inventory` that no job
/// holds; also the free GPUs.
fn decide_now(
    claims: &Claims,
    inventory: &[u32],
    now: f64,
) -> (Decisions<String>, Vec<u32>, QueueJobs) {
    let free: Vec<u32> = inventory
        .iter()
        .copied()
        .filter(|g| !claims.held_gpus.contains(g))
        .collect();
    let jobs = queue_jobs(claims, now);
    let d = decide(&policy(), now, free.len() as u32, &jobs.0, &jobs.1);
    (d, free, jobs)
}

/// Whether the queue takes the GPUs of `job` (running, preemptible) for waiting jobs now:
/// the names of the jobs it is preempted for, or None.
pub fn preempted_by(
    store: &mut Store,
    job: &TrainingJob,
    inventory: &[u32],
    now: f64,
) -> Result<Option<String>, StoreError> {
    let allocation = store.allocation()?;
    let (d, _, _) = decide_now(&allocation.claims()?, inventory, now);
    Ok(d.preempt
        .iter()
        .any(|k| k == job.name())
        .then(|| d.start.join(", ")))
}

/// Asks the queue for the job's GPUs (from `inventory`, this machine's devices) and picks a
/// free port per replica, atomically with every other job's request.
pub fn try_admit(
    store: &mut Store,
    job: &TrainingJob,
    inventory: &[u32],
    now: f64,
) -> Result<Admission, StoreError> {
    let name = job.name();
    let allocation = store.allocation()?;
    let claims = allocation.claims()?;
    let need = job.total_gpus();
    let (d, free, (waiting, running)) = decide_now(&claims, inventory, now);
    if need > 0 {
        if d.start.iter().any(|k| k == name) && (free.len() as u32) < need {
            return Ok(Admission::Preempting(d.preempt));
        }
        if !d.start.iter().any(|k| k == name) {
            let policy = policy();
            let entries = explain(&policy, now, free.len() as u32, &waiting, &running);
            let received = waiting
                .iter()
                .find(|j| j.key == name)
                .map_or(0.0, |j| j.attained_gpu_s);
            let why = entries
                .iter()
                .find(|e| e.key == name)
                .map(|e| {
                    waiting_message(
                        e,
                        entries.len(),
                        now,
                        policy.kind == PolicyKind::Las,
                        received,
                    )
                })
                .unwrap_or_else(|| format!("waiting for {need} free GPUs"));
            return Ok(Admission::Wait(why));
        }
    }
    let mut taken = free.into_iter().take(need as usize);
    let ids = ReplicaId::all_of(job);
    let ports = pick_ports(&allocation, ids.len())?;
    let grants: Vec<ReplicaGrant> = ids
        .into_iter()
        .zip(ports)
        .map(|(replica, port)| {
            let n = job
                .spec
                .replicas
                .get(replica.role)
                .map_or(0, |r| r.resources.gpus());
            ReplicaGrant {
                replica,
                port,
                gpus: taken.by_ref().take(n as usize).collect(),
            }
        })
        .collect();
    allocation.grant(name, &grants)?;
    Ok(Admission::Granted)
}

/// Why a job waits, as `get` and `describe` show it: its place, the reason and, under least
/// attained service, its level and the GPU time it has received.
fn waiting_message(
    e: &QueueEntry<String>,
    total: usize,
    now: f64,
    las: bool,
    received_gpu_s: f64,
) -> String {
    let mut why = format!(
        "position {} of {total} in the GPU queue: {}",
        e.position,
        e.reason.message(now)
    );
    if las {
        why.push_str(&format!(
            " (level {}, {:.0} GPU-seconds received{})",
            e.level,
            received_gpu_s,
            if e.promoted { ", promoted" } else { "" }
        ));
    }
    why
}

/// The queue in order, with why each job waits, as this machine's queue sees it at `now`.
pub fn queue(
    store: &mut Store,
    inventory: &[u32],
    now: f64,
) -> Result<Vec<QueueEntry<String>>, StoreError> {
    let allocation = store.allocation()?;
    let claims = allocation.claims()?;
    let free = inventory
        .iter()
        .filter(|g| !claims.held_gpus.contains(g))
        .count() as u32;
    let (waiting, running) = queue_jobs(&claims, now);
    Ok(explain(&policy(), now, free, &waiting, &running))
}

/// Jobs waiting for GPUs and jobs holding them.
type QueueJobs = (Vec<QueueJob<String>>, Vec<QueueJob<String>>);

/// The jobs waiting for GPUs and the jobs holding them, as the queue sees them at `now`.
fn queue_jobs(claims: &Claims, now: f64) -> QueueJobs {
    let user = |j: &GpuJob| {
        j.spec
            .as_ref()
            .and_then(|s| s.metadata.labels.get(USER_LABEL).cloned())
            .unwrap_or_default()
    };
    let usage_of = |u: &str| {
        let uses = claims
            .gpu_jobs
            .iter()
            .filter(|j| user(j) == u)
            .filter_map(|j| {
                j.started.map(|from| Usage {
                    gpus: j.gpus,
                    from,
                    to: j.finished.unwrap_or(now),
                })
            });
        decayed_usage(uses, now, DEFAULT_HALF_LIFE_S)
    };
    let (mut waiting, mut running) = (Vec::new(), Vec::new());
    // A suspended job neither waits in the queue nor holds GPUs.
    for j in claims.gpu_jobs.iter().filter(|j| j.waiting || j.holding) {
        let scheduling = j.spec.as_ref().map(|s| &s.spec.scheduling);
        let deadline = j
            .spec
            .as_ref()
            .and_then(|s| s.spec.run_policy.active_deadline_seconds)
            .map(|d| d as f64);
        // A resumed job's current run began with its open attempts.
        let run_start = j
            .attempt_spans
            .iter()
            .filter(|(_, end)| end.is_none())
            .map(|(start, _)| *start)
            .reduce(f64::min);
        let since = if j.holding {
            run_start.or(j.started).unwrap_or(now)
        } else {
            j.created
        };
        let ran = if j.holding { now - since } else { 0.0 };
        let received = covered_seconds(&j.attempt_spans, now).max(ran);
        let q = QueueJob {
            key: j.name.clone(),
            gpus: j.gpus,
            priority: scheduling.map_or(0, |s| s.priority),
            seq: j.seq,
            preemptible: scheduling.is_some_and(|s| s.preemptible),
            attained_gpu_s: received * f64::from(j.gpus),
            ran_s: ran,
            since,
            remaining_s: estimate(deadline, &j.earlier_runs_s, ran).map(|e| e.remaining_s),
            usage: usage_of(&user(j)),
        };
        if j.holding {
            running.push(q);
        } else {
            waiting.push(q);
        }
    }
    (waiting, running)
}

/// The seconds during which at least one of `spans` ran (an open span runs until `now`):
/// the time a job held its GPUs, over every run before and after suspensions.
fn covered_seconds(spans: &[(f64, Option<f64>)], now: f64) -> f64 {
    let mut spans: Vec<(f64, f64)> = spans
        .iter()
        .map(|&(start, end)| (start, end.unwrap_or(now).max(start)))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut covered_to = f64::NEG_INFINITY;
    for (start, end) in spans {
        if end > covered_to {
            total += end - start.max(covered_to);
            covered_to = end;
        }
    }
    total
}

/// Free ports from the kernel that no other job holds. The listeners stay open until all
/// are picked, so the kernel does not hand out the same one twice.
fn pick_ports(allocation: &Allocation, n: usize) -> Result<Vec<u16>, StoreError> {
    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        if tries > n * 20 + 100 {
            return Err(StoreError::Io(std::io::Error::other(
                "could not find free local ports",
            )));
        }
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let taken = allocation.port_in_use(port)?;
        listeners.push(l);
        if !taken {
            ports.push(port);
        }
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::{covered_seconds, las_thresholds, waiting_message};
    use trainctl_core::queue::{QueueEntry, WaitReason};

    #[test]
    fn a_waiting_job_says_its_level_and_received_gpu_time_only_under_las() {
        let entry = QueueEntry {
            key: "long".to_string(),
            position: 2,
            gpus: 2,
            level: 1,
            promoted: false,
            expected_run_s: None,
            reason: WaitReason::NeedsGpus { need: 2, free: 0 },
        };
        assert_eq!(
            waiting_message(&entry, 2, 0.0, true, 12.4),
            "position 2 of 2 in the GPU queue: needs 2 GPUs at once, 0 free \
             (level 1, 12 GPU-seconds received)"
        );
        assert_eq!(
            waiting_message(&entry, 2, 0.0, false, 12.4),
            "position 2 of 2 in the GPU queue: needs 2 GPUs at once, 0 free"
        );
    }

    /// Attempt spans (start, end) and the seconds they cover at 100.
    type Case = (&'static [(f64, Option<f64>)], f64);

    #[test]
    fn received_time_counts_overlapping_attempts_once_and_open_ones_until_now() {
        let cases: &[Case] = &[
            (&[], 0.0),
            (&[(10.0, Some(20.0))], 10.0),
            // Three replicas of one run, then a resumed run still going at 100.
            (
                &[
                    (10.0, Some(20.0)),
                    (11.0, Some(19.0)),
                    (12.0, Some(21.0)),
                    (50.0, None),
                    (51.0, None),
                ],
                11.0 + 50.0,
            ),
            // A span that ended before it started (clock step) counts nothing.
            (&[(30.0, Some(25.0))], 0.0),
        ];
        for (spans, want) in cases {
            assert_eq!(covered_seconds(spans, 100.0), *want, "{spans:?}");
        }
    }

    #[test]
    fn las_thresholds_must_be_positive_ascending_numbers() {
        let cases: &[(&str, Option<Vec<f64>>)] = &[
            ("60", Some(vec![60.0])),
            ("60, 600,6000", Some(vec![60.0, 600.0, 6000.0])),
            ("", None),
            ("60,,600", None),
            ("600,60", None),
            ("60,60", None),
            ("0", None),
            ("-5", None),
            ("inf", None),
            ("ten", None),
        ];
        for (text, want) in cases {
            assert_eq!(&las_thresholds(text), want, "{text:?}");
        }
    }
}
