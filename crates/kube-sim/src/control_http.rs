//! The control API over HTTP, under `/kube-sim/v1/` (outside the Kubernetes API), for tests
//! that drive the `kube-sim` binary from another process.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::control::{ControlResult, NodeSpec};
use crate::faults::FaultRule;
use crate::server::Shared;

type SharedState = State<Arc<Shared>>;

fn done(result: ControlResult) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

/// Body of `.../finish`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finish {
    exit_code: i64,
}

/// Body of `.../log`.
#[derive(Deserialize)]
struct LogLines {
    #[serde(default)]
    container: String,
    lines: Vec<String>,
}

/// Body of `/gang`.
#[derive(Deserialize)]
struct Toggle {
    enabled: bool,
}

/// Body of `/latency`.
#[derive(Deserialize)]
struct Latency {
    millis: u64,
}

/// Body of `/clock`.
#[derive(Deserialize)]
struct Speed {
    speed: f64,
}

/// Body of `/logs/cut`.
#[derive(Deserialize)]
struct Cut {
    bytes: Option<u64>,
}

/// The control routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/kube-sim/v1/nodes",
            post(
                |State(s): SharedState, Json(node): Json<NodeSpec>| async move {
                    done(s.add_node(&node))
                },
            ),
        )
        .route(
            "/kube-sim/v1/nodes/{name}/kill",
            post(
                |State(s): SharedState, Path(name): Path<String>| async move {
                    done(s.kill_node(&name))
                },
            ),
        )
        .route(
            "/kube-sim/v1/namespaces/{ns}/pods/{name}/finish",
            post(
                |State(s): SharedState,
                 Path((ns, name)): Path<(String, String)>,
                 Json(f): Json<Finish>| async move {
                    done(s.finish_pod(&ns, &name, f.exit_code))
                },
            ),
        )
        .route(
            "/kube-sim/v1/namespaces/{ns}/pods/{name}/log",
            post(
                |State(s): SharedState,
                 Path((ns, name)): Path<(String, String)>,
                 Json(l): Json<LogLines>| async move {
                    s.append_log(&ns, &name, &l.container, &l.lines);
                    done(Ok(()))
                },
            ),
        )
        .route(
            "/kube-sim/v1/gang",
            put(|State(s): SharedState, Json(t): Json<Toggle>| async move {
                s.set_gang_scheduling(t.enabled);
                done(Ok(()))
            }),
        )
        .route(
            "/kube-sim/v1/faults",
            post(
                |State(s): SharedState, Json(rule): Json<FaultRule>| async move {
                    s.faults().add(rule);
                    done(Ok(()))
                },
            )
            .delete(|State(s): SharedState| async move {
                s.faults().clear();
                done(Ok(()))
            }),
        )
        .route(
            "/kube-sim/v1/latency",
            put(|State(s): SharedState, Json(l): Json<Latency>| async move {
                s.faults().set_latency(Duration::from_millis(l.millis));
                done(Ok(()))
            }),
        )
        .route(
            "/kube-sim/v1/clock",
            put(|State(s): SharedState, Json(c): Json<Speed>| async move {
                s.set_clock_speed(c.speed);
                done(Ok(()))
            }),
        )
        .route(
            "/kube-sim/v1/logs/cut",
            put(|State(s): SharedState, Json(c): Json<Cut>| async move {
                s.faults().set_log_cut(c.bytes);
                done(Ok(()))
            }),
        )
        .route(
            "/kube-sim/v1/namespaces/{ns}/pods/{name}/log/bytes",
            get(
                |State(s): SharedState, Path((ns, name)): Path<(String, String)>| async move {
                    Json(serde_json::json!({"bytes": s.log_bytes_served(&ns, &name)}))
                },
            ),
        )
        .route(
            "/kube-sim/v1/watches/drop",
            post(|State(s): SharedState| async move {
                s.drop_watches();
                done(Ok(()))
            }),
        )
}
