//! The objects of one replica as an operator creates them: a Pod (the plain target's pod
//! template, restarted by the operator rather than by the kubelet) and the same headless
//! Service the plain target emits. Names, labels and wiring env are the renderer's.

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use trainctl_core::wiring::replica_object_name;
use trainctl_core::ReplicaId;
use trainctl_spec::TrainingJob;

use super::meta::{replica_labels, replica_selector};
use super::{env, gang, plain, pod, Ctx, RenderOptions};

/// A replica's Pod and headless Service.
pub struct ReplicaObjects {
    /// The pod `<job>-<role>-<i>`, restartPolicy Never.
    pub pod: Pod,
    /// The headless Service `<job>-<role>-<i>` selecting it.
    pub service: Service,
}

/// The Pod and Service of replica `id` of `job` in `namespace`.
pub fn replica_objects(job: &TrainingJob, namespace: &str, id: ReplicaId) -> ReplicaObjects {
    let ctx = operator_ctx(job, namespace);
    let template = pod::template(
        &ctx,
        id.role,
        replica_labels(&ctx, id),
        env::replica(&ctx, id),
        Some("Never"),
        true,
    );
    let meta = template.metadata.unwrap_or_default();
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(replica_object_name(&ctx.job, id)),
            namespace: Some(ctx.namespace.clone()),
            ..meta
        },
        spec: template.spec,
        status: None,
    };
    let service = plain::replica_service(&ctx, id, replica_selector(&ctx, id));
    ReplicaObjects { pod, service }
}

/// The job's PodGroup (Volcano or coscheduling), when it is gang scheduled by one.
pub fn pod_group(job: &TrainingJob, namespace: &str) -> Option<Value> {
    gang::objects(&operator_ctx(job, namespace))
        .into_iter()
        .next()
}

/// The queue label a TrainingJob object carries when Kueue admits it; such a job is
/// created suspended, and Kueue unsuspends it (admission) or suspends it (preemption).
pub fn kueue_queue_label(job: &TrainingJob, namespace: &str) -> Option<(String, String)> {
    gang::kueue_queue_label(&operator_ctx(job, namespace))
}

fn operator_ctx(job: &TrainingJob, namespace: &str) -> Ctx {
    Ctx::new(
        job,
        &RenderOptions {
            namespace: Some(namespace.to_string()),
            ..RenderOptions::default()
        },
    )
}
