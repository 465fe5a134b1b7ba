//! The chart's RBAC rules are exactly what the operator uses: a lifecycle run (restarts with
//! log archiving, success with PS cleanup, TTL deletion, a TensorBoard with its collector,
//! volcano and coscheduling gangs, leader election, an experiment with one trial) records every request the operator's identity makes in kube-sim, and
//! each must be allowed by the rendered ClusterRole/Role while each granted rule is used.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::chart::object;
use common::{eventually, job_yaml, test_config, Cluster, NS};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Api;
use trainctl_kube_client::ExperimentResource;
use trainctl_operator::leader::{run_as_leader, LeaseConfig};
use trainctl_operator::metrics::Metrics;

const ACCOUNT: &str = "system:serviceaccount:default:tc-operator";

/// (group, resource, verb)
type Permission = (String, String, String);

/// The permissions of a rendered Role or ClusterRole.
fn granted(template: &str) -> BTreeSet<Permission> {
    let role = object("tc", NS, template);
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut permissions = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    assert_ne!(verb, "*", "{template}: no wildcard verbs");
                    assert_ne!(resource, "*", "{template}: no wildcard resources");
                    permissions.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    permissions
}

async fn install_crd(c: &Cluster, file: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/crds")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text).unwrap();
    Api::<CustomResourceDefinition>::all(c.client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
}

/// A client that acts as the chart's ServiceAccount (kube-sim records the impersonated user).
async fn operator_client(c: &Cluster) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&c.sim.kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.auth_info.impersonate = Some(ACCOUNT.into());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_role_allows_every_call_of_a_lifecycle_run_and_nothing_more() {
    let c = Cluster::without_operator().await;
    install_crd(&c, "scheduling.volcano.sh_podgroups.yaml").await;
    install_crd(&c, "scheduling.x-k8s.io_podgroups.yaml").await;
    c.sim.set_gang_scheduling(true);
    let lease = LeaseConfig {
        namespace: NS.into(),
        name: "trainctl-operator".into(),
        identity: "tc-operator-0".into(),
        duration: Duration::from_secs(1),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(run_as_leader(
        operator_client(&c).await,
        test_config(),
        Arc::new(Metrics::default()),
        lease,
        async move {
            let _ = stopped.await;
        },
    ));

    // With a TensorBoard: its Deployment, Service and collector identity are created too.
    c.submit(
        &(job_yaml(
            "rb",
            "{ps: {count: 1}, worker: {count: 2}}",
            "{restartPolicy: ExitCode, backoffLimit: 5, ttlSecondsAfterFinished: 0}",
        ) + "  tensorboard: {logDir: /logs/rb}\n"),
    )
    .await;
    c.running_pod("rb-ps-0", 0).await;
    for attempt in 0..2 {
        c.running_pod("rb-worker-1", attempt).await;
        c.sim
            .append_log(NS, "rb-worker-1", "", &["step 1", "killed"]);
        c.finish("rb-worker-1", attempt, 137).await;
    }
    c.running_pod("rb-worker-1", 2).await;
    c.finish("rb-worker-0", 0, 0).await;
    eventually("rb to be deleted by its TTL", || async {
        c.jobs().get_opt("rb").await.ok()?.is_none().then_some(())
    })
    .await;
    for scheduler in ["volcano", "coscheduling"] {
        let name = format!("gang-{scheduler}");
        let yaml = job_yaml(&name, "{worker: {count: 1}}", "{}")
            + &format!("  scheduling: {{gang: true, gangScheduler: {scheduler}}}\n");
        c.submit(&yaml).await;
        c.running_pod(&format!("{name}-worker-0"), 0).await;
    }
    // An experiment of one trial, whose metric the operator reads from the trial's log.
    let exp = trainctl_spec::parse_experiment_str(
        "exp.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {name: ex}\nspec:\n  \
         objective: {type: maximize, objectiveMetricName: accuracy}\n  \
         algorithm: {algorithmName: random}\n  maxTrialCount: 1\n  \
         parameters: [{name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}]\n  \
         trialTemplate: {spec: {image: train:1, command: [train], replicas: {worker: {count: 1}}}}\n",
    )
    .unwrap();
    let experiments: Api<ExperimentResource> = Api::namespaced(c.client.clone(), NS);
    experiments
        .create(
            &PostParams::default(),
            &ExperimentResource::from_experiment(&exp, NS),
        )
        .await
        .unwrap();
    c.running_pod("ex-0-worker-0", 0).await;
    c.sim.append_log(NS, "ex-0-worker-0", "", &["accuracy=0.5"]);
    c.finish("ex-0-worker-0", 0, 0).await;
    eventually("experiment ex to succeed", || async {
        (experiments.get("ex").await.ok()?.phase() == "Succeeded").then_some(())
    })
    .await;
    stop.send(()).unwrap();
    operator.await.unwrap().expect("clean stop");

    let used: BTreeSet<Permission> = c
        .sim
        .requests()
        .into_keys()
        .filter(|k| k.user == ACCOUNT)
        .map(|k| (k.group, k.resource, k.verb))
        .collect();
    let cluster_wide = granted("clusterrole.yaml");
    let leader = granted("role.yaml");
    for (group, resource, _) in &leader {
        assert_eq!(
            (group.as_str(), resource.as_str()),
            ("coordination.k8s.io", "leases"),
            "the namespaced Role is for the Lease only"
        );
    }
    let all: BTreeSet<Permission> = cluster_wide.union(&leader).cloned().collect();
    let denied: Vec<_> = used.difference(&all).collect();
    assert!(
        denied.is_empty(),
        "calls the chart does not allow: {denied:#?}"
    );
    let unused: Vec<_> = all.difference(&used).collect();
    assert!(unused.is_empty(), "granted but never used: {unused:#?}");
}
