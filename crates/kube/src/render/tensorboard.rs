//! TensorBoard for a job: a Deployment reading the job's logDir from the volume it is on,
//! and a Service (ClusterIP unless the job asks for NodePort or LoadBalancer). For the
//! operator the pod also runs the collector (`trainctl collect`), which writes the job's
//! metrics into the logDir, under a ServiceAccount that may only read the job's logs.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServiceAccount, ServicePort,
    ServiceSpec,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use trainctl_spec::{TrainingJob, Volume};

use super::meta::{job_labels, object_meta, COMPONENT, JOB_NAME};
use super::pod::non_empty_vec;
use super::{to_value, volumes, Ctx, RenderOptions};

/// The container of the TensorBoard pod that runs the collector.
pub const COLLECTOR_CONTAINER: &str = "collector";

/// The component label (`trainctl.dev/component`) of a job's TensorBoard pod.
pub const TENSORBOARD_COMPONENT: &str = "tensorboard";

/// TensorBoard's default port.
const PORT: i32 = 6006;

/// The collector's image when the operator is given none: the trainctl image the chart
/// deploys (`charts/trainctl/values.yaml`).
pub const DEFAULT_COLLECTOR_IMAGE: &str = "ghcr.io/trainctl/trainctl:0.1.0";

/// The objects of a job's TensorBoard.
#[derive(Debug, Clone)]
pub struct TensorboardObjects {
    /// TensorBoard (and, with a collector, the collector) reading the job's logDir.
    pub deployment: Deployment,
    /// The Service in front of TensorBoard.
    pub service: Service,
    /// The collector's identity, when the pod runs one.
    pub collector: Option<CollectorAccess>,
}

/// The identity of a job's collector: read access to the job and its logs, nothing more.
#[derive(Debug, Clone)]
pub struct CollectorAccess {
    /// The ServiceAccount the TensorBoard pod runs as.
    pub service_account: ServiceAccount,
    /// What `trainctl collect` calls: the job, its pods and their logs, its log archive.
    pub role: Role,
    /// Grants the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
}

/// The Deployment and Service of the job's TensorBoard, if it has one (no collector: the
/// objects `trainctl render` prints run without the operator).
pub fn objects(ctx: &Ctx) -> Vec<Value> {
    let Some(tb) = build(ctx, None) else {
        return Vec::new();
    };
    vec![to_value(&tb.deployment), to_value(&tb.service)]
}

/// The TensorBoard objects the operator creates for `job` in `namespace`: the same as
/// `trainctl render` prints, with the collector (`collector_image`) in the pod and its
/// ServiceAccount, Role and RoleBinding. None when the job asks for no TensorBoard.
pub fn tensorboard_objects(
    job: &TrainingJob,
    namespace: &str,
    collector_image: &str,
) -> Option<TensorboardObjects> {
    let opts = RenderOptions {
        namespace: Some(namespace.into()),
        ..RenderOptions::default()
    };
    build(&Ctx::new(job, &opts), Some(collector_image))
}

fn build(ctx: &Ctx, collector_image: Option<&str>) -> Option<TensorboardObjects> {
    let tb = ctx.job.spec.tensorboard.as_ref()?;
    let name = format!("{}-tensorboard", ctx.job.name());
    let selector = BTreeMap::from([
        (JOB_NAME.to_string(), ctx.job.name().to_string()),
        (COMPONENT.to_string(), TENSORBOARD_COMPONENT.to_string()),
    ]);
    let mut labels = job_labels(ctx);
    labels.extend(selector.clone());
    let holds_logs = |v: &Volume| is_under(&tb.log_dir, &v.mount_path);
    let mut containers = vec![Container {
        name: "tensorboard".into(),
        image: tb.image.clone().or_else(|| ctx.job.spec.image.clone()),
        command: Some(vec![
            "tensorboard".into(),
            format!("--logdir={}", tb.log_dir),
            "--host=0.0.0.0".into(),
            format!("--port={PORT}"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: PORT,
            ..ContainerPort::default()
        }]),
        volume_mounts: non_empty_vec(volumes::mounts(ctx, holds_logs, true)),
        ..Container::default()
    }];
    if let Some(image) = collector_image {
        containers.push(Container {
            name: COLLECTOR_CONTAINER.into(),
            image: Some(image.into()),
            args: Some(collector_args(ctx.job.name(), &tb.log_dir)),
            volume_mounts: non_empty_vec(volumes::mounts(ctx, holds_logs, false)),
            ..Container::default()
        });
    }
    let deployment = Deployment {
        metadata: object_meta(ctx, name.clone(), labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers,
                    service_account_name: collector_image.map(|_| name.clone()),
                    volumes: non_empty_vec(volumes::pod_volumes(ctx, holds_logs)),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let service = Service {
        metadata: object_meta(ctx, name.clone(), labels.clone()),
        spec: Some(ServiceSpec {
            type_: Some(tb.service_type.as_str().into()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let collector = collector_image.map(|_| collector_access(ctx, &name, &labels));
    Some(TensorboardObjects {
        deployment,
        service,
        collector,
    })
}

/// `trainctl collect` for the job, in the cluster it runs in (the pod's ServiceAccount and
/// namespace), never exiting so the Deployment does not restart it after the job ends.
fn collector_args(job: &str, log_dir: &str) -> Vec<String> {
    [
        "collect",
        job,
        "--kube",
        "--logdir",
        log_dir,
        "--keep-running",
    ]
    .map(String::from)
    .to_vec()
}

/// A ServiceAccount `name` that may read what `trainctl collect` reads of this job only.
fn collector_access(ctx: &Ctx, name: &str, labels: &BTreeMap<String, String>) -> CollectorAccess {
    let meta = || object_meta(ctx, name.into(), labels.clone());
    let rule = |group: &str, resource: &str, verb: &str, names: Option<String>| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        verbs: vec![verb.into()],
        resource_names: names.map(|n| vec![n]),
        ..PolicyRule::default()
    };
    let job = ctx.job.name();
    CollectorAccess {
        service_account: ServiceAccount {
            metadata: meta(),
            ..ServiceAccount::default()
        },
        role: Role {
            metadata: meta(),
            rules: Some(vec![
                rule("trainctl.dev", "trainingjobs", "get", Some(job.into())),
                rule("", "pods", "list", None),
                rule("", "pods/log", "get", None),
                // The operator's log archive (`trainctl_operator::names::log_archive_name`).
                rule("", "configmaps", "get", Some(format!("{job}-logs"))),
            ]),
        },
        role_binding: RoleBinding {
            metadata: meta(),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: name.into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: name.into(),
                namespace: Some(ctx.namespace.clone()),
                ..Subject::default()
            }]),
        },
    }
}

/// Whether `path` is `dir` or below it.
pub fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.starts_with(&format!("{dir}/")) || dir.is_empty()
}
