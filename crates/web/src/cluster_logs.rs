//! Live logs of a cluster job over Server-Sent Events: for each replica, the latest attempt
//! (archived by the operator once its pod is gone, else followed from the pod as one stream
//! until the pod ends, through dropped connections), then every later attempt in turn, until
//! the job has ended. With `attempt`, only that attempt. No log is read twice.

use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event;
use tokio::sync::mpsc;
use trainctl_core::ReplicaId;
use trainctl_kube_client::client::{Cluster, LogSource};

use crate::cluster::{failed, get, has_ended};
use crate::live::{end_event, log_event, replica_of, LogsQuery, DEFAULT_TAIL};
use crate::server::ApiError;
use crate::Dashboard;

/// How often a replica's stream looks for its next attempt.
const NEXT_ATTEMPT_EVERY: Duration = Duration::from_secs(1);

/// Where one replica's stream is: the attempt it has sent in full.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    attempt: u32,
}

/// Checks the request, then streams the logs into `tx` and ends with an `end` event.
pub async fn start(
    d: Arc<Dashboard>,
    name: String,
    query: LogsQuery,
    tx: mpsc::Sender<Event>,
) -> Result<(), ApiError> {
    let cluster = d.cluster()?;
    let job = get(cluster, &name).await?;
    let spec = job.to_job();
    let replica = replica_of(&spec, &name, query.replica.as_deref())?;
    if let Some(n) = query.attempt {
        let found = cluster
            .log_sources(&job, replica, Some(n))
            .await
            .map_err(failed)?;
        if found.is_empty() {
            return Err(ApiError::NotFound(format!(
                "job {name} has no log for attempt {n}"
            )));
        }
    }
    let replicas = replica.map_or_else(|| ReplicaId::all_of(&spec), |r| vec![r]);
    tokio::spawn(async move {
        let Ok(cluster) = d.cluster() else { return };
        let follows = replicas.iter().map(|id| {
            let label = if replica.is_none() {
                format!("[{id}] ")
            } else {
                String::new()
            };
            let stream = Replica {
                cluster,
                job: &name,
                id: *id,
                label,
                tx: &tx,
            };
            stream.follow(query.attempt, query.tail.unwrap_or(DEFAULT_TAIL))
        });
        for result in futures::future::join_all(follows).await {
            if let Err(e) = result {
                let _ = tx
                    .send(log_event(&format!("log streaming stopped: {e}\n")))
                    .await;
            }
        }
        let _ = tx.send(end_event()).await;
    });
    Ok(())
}

/// One replica's log stream.
struct Replica<'a> {
    cluster: &'a Cluster,
    job: &'a str,
    id: ReplicaId,
    label: String,
    tx: &'a mpsc::Sender<Event>,
}

impl Replica<'_> {
    /// Streams the replica's attempts until the job has ended (or, with `attempt`, that one).
    async fn follow(self, attempt: Option<u32>, tail: usize) -> Result<(), ApiError> {
        let mut cursor: Option<Cursor> = None;
        loop {
            let job = get(self.cluster, self.job).await?;
            let ended = has_ended(&job);
            let sources = self
                .cluster
                .log_sources(&job, Some(self.id), attempt)
                .await
                .map_err(failed)?;
            // The first look starts at the latest attempt, as the local engine does.
            let from =
                cursor.map_or_else(|| sources.last().map_or(0, |s| s.attempt), |c| c.attempt);
            let sent = cursor.map(|c| c.attempt);
            let todo = sources
                .into_iter()
                .filter(|s| s.attempt >= from && sent.is_none_or(|a| s.attempt > a));
            for source in todo {
                let tail = (cursor.is_none()).then_some(tail);
                match &source.source {
                    LogSource::Archived(text) => self.send(text, tail).await?,
                    LogSource::Live(pod) => self.follow_pod(pod, tail).await?,
                }
                cursor = Some(Cursor {
                    attempt: source.attempt,
                });
            }
            if ended || attempt.is_some() || self.tx.is_closed() {
                return Ok(());
            }
            tokio::time::sleep(NEXT_ATTEMPT_EVERY).await;
        }
    }

    /// Sends the lines of `text` (only the last `tail` of them on the first look).
    async fn send(&self, text: &str, tail: Option<usize>) -> Result<(), ApiError> {
        let lines: Vec<&str> = text.lines().collect();
        let start = tail.map_or(0, |n| lines.len().saturating_sub(n));
        for line in &lines[start..] {
            self.line(line).await?;
        }
        Ok(())
    }

    /// Follows the pod's log (from its last `tail` lines on the first look) until the pod
    /// ends or goes.
    async fn follow_pod(&self, pod: &str, tail: Option<usize>) -> Result<(), ApiError> {
        let mut follower = self.cluster.log_follower(pod);
        if let Some(n) = tail {
            follower = follower.tail(n);
        }
        while let Some(line) = follower.next_line().await.map_err(failed)? {
            self.line(&line).await?;
        }
        Ok(())
    }

    async fn line(&self, line: &str) -> Result<(), ApiError> {
        let event = log_event(&format!("{}{line}\n", self.label));
        self.tx
            .send(event)
            .await
            .map_err(|_| ApiError::Internal("the viewer went away".into()))
    }
}
