//! Which policy the queue runs, and the settings of least attained service.

use serde::{Deserialize, Serialize};

/// A running job whose expected end is unknown is expected to run this long (30 days):
/// "unknown means long", so a reservation never counts on it ending soon.
pub const UNKNOWN_RUN_S: f64 = 30.0 * 86_400.0;

/// How jobs of the same priority are ordered and what a job that does not fit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Arrival order; the first job that does not fit blocks the rest.
    Fifo,
    /// Arrival order with a reservation for the first job that does not fit.
    Backfill,
    /// Least attained service, with backfilling, preemption and a starvation guard.
    Las,
    /// Oracle: shortest remaining run time first, never preempting.
    Sjf,
    /// Oracle: shortest remaining run time first, preempting longer running jobs.
    Srtf,
}

/// Least attained service: levels, the starvation guard and the shortest run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LasConfig {
    /// Level boundaries in GPU-seconds received, ascending: a job that has received at least
    /// `thresholds[i]` is in level `i + 1` (level 0 holds jobs below the first).
    pub thresholds_gpu_s: Vec<f64>,
    /// A waiting job is promoted once it has waited `starve_factor` times the seconds it has
    /// run so far (and at least `starve_min_wait_s`).
    pub starve_factor: f64,
    /// The shortest wait before a promotion.
    pub starve_min_wait_s: f64,
    /// A preemptible job is never preempted before it has run this long in its current run
    /// (its restart cost is not thrown away at once; it also bounds a promoted job's wait).
    pub min_run_s: f64,
}

impl Default for LasConfig {
    /// Levels at 1, 10 and 100 GPU-hours (4 levels), promotion after waiting 8 times the run
    /// time (at least 1 hour), runs of at least 10 minutes.
    fn default() -> Self {
        LasConfig {
            thresholds_gpu_s: vec![3_600.0, 36_000.0, 360_000.0],
            starve_factor: 8.0,
            starve_min_wait_s: 3_600.0,
            min_run_s: 600.0,
        }
    }
}

impl LasConfig {
    /// When a job waiting since `since`, having run `ran_s` seconds, is promoted.
    pub fn promotion_at(&self, since: f64, ran_s: f64) -> f64 {
        since + (self.starve_factor * ran_s).max(self.starve_min_wait_s)
    }
}

/// A queue policy: the kind, whether it may preempt, and the settings of least attained
/// service (used by [`PolicyKind::Las`] only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// How jobs are ordered and what a job that does not fit does.
    pub kind: PolicyKind,
    /// Whether running preemptible jobs may be suspended for waiting ones (`Las`, `Srtf`,
    /// and across priorities for the others).
    pub preemption: bool,
    /// Least attained service settings.
    pub las: LasConfig,
}

impl Policy {
    /// The policy `kind` with its usual preemption: on for `Las` and `Srtf`, off otherwise.
    pub fn new(kind: PolicyKind) -> Policy {
        Policy {
            kind,
            preemption: matches!(kind, PolicyKind::Las | PolicyKind::Srtf),
            las: LasConfig::default(),
        }
    }

    /// Whether the order looks at remaining run times (the oracles).
    pub(crate) fn by_remaining(&self) -> bool {
        matches!(self.kind, PolicyKind::Sjf | PolicyKind::Srtf)
    }

    /// The shortest run before a job may be preempted.
    pub(crate) fn min_run_s(&self) -> f64 {
        match self.kind {
            PolicyKind::Las => self.las.min_run_s,
            _ => 0.0,
        }
    }
}
