//! The job list and one job, as JSON, from either source. The list is filtered and paged on
//! the server, newest first, so the page stays small with thousands of jobs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use trainctl_backend::view::job_object;
use trainctl_local::{EngineError, JobDetail};

use crate::charts::{points_limit, snapshot};
use crate::cluster;
use crate::server::{blocking, ApiError, Local, Source};
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

/// One page of a job list: the jobs on it and the figures around it.
pub struct Page<T> {
    /// The jobs on the page.
    pub items: Vec<T>,
    /// How many jobs match the filters.
    pub total: usize,
    /// Jobs per phase, before filtering.
    pub phases: BTreeMap<String, usize>,
    /// The first matching job shown.
    pub offset: usize,
    /// The page size.
    pub limit: usize,
}

impl ListQuery {
    /// Filters `jobs` (newest first, each with its name and phase) and cuts out the page.
    pub fn page<T>(&self, jobs: Vec<(String, String, T)>) -> Page<T> {
        let mut phases: BTreeMap<String, usize> = BTreeMap::new();
        for (_, phase, _) in &jobs {
            *phases.entry(phase.clone()).or_default() += 1;
        }
        let matching: Vec<T> = jobs
            .into_iter()
            .filter(|(_, phase, _)| self.phase.as_deref().is_none_or(|p| phase == p))
            .filter(|(name, _, _)| self.q.as_deref().is_none_or(|q| name.contains(q)))
            .map(|(_, _, job)| job)
            .collect();
        let offset = self.offset.unwrap_or(0);
        let limit = self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let total = matching.len();
        let items = matching.into_iter().skip(offset).take(limit).collect();
        Page {
            items,
            total,
            phases,
            offset,
            limit,
        }
    }
}

impl<T> Page<T> {
    /// The same page with other items (each job rendered, say).
    pub fn with_items<U>(self, items: Vec<U>) -> Page<U> {
        Page {
            items,
            total: self.total,
            phases: self.phases,
            offset: self.offset,
            limit: self.limit,
        }
    }
}

impl Page<Value> {
    /// The page as a kubectl-style List with `total`, `offset`, `limit` and `phases`.
    pub fn to_json(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "List",
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "phases": self.phases,
            "items": self.items,
        })
    }
}

/// `GET /api/jobs`: a page of the matching jobs (newest first) as a kubectl-style List, with
/// `total` matching jobs and the number of jobs per phase.
pub async fn list(
    State(d): State<Arc<Dashboard>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = match &d.source {
        Source::Cluster(c) => cluster::list(c, &query).await?,
        Source::Local(_) => blocking(move || local_list(d.local()?, &query)).await?,
    };
    Ok(Json(page.to_json()))
}

fn local_list(local: &Local, query: &ListQuery) -> Result<Page<Value>, ApiError> {
    let mut engine = local.engine()?;
    let rows = engine.jobs()?;
    let jobs = rows
        .into_iter()
        .rev()
        .map(|r| (r.name.clone(), r.phase.as_str().to_string(), r))
        .collect();
    let page = query.page(jobs);
    // Straight from the store: the engine's housekeeping ran once, for the listing.
    let store = engine.store();
    let mut items = Vec::new();
    for row in &page.items {
        let detail = JobDetail {
            job: row.clone(),
            replicas: store.replicas(&row.name).map_err(EngineError::from)?,
            attempts: store.attempts(&row.name).map_err(EngineError::from)?,
            events: store.events(&row.name).map_err(EngineError::from)?,
        };
        items.push(job_object(&detail));
    }
    Ok(page.with_items(items))
}

/// `GET /api/jobs/{name}`: the job with its replicas, attempts (or pods) and events.
pub async fn one(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match &d.source {
        Source::Cluster(c) => Ok(Json(cluster::one(c, &name).await?)),
        Source::Local(_) => {
            blocking(move || {
                let local = d.local()?;
                Ok(Json(job_object(&local.engine()?.detail(&name)?)))
            })
            .await
        }
    }
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
    let max = points_limit(query.points)?;
    let (chart, _) =
        crate::live::read_metrics(d, name, move |runs, warnings| snapshot(runs, warnings, max))
            .await?;
    Ok(Json(chart))
}
