//! Job lifecycles on kube-sim: every row of the scenario table (crate `trainctl-scenarios`,
//! Kubeflow's TFJob status cases) and what only the cluster has (services, events, pods
//! replaced, deleted from outside or lost with their node, suspend, TTL). The operator runs
//! in-process against the server over HTTP; the test plays the kubelet.

mod common;

use common::{condition, job_yaml, Cluster, NS};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

/// Plays one scenario on its own cluster.
async fn run(s: &trainctl_scenarios::Scenario) {
    let c = Cluster::start().await;
    common::scenarios::drive(&c, s).await;
}

trainctl_scenarios::scenario_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_gets_a_service_and_pod_writes_are_recorded_as_events() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "tf",
        "{chief: {count: 1}, ps: {count: 1}, worker: {count: 2}}",
        "{}",
    ))
    .await;
    for pod in ["tf-chief-0", "tf-ps-0", "tf-worker-0", "tf-worker-1"] {
        c.running_pod(pod, 0).await;
    }
    assert_eq!(
        c.services("tf").await.len(),
        4,
        "one headless service per replica"
    );
    c.sim.finish_pod(NS, "tf-chief-0", 0).unwrap();
    c.wait_phase("tf", "Succeeded").await;
    c.wait_event("tf", "SuccessfulCreatePod: created pods chief-0 (attempt 0), ps-0 (attempt 0), worker-0 (attempt 0), worker-1 (attempt 0)").await;
    c.wait_event(
        "tf",
        "SuccessfulDeletePod: stopped pods ps-0, worker-0, worker-1",
    )
    .await;
    c.wait_event("tf", "Succeeded: chief-0 succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_replaces_the_pod_with_one_of_the_next_attempt() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "ec",
        "{worker: {count: 2}}",
        "{restartPolicy: ExitCode, backoffLimit: 5}",
    ))
    .await;
    let first = c.running_pod("ec-worker-1", 0).await;
    c.sim.finish_pod(NS, "ec-worker-1", 130).unwrap();
    let second = c.running_pod("ec-worker-1", 1).await;
    assert_ne!(
        first.uid(),
        second.uid(),
        "a new pod replaced the failed one"
    );
    let env = &second.spec.unwrap().containers[0].env.clone().unwrap();
    assert!(env
        .iter()
        .any(|e| e.name == "TRAINCTL_ATTEMPT" && e.value.as_deref() == Some("1")));
    let status = c.status("ec").await.unwrap();
    assert_eq!(status.restarts, 1);
    assert!(
        condition(&status, "Restarting").is_some(),
        "the job went through Restarting: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_every_pod_and_resume_starts_their_next_attempts() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "sr",
        "{ps: {count: 1}, worker: {count: 1}}",
        "{}",
    ))
    .await;
    c.running_pod("sr-worker-0", 0).await;
    let set = |suspend: bool| serde_json::json!({"spec": {"runPolicy": {"suspend": suspend}}});
    c.jobs()
        .patch("sr", &PatchParams::default(), &Patch::Merge(set(true)))
        .await
        .unwrap();
    let status = c.wait_phase("sr", "Suspended").await;
    assert_eq!(condition(&status, "Suspended").unwrap().status, "True");
    c.gone("sr-worker-0").await;
    c.gone("sr-ps-0").await;
    c.jobs()
        .patch("sr", &PatchParams::default(), &Patch::Merge(set(false)))
        .await
        .unwrap();
    // Resumed as the next attempt of each replica, as the local engine does; no restart.
    c.running_pod("sr-ps-0", 1).await;
    c.running_pod("sr-worker-0", 1).await;
    let status = c.wait_phase("sr", "Running").await;
    assert_eq!(condition(&status, "Suspended").unwrap().status, "False");
    assert_eq!(status.restarts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_deletes_the_finished_job_and_its_objects() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "ttl",
        "{worker: {count: 1}}",
        "{ttlSecondsAfterFinished: 1}",
    ))
    .await;
    c.finish("ttl-worker-0", 0, 0).await;
    c.wait_phase("ttl", "Succeeded").await;
    common::eventually("the job to be deleted", || async {
        c.jobs()
            .get_opt("ttl")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    common::eventually("the pods to be released and collected", || async {
        c.pods("ttl").await.is_empty().then_some(())
    })
    .await;
    assert!(c.services("ttl").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_from_outside_counts_as_a_killed_attempt_and_is_restarted() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "ext",
        "{worker: {count: 2}}",
        "{restartPolicy: ExitCode, backoffLimit: 3}",
    ))
    .await;
    let before = c.running_pod("ext-worker-1", 0).await;
    assert!(before
        .finalizers()
        .contains(&"trainctl.dev/track-attempt".to_string()));
    c.sim
        .append_log(NS, "ext-worker-1", "", &["step 7", "killed"]);
    c.pods_api()
        .delete("ext-worker-1", &DeleteParams::default())
        .await
        .unwrap();
    let after = c.running_pod("ext-worker-1", 1).await;
    assert_ne!(after.uid(), before.uid());
    c.wait_event(
        "ext",
        "PodDeleted: deleted from outside (its log is archived): worker-1 (attempt 0)",
    )
    .await;
    c.wait_event(
        "ext",
        "SuccessfulCreatePod: created pods worker-1 (attempt 1)",
    )
    .await;
    let status = c.status("ext").await.unwrap();
    assert_eq!((status.restarts, status.attempts["worker-1"]), (1, 1));
    let maps: Api<ConfigMap> = Api::namespaced(c.client.clone(), NS);
    let archive = maps.get("ext-logs").await.expect("the log is archived");
    assert_eq!(
        archive.data.unwrap()["worker-1.attempt-0.log"],
        "step 7\nkilled\n"
    );
    c.finish("ext-worker-0", 0, 0).await;
    c.wait_phase("ext", "Succeeded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_never_a_pod_deleted_from_outside_fails_the_job_and_goes() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "extn",
        "{worker: {count: 2}}",
        "{restartPolicy: Never}",
    ))
    .await;
    c.running_pod("extn-worker-1", 0).await;
    c.pods_api()
        .delete("extn-worker-1", &DeleteParams::default())
        .await
        .unwrap();
    let status = c.wait_phase("extn", "Failed").await;
    assert_eq!(status.reason.as_deref(), Some("ReplicaFailed"));
    let message = status.message.unwrap();
    assert!(
        message.contains("worker-1 exited with code 137"),
        "{message}"
    );
    assert_eq!(status.restarts, 0);
    c.gone("extn-worker-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_job_leaves_no_pod_behind() {
    let c = Cluster::start().await;
    for (name, propagation) in [
        ("bg", DeleteParams::background()),
        ("fg", DeleteParams::foreground()),
    ] {
        c.submit(&job_yaml(name, "{worker: {count: 2}}", "{}"))
            .await;
        c.running_pod(&format!("{name}-worker-1"), 0).await;
        c.jobs().delete(name, &propagation).await.unwrap();
        common::eventually(&format!("the pods of {name} to go"), || async {
            c.pods(name).await.is_empty().then_some(())
        })
        .await;
        common::eventually(&format!("{name} to go"), || async {
            c.jobs()
                .get_opt(name)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_lost_node_are_recreated_elsewhere() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "nl",
        "{worker: {count: 1}}",
        "{restartPolicy: ExitCode, backoffLimit: 3}",
    ))
    .await;
    let pod = c.running_pod("nl-worker-0", 0).await;
    let node = pod.spec.unwrap().node_name.unwrap();
    c.sim.kill_node(&node).unwrap();
    let again = c.running_pod("nl-worker-0", 1).await;
    assert_ne!(again.spec.unwrap().node_name.unwrap(), node);
    assert_eq!(c.status("nl").await.unwrap().restarts, 1);
}
