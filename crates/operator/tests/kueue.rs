//! Kueue admission and preemption: a job gang scheduled by Kueue is created suspended with
//! its queue label; the test plays Kueue, admitting it (suspend false), preempting it
//! (suspend true) and admitting it again, while the operator runs in-process on kube-sim.

mod common;

use std::time::Duration;

use common::{job_yaml, Cluster};
use kube::api::{Patch, PatchParams};

const QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";
const PODS: [&str; 3] = ["kq-ps-0", "kq-worker-0", "kq-worker-1"];

/// Kueue's move: admit (false) or preempt (true) the workload.
async fn set_suspend(c: &Cluster, suspend: bool) {
    let patch = serde_json::json!({"spec": {"runPolicy": {"suspend": suspend}}});
    c.jobs()
        .patch("kq", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kueue_admits_preempts_and_readmits_a_suspended_job() {
    let c = Cluster::start().await;
    let yaml = job_yaml("kq", "{ps: {count: 1}, worker: {count: 2}}", "{}")
        + "  scheduling: {gang: true, gangScheduler: kueue, queue: team-a}\n";
    c.submit(&yaml).await;

    // Kueue finds the workload by its queue label, waiting suspended.
    let job = c.jobs().get("kq").await.unwrap();
    let labels = job.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(QUEUE_LABEL).map(String::as_str), Some("team-a"));
    assert!(job.spec.0.run_policy.suspend, "created suspended");
    c.wait_phase("kq", "Suspended").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.pods("kq").await.is_empty(), "no pod before admission");

    set_suspend(&c, false).await;
    for pod in PODS {
        c.running_pod(pod, 0).await;
    }
    c.wait_phase("kq", "Running").await;

    // Preemption: every pod goes, the job waits suspended.
    set_suspend(&c, true).await;
    c.wait_phase("kq", "Suspended").await;
    for pod in PODS {
        c.gone(pod).await;
    }
    assert!(c.pods("kq").await.is_empty(), "no pod while preempted");

    set_suspend(&c, false).await;
    for pod in PODS {
        c.running_pod(pod, 1).await;
    }
    c.sim.finish_pod(common::NS, "kq-worker-0", 0).unwrap();
    c.sim.finish_pod(common::NS, "kq-worker-1", 0).unwrap();
    let status = c.wait_phase("kq", "Succeeded").await;
    assert!(status.completion_time.is_some(), "{status:?}");
}
