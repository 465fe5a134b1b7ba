//! The pod template of a replica: one container running the role's argv with the job's
//! image, resources, volumes and the cloud profile's annotations and node selector.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use trainctl_core::wiring::{cluster_port, replica_argv};
use trainctl_spec::{Framework, ReplicaType, Resources};

use super::env::literal;
use super::meta::non_empty;
use super::{gang, volumes, Ctx};
use crate::profiles;

/// The resource name of NVIDIA GPUs under the device plugin.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// The container name Kubeflow's operator looks for (and we use on every target).
pub fn container_name(framework: Framework) -> &'static str {
    match framework {
        Framework::Pytorch => "pytorch",
        Framework::Tensorflow | Framework::Generic => "tensorflow",
    }
}

/// The port name Kubeflow's operator reads the replica port from.
pub fn port_name(framework: Framework) -> &'static str {
    match framework {
        Framework::Pytorch => "pytorchjob-port",
        Framework::Tensorflow | Framework::Generic => "tfjob-port",
    }
}

/// Limits from the replica's resources, and requests equal to them.
fn resources(r: &Resources) -> Option<ResourceRequirements> {
    let mut amounts = BTreeMap::new();
    if let Some(cpu) = &r.cpu {
        amounts.insert("cpu".to_string(), Quantity(cpu.to_string()));
    }
    if let Some(memory) = &r.memory {
        amounts.insert("memory".to_string(), Quantity(memory.to_string()));
    }
    if r.gpus() > 0 {
        amounts.insert(GPU_RESOURCE.to_string(), Quantity(r.gpus().to_string()));
    }
    non_empty(amounts).map(|amounts| ResourceRequirements {
        limits: Some(amounts.clone()),
        requests: Some(amounts),
        ..ResourceRequirements::default()
    })
}

/// The pod template of `role`. `restart_policy` and `gang_on_pods` are left to an operator
/// that sets the pod's restart policy and the gang scheduler's pod settings itself
/// (Kubeflow).
pub fn template(
    ctx: &Ctx,
    role: ReplicaType,
    labels: BTreeMap<String, String>,
    env: Vec<EnvVar>,
    restart_policy: Option<&str>,
    gang_on_pods: bool,
) -> PodTemplateSpec {
    let job = &ctx.job;
    let spec = &job.spec;
    let replica = spec.replicas.get(role).cloned().unwrap_or_default();
    let image = replica.image.clone().or_else(|| spec.image.clone());
    let container = Container {
        name: container_name(spec.framework).into(),
        image: Some(image.unwrap_or_default()),
        command: Some(replica_argv(job, role).iter().map(|a| literal(a)).collect()),
        working_dir: spec.working_dir.clone().filter(|d| d.starts_with('/')),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some(port_name(spec.framework).into()),
            container_port: i32::from(cluster_port(job, role)),
            ..ContainerPort::default()
        }]),
        resources: resources(&replica.resources),
        volume_mounts: non_empty_vec(volumes::mounts(ctx, |_| true, false)),
        ..Container::default()
    };
    let mut annotations = job.metadata.annotations.clone();
    annotations.extend(profiles::pod_annotations(
        &spec.cloud,
        ctx.profile,
        &replica.resources,
    ));
    let mut template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: non_empty(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: restart_policy.map(Into::into),
            volumes: non_empty_vec(volumes::pod_volumes(ctx, |_| true)),
            node_selector: non_empty(profiles::node_selector(
                &spec.cloud,
                ctx.profile,
                &replica.resources,
            )),
            tolerations: (replica.resources.gpus() > 0).then(gpu_toleration),
            termination_grace_period_seconds: spec
                .run_policy
                .termination_grace_period_seconds
                .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            ..PodSpec::default()
        }),
    };
    if gang_on_pods {
        gang::apply_to_pod(ctx, &mut template);
    }
    template
}

/// GPU node pools are commonly tainted `nvidia.com/gpu:NoSchedule`; GPU pods tolerate it.
fn gpu_toleration() -> Vec<Toleration> {
    vec![Toleration {
        key: Some(GPU_RESOURCE.into()),
        operator: Some("Exists".into()),
        effect: Some("NoSchedule".into()),
        ..Toleration::default()
    }]
}

/// `None` for an empty list, so the field is left out.
pub fn non_empty_vec<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}
