//! Leader election: two operators against one cluster, only the Lease holder reconciles,
//! the other takes over when the holder stops renewing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, job_yaml, test_config, Cluster, NS};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trainctl_operator::leader::{run_as_leader, LeadershipLost, LeaseConfig};
use trainctl_operator::metrics::Metrics;

const LEASE: &str = "trainctl-operator";

/// An operator instance: stop it gracefully with the sender, or abort the task (a crash).
type Instance = (oneshot::Sender<()>, JoinHandle<Result<(), LeadershipLost>>);

fn spawn_operator(c: &Cluster, identity: &str) -> Instance {
    let lease = LeaseConfig {
        namespace: NS.into(),
        name: LEASE.into(),
        identity: identity.into(),
        duration: Duration::from_secs(1),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_as_leader(
        c.client.clone(),
        test_config(),
        Arc::new(Metrics::default()),
        lease,
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, task)
}

fn leases(c: &Cluster) -> Api<Lease> {
    Api::namespaced(c.client.clone(), NS)
}

async fn lease_spec(c: &Cluster) -> Option<LeaseSpec> {
    leases(c).get_opt(LEASE).await.ok()??.spec
}

async fn wait_holder(c: &Cluster, identity: &str) -> LeaseSpec {
    eventually(&format!("{identity} to hold the lease"), || async {
        lease_spec(c)
            .await
            .filter(|s| s.holder_identity.as_deref() == Some(identity))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_crashes_and_finishes_the_job() {
    let c = Cluster::without_operator().await;
    let (_stop_a, a) = spawn_operator(&c, "operator-a");
    wait_holder(&c, "operator-a").await;
    let (_stop_b, _b) = spawn_operator(&c, "operator-b");
    c.submit(&job_yaml("led", "{worker: {count: 1}}", "{}"))
        .await;
    c.running_pod("led-worker-0", 0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spec = lease_spec(&c).await.expect("lease exists");
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some("operator-a"),
        "the holder keeps renewing"
    );
    assert_eq!(spec.lease_transitions, Some(0));

    a.abort();
    let crashed = Instant::now();
    let spec = wait_holder(&c, "operator-b").await;
    assert!(
        crashed.elapsed() >= Duration::from_millis(600),
        "took over after {:?}, before the lease could expire",
        crashed.elapsed()
    );
    assert_eq!(spec.lease_transitions, Some(1));
    c.finish("led-worker-0", 0, 0).await;
    c.wait_phase("led", "Succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stays_passive_while_another_holder_renews() {
    let c = Cluster::without_operator().await;
    let ghost = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("ghost".into()),
            lease_duration_seconds: Some(1),
            renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    leases(&c)
        .create(&PostParams::default(), &ghost)
        .await
        .unwrap();
    let (_stop, _b) = spawn_operator(&c, "operator-b");
    c.submit(&job_yaml("wait", "{worker: {count: 1}}", "{}"))
        .await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut lease = leases(&c).get(LEASE).await.unwrap();
        lease.spec.as_mut().unwrap().renew_time =
            Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        leases(&c)
            .replace(LEASE, &PostParams::default(), &lease)
            .await
            .unwrap();
        assert!(
            c.pods("wait").await.is_empty(),
            "a passive operator created pods"
        );
    }
    wait_holder(&c, "operator-b").await;
    c.running_pod("wait-worker-0", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_releases_the_lease_for_an_immediate_takeover() {
    let c = Cluster::without_operator().await;
    let (stop_a, a) = spawn_operator(&c, "operator-a");
    wait_holder(&c, "operator-a").await;
    let (_stop_b, _b) = spawn_operator(&c, "operator-b");
    stop_a.send(()).unwrap();
    a.await.unwrap().expect("a clean stop");
    let released = Instant::now();
    wait_holder(&c, "operator-b").await;
    assert!(
        released.elapsed() < Duration::from_millis(900),
        "the released lease was taken after {:?}",
        released.elapsed()
    );
}
