//! Metrics of cluster jobs: every attempt log of a job (live pods and the operator's
//! archive) is mirrored into the directory layout of a local job
//! (`<dir>/logs/<replica>/attempt-<n>.log`), where the local collector
//! ([`trainctl_metrics::collect::Collector`]) parses it with the job's `spec.metrics` into a
//! metrics database (`<dir>/metrics.db`) and TensorBoard event files
//! (`<dir>/stdout/<replica>/`). So a cluster job's series are exactly what the same output
//! would give locally. `collect` follows the live pods' logs as streams; the one-shot
//! reads ([`job_metrics`]) read each log once.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use trainctl_metrics::collect::Collector;
use trainctl_metrics::event_lines::{format_line, OwnEventFiles, END_LINE};
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::series::Run;
use trainctl_metrics::stdout::StdoutParser;

use crate::client::{Cluster, LogSource};
use crate::log_mirror::LogMirror;

/// Every run of a cluster job (`stdout/<replica>`) with its scalar series, parsed from the
/// logs of all its attempts, as the local `trainctl metrics` reports them.
pub async fn job_metrics(cluster: &Cluster, name: &str) -> Result<Vec<(String, Run)>> {
    let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
    let mut collector = open_collector(cluster, name, dir.path()).await?;
    let ended = mirror_logs(cluster, name, dir.path()).await?;
    collector.collect(ended)?;
    let mut metrics = JobMetrics::new(dir.path(), dir.path());
    metrics.poll()?;
    Ok(metrics
        .runs()
        .into_iter()
        .map(|(run, series)| (run.to_string(), series.clone()))
        .collect())
}

/// A cluster job's metrics kept up to date by following its live pods' logs into a scratch
/// directory: each [`LiveJobMetrics::runs`] parses only what was printed since the last, and
/// no log is fetched twice (the dashboard's charts).
pub struct LiveJobMetrics {
    /// Holds the scratch directory for as long as the follow lasts.
    _dir: tempfile::TempDir,
    mirror: LogMirror,
    collector: Collector,
    metrics: JobMetrics,
}

impl LiveJobMetrics {
    /// Starts on job `name` (its `spec.metrics` says how to parse its output).
    pub async fn open(cluster: &Cluster, name: &str) -> Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        let collector = open_collector(cluster, name, dir.path()).await?;
        Ok(LiveJobMetrics {
            mirror: LogMirror::new(dir.path()),
            metrics: JobMetrics::new(dir.path(), dir.path()),
            collector,
            _dir: dir,
        })
    }

    /// Every run (`stdout/<replica>`) with its series so far, and whether the job had ended
    /// with every line of its logs read.
    pub async fn runs(
        &mut self,
        cluster: &Cluster,
        name: &str,
    ) -> Result<(Vec<(String, Run)>, bool)> {
        let ended = self.mirror.pass(cluster, name).await?;
        let complete = self.mirror.idle().await? && ended;
        self.collector.collect(complete)?;
        self.metrics.poll()?;
        let runs = self
            .metrics
            .runs()
            .into_iter()
            .map(|(run, series)| (run.to_string(), series.clone()))
            .collect();
        Ok((runs, complete))
    }
}

/// Follows a cluster job until it ends, recording its metrics under `dir` every `every`:
/// `metrics.db`, event files under `stdout/<replica>/` (TensorBoard reads them) and a copy
/// of the attempt logs under `logs/`, each live pod's log followed as a stream
/// ([`LogMirror`]). Calls `progress` with the points each pass added. The scalars the job
/// writes to its own event files under `dir` are printed on stdout as metric lines
/// ([`trainctl_metrics::event_lines`]), so the operator reads them from this log, and at
/// the end [`END_LINE`].
pub async fn collect_job(
    cluster: &Cluster,
    name: &str,
    dir: &Path,
    every: Duration,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let mut collector = open_collector(cluster, name, dir).await?;
    let mut mirror = LogMirror::new(dir);
    let mut own_events = OwnEventFiles::new(dir);
    loop {
        let ended = mirror.pass(cluster, name).await?;
        // Once the job has ended, the followers end with the last lines of its pods.
        let idle = mirror.idle().await?;
        let complete = ended && idle;
        progress(collector.collect(complete)?);
        print_own_events(&mut own_events)?;
        if complete {
            println!("{END_LINE}");
            return Ok(());
        }
        tokio::time::sleep(every).await;
    }
}

/// Prints the scalars the job's own event files gained as metric lines on stdout (flushed,
/// so a log reader sees them at once), and what had to be skipped on stderr.
fn print_own_events(files: &mut OwnEventFiles) -> Result<()> {
    let (scalars, problems) = files.poll()?;
    for problem in problems {
        eprintln!("warning: {problem}");
    }
    if scalars.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for scalar in &scalars {
        writeln!(out, "{}", format_line(scalar))?;
    }
    out.flush()?;
    Ok(())
}

/// The collector for `dir`, parsing by the job's `spec.metrics`.
async fn open_collector(cluster: &Cluster, name: &str, dir: &Path) -> Result<Collector> {
    let job = cluster.get(name).await?.to_job();
    let parser = StdoutParser::for_spec(job.spec.metrics.as_ref())?;
    Ok(Collector::open(dir, dir, parser)?)
}

/// Brings `<dir>/logs/<replica>/attempt-<n>.log` up to date with every attempt's log;
/// returns whether the job had ended before the logs were read (so nothing is missed).
/// Logs only grow: text that no longer starts with what was copied (an archived attempt
/// cut to its tail) is left as copied.
pub async fn mirror_logs(cluster: &Cluster, name: &str, dir: &Path) -> Result<bool> {
    let job = cluster.get(name).await?;
    let ended = job.status.as_ref().is_some_and(|s| s.outcome().is_some());
    for attempt in cluster.log_sources(&job, None, None).await? {
        let text = match attempt.source {
            LogSource::Archived(text) => text,
            // A pod still starting, or deleted just now (its log is archived by now).
            LogSource::Live(pod) => match cluster.pod_log(&pod).await {
                Ok(text) => text,
                Err(_) => continue,
            },
        };
        let folder = dir.join("logs").join(attempt.replica.to_string());
        let path = folder.join(format!("attempt-{}.log", attempt.attempt));
        append_new_text(&folder, &path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ended)
}

/// Appends the part of `text` that the file at `path` does not have yet.
pub(crate) fn append_new_text(folder: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    let copied = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let Some(new) = text.as_bytes().strip_prefix(copied.as_slice()) else {
        return Ok(());
    };
    if new.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(folder)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_text_is_appended_and_a_cut_archive_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("logs/worker-0");
        let path = folder.join("attempt-0.log");
        append_new_text(&folder, &path, "a\n").unwrap();
        append_new_text(&folder, &path, "a\nb\n").unwrap();
        append_new_text(&folder, &path, "b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
    }
}
