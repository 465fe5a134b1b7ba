//! Watch streams: newline-delimited JSON events, resumable from a resourceVersion (410 Gone
//! as an ERROR event when the history no longer reaches back), with bookmarks, timeouts,
//! `sendInitialEvents`, an end when the test drops all watches, and live events held back
//! when a test makes the watch lag.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{scope, Params};
use crate::routes::Target;
use crate::selectors::Filter;
use crate::server::Shared;
use crate::store::Change;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// How long a watch lasts when the client gives no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

fn line(event: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": event, "object": object}))
        .expect("JSON values always serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// What a watch passes on: resource, namespace and selectors.
struct Interest {
    resource: String,
    namespace: Option<String>,
    filter: Filter,
    kind: String,
    api_version: String,
}

impl Interest {
    fn wants(&self, change: &Change) -> bool {
        change.resource == self.resource
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| change.object["metadata"]["namespace"].as_str() == Some(ns))
            && self.filter.matches(&change.object)
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": metadata}),
        )
    }
}

fn stream_response(lines: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(lines));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Starts a watch on `target`.
pub(crate) fn serve(
    shared: &Arc<Shared>,
    target: &Target,
    params: &Params,
    filter: Filter,
) -> ApiResult<Response> {
    let param = |k: &str| params.get(k).map(String::as_str);
    let from = match param("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let send_initial = param("sendInitialEvents") == Some("true") || from.is_none();
    let bookmarks = param("allowWatchBookmarks") == Some("true");
    let timeout = param("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let interest = Interest {
        resource: target.rt.key(),
        namespace: scope(target).map(String::from),
        filter,
        kind: target.rt.kind.clone(),
        api_version: target.rt.api_version(),
    };
    let (tx, rx) = mpsc::channel(1024);
    let store = shared.store();
    let mut initial = Vec::new();
    let since = match from {
        Some(rv) if !send_initial => rv,
        _ => {
            for obj in store.list(&target.rt, interest.namespace.as_deref()) {
                if interest.filter.matches(&obj) {
                    initial.push(line("ADDED", &obj));
                }
            }
            if param("sendInitialEvents") == Some("true") {
                initial.push(interest.bookmark(store.resource_version(), true));
            }
            store.resource_version()
        }
    };
    let (past, live) = match store.changes_since(since) {
        Ok(changes) => changes,
        Err(gone) => {
            let _ = tx.try_send(Ok(line("ERROR", &gone.status())));
            return Ok(stream_response(rx));
        }
    };
    drop(store);
    let epoch = shared.watch_epoch.subscribe();
    let delay = shared.faults().watch_delay(&target.rt.plural);
    tokio::spawn(async move {
        let stream = Stream {
            tx,
            interest,
            last_rv: since,
            bookmarks,
            delay,
        };
        stream.run(initial, past, live, epoch, timeout).await;
    });
    Ok(stream_response(rx))
}

/// The sending side of one watch.
struct Stream {
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    interest: Interest,
    last_rv: u64,
    bookmarks: bool,
    /// How late live changes are passed on.
    delay: Duration,
}

impl Stream {
    /// Sends a change the watch wants; false when the client has gone.
    async fn pass_on(&mut self, change: &Change) -> bool {
        if change.rv <= self.last_rv {
            return true;
        }
        self.last_rv = change.rv;
        if !self.interest.wants(change) {
            return true;
        }
        self.tx
            .send(Ok(line(change.event.as_str(), &change.object)))
            .await
            .is_ok()
    }

    async fn run(
        mut self,
        initial: Vec<Bytes>,
        past: Vec<Arc<Change>>,
        mut live: broadcast::Receiver<Arc<Change>>,
        mut epoch: tokio::sync::watch::Receiver<u64>,
        timeout: Duration,
    ) {
        for bytes in initial {
            if self.tx.send(Ok(bytes)).await.is_err() {
                return;
            }
        }
        for change in past {
            if !self.pass_on(&change).await {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks = tokio::time::interval(BOOKMARK_EVERY);
        let mut held: VecDeque<(tokio::time::Instant, Arc<Change>)> = VecDeque::new();
        loop {
            let next_due = held.front().map(|(due, _)| *due);
            tokio::select! {
                _ = &mut deadline => return,
                _ = epoch.changed() => return,
                _ = self.tx.closed() => return,
                _ = ticks.tick(), if self.bookmarks => {
                    let mark = self.interest.bookmark(self.last_rv, false);
                    if self.tx.send(Ok(mark)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now)),
                    if next_due.is_some() =>
                {
                    if let Some((_, change)) = held.pop_front() {
                        if !self.pass_on(&change).await {
                            return;
                        }
                    }
                }
                change = live.recv() => match change {
                    Ok(change) if !self.delay.is_zero() => {
                        held.push_back((tokio::time::Instant::now() + self.delay, change));
                    }
                    Ok(change) => {
                        if !self.pass_on(&change).await {
                            return;
                        }
                    }
                    // A watcher too slow to keep up is ended; it resumes from its last
                    // resourceVersion, as with a real server's watch cache.
                    Err(_) => return,
                },
            }
        }
    }
}
