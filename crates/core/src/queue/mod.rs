//! The GPU queue: from the jobs that wait and the jobs that run, which jobs start now, which
//! running jobs are preempted for them, and the reservation of the job first in line. Pure
//! code (state in, decisions out), so the local engine and the trace simulator run the same
//! policy.
//!
//! Every policy serves higher priorities first and starts a job whole (all its GPUs at
//! once) or not at all. Within a priority the policy orders the jobs ([`PolicyKind`]):
//!
//! - `Fifo`: arrival order; a job that does not fit blocks every job behind it.
//! - `Backfill`: arrival order; the first job that does not fit gets a reservation at the
//!   earliest time enough GPUs are expected to be free ([`Reservation`]), and jobs behind it
//!   start now only when they do not delay it (EASY backfilling).
//! - `Las`: least attained service ([`LasConfig`]): discrete levels by GPU-seconds received,
//!   first come first served within a level, backfilling as above, preemption of preemptible
//!   jobs in higher levels for waiting jobs of lower levels, and a starvation guard.
//! - `Sjf` and `Srtf`: oracles that know every job's remaining run time: shortest first,
//!   every job that fits starts (no reservation); `Srtf` preempts longer running jobs.
//!
//! Among equals (same priority, same level, promoted or not) the user with the least recent
//! GPU usage ([`fair_share`]) goes first, then arrival order.

mod estimate;
mod explain;
pub mod fair_share;
mod order;
mod policy;
mod reservation;
mod wake;

pub use estimate::{estimate, Estimate, EstimateSource, ESTIMATE_RUNS};
pub use explain::{explain, human_duration, QueueEntry, WaitReason};
pub use order::level_of;
pub use policy::{LasConfig, Policy, PolicyKind, UNKNOWN_RUN_S};
pub use reservation::Reservation;
pub use wake::{next_change, next_run_change};

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use order::Key;
use reservation::Reserved;

/// A job as the queue sees it, waiting or running.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueJob<K> {
    /// The engine's key for the job.
    pub key: K,
    /// GPUs the job needs at once.
    pub gpus: u32,
    /// Higher is served first.
    pub priority: i32,
    /// Arrival order (smaller arrived first).
    pub seq: u64,
    /// Whether the queue may suspend the job to give its GPUs to another.
    pub preemptible: bool,
    /// GPU-seconds the job has received so far (for a running job, up to now).
    pub attained_gpu_s: f64,
    /// Seconds the job has run so far, over all its runs.
    pub ran_s: f64,
    /// When its current wait (waiting job) or current run (running job) began.
    pub since: f64,
    /// Expected run time still needed, when known (a deadline, earlier runs of its name
    /// ([`estimate`]), an oracle).
    pub remaining_s: Option<f64>,
    /// Its user's decayed recent GPU usage ([`fair_share::decayed_usage`]).
    pub usage: f64,
}

/// What the queue decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decisions<K> {
    /// Waiting jobs to start now, in order.
    pub start: Vec<K>,
    /// Running jobs to suspend so that jobs in `start` get their GPUs.
    pub preempt: Vec<K>,
    /// The job first in line that could not start, and when its GPUs are expected.
    pub reservation: Option<Reservation<K>>,
}

/// Decides which waiting jobs start now with `free` GPUs, which running jobs are preempted
/// for them, and (backfilling policies) the reservation of the first job that must wait.
pub fn decide<K: Clone>(
    policy: &Policy,
    now: f64,
    free: u32,
    waiting: &[QueueJob<K>],
    running: &[QueueJob<K>],
) -> Decisions<K> {
    let mut heap: BinaryHeap<Reverse<(Key, usize)>> = waiting
        .iter()
        .enumerate()
        .map(|(i, j)| Reverse((Key::waiting(policy, j, now), i)))
        .collect();
    let in_order = std::iter::from_fn(|| heap.pop().map(|Reverse((k, i))| (k, &waiting[i])));
    decide_in_order(policy, now, free, in_order, running)
}

/// A waiting job's place in the queue at `now` (smaller is served first). A caller that
/// keeps its waiting jobs ordered by it can call [`decide_ordered`] instead of [`decide`];
/// it changes with time only under `Las` (promotion) and with the users' usage.
pub fn queue_key<K>(policy: &Policy, job: &QueueJob<K>, now: f64) -> QueueKey {
    QueueKey(Key::waiting(policy, job, now))
}

/// The opaque, totally ordered place of a waiting job ([`queue_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueKey(Key);

/// [`decide`] for waiting jobs given in queue order, each with its [`queue_key`]: reads only
/// as far as decisions can change, so a long queue costs little.
pub fn decide_ordered<'a, K: Clone + 'a>(
    policy: &Policy,
    now: f64,
    free: u32,
    waiting: impl Iterator<Item = (QueueKey, &'a QueueJob<K>)>,
    running: &'a [QueueJob<K>],
) -> Decisions<K> {
    decide_in_order(policy, now, free, waiting.map(|(k, j)| (k.0, j)), running)
}

fn decide_in_order<'a, K: Clone + 'a>(
    policy: &Policy,
    now: f64,
    free: u32,
    waiting: impl Iterator<Item = (Key, &'a QueueJob<K>)>,
    running: &'a [QueueJob<K>],
) -> Decisions<K> {
    let mut run = Round {
        policy,
        now,
        free,
        running,
        taken: vec![false; running.len()],
        started: Vec::new(),
        preempt_ok: policy.preemption,
        reservation: None,
    };
    for (key, job) in waiting {
        if run.free == 0 && !run.preempt_ok {
            // Nothing more can start; the first job left still gets its reservation.
            run.block(job);
            break;
        }
        if !run.offer(job, &key) {
            break;
        }
    }
    Decisions {
        start: run.started.iter().map(|j| j.key.clone()).collect(),
        preempt: run
            .taken
            .iter()
            .zip(running)
            .filter(|(t, _)| **t)
            .map(|(_, j)| j.key.clone())
            .collect(),
        reservation: run.reservation.map(|r| Reservation {
            key: r.head.key.clone(),
            gpus: r.head.gpus,
            at: r.at,
            known: r.known,
        }),
    }
}

/// The state of one decision round.
struct Round<'a, K> {
    policy: &'a Policy,
    now: f64,
    free: u32,
    running: &'a [QueueJob<K>],
    /// Running jobs chosen as victims.
    taken: Vec<bool>,
    /// Waiting jobs started this round.
    started: Vec<&'a QueueJob<K>>,
    /// Whether a waiting job may still preempt (only jobs ahead of every blocked job may).
    preempt_ok: bool,
    /// The reservation of the first job that must wait.
    reservation: Option<Reserved<'a, K>>,
}

impl<'a, K: Clone> Round<'a, K> {
    /// Offers the GPUs to the next waiting job in order; says whether later jobs may still
    /// be considered.
    fn offer(&mut self, job: &'a QueueJob<K>, key: &Key) -> bool {
        if job.gpus <= self.free {
            if self.backfill_fits(job) {
                self.free -= job.gpus;
                self.started.push(job);
            }
            return true;
        }
        if self.preempt_ok && self.reservation.is_none() && self.try_preempt(job, key) {
            return true;
        }
        self.block(job)
    }

    /// `job` cannot start now: backfilling policies reserve GPUs for the first such job.
    /// Says whether later jobs may still be considered.
    fn block(&mut self, job: &'a QueueJob<K>) -> bool {
        self.preempt_ok = false;
        match self.policy.kind {
            PolicyKind::Fifo => false,
            PolicyKind::Sjf | PolicyKind::Srtf => true,
            PolicyKind::Backfill | PolicyKind::Las => {
                if self.reservation.is_none() {
                    self.reservation = Some(self.reserve(job));
                }
                true
            }
        }
    }

    /// Whether a job that fits in the free GPUs may start without delaying the reservation
    /// (always, when there is none); takes what it uses from the spare GPUs.
    fn backfill_fits(&mut self, job: &QueueJob<K>) -> bool {
        let Some(res) = &mut self.reservation else {
            return true;
        };
        if reservation::release_at(self.policy, res.head, job, self.now, self.now).0 <= res.at {
            true
        } else if job.gpus <= res.spare {
            res.spare -= job.gpus;
            true
        } else {
            false
        }
    }

    /// Preempts the fewest, worst-placed running jobs that free enough GPUs for `job`, when
    /// there are enough it may preempt now.
    fn try_preempt(&mut self, job: &'a QueueJob<K>, key: &Key) -> bool {
        let mut victims: Vec<(Key, usize)> = self
            .running
            .iter()
            .enumerate()
            .filter(|(i, r)| !self.taken[*i] && order::may_preempt(self.policy, key, r, self.now))
            .map(|(i, r)| (Key::running(self.policy, r), i))
            .collect();
        let available: u32 = victims.iter().map(|(_, i)| self.running[*i].gpus).sum();
        if self.free + available < job.gpus {
            return false;
        }
        victims.sort_unstable_by(|a, b| b.cmp(a));
        for (_, i) in victims {
            if self.free >= job.gpus {
                break;
            }
            self.taken[i] = true;
            self.free += self.running[i].gpus;
        }
        self.free -= job.gpus;
        self.started.push(job);
        true
    }

    /// The reservation of `head`, the first job that must wait.
    fn reserve(&self, head: &'a QueueJob<K>) -> Reserved<'a, K> {
        let holders = self
            .running
            .iter()
            .zip(&self.taken)
            .filter(|(_, t)| !**t)
            .map(|(r, _)| (r, r.since))
            .chain(self.started.iter().map(|j| (*j, self.now)));
        reservation::reserve(self.policy, head, self.free, holders, self.now)
    }
}
