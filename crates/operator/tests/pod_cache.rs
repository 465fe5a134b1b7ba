//! The operator reads pods from its own watch, which lags behind its writes: with kube-sim
//! holding back every pod watch event, a job with a restart still gets exactly the pod
//! writes it needs (no pod created, released or deleted twice from a stale view).

mod common;

use std::time::Duration;

use common::{job_yaml, Cluster, OPERATOR_USER};

/// The operator's requests of `verb` on pods.
fn pod_requests(c: &Cluster, verb: &str) -> u64 {
    c.sim
        .requests()
        .iter()
        .filter(|(k, _)| k.user == OPERATOR_USER && k.verb == verb && k.resource == "pods")
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_pod_watch_costs_no_extra_pod_writes() {
    let mut c = Cluster::without_operator().await;
    // Far longer than the operator's 50 ms debounce: every reconcile woken by the job's
    // own status writes runs before the pod watch shows the pods it created or deleted.
    let lag = Duration::from_millis(400);
    c.sim.set_watch_delay("pods", lag);
    c.start_operator();
    c.submit(&job_yaml(
        "lag",
        "{ps: {count: 1}, worker: {count: 2}}",
        "{restartPolicy: ExitCode, backoffLimit: 3}",
    ))
    .await;
    for pod in ["lag-ps-0", "lag-worker-0", "lag-worker-1"] {
        c.running_pod(pod, 0).await;
    }
    c.finish("lag-worker-1", 0, 137).await;
    c.running_pod("lag-worker-1", 1).await;
    c.finish("lag-worker-0", 0, 0).await;
    let status = c.wait_phase("lag", "Succeeded").await;
    assert_eq!(status.restarts, 1);
    c.gone("lag-ps-0").await;
    c.gone("lag-worker-1").await;
    // Let the held-back events arrive and wake the job again: nothing more may be written.
    tokio::time::sleep(lag * 3).await;
    assert_eq!(
        pod_requests(&c, "create"),
        4,
        "3 replicas + 1 restart, each created once"
    );
    assert_eq!(
        pod_requests(&c, "delete"),
        3,
        "worker-1's attempt 0, then ps-0 and worker-1 stopped"
    );
    assert_eq!(
        pod_requests(&c, "patch"),
        3,
        "the tracking finalizer dropped once per deleted pod"
    );
}
