//! Chart data: every series of a job, downsampled for display (extremes kept, and always the
//! last point). Each job's metrics stay in memory between requests and are polled
//! incrementally, so a live chart costs only the new points.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Value};
use trainctl_local::store::JobRow;
use trainctl_local::Home;
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::series::downsample;

use crate::server::ApiError;

/// Points per series when the request does not say.
pub const DEFAULT_POINTS: usize = 1000;
/// The most points per series a request may ask for.
pub const MAX_POINTS: usize = 20_000;
/// Jobs whose metrics stay in memory; beyond that the cache starts over.
const CACHED_JOBS: usize = 32;

/// The metrics of recently viewed jobs.
#[derive(Default)]
pub struct Charts {
    jobs: Mutex<HashMap<String, Arc<Mutex<JobMetrics>>>>,
}

impl Charts {
    /// The job's series as `{"runs": [{"run", "tags": {TAG: {"total", "points": [[step,
    /// value], ...]}}}], "warnings": [...]}` with at most about `points` points per series.
    pub fn snapshot(
        &self,
        home: &Home,
        job: &JobRow,
        points: Option<usize>,
    ) -> Result<Value, ApiError> {
        let max = points.unwrap_or(DEFAULT_POINTS);
        if !(2..=MAX_POINTS).contains(&max) {
            return Err(ApiError::BadRequest(format!(
                "points must be between 2 and {MAX_POINTS}, not {max}"
            )));
        }
        let metrics = self.metrics_of(home, job);
        let mut metrics = metrics.lock().unwrap_or_else(PoisonError::into_inner);
        let warnings: Vec<String> = metrics.poll()?.iter().map(ToString::to_string).collect();
        let runs: Vec<Value> = metrics
            .runs()
            .into_iter()
            .map(|(name, run)| {
                let tags: serde_json::Map<String, Value> = run
                    .tags
                    .iter()
                    .map(|(tag, series)| {
                        let shown: Vec<(i64, f64)> = downsample(series.points(), max)
                            .iter()
                            .map(|p| (p.step, p.value))
                            .collect();
                        let total = series.points().len();
                        (tag.clone(), json!({"total": total, "points": shown}))
                    })
                    .collect();
                json!({"run": name, "tags": tags})
            })
            .collect();
        Ok(json!({"runs": runs, "warnings": warnings}))
    }

    /// The cached metrics of this incarnation of the job (a job deleted and created again
    /// under the same name starts afresh).
    fn metrics_of(&self, home: &Home, job: &JobRow) -> Arc<Mutex<JobMetrics>> {
        let key = format!("{}@{}", job.name, job.created);
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if !jobs.contains_key(&key) && jobs.len() >= CACHED_JOBS {
            jobs.clear();
        }
        jobs.entry(key)
            .or_insert_with(|| {
                let metrics =
                    JobMetrics::new(&home.job_dir(&job.name), &home.tensorboard_dir(&job.name));
                Arc::new(Mutex::new(metrics))
            })
            .clone()
    }
}
