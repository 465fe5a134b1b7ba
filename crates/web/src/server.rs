//! The HTTP server: routes, shared state, and how errors become responses.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use trainctl_local::{EngineError, Home, LocalEngine};

use trainctl_kube_client::client::Cluster;

use crate::access::Access;
use crate::charts::Charts;
use crate::trial_metrics::TrialCache;
use crate::{access, assets, experiments, headers, jobs, live};

/// Where the jobs come from. The routes and the web app are the same for both; each route
/// asks the source.
pub enum Source {
    /// This machine's jobs.
    Local(Local),
    /// The TrainingJobs of one namespace of a Kubernetes cluster.
    Cluster(Cluster),
}

/// This machine's jobs: the local engine's state directory and the in-memory chart cache.
pub struct Local {
    /// The state directory.
    pub(crate) home: Home,
    /// Metrics of recently viewed jobs.
    pub(crate) charts: Charts,
    /// What finished trials reported.
    pub(crate) trials: TrialCache,
}

impl Local {
    /// Opens the local engine (one connection per request; SQLite handles the sharing).
    pub(crate) fn engine(&self) -> Result<LocalEngine, ApiError> {
        Ok(LocalEngine::open(self.home.clone())?)
    }
}

/// What the server needs: where the jobs come from and who may see them.
pub struct Dashboard {
    pub(crate) source: Source,
    pub(crate) access: Access,
}

impl Dashboard {
    /// A dashboard over the jobs in `home`, for requests that `access` lets through.
    pub fn new(home: Home, access: Access) -> Self {
        let source = Source::Local(Local {
            home,
            charts: Charts::default(),
            trials: TrialCache::default(),
        });
        Dashboard { source, access }
    }

    /// A dashboard over the TrainingJobs of a cluster's namespace.
    pub fn for_cluster(cluster: Cluster, access: Access) -> Self {
        Dashboard {
            source: Source::Cluster(cluster),
            access,
        }
    }

    /// The local source, for work that runs off the async threads with the dashboard.
    pub(crate) fn local(&self) -> Result<&Local, ApiError> {
        match &self.source {
            Source::Local(local) => Ok(local),
            Source::Cluster(_) => Err(ApiError::Internal("not a local dashboard".into())),
        }
    }

    /// The cluster source, for work spawned with the dashboard.
    pub(crate) fn cluster(&self) -> Result<&Cluster, ApiError> {
        match &self.source {
            Source::Cluster(cluster) => Ok(cluster),
            Source::Local(_) => Err(ApiError::Internal("not a cluster dashboard".into())),
        }
    }
}

/// Every route, behind the `Host:` and token checks, with the security headers on every
/// response.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/source", get(source))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{name}", get(jobs::one))
        .route("/api/jobs/{name}/metrics", get(jobs::metrics))
        .route("/api/jobs/{name}/logs/live", get(live::logs))
        .route("/api/jobs/{name}/metrics/live", get(live::metrics))
        .route("/api/experiments", get(experiments::list))
        .route("/api/experiments/{name}", get(experiments::one))
        .route("/api/experiments/{name}/live", get(experiments::live))
        .layer(middleware::from_fn_with_state(
            dashboard.clone(),
            access::guard,
        ))
        .layer(middleware::from_fn(headers::secure))
        .with_state(dashboard)
}

/// `GET /api/source`: where the jobs come from, `{"kind": "local"}` or `{"kind": "cluster",
/// "namespace", "server"}`.
async fn source(State(d): State<Arc<Dashboard>>) -> Json<Value> {
    match &d.source {
        Source::Local(_) => Json(json!({"kind": "local"})),
        Source::Cluster(c) => {
            Json(json!({"kind": "cluster", "namespace": c.namespace, "server": c.url}))
        }
    }
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
