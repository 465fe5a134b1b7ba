//! The operator converges under API faults: with ~10% of its calls failing (500, 429 with
//! Retry-After, 409) and every watch dropped every 300ms, eight jobs of the scenario table
//! each reach their right end, and no replica ever has two pods
//! nor an attempt created twice.

mod common;

use std::time::Duration;

use common::audit::PodAudit;
use common::scenarios::{drive, expected_pods, under_faults};
use common::{Cluster, NS, OPERATOR_USER};
use kube_sim::{FaultRule, InjectedError};

/// Faults on every kind of call the operator makes, about 10% in all.
fn operator_faults() -> [FaultRule; 3] {
    let rule = |rate, error| FaultRule {
        verb: None,
        resource: None,
        rate,
        error,
    };
    [
        rule(0.04, InjectedError::ServerError),
        rule(0.03, InjectedError::TooManyRequests { seconds: 1 }),
        rule(0.03, InjectedError::Conflict),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_reaches_its_end_under_faults_and_dropped_watches() {
    let scenarios = under_faults();
    let c = Cluster::start().await;
    let audit = PodAudit::start(c.client.clone(), NS);
    for rule in operator_faults() {
        c.sim.inject_fault_for_user(OPERATOR_USER, rule);
    }
    let drops = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.sim.drop_watches();
        }
    };
    let jobs = futures::future::join_all(scenarios.iter().map(|s| drive(&c, s)));
    tokio::select! {
        _ = jobs => {}
        _ = drops => unreachable!("dropping watches never ends"),
    }
    let calls: u64 = c
        .sim
        .requests()
        .iter()
        .filter(|(k, _)| k.user == OPERATOR_USER)
        .map(|(_, n)| n)
        .sum();
    assert!(calls > 100, "the operator made only {calls} calls");

    audit.assert_one_pod_per_attempt(scenarios.iter().copied().flat_map(expected_pods).collect());
}
