//! The pods/log subresource, as a kubelet serves it: `container`, `timestamps`
//! (RFC3339Nano prefix), `sinceTime` (whole seconds, inclusive), `sinceSeconds`,
//! `tailLines`, `limitBytes`, `previous` (no container has restarted, so always 400) and
//! `follow` (a chunked stream that stays open until the pod ends). Every byte sent is
//! counted; the log-cut fault breaks followed streams off after a number of bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};
use serde_json::Value;
use tokio::sync::mpsc::Sender;

use super::builtin;
use crate::error::{ApiError, ApiResult};
use crate::handlers::Params;
use crate::routes::Target;
use crate::server::{LogLine, Shared};

/// How often a followed log looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// The container a log request is for: the named one, or the only one.
fn container(pod: &Value, name: &str, asked: Option<&str>) -> ApiResult<String> {
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match (asked, names.as_slice()) {
        (Some(asked), _) if names.contains(&asked) => Ok(asked.to_string()),
        (Some(asked), _) => Err(ApiError::bad_request(format!(
            "container {asked} is not valid for pod {name}"
        ))),
        (None, [only]) => Ok(only.to_string()),
        (None, _) => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// What one log request asks for.
#[derive(Debug)]
struct LogQuery {
    timestamps: bool,
    /// Only lines printed at or after this time.
    since: Option<Timestamp>,
    tail: Option<usize>,
    /// The most bytes to send (limitBytes, or the log-cut fault for followed logs).
    limit: Option<u64>,
    /// Whether the limit is the log-cut fault's (the stream then breaks off with an error,
    /// as a dropped connection does, rather than ending).
    cut: bool,
    follow: bool,
}

/// A numeric parameter, or 400 naming it.
fn number<T: std::str::FromStr>(params: &Params, key: &str) -> ApiResult<Option<T>> {
    params
        .get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid value {v:?} for {key}")))
        })
        .transpose()
}

/// Rounding down to whole seconds.
fn whole_seconds() -> TimestampRound {
    TimestampRound::new()
        .smallest(Unit::Second)
        .mode(RoundMode::Trunc)
}

/// Reads the query parameters; `now` is the simulated time, `cut` the log-cut fault.
fn log_query(params: &Params, now: Timestamp, cut: Option<u64>) -> ApiResult<LogQuery> {
    let flag = |key: &str| params.get(key).map(String::as_str) == Some("true");
    let since_seconds: Option<i64> = number(params, "sinceSeconds")?;
    let since_time = params.get("sinceTime");
    if since_seconds.is_some() && since_time.is_some() {
        return Err(ApiError::bad_request(
            "at most one of sinceTime or sinceSeconds may be specified",
        ));
    }
    let since = match (since_seconds, since_time) {
        (Some(s), _) if s < 1 => {
            return Err(ApiError::bad_request("sinceSeconds must be greater than 0"))
        }
        (Some(s), _) => Some(now - SignedDuration::from_secs(s)),
        // The API server passes sinceTime on to the kubelet in whole seconds.
        (None, Some(t)) => Some(
            t.parse::<Timestamp>()
                .ok()
                .and_then(|t| t.round(whole_seconds()).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid value {t:?} for sinceTime (RFC3339)"))
                })?,
        ),
        (None, None) => None,
    };
    let tail: Option<i64> = number(params, "tailLines")?;
    let limit: Option<i64> = number(params, "limitBytes")?;
    if tail.is_some_and(|t| t < 0) {
        return Err(ApiError::bad_request("tailLines must be 0 or greater"));
    }
    if limit.is_some_and(|l| l < 1) {
        return Err(ApiError::bad_request("limitBytes must be greater than 0"));
    }
    let follow = flag("follow");
    let limit = limit.map(|l| l as u64);
    let cut = cut.filter(|_| follow);
    let (limit, cut) = match (limit, cut) {
        (Some(a), Some(b)) => (Some(a.min(b)), b < a),
        (a, b) => (a.or(b), b.is_some()),
    };
    Ok(LogQuery {
        timestamps: flag("timestamps"),
        since,
        tail: tail.map(|t| t as usize),
        limit,
        cut,
        follow,
    })
}

/// The lines of a container from the `from`-th on (lines given without a container count
/// for all).
fn lines_from(shared: &Shared, ns: &str, pod: &str, container: &str, from: usize) -> Vec<LogLine> {
    let logs = shared.logs();
    let Some(by_container) = logs.get(&(ns.to_string(), pod.to_string())) else {
        return Vec::new();
    };
    by_container
        .get(container)
        .or_else(|| by_container.get(""))
        .map(|lines| lines.get(from..).unwrap_or_default().to_vec())
        .unwrap_or_default()
}

/// The text sent for `lines`: each after its RFC3339Nano timestamp if asked, then a newline.
fn render(lines: &[LogLine], query: &LogQuery) -> String {
    lines
        .iter()
        .filter(|l| query.since.is_none_or(|since| l.at >= since))
        .map(|l| match query.timestamps {
            true => format!("{} {}\n", l.at, l.text),
            false => format!("{}\n", l.text),
        })
        .collect()
}

/// Counts the bytes a response sends and stops at its limit.
struct Budget {
    shared: Arc<Shared>,
    pod: (String, String),
    sent: u64,
    limit: Option<u64>,
}

impl Budget {
    /// The part of `text` still within the limit, counted as sent.
    fn take(&mut self, text: String) -> Bytes {
        let mut bytes = text.into_bytes();
        if let Some(limit) = self.limit {
            bytes.truncate(limit.saturating_sub(self.sent) as usize);
        }
        self.sent += bytes.len() as u64;
        *self
            .shared
            .log_bytes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(self.pod.clone())
            .or_default() += bytes.len() as u64;
        Bytes::from(bytes)
    }

    /// Whether the limit is used up.
    fn spent(&self) -> bool {
        self.limit.is_some_and(|l| self.sent >= l)
    }
}

/// Whether the pod has ended (or is gone).
fn ended(shared: &Shared, ns: &str, name: &str) -> bool {
    let store = shared.store();
    store
        .get(&builtin(&store, "", "pods"), ns, name)
        .map_or(true, |p| {
            matches!(
                p["status"]["phase"].as_str(),
                Some("Succeeded") | Some("Failed")
            )
        })
}

/// Why a followed log broke off: the log-cut fault.
#[derive(Debug)]
struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("kube-sim: followed log cut")
    }
}

impl std::error::Error for Cut {}

type Chunk = Result<Bytes, Cut>;

/// Sends a chunk (nothing when empty); false when the client has gone.
async fn send(tx: &Sender<Chunk>, bytes: Bytes) -> bool {
    bytes.is_empty() || tx.send(Ok(bytes)).await.is_ok()
}

/// Ends a stream whose limit is spent: a cut breaks the connection off, once what was
/// sent before has gone out (the server drops a body's unwritten bytes when it fails).
async fn stop(tx: &Sender<Chunk>, query: &LogQuery) {
    if query.cut {
        tokio::time::sleep(FOLLOW_POLL).await;
        let _ = tx.send(Err(Cut)).await;
    }
}

/// GET pods/<name>/log.
pub(crate) fn serve_logs(
    shared: Arc<Shared>,
    target: &Target,
    params: &Params,
) -> ApiResult<Response> {
    let (ns, name) = (
        target.ns().to_string(),
        target.name.clone().unwrap_or_default(),
    );
    let pod = shared.store().get(&target.rt, &ns, &name)?;
    let container = container(&pod, &name, params.get("container").map(String::as_str))?;
    if params.get("previous").map(String::as_str) == Some("true") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    if pod["status"]["phase"] == "Pending" {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    }
    let cut = shared.faults().log_cut();
    let query = log_query(params, shared.now(), cut)?;
    let mut all = lines_from(&shared, &ns, &name, &container, 0);
    let mut next = all.len();
    if let Some(since) = query.since {
        all.retain(|l| l.at >= since);
    }
    if let Some(tail) = query.tail {
        all.drain(..all.len().saturating_sub(tail));
    }
    let mut sender = Budget {
        shared: shared.clone(),
        pod: (ns.clone(), name.clone()),
        sent: 0,
        limit: query.limit,
    };
    let first = sender.take(render(&all, &query));
    let text = [(header::CONTENT_TYPE, "text/plain")];
    if !query.follow {
        return Ok((text, first).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(64);
    tokio::spawn(async move {
        if !send(&tx, first).await {
            return;
        }
        if sender.spent() {
            return stop(&tx, &query).await;
        }
        loop {
            tokio::time::sleep(FOLLOW_POLL).await;
            // Looked at before the lines, so lines printed before the end are all sent.
            let done = ended(&shared, &ns, &name);
            let new = lines_from(&shared, &ns, &name, &container, next);
            next += new.len();
            if !send(&tx, sender.take(render(&new, &query))).await {
                return;
            }
            if sender.spent() {
                return stop(&tx, &query).await;
            }
            if done || tx.is_closed() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((text, body).into_response())
}
