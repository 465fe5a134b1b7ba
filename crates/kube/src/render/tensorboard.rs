//! TensorBoard for a job: a Deployment reading the job's logDir from the volume it is on,
//! and a Service (ClusterIP unless the job asks for NodePort or LoadBalancer).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use trainctl_spec::Volume;

use super::meta::{job_labels, object_meta, COMPONENT, JOB_NAME};
use super::pod::non_empty_vec;
use super::{to_value, volumes, Ctx};

/// TensorBoard's default port.
const PORT: i32 = 6006;

/// The Deployment and Service of the job's TensorBoard, if it has one.
pub fn objects(ctx: &Ctx) -> Vec<Value> {
    let Some(tb) = &ctx.job.spec.tensorboard else {
        return Vec::new();
    };
    let name = format!("{}-tensorboard", ctx.job.name());
    let selector = BTreeMap::from([
        (JOB_NAME.to_string(), ctx.job.name().to_string()),
        (COMPONENT.to_string(), "tensorboard".to_string()),
    ]);
    let mut labels = job_labels(ctx);
    labels.extend(selector.clone());
    let holds_logs = |v: &Volume| is_under(&tb.log_dir, &v.mount_path);
    let container = Container {
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
    };
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
                    containers: vec![container],
                    volumes: non_empty_vec(volumes::pod_volumes(ctx, holds_logs)),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let service = Service {
        metadata: object_meta(ctx, name, labels),
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
    vec![to_value(&deployment), to_value(&service)]
}

/// Whether `path` is `dir` or below it.
pub fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.starts_with(&format!("{dir}/")) || dir.is_empty()
}
