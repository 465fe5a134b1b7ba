//! The pods/log subresource: serves the lines the test supplied (`tailLines`, `container`,
//! `follow` until the pod ends).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::builtin;
use crate::error::{ApiError, ApiResult};
use crate::handlers::Params;
use crate::routes::Target;
use crate::server::Shared;

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

/// Lines logged so far by a container (lines given without a container count for all).
fn lines(shared: &Shared, ns: &str, pod: &str, container: &str) -> Vec<String> {
    let logs = shared.logs();
    let Some(by_container) = logs.get(&(ns.to_string(), pod.to_string())) else {
        return Vec::new();
    };
    by_container
        .get(container)
        .or_else(|| by_container.get(""))
        .cloned()
        .unwrap_or_default()
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
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
    if pod["status"]["phase"] == "Pending" {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    }
    let mut all = lines(&shared, &ns, &name, &container);
    let mut sent = all.len();
    if let Some(tail) = params
        .get("tailLines")
        .and_then(|t| t.parse::<usize>().ok())
    {
        all.drain(..all.len().saturating_sub(tail));
    }
    let text = [(header::CONTENT_TYPE, "text/plain")];
    if params.get("follow").map(String::as_str) != Some("true") {
        return Ok((text, joined(&all)).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(joined(&all)))).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(FOLLOW_POLL).await;
            let now = lines(&shared, &ns, &name, &container);
            if now.len() > sent
                && tx
                    .send(Ok(Bytes::from(joined(&now[sent..]))))
                    .await
                    .is_err()
            {
                return;
            }
            sent = now.len();
            let pod = {
                let store = shared.store();
                store.get(&builtin(&store, "", "pods"), &ns, &name)
            };
            let ended = pod.map_or(true, |p| {
                matches!(
                    p["status"]["phase"].as_str(),
                    Some("Succeeded") | Some("Failed")
                )
            });
            if ended || tx.is_closed() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((text, body).into_response())
}
