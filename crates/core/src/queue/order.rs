//! The order of the queue: a job's place (priority, promotion, level, remaining run time,
//! its user's usage, arrival) and who may preempt whom.

use std::cmp::Ordering;

use super::{Policy, PolicyKind, QueueJob};

/// The level of a job that has received `attained_gpu_s` GPU-seconds: how many of the
/// ascending `thresholds` it has reached.
pub fn level_of(thresholds: &[f64], attained_gpu_s: f64) -> u32 {
    thresholds
        .iter()
        .take_while(|t| attained_gpu_s >= **t)
        .count() as u32
}

/// A float with a total order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct F(pub f64);

impl PartialEq for F {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for F {}
impl PartialOrd for F {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for F {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The class of a job: what decides preemption. Smaller is served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Class {
    /// Minus the priority.
    pub(crate) neg_priority: i64,
    /// When a starving job was promoted; infinity for the others.
    pub(crate) promoted_at: F,
    /// Least attained service level (0 for the other policies).
    pub(crate) level: u32,
    /// Remaining run time (oracles only; infinity when unknown).
    remaining: F,
}

/// A job's place in the queue. Smaller is served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) class: Class,
    /// Its user's recent usage: among equals, the lighter user first.
    usage: F,
    /// Arrival.
    seq: u64,
}

impl Key {
    /// The place of a waiting job: a starving job is promoted (LAS).
    pub(crate) fn waiting<K>(policy: &Policy, job: &QueueJob<K>, now: f64) -> Key {
        let promotion = policy.las.promotion_at(job.since, job.ran_s);
        let promoted = policy.kind == PolicyKind::Las && now >= promotion;
        Key::of(
            policy,
            job,
            if promoted { promotion } else { f64::INFINITY },
        )
    }

    /// The place of a running job, for choosing whom to preempt.
    pub(crate) fn running<K>(policy: &Policy, job: &QueueJob<K>) -> Key {
        Key::of(policy, job, f64::INFINITY)
    }

    fn of<K>(policy: &Policy, job: &QueueJob<K>, promoted_at: f64) -> Key {
        let level = match policy.kind {
            PolicyKind::Las => level_of(&policy.las.thresholds_gpu_s, job.attained_gpu_s),
            _ => 0,
        };
        let remaining = if policy.by_remaining() {
            job.remaining_s.unwrap_or(f64::INFINITY)
        } else {
            0.0
        };
        Key {
            class: Class {
                neg_priority: -i64::from(job.priority),
                promoted_at: F(promoted_at),
                level,
                remaining: F(remaining),
            },
            usage: F(job.usage),
            seq: job.seq,
        }
    }
}

/// Whether a waiting job placed at `waiter` may preempt the running job `running` now: it
/// is preemptible, has run its shortest run, and is of a later class.
pub(crate) fn may_preempt<K>(
    policy: &Policy,
    waiter: &Key,
    running: &QueueJob<K>,
    now: f64,
) -> bool {
    running.preemptible
        && now - running.since >= policy.min_run_s()
        && waiter.class < Key::running(policy, running).class
}
