//! What the trials of a local experiment reported, read from their jobs' metrics: a running
//! trial through the chart cache (polled incrementally), a finished one once, then kept (its
//! metrics no longer change).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use trainctl_backend::experiment::objective::values_by_step;
use trainctl_backend::experiment::status::state;
use trainctl_local::store::{ExperimentRow, Store, TrialRow};
use trainctl_local::EngineError;
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::series::Run;

use crate::experiment_view::TrialMetrics;
use crate::server::{ApiError, Local};

/// Finished trials whose summaries stay in memory; beyond that the cache starts over.
const CACHED_TRIALS: usize = 10_000;

/// The summaries of finished trials, by job and start time (a trial of an experiment deleted
/// and created again under the same name is read afresh).
#[derive(Default)]
pub struct TrialCache {
    finished: Mutex<HashMap<String, TrialMetrics>>,
}

/// The objective's values by step (the last value of each step) and the latest value of each
/// of `additional`, from the first run that has each.
pub fn summarize(runs: &[(&str, &Run)], objective: &str, additional: &[String]) -> TrialMetrics {
    let series = |tag: &str| runs.iter().find_map(|(_, run)| run.tags.get(tag));
    let intermediate = values_by_step(runs, objective);
    let latest = additional
        .iter()
        .filter_map(|m| Some((m.clone(), series(m)?.points().last()?.value)))
        .collect();
    TrialMetrics {
        intermediate,
        latest,
    }
}

impl TrialCache {
    /// What each trial of `exp` reported, by job name.
    pub(crate) fn read(
        &self,
        local: &Local,
        store: &Store,
        exp: &ExperimentRow,
        trials: &[TrialRow],
    ) -> Result<HashMap<String, TrialMetrics>, ApiError> {
        let objective = &exp.spec.spec.objective;
        let metric = objective.objective_metric_name.as_str();
        let additional = objective.additional_metric_names.as_slice();
        let mut out = HashMap::new();
        for t in trials {
            let m = if t.state == state::RUNNING {
                match store.job(&t.job).map_err(EngineError::from)? {
                    Some(job) => local.charts.with_runs(&local.home, &job, |runs, _| {
                        summarize(runs, metric, additional)
                    })?,
                    None => TrialMetrics::default(),
                }
            } else {
                self.finished(local, t, metric, additional)
            };
            out.insert(t.job.clone(), m);
        }
        Ok(out)
    }

    /// A finished trial's summary, read on first use. Metrics that cannot be read (its job's
    /// files removed) leave the trial with what its row recorded.
    fn finished(
        &self,
        local: &Local,
        t: &TrialRow,
        metric: &str,
        additional: &[String],
    ) -> TrialMetrics {
        let key = format!("{}@{}", t.job, t.started);
        if let Some(m) = self.lock().get(&key) {
            return m.clone();
        }
        let mut metrics = JobMetrics::new(
            &local.home.job_dir(&t.job),
            &local.home.tensorboard_dir(&t.job),
        );
        let m = match metrics.poll() {
            Ok(_) => summarize(&metrics.runs(), metric, additional),
            Err(_) => TrialMetrics::default(),
        };
        let mut cache = self.lock();
        if cache.len() >= CACHED_TRIALS {
            cache.clear();
        }
        cache.insert(key, m.clone());
        m
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TrialMetrics>> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
