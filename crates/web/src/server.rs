//! The HTTP server: routes, shared state, and how errors become responses.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use trainctl_local::{EngineError, Home, JobDetail, LocalEngine};

use crate::charts::Charts;
use crate::{access, assets, jobs, live};

/// Renders a job as the Kubernetes-style object the CLI prints with `-o json`, so the API
/// and `trainctl get` show one shape.
pub type Render = fn(&JobDetail) -> Value;

/// What the server needs: the local engine's state directory, the object renderer, the
/// token (if any) and the in-memory chart cache.
pub struct Dashboard {
    pub(crate) home: Home,
    pub(crate) render: Render,
    pub(crate) token: Option<String>,
    pub(crate) charts: Charts,
}

impl Dashboard {
    /// A dashboard over the jobs in `home`; with `token`, every request must carry it.
    pub fn new(home: Home, render: Render, token: Option<String>) -> Self {
        Dashboard {
            home,
            render,
            token,
            charts: Charts::default(),
        }
    }

    /// Opens the local engine (one connection per request; SQLite handles the sharing).
    pub(crate) fn engine(&self) -> Result<LocalEngine, ApiError> {
        Ok(LocalEngine::open(self.home.clone())?)
    }
}

/// Every route, behind the token check.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{name}", get(jobs::one))
        .route("/api/jobs/{name}/metrics", get(jobs::metrics))
        .route("/api/jobs/{name}/logs/live", get(live::logs))
        .route("/api/jobs/{name}/metrics/live", get(live::metrics))
        .layer(middleware::from_fn_with_state(
            dashboard.clone(),
            access::require_token,
        ))
        .with_state(dashboard)
}

/// Serves the dashboard on an already bound listener until the process ends.
pub async fn serve(listener: TcpListener, dashboard: Dashboard) -> std::io::Result<()> {
    axum::serve(listener, router(Arc::new(dashboard))).await
}

/// An API failure, answered as `{"error": "..."}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such job, replica or asset.
    #[error("{0}")]
    NotFound(String),
    /// The request asks for something that cannot be.
    #[error("{0}")]
    BadRequest(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<trainctl_metrics::MetricsError> for ApiError {
    fn from(e: trainctl_metrics::MetricsError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

/// Runs blocking work (SQLite, files) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("request handler failed: {e}")))?
}
