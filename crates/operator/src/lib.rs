//! The trainctl operator: a kube-runtime controller that runs TrainingJobs as Pods and
//! headless Services (and Experiments as TrainingJobs, [`experiment`]), driven by the same pure state machine as the local engine
//! (`trainctl_core::state_machine::decide`), with status, Events, archived logs, and
//! Prometheus metrics on `/metrics` and health on `/healthz` ([`http`]), one active
//! replica at a time through a Lease ([`leader`]).

pub mod archive;
pub mod events;
pub mod expectations;
pub mod experiment;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod pod_cache;
pub mod reconcile;
pub mod retry;
pub mod telemetry;
pub mod tensorboard;
pub mod tracking;

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use trainctl_core::state_machine::Backoff;

// The resource (and its CRD), its status and the names shared with the clients live in
// `trainctl-kube-client`; the controller's modules reach them under the same paths.
pub use trainctl_kube_client::{crd, names, status};
pub use trainctl_kube_client::{JobStatus, ResourceSpec, TrainingJobResource};

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be converted.
    #[error("cannot convert an object: {0}")]
    Json(#[from] serde_json::Error),
    /// A rendered object made no sense.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The error's kind, one of a fixed few: `conflict` (the object changed meanwhile),
    /// `api` (the API server refused), `connection` (no answer from it), `json`, `invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) if e.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "connection",
            Error::Json(_) => "json",
            Error::Invalid(_) => "invalid",
        }
    }
}

/// Settings of the operator.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Restart delays (`TRAINCTL_RESTART_BACKOFF_SECONDS` sets the base; default 1s doubling
    /// to 60s, as the local engine).
    pub backoff: Backoff,
    /// Delay before a failed reconcile is first retried (it doubles while failures go on).
    pub retry: Duration,
    /// Only this namespace, else all.
    pub namespace: Option<String>,
    /// How long the triggers of one job are gathered into one reconcile (the pods of a job
    /// change in bursts: scheduled, started, finished).
    pub debounce: Duration,
    /// The image of the metrics collector beside each job's TensorBoard
    /// (`TRAINCTL_COLLECTOR_IMAGE`; default the chart's trainctl image).
    pub collector_image: String,
    /// How often an Experiment with running trials reads their logs.
    pub experiment_poll: Duration,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            backoff: Backoff::default(),
            retry: Duration::from_millis(500),
            namespace: None,
            debounce: Duration::from_millis(500),
            collector_image: trainctl_kube::render::DEFAULT_COLLECTOR_IMAGE.into(),
            experiment_poll: Duration::from_secs(2),
        }
    }
}

impl OperatorConfig {
    /// Defaults, with the restart backoff base from `TRAINCTL_RESTART_BACKOFF_SECONDS` and
    /// the collector's image from `TRAINCTL_COLLECTOR_IMAGE`.
    pub fn from_env() -> Self {
        let mut config = OperatorConfig::default();
        if let Some(image) = std::env::var("TRAINCTL_COLLECTOR_IMAGE")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            config.collector_image = image;
        }
        config.backoff = Backoff::from_lookup(|k| std::env::var(k).ok());
        config
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: kube::Client,
    /// Settings.
    pub config: OperatorConfig,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Growing delays for jobs whose reconciles keep failing.
    pub retries: retry::RetryBackoff,
    /// The pods of every job, as the operator's pod watch last saw them.
    pub pods: Arc<pod_cache::PodCache>,
    /// The pod writes the cache does not show yet.
    pub expectations: expectations::Expectations,
}

fn error_policy(job: Arc<TrainingJobResource>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let delay = ctx
        .retries
        .failed(&reconcile::job_key(&job), ctx.config.retry);
    tracing::warn!(
        namespace = job.namespace().unwrap_or_default(),
        name = job.name_any(),
        kind = error.kind(),
        "reconcile failed, retrying in {delay:?}: {error}"
    );
    Requeue::requeue(delay)
}

/// Runs the controller until `shutdown` resolves; in-flight reconciles finish first.
pub async fn run_controller(
    client: kube::Client,
    config: OperatorConfig,
    metrics: Arc<metrics::Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    let (jobs, pods): (Api<TrainingJobResource>, Api<Pod>) = match &config.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let experiments = experiment::run_experiments(
        client.clone(),
        config.namespace.clone(),
        config.experiment_poll,
        config.retry,
        metrics.clone(),
        shutdown.clone(),
    );
    let ctx = Arc::new(Context {
        client,
        config,
        metrics,
        retries: retry::RetryBackoff::default(),
        pods: Arc::new(pod_cache::PodCache::default()),
        expectations: expectations::Expectations::default(),
    });
    // One pod watch feeds the cache, then wakes the jobs of the pods it touched, and hands
    // pods that may be left by their job to the orphan sweeper.
    let (maybe_orphaned, orphan_queue) = tokio::sync::mpsc::unbounded_channel();
    let pod_triggers = ctx.pods.clone().triggers(pods, move |pod| {
        if tracking::may_be_orphaned(pod) {
            let _ = maybe_orphaned.send(pod.clone());
        }
    });
    let orphans = tracking::release_orphans(ctx.client.clone(), orphan_queue);
    let settings = kube::runtime::controller::Config::default().debounce(ctx.config.debounce);
    let controller = Controller::new(jobs, watcher::Config::default());
    let jobs_listed = controller.store();
    let controller = controller
        .with_config(settings)
        .owns_stream(pod_triggers)
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile::reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    let controllers = futures::future::join(controller, experiments);
    // kube-runtime runs no reconcile before its first list of jobs, and a shutdown that
    // comes before that list never ends the run (it waits for the list the shutdown cut
    // off). Nothing is in flight then, so such a shutdown stops at once.
    let stopped_before_listing = async {
        shutdown.await;
        if jobs_listed.wait_until_ready().now_or_never().is_some() {
            std::future::pending::<()>().await;
        }
    };
    // The orphan sweeper runs as long as the controller does.
    tokio::select! {
        _ = controllers => {}
        _ = orphans => {}
        _ = stopped_before_listing => {}
    }
}
