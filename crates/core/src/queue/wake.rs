//! When to look at the queue again although no job arrives or ends: under least attained
//! service, when a running job reaches its next level or its shortest run, or a waiting job
//! is due for promotion, a waiting job may become able to start or to preempt.

use super::{level_of, Policy, PolicyKind, QueueJob};

/// The earliest time after `now` at which [`super::decide`] may decide differently with
/// the same jobs waiting and running (None: only an arrival or an end changes it).
pub fn next_change<K>(
    policy: &Policy,
    now: f64,
    waiting: &[QueueJob<K>],
    running: &[QueueJob<K>],
) -> Option<f64> {
    if policy.kind != PolicyKind::Las || waiting.is_empty() {
        return None;
    }
    let promotions = waiting
        .iter()
        .map(|j| policy.las.promotion_at(j.since, j.ran_s))
        .filter(|t| *t > now)
        .min_by(f64::total_cmp);
    [promotions, next_run_change(policy, now, running)]
        .into_iter()
        .flatten()
        .min_by(f64::total_cmp)
}

/// The part of [`next_change`] that running jobs make: the earliest time after `now` at
/// which one reaches its next level or its shortest run (only for `Las` with preemption).
pub fn next_run_change<K>(policy: &Policy, now: f64, running: &[QueueJob<K>]) -> Option<f64> {
    if policy.kind != PolicyKind::Las || !policy.preemption {
        return None;
    }
    let las = &policy.las;
    running
        .iter()
        .filter(|r| r.preemptible && r.gpus > 0)
        .flat_map(|r| {
            let level = level_of(&las.thresholds_gpu_s, r.attained_gpu_s) as usize;
            let crossing = las.thresholds_gpu_s.get(level).map_or(f64::INFINITY, |t| {
                // A millisecond late, so that rounding never leaves the job just short.
                now + (t - r.attained_gpu_s) / f64::from(r.gpus) + 1e-3
            });
            [crossing, r.since + las.min_run_s]
        })
        .filter(|t| *t > now && t.is_finite())
        .min_by(f64::total_cmp)
}
