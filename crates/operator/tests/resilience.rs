//! The operator survives being killed mid-job, stops at once when stopped as it starts,
//! keeps every attempt's log, gangs pods behind their PodGroup, and publishes a structural
//! CRD.

mod common;

use std::collections::BTreeSet;

use std::time::Duration;

use common::audit::PodAudit;
use common::scenarios::{drive, expected_pods, under_faults};
use common::{job_yaml, Cluster, NS};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::{Api, ResourceExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_operator_mid_job_creates_no_duplicate_pods_and_loses_no_status() {
    let mut c = Cluster::start().await;
    c.submit(&job_yaml(
        "idem",
        "{ps: {count: 1}, worker: {count: 2}}",
        "{restartPolicy: ExitCode, backoffLimit: 5}",
    ))
    .await;
    let pods = ["idem-ps-0", "idem-worker-0", "idem-worker-1"];
    for p in pods {
        c.running_pod(p, 0).await;
    }
    let uids = |list: Vec<k8s_openapi::api::core::v1::Pod>| -> BTreeSet<String> {
        list.iter().filter_map(|p| p.uid()).collect()
    };
    let before = uids(c.pods("idem").await);
    for round in 0..3 {
        c.kill_operator().await;
        c.start_operator();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            uids(c.pods("idem").await),
            before,
            "round {round}: same pods"
        );
    }
    c.sim.finish_pod(NS, "idem-worker-1", 137).unwrap();
    c.kill_operator().await;
    c.start_operator();
    c.running_pod("idem-worker-1", 1).await;
    c.kill_operator().await;
    c.start_operator();
    c.finish("idem-worker-0", 0, 0).await;
    let status = c.wait_phase("idem", "Succeeded").await;
    assert_eq!(status.restarts, 1, "the restart is counted once");
    assert_eq!(status.attempts["worker-1"], 1);
    assert!(
        c.pods("idem").await.len() <= 3,
        "never more pods than replicas"
    );
}

/// The seed of a randomized test: `TRAINCTL_TEST_SEED` replays one, else a fresh one.
fn test_seed() -> u64 {
    let seed = std::env::var("TRAINCTL_TEST_SEED")
        .ok()
        .map(|s| s.parse().expect("TRAINCTL_TEST_SEED is a number"))
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (replay with TRAINCTL_TEST_SEED={seed})");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_operator_at_random_points_keeps_every_job_right() {
    let mut rng = fastrand::Rng::with_seed(test_seed());
    let scenarios = under_faults();
    let c = Cluster::without_operator().await;
    let audit = PodAudit::start(c.client.clone(), NS);
    // Staggered submissions, so the kills land at different points of different jobs.
    let delays: Vec<u64> = scenarios.iter().map(|_| rng.u64(0..1500)).collect();
    let mut kills = 0u32;
    let chaos = async {
        loop {
            let (_stop, operator) = c.spawn_operator();
            tokio::time::sleep(Duration::from_millis(rng.u64(20..300))).await;
            operator.abort();
            let _ = operator.await;
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.u64(0..100))).await;
        }
    };
    let jobs = futures::future::join_all(scenarios.iter().zip(delays).map(|(s, delay)| {
        let c = &c;
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            drive(c, s).await
        }
    }));
    tokio::select! {
        _ = jobs => {}
        _ = chaos => unreachable!("the chaos loop never ends"),
    }
    assert!(kills >= 3, "the operator was killed only {kills} times");
    audit.assert_one_pod_per_attempt(scenarios.iter().copied().flat_map(expected_pods).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_replaced_pod_are_archived() {
    let c = Cluster::start().await;
    c.submit(&job_yaml(
        "arch",
        "{worker: {count: 1}}",
        "{restartPolicy: OnFailure, backoffLimit: 3}",
    ))
    .await;
    c.running_pod("arch-worker-0", 0).await;
    c.sim
        .append_log(NS, "arch-worker-0", "", &["epoch 1 loss 0.9", "oom"]);
    c.sim.finish_pod(NS, "arch-worker-0", 137).unwrap();
    c.running_pod("arch-worker-0", 1).await;
    let maps: Api<ConfigMap> = Api::namespaced(c.client.clone(), NS);
    let archive = maps.get("arch-logs").await.expect("archive exists");
    let data = archive.data.unwrap();
    assert_eq!(data["worker-0.attempt-0.log"], "epoch 1 loss 0.9\noom\n");
    assert_eq!(archive.metadata.owner_references.unwrap()[0].name, "arch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_group_exists_before_any_pod() {
    let c = Cluster::start().await;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/crds/scheduling.volcano.sh_podgroups.yaml"),
    )
    .expect("the Volcano PodGroup CRD is in tests/crds");
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text).unwrap();
    Api::<CustomResourceDefinition>::all(c.client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    c.sim.set_gang_scheduling(true);
    let yaml = job_yaml("gang", "{ps: {count: 1}, worker: {count: 3}}", "{}")
        + "  scheduling: {gang: true, gangScheduler: volcano}\n";
    c.submit(&yaml).await;
    for p in [
        "gang-ps-0",
        "gang-worker-0",
        "gang-worker-1",
        "gang-worker-2",
    ] {
        c.running_pod(p, 0).await;
    }
    let resource = ApiResource {
        group: "scheduling.volcano.sh".into(),
        version: "v1beta1".into(),
        api_version: "scheduling.volcano.sh/v1beta1".into(),
        kind: "PodGroup".into(),
        plural: "podgroups".into(),
    };
    let groups: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), NS, &resource);
    let group = groups.get("gang").await.expect("PodGroup created");
    assert_eq!(group.data["spec"]["minMember"], 4);
    let version = |o: &str| o.parse::<u64>().unwrap();
    let group_rv = version(&group.metadata.resource_version.clone().unwrap());
    for pod in c.pods("gang").await {
        let created = pod.metadata.annotations.unwrap_or_default();
        assert_eq!(created["scheduling.k8s.io/group-name"], "gang");
        // The pod's first write is after the group's (one resourceVersion counter).
        assert!(pod.metadata.generation.is_some());
        assert!(version(&pod.metadata.resource_version.unwrap()) > group_rv);
    }
}

#[test]
fn the_crd_is_structural_with_status_columns_and_short_name() {
    let crd = serde_json::to_value(trainctl_operator::crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], "trainingjobs.trainctl.dev");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "tj");
    let version = &crd["spec"]["versions"][0];
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Phase", "Replicas", "Restarts", "Age"]);
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut problems = Vec::new();
    structural(schema, "openAPIV3Schema", &mut problems);
    assert!(problems.is_empty(), "not structural: {problems:#?}");
}

/// Kubernetes' structural-schema rules that a generated schema can break: every node has a
/// type (or says it preserves unknown fields / is int-or-string), no $ref, no
/// additionalProperties next to properties.
fn structural(node: &serde_json::Value, path: &str, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else { return };
    if obj.contains_key("$ref") {
        problems.push(format!("{path}: $ref"));
    }
    let exempt = obj.contains_key("x-kubernetes-preserve-unknown-fields")
        || obj.contains_key("x-kubernetes-int-or-string");
    if !obj.contains_key("type") && !exempt {
        problems.push(format!("{path}: no type"));
    }
    for union in ["anyOf", "oneOf", "allOf"] {
        let typed = obj
            .get(union)
            .and_then(|u| u.as_array())
            .is_some_and(|alts| alts.iter().any(|a| a.get("type").is_some()));
        if typed {
            problems.push(format!("{path}: type inside {union}"));
        }
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!("{path}: properties and additionalProperties"));
    }
    for (key, child) in obj {
        match key.as_str() {
            "properties" => {
                for (name, p) in child.as_object().into_iter().flatten() {
                    structural(p, &format!("{path}.{name}"), problems);
                }
            }
            "items" | "additionalProperties" if child.is_object() => {
                structural(child, &format!("{path}[]"), problems)
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_stopped_as_it_starts_returns_at_once() {
    let c = Cluster::without_operator().await;
    // Before and after its first list of jobs.
    for delay in [0, 5, 20, 50, 500] {
        let (stop, operator) = c.spawn_operator();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        drop(stop);
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(4), operator)
            .await
            .unwrap_or_else(|_| panic!("stopped {delay} ms after its start, it hung"))
            .unwrap();
        println!(
            "stopped {delay} ms after start: returned in {:?}",
            started.elapsed()
        );
    }
}
