//! The experiments list, one experiment, and one experiment kept live over Server-Sent
//! Events. Each source hands over the same rows ([`ExperimentRow`] with its [`TrialRow`]s,
//! and what the trials reported): this machine's store, or a cluster's Experiments
//! ([`crate::cluster_experiments`]); [`crate::experiment_view`] turns them into JSON.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::Event;
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use trainctl_local::store::{ExperimentRow, Store, TrialRow};
use trainctl_local::{now, EngineError};

use crate::cluster_experiments;
use crate::experiment_view::{detail, ended, summary, TrialMetrics};
use crate::live::{end_event, events, Events};
use crate::server::{blocking, ApiError, Local, Source};
use crate::Dashboard;

/// How often a live experiment page is brought up to date.
const LIVE_EVERY: Duration = Duration::from_secs(1);

fn store(local: &Local) -> Result<Store, ApiError> {
    Ok(Store::open(&local.home.db_path()).map_err(EngineError::from)?)
}

/// One experiment's rows and what its trials reported, by job name.
pub(crate) type Rows = (ExperimentRow, Vec<TrialRow>, HashMap<String, TrialMetrics>);

fn local_rows(local: &Local, name: &str) -> Result<Rows, ApiError> {
    let store = store(local)?;
    let exp = store
        .experiment(name)
        .map_err(EngineError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("experiment {name:?} not found")))?;
    let trials = store.trials(name).map_err(EngineError::from)?;
    let metrics = local.trials.read(local, &store, &exp, &trials)?;
    Ok((exp, trials, metrics))
}

/// Every local experiment with its trials, newest first.
fn local_all(local: &Local) -> Result<Vec<(ExperimentRow, Vec<TrialRow>)>, ApiError> {
    let store = store(local)?;
    let experiments = store.experiments().map_err(EngineError::from)?;
    experiments
        .into_iter()
        .rev()
        .map(|exp| {
            let trials = store.trials(&exp.name).map_err(EngineError::from)?;
            Ok((exp, trials))
        })
        .collect()
}

/// One experiment as the page shows it, and whether it has ended.
async fn view(d: Arc<Dashboard>, name: String) -> Result<(Value, bool), ApiError> {
    let (exp, trials, metrics) = match &d.source {
        Source::Cluster(cluster) => cluster_experiments::one(cluster, &name).await?,
        Source::Local(_) => {
            let d = d.clone();
            blocking(move || local_rows(d.local()?, &name)).await?
        }
    };
    Ok((detail(&exp, &trials, &metrics, now()), ended(&exp, &trials)))
}

/// `GET /api/experiments`: every experiment, newest first, with its phase, best objective,
/// trials by state and age, as a kubectl-style List.
pub async fn list(State(d): State<Arc<Dashboard>>) -> Result<Json<Value>, ApiError> {
    let all = match &d.source {
        Source::Cluster(cluster) => cluster_experiments::all(cluster).await?,
        Source::Local(_) => {
            let d = d.clone();
            blocking(move || local_all(d.local()?)).await?
        }
    };
    let t = now();
    let items: Vec<Value> = all
        .iter()
        .map(|(e, trials)| summary(e, trials, t))
        .collect();
    Ok(Json(
        json!({"apiVersion": "v1", "kind": "List", "items": items}),
    ))
}

/// `GET /api/experiments/{name}`: the experiment with its search space, every trial
/// (parameters, objective, other metrics, step, duration, state, intermediate values) and the
/// optimization history.
pub async fn one(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(d, name).await?.0))
}

/// `GET /api/experiments/{name}/live`: the experiment (as `GET /api/experiments/{name}`
/// answers) as an `experiment` event, again every second while it runs, then `end`.
pub async fn live(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
) -> Result<Events, ApiError> {
    // An unknown experiment is answered before the stream starts.
    let first = view(d.clone(), name.clone()).await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut next: Result<_, ApiError> = Ok(first);
        loop {
            let (body, over) = match next {
                Ok(x) => x,
                Err(e) => {
                    let error = json!({"error": e.to_string()}).to_string();
                    let _ = tx.send(Event::default().event("error").data(error)).await;
                    return;
                }
            };
            let event = Event::default().event("experiment").data(body.to_string());
            if tx.send(event).await.is_err() {
                return;
            }
            if over {
                let _ = tx.send(end_event()).await;
                return;
            }
            tokio::time::sleep(LIVE_EVERY).await;
            if tx.is_closed() {
                return;
            }
            next = view(d.clone(), name.clone()).await;
        }
    });
    Ok(events(rx))
}
