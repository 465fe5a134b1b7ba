//! Live views over Server-Sent Events: a job's log (one replica, or all with a `[replica]`
//! prefix per line) and its metrics, from either source (a cluster's logs are followed in
//! [`crate::cluster_logs`]). Each stream sends `end` when the job is over and all of it has
//! been sent, so the browser closes it instead of reconnecting.

use std::convert::Infallible;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use trainctl_core::ReplicaId;
use trainctl_local::logs::{copy_logs, Selection};
use trainctl_local::process::is_same_process;
use trainctl_metrics::series::Run;
use trainctl_spec::TrainingJob;

use crate::charts::{points_limit, Sent, Update};
use crate::jobs::MetricsQuery;
use crate::server::{blocking, ApiError, Source};
use crate::Dashboard;

/// Lines of each attempt a log stream starts with when the request does not say.
pub const DEFAULT_TAIL: usize = 1000;
/// How often the metrics stream looks for new points of a local job.
const LOCAL_METRICS_EVERY: Duration = Duration::from_secs(1);
/// How often it looks for a cluster job (each look reads the job's logs from the cluster).
const CLUSTER_METRICS_EVERY: Duration = Duration::from_secs(5);

/// An event stream, as axum serves it.
pub(crate) type Events =
    Sse<KeepAliveStream<Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>>>;

/// `GET /api/jobs/{name}/logs/live` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    /// Only this replica, such as `worker-1` (all, prefixed, when left out).
    pub replica: Option<String>,
    /// Start with the last N lines of each attempt ([`DEFAULT_TAIL`] when left out).
    pub tail: Option<usize>,
    /// Only this attempt (0 is the first run) instead of the latest one.
    pub attempt: Option<u32>,
}

/// Sends each write as a `log` event `{"text": ...}` (the log reader writes whole lines).
struct EventWriter {
    tx: mpsc::Sender<Event>,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let event = log_event(&text);
        self.tx
            .blocking_send(event)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the viewer went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn log_event(text: &str) -> Event {
    Event::default()
        .event("log")
        .data(json!({"text": text}).to_string())
}

pub(crate) fn end_event() -> Event {
    Event::default().event("end").data("{}")
}

pub(crate) fn events(rx: mpsc::Receiver<Event>) -> Events {
    let stream: Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(ReceiverStream::new(rx).map(Ok));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /api/jobs/{name}/logs/live`: the replica's latest attempt (and each new one as it
/// starts), following until the job is over; with `attempt`, that attempt only.
pub async fn logs(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Events, ApiError> {
    if let Source::Cluster(_) = &d.source {
        let (tx, rx) = mpsc::channel(64);
        crate::cluster_logs::start(d, name, query, tx).await?;
        return Ok(events(rx));
    }
    let selection = {
        let d = d.clone();
        let name = name.clone();
        blocking(move || {
            let mut engine = d.local()?.engine()?;
            let job = engine.job(&name)?;
            let replica = replica_of(&job.spec, &name, query.replica.as_deref())?;
            let request = trainctl_backend::LogRequest {
                replica,
                attempt: query.attempt,
                follow: true,
                tail: None,
            };
            let attempts = engine
                .store()
                .attempts(&name)
                .map_err(trainctl_local::EngineError::from)?;
            trainctl_backend::local::check_attempt(&name, &request, &attempts)
                .map_err(|e| ApiError::NotFound(e.to_string()))?;
            Ok(Selection {
                prefix: replica.is_none(),
                replica,
                attempt: query.attempt,
                tail: Some(query.tail.unwrap_or(DEFAULT_TAIL)),
            })
        })
        .await?
    };
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let engine = match d.local().and_then(|l| l.engine()) {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.blocking_send(log_event(&format!("cannot read the log: {e}\n")));
                return;
            }
        };
        let mut out = EventWriter { tx: tx.clone() };
        let result = copy_logs(
            engine.store(),
            &name,
            &selection,
            &mut out,
            true,
            &mut |s| {
                let supervised = s
                    .job(&name)?
                    .is_some_and(|j| is_same_process(j.supervisor_pid, j.supervisor_start));
                Ok(tx.is_closed() || !supervised)
            },
        );
        if let Err(e) = result {
            let _ = tx.blocking_send(log_event(&format!("log streaming stopped: {e}\n")));
        }
        let _ = tx.blocking_send(end_event());
    });
    Ok(events(rx))
}

/// The replica a request names (None for all of them), checked against the job.
pub(crate) fn replica_of(
    job: &TrainingJob,
    name: &str,
    asked: Option<&str>,
) -> Result<Option<ReplicaId>, ApiError> {
    let Some(text) = asked.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let id: ReplicaId = text.parse().map_err(ApiError::BadRequest)?;
    if !ReplicaId::all_of(job).contains(&id) {
        return Err(ApiError::NotFound(format!(
            "job {name} has no replica {id}"
        )));
    }
    Ok(Some(id))
}

/// Reads the job's series and hands them to `view`; also says whether the job has ended.
pub(crate) async fn read_metrics<T: Send + 'static>(
    d: Arc<Dashboard>,
    name: String,
    view: impl FnOnce(&[(&str, &Run)], &[String]) -> T + Send + 'static,
) -> Result<(T, bool), ApiError> {
    if let Source::Cluster(cluster) = &d.source {
        return crate::cluster::read_metrics(cluster, &name, view).await;
    }
    blocking(move || {
        let local = d.local()?;
        let job = local.engine()?.job(&name)?;
        let ended = job.phase.is_terminal();
        Ok((local.charts.with_runs(&local.home, &job, view)?, ended))
    })
    .await
}

/// `GET /api/jobs/{name}/metrics/live`: the job's series (as `GET .../metrics` answers) as a
/// `metrics` event, then only the new points as `append` events (a fresh `metrics` event when
/// a series went back or grew long), until the job has ended.
pub async fn metrics(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
    Query(query): Query<MetricsQuery>,
) -> Result<Events, ApiError> {
    let max = points_limit(query.points)?;
    let every = match d.source {
        Source::Local(_) => LOCAL_METRICS_EVERY,
        Source::Cluster(_) => CLUSTER_METRICS_EVERY,
    };
    let poll = move |d: Arc<Dashboard>, name: String, mut sent: Sent| {
        read_metrics(d, name, move |runs, warnings| {
            let update = sent.update(runs, warnings, max);
            (sent, update)
        })
    };
    // Unknown jobs and bad parameters are answered before the stream starts.
    let first = poll(d.clone(), name.clone(), Sent::default()).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut next: Result<_, ApiError> = Ok(first);
        let mut closing = false;
        loop {
            let ((sent, update), ended) = match next {
                Ok(x) => x,
                Err(e) => {
                    let error = json!({"error": e.to_string()}).to_string();
                    let _ = tx.send(Event::default().event("error").data(error)).await;
                    return;
                }
            };
            let event = match update {
                Some(Update::Full(data)) => {
                    Some(Event::default().event("metrics").data(data.to_string()))
                }
                Some(Update::Append(data)) => {
                    Some(Event::default().event("append").data(data.to_string()))
                }
                None => None,
            };
            if let Some(event) = event {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            // The job's last output is collected just after it ends: look once more.
            if ended && closing {
                let _ = tx.send(end_event()).await;
                return;
            }
            closing = ended;
            tokio::time::sleep(every).await;
            if tx.is_closed() {
                return;
            }
            next = poll(d.clone(), name.clone(), sent).await;
        }
    });
    Ok(events(rx))
}
