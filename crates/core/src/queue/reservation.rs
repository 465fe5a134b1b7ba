//! The reservation of the first job that must wait: the earliest time enough GPUs are
//! expected to be free for it, from the running jobs' expected ends (`remaining_s`, else
//! [`UNKNOWN_RUN_S`]) and, when the policy preempts, the time each running job becomes one
//! it may preempt. Jobs behind it start now only when they free their GPUs by then, or use
//! GPUs it will not need.

use super::order::Key;
use super::{Policy, PolicyKind, QueueJob, UNKNOWN_RUN_S};

/// GPUs reserved for the job first in line.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation<K> {
    /// The job.
    pub key: K,
    /// GPUs it needs.
    pub gpus: u32,
    /// When they are expected to be free (infinity: never, as far as the queue knows).
    pub at: f64,
    /// Whether `at` comes from known ends (deadlines, estimates, preemption); else it is
    /// where "unknown means long" puts it.
    pub known: bool,
}

/// A reservation during a decision round.
pub(crate) struct Reserved<'a, K> {
    /// The reserved job.
    pub(crate) head: &'a QueueJob<K>,
    /// When its GPUs are expected.
    pub(crate) at: f64,
    /// Whether that time comes from known ends.
    pub(crate) known: bool,
    /// GPUs free at that time beyond its need: jobs may hold them past `at`.
    pub(crate) spare: u32,
}

/// When `job`, running since `run_start`, is expected to give its GPUs to `head`: when it
/// ends, or when `head` may preempt it, whichever comes first; and whether that time is
/// known (false: an unknown end taken as long).
pub(crate) fn release_at<K>(
    policy: &Policy,
    head: &QueueJob<K>,
    job: &QueueJob<K>,
    run_start: f64,
    now: f64,
) -> (f64, bool) {
    let end = match job.remaining_s {
        Some(r) => now + r,
        None => (run_start + UNKNOWN_RUN_S).max(now),
    };
    let known = job.remaining_s.is_some();
    if !policy.preemption || !job.preemptible {
        return (end, known);
    }
    let h = Key::waiting(policy, head, now).class;
    let r = Key::running(policy, job).class;
    let worse_at = if h < r {
        now
    } else if policy.kind == PolicyKind::Las && h.neg_priority == r.neg_priority {
        let crossing = match policy.las.thresholds_gpu_s.get(h.level as usize) {
            Some(t) if r.level <= h.level && job.gpus > 0 => {
                now + (t - job.attained_gpu_s).max(0.0) / f64::from(job.gpus)
            }
            _ => f64::INFINITY,
        };
        crossing.min(policy.las.promotion_at(head.since, head.ran_s))
    } else {
        f64::INFINITY
    };
    let preempt_at = worse_at.max(run_start + policy.min_run_s());
    if preempt_at < end {
        (preempt_at, true)
    } else {
        (end, known)
    }
}

/// The reservation of `head` with `free` GPUs free now and `holders` (jobs with the time
/// their current run began) holding the others.
pub(crate) fn reserve<'a, 'h, K: 'h>(
    policy: &Policy,
    head: &'a QueueJob<K>,
    free: u32,
    holders: impl Iterator<Item = (&'h QueueJob<K>, f64)>,
    now: f64,
) -> Reserved<'a, K> {
    let mut releases: Vec<((f64, bool), u32)> = holders
        .map(|(j, start)| (release_at(policy, head, j, start, now), j.gpus))
        .collect();
    releases.sort_unstable_by(|a, b| a.0 .0.total_cmp(&b.0 .0));
    let mut available = free;
    let (mut at, mut known) = (
        if free >= head.gpus {
            now
        } else {
            f64::INFINITY
        },
        true,
    );
    for ((t, k), gpus) in releases {
        if available >= head.gpus {
            break;
        }
        available += gpus;
        (at, known) = (t, k);
    }
    if available < head.gpus {
        at = f64::INFINITY;
    }
    Reserved {
        head,
        at,
        known,
        spare: available.saturating_sub(head.gpus),
    }
}
