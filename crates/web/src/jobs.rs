//! The job list and one job, as JSON. The list is filtered and paged on the server, newest
//! first, so the page stays small with thousands of jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use trainctl_local::store::JobRow;
use trainctl_local::{EngineError, JobDetail};

use crate::server::{blocking, ApiError};
use crate::Dashboard;

/// Jobs per page when the request does not say.
pub const DEFAULT_PAGE: usize = 50;
/// The largest page served.
pub const MAX_PAGE: usize = 500;

/// `GET /api/jobs` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only jobs in this phase.
    pub phase: Option<String>,
    /// Only jobs whose name contains this.
    pub q: Option<String>,
    /// Skip this many of the matching jobs.
    pub offset: Option<usize>,
    /// At most this many jobs ([`DEFAULT_PAGE`] when left out, at most [`MAX_PAGE`]).
    pub limit: Option<usize>,
}

/// `GET /api/jobs`: a page of the matching jobs (newest first) as a kubectl-style List, with
/// `total` matching jobs and the number of jobs per phase.
pub async fn list(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let mut engine = d.engine()?;
        let mut rows = engine.jobs()?;
        rows.reverse();
        let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            *phases.entry(r.phase.as_str()).or_default() += 1;
        }
        let matching: Vec<&JobRow> = rows
            .iter()
            .filter(|r| query.phase.as_deref().is_none_or(|p| r.phase.as_str() == p))
            .filter(|r| query.q.as_deref().is_none_or(|q| r.name.contains(q)))
            .collect();
        let offset = query.offset.unwrap_or(0);
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        // Straight from the store: the engine's housekeeping ran once, for the listing.
        let store = engine.store();
        let mut items = Vec::new();
        for row in matching.iter().skip(offset).take(limit) {
            let detail = JobDetail {
                job: (*row).clone(),
                replicas: store.replicas(&row.name).map_err(EngineError::from)?,
                attempts: store.attempts(&row.name).map_err(EngineError::from)?,
                events: store.events(&row.name).map_err(EngineError::from)?,
            };
            items.push((d.render)(&detail));
        }
        Ok(Json(json!({
            "apiVersion": "v1",
            "kind": "List",
            "total": matching.len(),
            "offset": offset,
            "limit": limit,
            "phases": phases,
            "items": items,
        })))
    })
    .await
}

/// `GET /api/jobs/{name}`: the job with its replicas, attempts and events.
pub async fn one(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let detail = d.engine()?.detail(&name)?;
        Ok(Json((d.render)(&detail)))
    })
    .await
}

/// `GET /api/jobs/{name}/metrics` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct MetricsQuery {
    /// At most about this many points per series (see [`crate::charts::DEFAULT_POINTS`]).
    pub points: Option<usize>,
}

/// `GET /api/jobs/{name}/metrics`: every series of the job, downsampled for display.
pub async fn metrics(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
    Query(query): Query<MetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let job = d.engine()?.job(&name)?;
        Ok(Json(d.charts.snapshot(&d.home, &job, query.points)?))
    })
    .await
}
