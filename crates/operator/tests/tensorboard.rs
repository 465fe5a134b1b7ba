//! A job's TensorBoard on the cluster: the operator creates the renderer's Deployment and
//! Service, with the collector sidecar and its ServiceAccount, Role and RoleBinding, all
//! owned by the job (kube-sim's garbage collector removes them with it), once however
//! often replicas start; the Role grants nothing the chart's ClusterRole does not hold.

mod common;

use std::collections::BTreeSet;

use common::chart::object;
use common::{eventually, job_yaml, Cluster, NS};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use trainctl_kube::render::DEFAULT_COLLECTOR_IMAGE;
use trainctl_kube::{render, RenderOptions};

const NAME: &str = "tb-tensorboard";

fn tensorboard_job() -> String {
    job_yaml(
        "tb",
        "{worker: {count: 1}}",
        "{restartPolicy: OnFailure, backoffLimit: 3}",
    ) + "  volumes: [{name: logs, mountPath: /logs, persistentVolumeClaim: {claimName: tb-logs}}]\n  \
         tensorboard: {logDir: /logs/tb}\n"
}

fn api<K>(c: &Cluster) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(c.client.clone(), NS)
}

/// Waits for object `NAME` of kind `K`.
async fn created<K>(c: &Cluster) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let kind = K::kind(&());
    eventually(&format!("{kind} {NAME}"), || async {
        api::<K>(c).get_opt(NAME).await.ok()?
    })
    .await
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    let template = &deployment.spec.as_ref().unwrap().template;
    template.spec.as_ref().unwrap()
}

fn container<'a>(deployment: &'a Deployment, name: &str) -> &'a Container {
    let pod = pod_spec(deployment);
    pod.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} container in {:?}", pod.containers))
}

/// (group, resource, verb) of every rule of a Role or the chart's ClusterRole.
fn permissions(rules: &serde_json::Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        group.as_str().unwrap().into(),
                        resource.as_str().unwrap().into(),
                        verb.as_str().unwrap().into(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_the_jobs_tensorboard_with_a_collector_owned_by_the_job() {
    let c = Cluster::start().await;
    let job = c.submit(&tensorboard_job()).await;
    let uid = job.uid().unwrap();

    let deployment: Deployment = created(&c).await;
    let service: Service = created(&c).await;
    let account: ServiceAccount = created(&c).await;
    let role: Role = created(&c).await;
    let binding: RoleBinding = created(&c).await;
    for (kind, meta) in [
        ("Deployment", deployment.meta()),
        ("Service", service.meta()),
        ("ServiceAccount", account.meta()),
        ("Role", role.meta()),
        ("RoleBinding", binding.meta()),
    ] {
        let owners = meta.owner_references.clone().unwrap_or_default();
        assert!(
            owners
                .iter()
                .any(|o| o.uid == uid && o.kind == "TrainingJob" && o.controller == Some(true)),
            "{kind} {NAME} is not owned by the job: {owners:?}"
        );
    }

    // TensorBoard itself is what `trainctl render` prints for the job.
    let spec = trainctl_spec::parse_job_str("job.yaml", &tensorboard_job()).unwrap();
    let rendered = render(&spec, &RenderOptions::default()).unwrap();
    let rendered_deployment: Deployment = serde_json::from_value(
        rendered
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .unwrap()
            .clone(),
    )
    .unwrap();
    assert_eq!(
        container(&deployment, "tensorboard"),
        container(&rendered_deployment, "tensorboard")
    );
    let rendered_service = rendered
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == NAME);
    assert_eq!(
        service.spec.as_ref().unwrap().ports,
        serde_json::from_value(rendered_service.unwrap()["spec"]["ports"].clone()).unwrap()
    );

    // The collector: trainctl's image, writing into the logDir it mounts read-write.
    let collector = container(&deployment, "collector");
    assert_eq!(collector.image.as_deref(), Some(DEFAULT_COLLECTOR_IMAGE));
    assert_eq!(
        collector.args.clone().unwrap(),
        [
            "collect",
            "tb",
            "--kube",
            "--logdir",
            "/logs/tb",
            "--keep-running"
        ]
    );
    let mounts = collector.volume_mounts.clone().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(
        (mounts[0].name.as_str(), mounts[0].mount_path.as_str()),
        ("logs", "/logs")
    );
    assert_eq!(mounts[0].read_only, None, "the collector writes the logDir");
    assert_eq!(
        pod_spec(&deployment).service_account_name.as_deref(),
        Some(NAME)
    );
    let subject = &binding.subjects.clone().unwrap()[0];
    assert_eq!(
        (
            subject.kind.as_str(),
            subject.name.as_str(),
            subject.namespace.as_deref()
        ),
        ("ServiceAccount", NAME, Some(NS))
    );
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("Role", NAME)
    );

    // The Role grants exactly what `collect` calls, all of it held by the operator (an API
    // server refuses a Role that grants more than its creator holds).
    let granted = permissions(&serde_json::to_value(role.rules.clone().unwrap()).unwrap());
    let expected: BTreeSet<_> = [
        ("trainctl.dev", "trainingjobs", "get"),
        ("", "pods", "list"),
        ("", "pods/log", "get"),
        ("", "configmaps", "get"),
    ]
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .into();
    assert_eq!(granted, expected);
    let held = permissions(&object("tc", NS, "clusterrole.yaml")["rules"]);
    assert!(
        granted.is_subset(&held),
        "the collector's Role grants what the operator does not hold: {:?}",
        granted.difference(&held).collect::<Vec<_>>()
    );

    // A restart creates the replica again but no second TensorBoard, and nothing fails.
    c.finish("tb-worker-0", 0, 1).await;
    c.running_pod("tb-worker-0", 1).await;
    let deployments: Api<Deployment> = api(&c);
    let all = deployments
        .list(&ListParams::default().labels("trainctl.dev/job-name=tb"))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(
        all.items[0].uid(),
        deployment.uid(),
        "the Deployment was not replaced"
    );

    // Gone with the job.
    c.jobs()
        .delete("tb", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the TensorBoard objects to be collected", || async {
        let gone = deployments.get_opt(NAME).await.ok()?.is_none()
            && api::<Service>(&c).get_opt(NAME).await.ok()?.is_none()
            && api::<ServiceAccount>(&c)
                .get_opt(NAME)
                .await
                .ok()?
                .is_none()
            && api::<Role>(&c).get_opt(NAME).await.ok()?.is_none()
            && api::<RoleBinding>(&c).get_opt(NAME).await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_tensorboard_gets_none() {
    let c = Cluster::start().await;
    c.submit(&job_yaml("plain", "{worker: {count: 1}}", "{}"))
        .await;
    c.running_pod("plain-worker-0", 0).await;
    let deployments: Api<Deployment> = api(&c);
    assert!(deployments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let accounts: Api<ServiceAccount> = api(&c);
    assert!(accounts
        .get_opt("plain-tensorboard")
        .await
        .unwrap()
        .is_none());
}
