//! The event loop: arrivals, ends and the policy's own wake-ups, in time order; at each the
//! policy decides with the jobs' state as of that moment, and its decisions are carried
//! out at once (a preempted job loses `preemption_cost_s` of work).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};
use trainctl_core::queue::fair_share::{Meter, DEFAULT_HALF_LIFE_S};
use trainctl_core::queue::{
    decide, decide_ordered, next_change, next_run_change, queue_key, Policy, PolicyKind, QueueJob,
    QueueKey,
};

use crate::report::{JobOutcome, Report};
use crate::trace::TraceJob;

/// What the non-oracle policies know of run times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimates {
    /// Nothing: every run time is unknown ("long"), as for jobs without a deadline.
    None,
    /// Each job's exact run time, as if every job set activeDeadlineSeconds to it.
    Exact,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// GPUs in the pool.
    pub gpus: u32,
    /// The queue policy.
    pub policy: Policy,
    /// Seconds of work a preempted job loses (it resumes from its last checkpoint).
    pub preemption_cost_s: f64,
    /// What the non-oracle policies know of run times.
    pub estimates: Estimates,
}

/// A job during the replay.
#[derive(Debug, Clone, Default)]
struct SimJob {
    gpus: u32,
    priority: i32,
    user: usize,
    submit: f64,
    /// Run time still needed, as of `since` when running.
    work_left: f64,
    attained: f64,
    ran: f64,
    /// When the current wait or run began.
    since: f64,
    running: bool,
    /// Bumped on every start, so a stale end event is ignored.
    generation: u32,
    /// Its place in the ordered queue while it waits.
    place: Option<QueueKey>,
    outcome: JobOutcome,
}

/// The replay's state.
struct Sim<'c> {
    cfg: &'c SimConfig,
    know_run_times: bool,
    jobs: Vec<SimJob>,
    /// The waiting jobs as the queue saw them when they began to wait, unordered (when
    /// `ordered` is None).
    waiting: Vec<QueueJob<usize>>,
    /// The waiting jobs in queue order with their view, when places change only by
    /// promotion while a job waits (one user): each decision then reads only the front.
    ordered: Option<BTreeMap<QueueKey, (usize, QueueJob<usize>)>>,
    /// Promotions due (LAS, ordered queue): time, job, its generation when it began to wait.
    promotions: BinaryHeap<Reverse<(Time, usize, u32)>>,
    running: Vec<usize>,
    free: u32,
    users: Vec<Meter>,
    ends: BinaryHeap<Reverse<(Time, usize, u32)>>,
}

/// A time (seconds, never negative) as its bits, which order as the times do: a key for
/// the event heaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Time(u64);

impl Time {
    fn new(t: f64) -> Time {
        Time(t.max(0.0).to_bits())
    }

    fn secs(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// Replays `trace` (sorted by submit time) under `cfg`. Jobs that need more GPUs than the
/// pool has never run and are counted as unschedulable.
pub fn replay(trace: &[TraceJob], cfg: &SimConfig) -> Report {
    let mut user_ids = BTreeMap::new();
    let mut unschedulable = 0;
    let jobs: Vec<SimJob> = trace
        .iter()
        .filter(|t| {
            let fits = t.gpus <= cfg.gpus;
            unschedulable += usize::from(!fits);
            fits
        })
        .map(|t| {
            let n = user_ids.len();
            SimJob {
                gpus: t.gpus,
                priority: t.priority,
                user: *user_ids.entry(t.user.as_str()).or_insert(n),
                submit: t.submit_s,
                work_left: t.duration_s,
                since: t.submit_s,
                ..SimJob::default()
            }
        })
        .collect();
    let mut sim = Sim {
        cfg,
        know_run_times: matches!(cfg.policy.kind, PolicyKind::Sjf | PolicyKind::Srtf)
            || cfg.estimates == Estimates::Exact,
        users: vec![Meter::default(); user_ids.len()],
        jobs,
        waiting: Vec::new(),
        ordered: (user_ids.len() < 2).then(BTreeMap::new),
        promotions: BinaryHeap::new(),
        running: Vec::new(),
        free: cfg.gpus,
        ends: BinaryHeap::new(),
    };
    sim.run();
    Report::new(cfg, &sim.outcomes(), unschedulable)
}

impl Sim<'_> {
    fn run(&mut self) {
        let mut next_arrival = 0;
        let mut wake: Option<f64> = None;
        loop {
            while let Some(Reverse((_, j, g))) = self.ends.peek() {
                if self.jobs[*j].generation == *g && self.jobs[*j].running {
                    break;
                }
                self.ends.pop();
            }
            let t = [
                self.jobs.get(next_arrival).map(|j| j.submit),
                self.ends.peek().map(|Reverse((t, _, _))| t.secs()),
                wake,
            ]
            .into_iter()
            .flatten()
            .min_by(f64::total_cmp);
            let Some(now) = t else { break };
            while let Some(Reverse((t, j, g))) = self.ends.peek().copied() {
                if t.secs() > now {
                    break;
                }
                self.ends.pop();
                if self.jobs[j].generation == g && self.jobs[j].running {
                    self.finish(j, now);
                }
            }
            while self.jobs.get(next_arrival).is_some_and(|j| j.submit <= now) {
                self.enqueue(next_arrival, now);
                next_arrival += 1;
            }
            self.promote_due(now);
            if !self.nobody_waits() && (self.free > 0 || self.cfg.policy.preemption) {
                self.schedule(now);
            }
            wake = self.next_change(now);
        }
    }

    /// Job `i` as the queue sees it at `now`.
    fn view(&self, i: usize, now: f64) -> QueueJob<usize> {
        let j = &self.jobs[i];
        let elapsed = if j.running { now - j.since } else { 0.0 };
        QueueJob {
            key: i,
            gpus: j.gpus,
            priority: j.priority,
            seq: i as u64,
            preemptible: true,
            attained_gpu_s: j.attained + elapsed * f64::from(j.gpus),
            ran_s: j.ran + elapsed,
            since: j.since,
            remaining_s: self.know_run_times.then_some(j.work_left - elapsed),
            usage: if self.users.len() > 1 {
                self.users[j.user].value_at(now, DEFAULT_HALF_LIFE_S)
            } else {
                0.0
            },
        }
    }

    /// The running jobs as the queue sees them at `now`.
    fn running_views(&self, now: f64) -> Vec<QueueJob<usize>> {
        self.running.iter().map(|i| self.view(*i, now)).collect()
    }

    /// Brings the users' usage of the unordered waiting jobs up to `now`.
    fn refresh_usage(&mut self, now: f64) {
        if self.users.len() > 1 {
            for w in &mut self.waiting {
                w.usage = self.users[self.jobs[w.key].user].value_at(now, DEFAULT_HALF_LIFE_S);
            }
        }
    }

    /// Job `i` starts (or starts again) to wait.
    fn enqueue(&mut self, i: usize, now: f64) {
        let view = self.view(i, now);
        if self.ordered.is_none() {
            self.waiting.push(view);
            return;
        }
        if self.cfg.policy.kind == PolicyKind::Las {
            let at = self.cfg.policy.las.promotion_at(view.since, view.ran_s);
            let g = self.jobs[i].generation;
            self.promotions.push(Reverse((Time::new(at), i, g)));
        }
        let key = queue_key(&self.cfg.policy, &view, now);
        self.jobs[i].place = Some(key);
        if let Some(o) = &mut self.ordered {
            o.insert(key, (i, view));
        }
    }

    /// Moves the jobs whose promotion is due to their promoted place.
    fn promote_due(&mut self, now: f64) {
        while let Some(Reverse((t, i, g))) = self.promotions.peek().copied() {
            if t.secs() > now {
                break;
            }
            self.promotions.pop();
            let j = &mut self.jobs[i];
            let (Some(order), Some(old)) = (&mut self.ordered, j.place) else {
                continue;
            };
            if j.generation != g || j.running {
                continue;
            }
            if let Some((_, view)) = order.remove(&old) {
                let key = queue_key(&self.cfg.policy, &view, t.secs());
                j.place = Some(key);
                order.insert(key, (i, view));
            }
        }
    }

    /// When the policy may decide differently without an arrival or an end.
    fn next_change(&mut self, now: f64) -> Option<f64> {
        if self.cfg.policy.kind != PolicyKind::Las || self.nobody_waits() {
            return None;
        }
        let running = self.running_views(now);
        if self.ordered.is_none() {
            return next_change(&self.cfg.policy, now, &self.waiting, &running);
        }
        while let Some(Reverse((_, i, g))) = self.promotions.peek() {
            let j = &self.jobs[*i];
            if j.generation == *g && !j.running {
                break;
            }
            self.promotions.pop();
        }
        let promotion = self.promotions.peek().map(|Reverse((t, _, _))| t.secs());
        [promotion, next_run_change(&self.cfg.policy, now, &running)]
            .into_iter()
            .flatten()
            .min_by(f64::total_cmp)
    }

    /// Whether no job waits.
    fn nobody_waits(&self) -> bool {
        self.ordered
            .as_ref()
            .map_or(self.waiting.is_empty(), |o| o.is_empty())
    }

    /// Asks the policy and carries out its decisions.
    fn schedule(&mut self, now: f64) {
        self.refresh_usage(now);
        let r = self.running_views(now);
        let d = match &self.ordered {
            Some(order) => {
                let waiting = order.iter().map(|(k, (_, v))| (*k, v));
                decide_ordered(&self.cfg.policy, now, self.free, waiting, &r)
            }
            None => decide(&self.cfg.policy, now, self.free, &self.waiting, &r),
        };
        for j in d.preempt {
            self.stop(j, now, true);
        }
        for j in d.start {
            self.start(j, now);
        }
        let jobs = &self.jobs;
        self.waiting.retain(|w| !jobs[w.key].running);
    }

    fn start(&mut self, i: usize, now: f64) {
        let las = (self.cfg.policy.kind == PolicyKind::Las).then_some(&self.cfg.policy.las);
        let j = &mut self.jobs[i];
        let wait = now - j.since;
        let o = &mut j.outcome;
        o.first_start.get_or_insert(now);
        o.max_wait = o.max_wait.max(wait);
        if let Some(las) = las {
            let guard = las.promotion_at(j.since, j.ran) - j.since;
            o.max_wait_past_promotion = o.max_wait_past_promotion.max(wait - guard);
        }
        j.running = true;
        j.since = now;
        j.generation += 1;
        self.ends
            .push(Reverse((Time::new(now + j.work_left), i, j.generation)));
        self.free -= j.gpus;
        self.running.push(i);
        if let (Some(order), Some(place)) = (&mut self.ordered, j.place.take()) {
            order.remove(&place);
        }
        self.hold(i, now, true);
    }

    /// Stops a running job: it finished, or it is preempted (and waits again).
    fn stop(&mut self, i: usize, now: f64, preempted: bool) {
        let j = &mut self.jobs[i];
        let ran = now - j.since;
        j.attained += ran * f64::from(j.gpus);
        j.ran += ran;
        j.work_left = (j.work_left - ran).max(0.0);
        j.running = false;
        j.since = now;
        j.outcome.busy += ran;
        self.free += j.gpus;
        self.running.retain(|k| *k != i);
        if preempted {
            j.outcome.preemptions += 1;
            j.work_left += self.cfg.preemption_cost_s;
            self.enqueue(i, now);
        }
        self.hold(i, now, false);
    }

    fn finish(&mut self, i: usize, now: f64) {
        self.stop(i, now, false);
        let j = &mut self.jobs[i];
        j.outcome.submit = j.submit;
        j.outcome.finish = Some(now);
        j.outcome.gpus = j.gpus;
    }

    /// Tells the job's user's meter that it took (`take`) or gave back its GPUs.
    fn hold(&mut self, i: usize, now: f64, take: bool) {
        if self.users.len() < 2 {
            return;
        }
        let j = &self.jobs[i];
        let meter = &mut self.users[j.user];
        let gpus = if take {
            meter.gpus() + j.gpus
        } else {
            meter.gpus() - j.gpus
        };
        meter.set_gpus(now, gpus, DEFAULT_HALF_LIFE_S);
    }

    fn outcomes(&self) -> Vec<JobOutcome> {
        self.jobs.iter().map(|j| j.outcome.clone()).collect()
    }
}
