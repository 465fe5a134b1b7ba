//! A trial's objective from the metrics trainctl collects for its job: the values by step
//! (what early stopping reads; the value that counts is `trainctl_spec::trial::counted_value`).

use std::path::Path;

use anyhow::Result;
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
        let mut out: Vec<(u64, f64)> = Vec::new();
        if let Some(series) = self
            .metrics
            .runs()
            .into_iter()
            .find_map(|(_, run)| run.tags.get(&self.metric))
        {
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
        Ok(out)
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
