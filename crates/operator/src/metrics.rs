//! Prometheus metrics of the operator: reconciles, errors by kind, reconcile durations, jobs
//! by phase, reconciles deferred until the pod cache caught up, time per experiment
//! suggestion.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use trainctl_core::state_machine::JobPhase;

/// The `phase` label of the jobs gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// The `kind` label of the reconcile errors counter (see [`crate::Error::kind`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    kind: &'static str,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    errors: Family<ErrorLabel, Counter>,
    durations: Histogram,
    cache_waits: Counter,
    jobs: Family<PhaseLabel, Gauge>,
    suggestions: Histogram,
    phases: Mutex<HashMap<(String, String), JobPhase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trainctl_operator");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabel, Counter>::default();
        let durations = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let cache_waits = Counter::default();
        let jobs = Family::<PhaseLabel, Gauge>::default();
        let suggestions = Histogram::new(exponential_buckets(0.000_01, 2.0, 20));
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind of error",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took",
            durations.clone(),
        );
        registry.register(
            "pod_cache_waits",
            "Reconciles deferred until the pod cache showed the job's last pod writes",
            cache_waits.clone(),
        );
        registry.register("jobs", "TrainingJobs by phase", jobs.clone());
        registry.register(
            "experiment_suggestion_seconds",
            "How long the search took to suggest one trial's assignment",
            suggestions.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            durations,
            cache_waits,
            jobs,
            suggestions,
            phases: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Counts one reconcile, and its error's kind if it failed.
    pub fn observe_reconcile(&self, took: Duration, error: Option<&'static str>) {
        self.reconciles.inc();
        if let Some(kind) = error {
            self.errors.get_or_create(&ErrorLabel { kind }).inc();
        }
        self.durations.observe(took.as_secs_f64());
    }

    /// Counts a reconcile deferred until the pod cache catches up.
    pub fn observe_cache_wait(&self) {
        self.cache_waits.inc();
    }

    /// Records how long one suggestion of an experiment's search took.
    pub fn observe_suggestion(&self, took: Duration) {
        self.suggestions.observe(took.as_secs_f64());
    }

    /// Records the phase of a job.
    pub fn set_phase(&self, name: &str, ns: &str, phase: JobPhase) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = phases.insert((ns.into(), name.into()), phase) {
            self.gauge(old).dec();
        }
        self.gauge(phase).inc();
    }

    /// Forgets a deleted job.
    pub fn forget(&self, name: &str, ns: &str) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = phases.remove(&(ns.into(), name.into())) {
            self.gauge(old).dec();
        }
    }

    fn gauge(&self, phase: JobPhase) -> Gauge {
        self.jobs
            .get_or_create(&PhaseLabel {
                phase: phase.as_str().into(),
            })
            .clone()
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
