//! `logs --kube`: the latest attempt of every replica (or the one `--replica`/`--attempt`
//! pick), live from the pod while it exists and from the operator's archive once it is
//! gone; `-f` then follows the live pods until they end.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use futures::{AsyncBufReadExt, StreamExt};
use trainctl_core::ReplicaId;
use trainctl_operator::client::{AttemptLog, Cluster, LogSource};

use crate::args::LogsArgs;

/// Prints (and with `-f` follows) a job's logs.
pub async fn logs(cluster: &Cluster, a: &LogsArgs) -> Result<ExitCode> {
    let job = cluster.get(&a.job).await?;
    let replica = match &a.replica {
        Some(r) => {
            let id: ReplicaId = r.parse().map_err(|e: String| anyhow!(e))?;
            let all = ReplicaId::all_of(&job.to_job());
            if !all.contains(&id) {
                let names: Vec<String> = all.iter().map(ToString::to_string).collect();
                bail!(
                    "job {} has no replica {id}; it has {}",
                    a.job,
                    names.join(", ")
                );
            }
            Some(id)
        }
        None => None,
    };
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
            None => eprintln!("job {} has no logs yet", a.job),
        }
    }
    let prefix = |s: &AttemptLog| {
        if replica.is_none() {
            format!("[{}] ", s.replica)
        } else {
            String::new()
        }
    };
    let mut following = Vec::new();
    for source in &sources {
        match &source.source {
            LogSource::Live(pod) if a.follow => following.push((prefix(source), pod.clone())),
            LogSource::Live(pod) => {
                print_lines(&prefix(source), &cluster.pod_log(pod).await?, a.tail)?
            }
            LogSource::Archived(text) => print_lines(&prefix(source), text, a.tail)?,
        }
    }
    let follows = following
        .iter()
        .map(|(label, pod)| follow(cluster, label, pod));
    for result in futures::future::join_all(follows).await {
        result?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_lines(label: &str, text: &str, tail: Option<usize>) -> Result<()> {
    let lines: Vec<&str> = text.lines().collect();
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = std::io::stdout().lock();
    for line in &lines[skip..] {
        writeln!(out, "{label}{line}")?;
    }
    Ok(())
}

async fn follow(cluster: &Cluster, label: &str, pod: &str) -> Result<()> {
    let mut lines = cluster.follow_pod_log(pod).await?.lines();
    while let Some(line) = lines.next().await {
        let line = line?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{label}{line}")?;
        out.flush()?;
    }
    Ok(())
}
