//! What a replay measured: job completion time (JCT, submit to end), queueing delay (time
//! not running), the longest single wait, preemptions, GPU utilization and makespan.

use serde::Serialize;

use crate::replay::SimConfig;

/// What happened to one job.
#[derive(Debug, Clone, Default)]
pub struct JobOutcome {
    /// When it was submitted.
    pub submit: f64,
    /// When it first started.
    pub first_start: Option<f64>,
    /// When it finished (None: never).
    pub finish: Option<f64>,
    /// GPUs it held while running.
    pub gpus: u32,
    /// Seconds it ran, work lost to preemptions included.
    pub busy: f64,
    /// Its longest single wait (from submit or a preemption to the next start).
    pub max_wait: f64,
    /// Its longest wait beyond the starvation guard's promotion time (LAS).
    pub max_wait_past_promotion: f64,
    /// Times it was preempted.
    pub preemptions: u32,
}

/// The numbers of a replay. Times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The policy.
    pub policy: String,
    /// GPUs in the pool.
    pub gpus: u32,
    /// Jobs replayed.
    pub jobs: usize,
    /// Jobs that need more GPUs than the pool has (not replayed).
    pub unschedulable_jobs: usize,
    /// Average job completion time.
    pub avg_jct_s: f64,
    /// Median JCT.
    pub median_jct_s: f64,
    /// 99th percentile JCT.
    pub p99_jct_s: f64,
    /// Average queueing delay (JCT minus time running).
    pub avg_queueing_s: f64,
    /// Median queueing delay.
    pub median_queueing_s: f64,
    /// 99th percentile queueing delay.
    pub p99_queueing_s: f64,
    /// The longest queueing delay of any job.
    pub max_queueing_s: f64,
    /// The longest single wait of any job (submit or preemption to the next start).
    pub max_wait_s: f64,
    /// The longest single wait beyond the starvation guard's promotion time (LAS only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_wait_past_promotion_s: Option<f64>,
    /// Preemptions.
    pub preemptions: u64,
    /// Busy GPU-seconds over pool GPU-seconds from the first submit to the last end.
    pub gpu_utilization: f64,
    /// From the first submit to the last end.
    pub makespan_s: f64,
}

impl Report {
    /// The report of a replay under `cfg` whose jobs ended as `jobs` say.
    pub fn new(cfg: &SimConfig, jobs: &[JobOutcome], unschedulable_jobs: usize) -> Report {
        let done: Vec<&JobOutcome> = jobs.iter().filter(|j| j.finish.is_some()).collect();
        let mut jct: Vec<f64> = done
            .iter()
            .map(|j| j.finish.unwrap_or(0.0) - j.submit)
            .collect();
        let mut queueing: Vec<f64> = done
            .iter()
            .zip(&jct)
            .map(|(j, t)| (t - j.busy).max(0.0))
            .collect();
        let first = done.iter().map(|j| j.submit).fold(f64::INFINITY, f64::min);
        let last = done
            .iter()
            .filter_map(|j| j.finish)
            .fold(f64::NEG_INFINITY, f64::max);
        let makespan = if done.is_empty() { 0.0 } else { last - first };
        let busy: f64 = done.iter().map(|j| j.busy * f64::from(j.gpus)).sum();
        let is_las = cfg.policy.kind == trainctl_core::queue::PolicyKind::Las;
        let max = |f: fn(&JobOutcome) -> f64| done.iter().map(|j| f(j)).fold(0.0, f64::max);
        Report {
            policy: format!("{:?}", cfg.policy.kind).to_lowercase(),
            gpus: cfg.gpus,
            jobs: done.len(),
            unschedulable_jobs,
            avg_jct_s: mean(&jct),
            median_jct_s: percentile(&mut jct, 50.0),
            p99_jct_s: percentile(&mut jct, 99.0),
            avg_queueing_s: mean(&queueing),
            median_queueing_s: percentile(&mut queueing, 50.0),
            p99_queueing_s: percentile(&mut queueing, 99.0),
            max_queueing_s: queueing.iter().copied().fold(0.0, f64::max),
            max_wait_s: max(|j| j.max_wait),
            max_wait_past_promotion_s: is_las.then(|| max(|j| j.max_wait_past_promotion)),
            preemptions: done.iter().map(|j| u64::from(j.preemptions)).sum(),
            gpu_utilization: if makespan > 0.0 {
                busy / (f64::from(cfg.gpus) * makespan)
            } else {
                0.0
            },
            makespan_s: makespan,
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The nearest-rank percentile `p` of `v` (sorts it).
fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}
