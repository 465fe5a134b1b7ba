//! Leader election through a `coordination.k8s.io/v1` Lease, so that several operator
//! replicas can run and only one reconciles. The holder renews the lease every fifth of its
//! duration; the others stay passive and take over once the record has not changed for a
//! whole lease duration, measured on their own clock (as client-go does, so clock skew
//! between nodes does not matter). A graceful shutdown releases the lease at once.
//!
//! Written here rather than taken from a crate: the lease crates for kube-rs pin older kube
//! releases than the workspace's, and the protocol is small.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

use crate::metrics::Metrics;
use crate::{run_controller, OperatorConfig};

/// How long in-flight reconciles may take to finish after a stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Which lease to hold, as whom, for how long.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease (`POD_NAMESPACE`, default `default`).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This instance's identity (`POD_NAME`, else host name and process id).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
}

impl LeaseConfig {
    /// The lease `trainctl-operator`, 15 s, in `POD_NAMESPACE` as `POD_NAME` (the chart sets
    /// both from the downward API).
    pub fn from_env() -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let identity = env("POD_NAME").unwrap_or_else(|| {
            let host = env("HOSTNAME").unwrap_or_else(|| "trainctl-operator".into());
            format!("{host}-{}", std::process::id())
        });
        LeaseConfig {
            namespace: env("POD_NAMESPACE").unwrap_or_else(|| "default".into()),
            name: "trainctl-operator".into(),
            identity,
            duration: Duration::from_secs(15),
        }
    }

    fn renew_interval(&self) -> Duration {
        self.duration / 5
    }
}

/// Why a leader stopped.
#[derive(Debug, thiserror::Error)]
#[error("lost the lease {namespace}/{name}: not renewed for {seconds:.1}s")]
pub struct LeadershipLost {
    namespace: String,
    name: String,
    seconds: f64,
}

/// Waits to hold the lease, then runs the controller while renewing it, until `shutdown`
/// resolves (the lease is then released) or the lease cannot be renewed in time (the
/// controller is stopped and an error returned: the process should exit and be restarted).
pub async fn run_as_leader(
    client: kube::Client,
    config: OperatorConfig,
    metrics: Arc<Metrics>,
    lease: LeaseConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), LeadershipLost> {
    tokio::pin!(shutdown);
    let mut elector = Elector::new(client.clone(), lease);
    loop {
        if elector.try_hold().await {
            break;
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(elector.lease.renew_interval()) => {}
        }
    }
    tracing::info!(
        "{} holds lease {}/{}",
        elector.lease.identity,
        elector.lease.namespace,
        elector.lease.name
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut controller = tokio::spawn(run_controller(client, config, metrics, async move {
        let _ = stopped.await;
    }));
    let mut renewed = Instant::now();
    let outcome = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = tokio::time::sleep(elector.lease.renew_interval()) => {}
        }
        if elector.try_hold().await {
            renewed = Instant::now();
        } else if renewed.elapsed() >= elector.lease.duration * 2 / 3 {
            break Err(LeadershipLost {
                namespace: elector.lease.namespace.clone(),
                name: elector.lease.name.clone(),
                seconds: renewed.elapsed().as_secs_f64(),
            });
        }
    };
    let _ = stop.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut controller)
        .await
        .is_err()
    {
        // A safety net: run_controller stops at once when the stop comes before its first
        // list of jobs (which kube-runtime would wait for forever), and otherwise after the
        // reconciles in flight.
        tracing::warn!(
            "the controller did not stop within {SHUTDOWN_GRACE:?}; aborting it (reconciles \
             are idempotent)"
        );
        controller.abort();
    }
    if outcome.is_ok() {
        elector.release().await;
    }
    outcome
}

/// One instance's view of the lease.
struct Elector {
    leases: Api<Lease>,
    lease: LeaseConfig,
    /// The other holder's record as last seen (resourceVersion), and when it changed.
    observed: Option<(String, Instant)>,
}

impl Elector {
    fn new(client: kube::Client, lease: LeaseConfig) -> Self {
        Elector {
            leases: Api::namespaced(client, &lease.namespace),
            lease,
            observed: None,
        }
    }

    /// Creates, renews or takes over the lease; true when this instance holds it now.
    /// API errors and lost races count as not holding it (the next round retries).
    async fn try_hold(&mut self) -> bool {
        let current = match self.leases.get_opt(&self.lease.name).await {
            Ok(current) => current,
            Err(_) => return false,
        };
        let Some(mut lease) = current else {
            let fresh = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.claimed(LeaseSpec::default())),
            };
            return self
                .leases
                .create(&PostParams::default(), &fresh)
                .await
                .is_ok();
        };
        let spec = lease.spec.take().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.lease.identity.as_str());
        if !held_by_me && !self.expired(&lease, &spec) {
            return false;
        }
        lease.spec = Some(if held_by_me {
            LeaseSpec {
                renew_time: Some(now()),
                ..spec
            }
        } else {
            self.claimed(spec)
        });
        self.leases
            .replace(&self.lease.name, &PostParams::default(), &lease)
            .await
            .is_ok()
    }

    /// `spec` taken over by this instance: a new holder, one more transition.
    fn claimed(&self, spec: LeaseSpec) -> LeaseSpec {
        let had_holder = spec
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty());
        LeaseSpec {
            holder_identity: Some(self.lease.identity.clone()),
            lease_duration_seconds: Some(self.lease.duration.as_secs().max(1) as i32),
            acquire_time: Some(now()),
            renew_time: Some(now()),
            lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + i32::from(had_holder)),
            ..spec
        }
    }

    /// Whether another holder's lease ran out: released, or unchanged for its duration.
    fn expired(&mut self, lease: &Lease, spec: &LeaseSpec) -> bool {
        if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
            return true;
        }
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let seen = match &self.observed {
            Some((v, at)) if *v == version => *at,
            _ => {
                self.observed = Some((version, Instant::now()));
                return false;
            }
        };
        let duration = spec
            .lease_duration_seconds
            .map_or(
                self.lease.duration,
                |s| Duration::from_secs(s.max(0) as u64),
            );
        seen.elapsed() >= duration
    }

    /// Gives the lease up so that another instance takes over without waiting.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.leases.get_opt(&self.lease.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.lease.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        let _ = self
            .leases
            .replace(&self.lease.name, &PostParams::default(), &lease)
            .await;
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}
