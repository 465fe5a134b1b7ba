//! The queue in order, with why each job waits: what `get`, `describe` and `trainctl queue`
//! show.

use std::fmt::Display;

use super::order::Key;
use super::{decide, Policy, QueueJob};

/// A waiting job's place and why it waits.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry<K> {
    /// The job.
    pub key: K,
    /// 1 for the job served first.
    pub position: usize,
    /// GPUs it needs at once.
    pub gpus: u32,
    /// Its least attained service level (0 unless the policy is `Las`).
    pub level: u32,
    /// Whether the starvation guard has promoted it.
    pub promoted: bool,
    /// How long it is expected to run once started (None: unknown, taken as long).
    pub expected_run_s: Option<f64>,
    /// Why it does not run yet.
    pub reason: WaitReason<K>,
}

/// Why a job waits.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitReason<K> {
    /// It starts now.
    Starts,
    /// First in line: its GPUs are reserved from `at`.
    Reserved {
        /// When enough GPUs are expected to be free (None: no running job it waits for has a
        /// known end).
        at: Option<f64>,
    },
    /// Fewer GPUs are free than it needs.
    NeedsGpus {
        /// GPUs it needs.
        need: u32,
        /// GPUs free once the jobs ahead have started.
        free: u32,
    },
    /// It would fit, but would still run when the reserved job `head` is due to start.
    WouldDelay {
        /// The reserved job.
        head: K,
    },
    /// Behind `head`, which is first in line and does not fit (no backfilling).
    Behind {
        /// The job first in line.
        head: K,
    },
}

impl<K: Display> WaitReason<K> {
    /// A sentence for people, with times relative to `now`.
    pub fn message(&self, now: f64) -> String {
        match self {
            WaitReason::Starts => "starting".to_string(),
            WaitReason::Reserved { at: Some(at) } => format!(
                "first in line; GPUs reserved from about {} from now",
                human_duration(at - now)
            ),
            WaitReason::Reserved { .. } => {
                "first in line; no running job has a known end (set activeDeadlineSeconds, or \
                 run a job of the same name once to completion)"
                    .to_string()
            }
            WaitReason::NeedsGpus { need, free } => {
                format!("needs {need} GPUs at once, {free} free")
            }
            WaitReason::WouldDelay { head } => {
                format!("would delay {head}, which has GPUs reserved (no known end before then)")
            }
            WaitReason::Behind { head } => format!("behind {head}, first in line"),
        }
    }
}

/// `3h`, `12m`, `40s`.
pub fn human_duration(s: f64) -> String {
    let s = s.max(0.0);
    if s >= 7_200.0 {
        format!("{:.0}h", s / 3_600.0)
    } else if s >= 120.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{s:.0}s")
    }
}

/// Every waiting job in the order the policy serves them, with why it waits.
pub fn explain<K: Clone + PartialEq>(
    policy: &Policy,
    now: f64,
    free: u32,
    waiting: &[QueueJob<K>],
    running: &[QueueJob<K>],
) -> Vec<QueueEntry<K>> {
    let d = decide(policy, now, free, waiting, running);
    let gpus_of = |k: &K, jobs: &[QueueJob<K>]| -> u32 {
        jobs.iter().filter(|j| j.key == *k).map(|j| j.gpus).sum()
    };
    let freed: u32 = d.preempt.iter().map(|k| gpus_of(k, running)).sum();
    let taken: u32 = d.start.iter().map(|k| gpus_of(k, waiting)).sum();
    let left = (free + freed).saturating_sub(taken);
    let mut order: Vec<(Key, &QueueJob<K>)> = waiting
        .iter()
        .map(|j| (Key::waiting(policy, j, now), j))
        .collect();
    order.sort_by_key(|(k, _)| *k);
    let head = order
        .iter()
        .find(|(_, j)| !d.start.contains(&j.key))
        .map(|(_, j)| j.key.clone());
    order
        .iter()
        .enumerate()
        .map(|(i, (key, job))| {
            let reason = if d.start.contains(&job.key) {
                WaitReason::Starts
            } else if let Some(r) = d.reservation.as_ref().filter(|r| r.key == job.key) {
                WaitReason::Reserved {
                    at: (r.known && r.at.is_finite()).then_some(r.at),
                }
            } else if job.gpus > left || Some(&job.key) == head.as_ref() {
                WaitReason::NeedsGpus {
                    need: job.gpus,
                    free: left,
                }
            } else if let Some(r) = &d.reservation {
                WaitReason::WouldDelay {
                    head: r.key.clone(),
                }
            } else {
                WaitReason::Behind {
                    head: head.clone().unwrap_or_else(|| job.key.clone()),
                }
            };
            QueueEntry {
                key: job.key.clone(),
                position: i + 1,
                gpus: job.gpus,
                level: key.class.level,
                promoted: key.class.promoted_at.0.is_finite(),
                expected_run_s: job.remaining_s,
                reason,
            }
        })
        .collect()
}
