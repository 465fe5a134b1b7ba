//! A trial's objective from the metrics trainctl collects for its job: the values by step
//! (what early stopping reads; the value that counts is `trainctl_spec::trial::counted_value`).

use std::path::Path;

use anyhow::Result;
use trainctl_local::store::ObservedMetric;
use trainctl_local::Home;
use trainctl_metrics::job::JobMetrics;

/// Reads a trial's objective metric as it is collected.
pub struct ObjectiveReader {
    metric: String,
    metrics: JobMetrics,
}

impl ObjectiveReader {
    /// The reader for job `job`'s `metric`.
    pub fn new(home: &Home, job: &str, metric: &str) -> Self {
        ObjectiveReader {
            metric: metric.to_string(),
            metrics: JobMetrics::new(&home.job_dir(job), &home.tensorboard_dir(job)),
        }
    }

    /// The metric's values by step so far (the last value of each step), in step order.
    pub fn values(&mut self) -> Result<Vec<(u64, f64)>> {
        self.metrics.poll()?;
        Ok(values_by_step(&self.metrics.runs(), &self.metric))
    }

    /// What the trial reported of each of `names` (those it reported at all), as of the
    /// last poll.
    pub fn observed(&mut self, names: &[String]) -> Result<Vec<ObservedMetric>> {
        let runs = self.metrics.runs();
        Ok(names
            .iter()
            .filter_map(|name| {
                let values = values_by_step(&runs, name);
                let vs = values.iter().map(|p| p.1);
                Some(ObservedMetric {
                    name: name.clone(),
                    min: vs.clone().reduce(f64::min)?,
                    max: vs.reduce(f64::max)?,
                    latest: values.last()?.1,
                })
            })
            .collect())
    }
}

/// The last `n` lines of a log file (empty when it cannot be read).
pub fn last_lines(log: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// `metric`'s values by step in the first run that has it (the last value of each step), in
/// step order: a trial's intermediate values.
pub fn values_by_step(
    runs: &[(&str, &trainctl_metrics::series::Run)],
    metric: &str,
) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    if let Some(series) = runs.iter().find_map(|(_, run)| run.tags.get(metric)) {
        let mut points: Vec<(u64, f64)> = series
            .points()
            .iter()
            .map(|p| (p.step.max(0) as u64, p.value))
            .collect();
        points.sort_by_key(|p| p.0);
        for p in points {
            match out.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => out.push(p),
            }
        }
    }
    out
}
