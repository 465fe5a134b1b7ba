//! `logs` on a cluster: the latest attempt of every replica (or the one `--replica`/`--attempt`
//! pick), live from the pod while it exists and from the operator's archive once it is
//! gone. `-f` follows each replica across its attempts: when a pod is replaced it prints a
//! `--- worker-0 attempt 1 ---` line and carries on with the new attempt, until the job ends.
//! A live pod's log is followed ([`LogFollower`](trainctl_kube_client::log_follow::LogFollower):
//! every line once, through dropped connections); an attempt's whole log is read again only
//! when its follow could not bring every line (the pod went first: the archive has the end).

use std::cell::RefCell;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use kube::ResourceExt;
use trainctl_core::ReplicaId;
use trainctl_kube_client::client::{AttemptLog, Cluster, LogSource};
use trainctl_kube_client::TrainingJobResource;

use crate::LogRequest;

/// How often `-f` looks for a new attempt or the job's end once a pod's log stream ended.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Writes (and when `a.follow`, follows) the logs `a` picks of job `name` into `out`.
pub async fn logs(
    cluster: &Cluster,
    name: &str,
    a: &LogRequest,
    out: &mut dyn Write,
) -> Result<()> {
    let job = cluster.get(name).await?;
    let replica = a.replica;
    let mut sources = cluster.log_sources(&job, replica, a.attempt).await?;
    if a.attempt.is_none() {
        // Like the local engine: the latest attempt of each replica.
        sources.reverse();
        sources.dedup_by_key(|s| s.replica);
        sources.reverse();
    }
    if sources.is_empty() {
        match a.attempt {
            Some(n) => bail!("job {name} has no log for attempt {n}"),
            None if !a.follow => eprintln!("job {name} has no logs yet"),
            None => {}
        }
    }
    let out = RefCell::new(out);
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
            print_lines(&out, &label(source.replica), &lines[skip..])?;
        }
        return Ok(());
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
        out: &out,
        pinned: a.attempt.is_some(),
    });
    let runs = followers.map(|f| {
        let start = sources.iter().find(|s| s.replica == f.replica).cloned();
        async move { f.run(start, a.tail).await }
    });
    for result in futures::future::join_all(runs).await {
        result?;
    }
    Ok(())
}

/// Writes `lines`, each after `label`, and flushes them (the writer is shared by the
/// replicas' followers, each borrowing it for one write).
fn print_lines(out: &RefCell<&mut dyn Write>, label: &str, lines: &[&str]) -> Result<()> {
    let mut out = out.borrow_mut();
    for line in lines {
        writeln!(out, "{label}{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// Follows one replica's log across its attempts.
struct Follower<'a, 'w> {
    cluster: &'a Cluster,
    job: &'a TrainingJobResource,
    replica: ReplicaId,
    label: String,
    out: &'a RefCell<&'w mut dyn Write>,
    /// Only the starting attempt (`--attempt`): stop when it ends.
    pinned: bool,
}

impl Follower<'_, '_> {
    /// Prints the attempt `start` (the replica's latest, if any) from its first line (or its
    /// last `tail` lines), then every later attempt, until the job has ended and all its
    /// output is printed. Lines are counted per attempt, so the live stream and the
    /// catch-up reads never print a line twice.
    async fn run(&self, start: Option<AttemptLog>, tail: Option<usize>) -> Result<()> {
        let mut current = start.as_ref().map(|s| s.attempt);
        let mut printed = 0;
        // Whether the current attempt's follow brought every line of it.
        let mut whole = false;
        if let (Some(n), Some(attempt)) = (tail, current) {
            let text = self.text_of(attempt).await?;
            printed = text.lines().count().saturating_sub(n);
        }
        if let Some(LogSource::Live(pod)) = start.as_ref().map(|s| &s.source) {
            (printed, whole) = self.stream(pod, printed).await?;
        }
        let name = self.job.name_any();
        loop {
            // Decide before reading, so output written before the job ended is not missed.
            let done = self.pinned || self.cluster.finished(&name).await?;
            if let Some(attempt) = current.filter(|_| !whole) {
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
                        print_lines(self.out, &self.label, &[&separator])?;
                    }
                    current = Some(next.attempt);
                    (printed, whole) = match &next.source {
                        LogSource::Live(pod) => self.stream(pod, 0).await?,
                        LogSource::Archived(_) => (0, false),
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

    /// Follows a live pod's log until the pod ends, skipping its first `skip` lines; returns
    /// how many lines of the attempt are now printed or skipped, and whether that is all of
    /// them. A follow that cannot go on leaves the rest to the catch-up reads.
    async fn stream(&self, pod: &str, skip: usize) -> Result<(usize, bool)> {
        let mut follower = self.cluster.log_follower(pod);
        let mut seen = 0;
        loop {
            match follower.next_line().await {
                Ok(Some(line)) => {
                    if seen >= skip {
                        print_lines(self.out, &self.label, &[&line])?;
                    }
                    seen += 1;
                }
                Ok(None) => return Ok((seen.max(skip), follower.whole())),
                Err(_) => return Ok((seen.max(skip), false)),
            }
        }
    }

    /// Prints the lines of `attempt` after the first `printed`; returns the new count.
    async fn catch_up(&self, attempt: u32, printed: usize) -> Result<usize> {
        let text = self.text_of(attempt).await?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > printed {
            print_lines(self.out, &self.label, &lines[printed..])?;
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
