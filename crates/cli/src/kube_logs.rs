//! `logs --kube`: the latest attempt of every replica (or the one `--replica`/`--attempt`
//! pick), live from the pod while it exists and from the operator's archive once it is
//! gone. `-f` follows each replica across its attempts: when a pod is replaced it prints a
//! `--- worker-0 attempt 1 ---` line and carries on with the new attempt, until the job ends.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::{AsyncBufReadExt, StreamExt};
use kube::ResourceExt;
use trainctl_core::ReplicaId;
use trainctl_kube_client::client::{AttemptLog, Cluster, LogSource};
use trainctl_kube_client::TrainingJobResource;

use crate::args::LogsArgs;

/// How often `-f` looks for a new attempt or the job's end once a pod's log stream ended.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Prints (and with `-f` follows) a job's logs.
pub async fn logs(cluster: &Cluster, a: &LogsArgs) -> Result<ExitCode> {
    let job = cluster.get(&a.job).await?;
    let replica = selected_replica(&job, a.replica.as_deref())?;
    let mut sources = cluster.log_sources(&job, replica, a.attempt).await?;
    if a.attempt.is_none() {
        // Like the local engine: the latest attempt of each replica.
        sources.reverse();
        sources.dedup_by_key(|s| s.replica);
        sources.reverse();
    }
    if sources.is_empty() {
        match a.attempt {
            Some(n) => bail!("job {} has no log for attempt {n}", a.job),
            None if !a.follow => eprintln!("job {} has no logs yet", a.job),
            None => {}
        }
    }
    let label = |id: ReplicaId| {
        if replica.is_none() {
            format!("[{id}] ")
        } else {
            String::new()
        }
    };
    if !a.follow {
        for source in &sources {
            let text = match &source.source {
                LogSource::Live(pod) => cluster.pod_log(pod).await?,
                LogSource::Archived(text) => text.clone(),
            };
            let lines: Vec<&str> = text.lines().collect();
            let skip = a.tail.map_or(0, |n| lines.len().saturating_sub(n));
            print_lines(&label(source.replica), &lines[skip..])?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Follow every selected replica, even one whose pod does not exist yet; with
    // `--attempt`, only that attempt of the replicas that have it.
    let replicas: Vec<ReplicaId> = match (a.attempt, replica) {
        (Some(_), _) => sources.iter().map(|s| s.replica).collect(),
        (None, Some(id)) => vec![id],
        (None, None) => ReplicaId::all_of(&job.to_job()),
    };
    let followers = replicas.into_iter().map(|id| Follower {
        cluster,
        job: &job,
        replica: id,
        label: label(id),
        pinned: a.attempt.is_some(),
    });
    let runs = followers.map(|f| {
        let start = sources.iter().find(|s| s.replica == f.replica).cloned();
        async move { f.run(start, a.tail).await }
    });
    for result in futures::future::join_all(runs).await {
        result?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The replica `--replica` names, checked against the job.
fn selected_replica(job: &TrainingJobResource, asked: Option<&str>) -> Result<Option<ReplicaId>> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let id: ReplicaId = asked.parse().map_err(|e: String| anyhow!(e))?;
    let all = ReplicaId::all_of(&job.to_job());
    if !all.contains(&id) {
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        bail!(
            "job {} has no replica {id}; it has {}",
            job.name_any(),
            names.join(", ")
        );
    }
    Ok(Some(id))
}

fn print_lines(label: &str, lines: &[&str]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{label}{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// Follows one replica's log across its attempts.
struct Follower<'a> {
    cluster: &'a Cluster,
    job: &'a TrainingJobResource,
    replica: ReplicaId,
    label: String,
    /// Only the starting attempt (`--attempt`): stop when it ends.
    pinned: bool,
}

impl Follower<'_> {
    /// Prints the attempt `start` (the replica's latest, if any) from its first line (or its
    /// last `tail` lines), then every later attempt, until the job has ended and all its
    /// output is printed. Lines are counted per attempt, so the live stream and the
    /// catch-up reads never print a line twice.
    async fn run(&self, start: Option<AttemptLog>, tail: Option<usize>) -> Result<()> {
        let mut current = start.as_ref().map(|s| s.attempt);
        let mut printed = 0;
        if let (Some(n), Some(attempt)) = (tail, current) {
            let text = self.text_of(attempt).await?;
            printed = text.lines().count().saturating_sub(n);
        }
        if let Some(LogSource::Live(pod)) = start.as_ref().map(|s| &s.source) {
            printed = self.stream(pod, printed).await?;
        }
        let name = self.job.name_any();
        loop {
            // Decide before reading, so output written before the job ended is not missed.
            let done = self.pinned || self.cluster.finished(&name).await?;
            if let Some(attempt) = current {
                printed = self.catch_up(attempt, printed).await?;
            }
            if !self.pinned {
                let newer = self
                    .cluster
                    .log_sources(self.job, Some(self.replica), None)
                    .await?
                    .into_iter()
                    .find(|s| current.is_none_or(|c| s.attempt > c));
                if let Some(next) = newer {
                    if current.is_some() {
                        let separator =
                            format!("--- {} attempt {} ---", self.replica, next.attempt);
                        print_lines(&self.label, &[&separator])?;
                    }
                    current = Some(next.attempt);
                    printed = match &next.source {
                        LogSource::Live(pod) => self.stream(pod, 0).await?,
                        LogSource::Archived(_) => 0,
                    };
                    continue;
                }
            }
            if done {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }

    /// Streams a live pod's log until the pod ends, skipping its first `skip` lines; returns
    /// how many lines of the attempt are now printed or skipped. A stream that cannot start
    /// or breaks off is left to the catch-up reads.
    async fn stream(&self, pod: &str, skip: usize) -> Result<usize> {
        let Ok(reader) = self.cluster.follow_pod_log(pod).await else {
            return Ok(skip);
        };
        let mut lines = reader.lines();
        let mut seen = 0;
        while let Some(Ok(line)) = lines.next().await {
            if seen >= skip {
                print_lines(&self.label, &[&line])?;
            }
            seen += 1;
        }
        Ok(seen.max(skip))
    }

    /// Prints the lines of `attempt` after the first `printed`; returns the new count.
    async fn catch_up(&self, attempt: u32, printed: usize) -> Result<usize> {
        let text = self.text_of(attempt).await?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > printed {
            print_lines(&self.label, &lines[printed..])?;
        }
        Ok(lines.len().max(printed))
    }

    async fn text_of(&self, attempt: u32) -> Result<String> {
        Ok(self
            .cluster
            .attempt_log(self.job, self.replica, attempt)
            .await?
            .unwrap_or_default())
    }
}
