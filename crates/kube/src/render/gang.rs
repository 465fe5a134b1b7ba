//! Gang scheduling on Kubernetes: every replica starts together or none does. Volcano and
//! the coscheduling plugin gang the pods of a PodGroup; Kueue admits a suspended workload
//! whole.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{json, Value};
use trainctl_spec::GangScheduler;

use super::meta::job_labels;
use super::Ctx;

/// Pod annotation naming a Volcano PodGroup.
const VOLCANO_GROUP: &str = "scheduling.k8s.io/group-name";
/// Pod label naming a coscheduling PodGroup.
const COSCHEDULING_GROUP: &str = "scheduling.x-k8s.io/pod-group";
/// Workload label naming a Kueue LocalQueue.
const KUEUE_QUEUE: &str = "kueue.x-k8s.io/queue-name";

/// The replicas that must be placed together.
fn min_member(ctx: &Ctx) -> u32 {
    ctx.job.spec.replicas.total()
}

/// The PodGroup of the job, for Volcano or coscheduling.
pub fn objects(ctx: &Ctx) -> Vec<Value> {
    let metadata = json!({
        "name": ctx.job.name(),
        "namespace": ctx.namespace,
        "labels": job_labels(ctx),
    });
    match ctx.gang {
        Some(GangScheduler::Volcano) => vec![json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1",
            "kind": "PodGroup",
            "metadata": metadata,
            "spec": {"minMember": min_member(ctx), "queue": ctx.job.spec.scheduling.queue},
        })],
        Some(GangScheduler::Coscheduling) => vec![json!({
            "apiVersion": "scheduling.x-k8s.io/v1alpha1",
            "kind": "PodGroup",
            "metadata": metadata,
            "spec": {"minMember": min_member(ctx)},
        })],
        Some(GangScheduler::Kueue) | None => Vec::new(),
    }
}

/// Puts a replica pod into the job's PodGroup.
pub fn apply_to_pod(ctx: &Ctx, template: &mut PodTemplateSpec) {
    let name = ctx.job.name().to_string();
    let meta = template.metadata.get_or_insert_with(Default::default);
    match ctx.gang {
        Some(GangScheduler::Volcano) => {
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(VOLCANO_GROUP.into(), name);
            if let Some(spec) = template.spec.as_mut() {
                spec.scheduler_name = Some("volcano".into());
            }
        }
        Some(GangScheduler::Coscheduling) => {
            meta.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(COSCHEDULING_GROUP.into(), name);
        }
        Some(GangScheduler::Kueue) | None => {}
    }
}

/// Labels of the top-level workload (the Kueue queue).
pub fn workload_labels(ctx: &Ctx) -> BTreeMap<String, String> {
    let mut labels = job_labels(ctx);
    labels.extend(kueue_queue_label(ctx));
    labels
}

/// The label naming the Kueue LocalQueue, when Kueue admits the workload.
pub fn kueue_queue_label(ctx: &Ctx) -> Option<(String, String)> {
    (ctx.gang == Some(GangScheduler::Kueue))
        .then(|| (KUEUE_QUEUE.into(), ctx.job.spec.scheduling.queue.clone()))
}

/// Whether the workload is created suspended: asked for, or waiting for Kueue to admit it.
pub fn suspended(ctx: &Ctx) -> bool {
    ctx.job.spec.run_policy.suspend || ctx.gang == Some(GangScheduler::Kueue)
}

/// Kubeflow's `runPolicy.schedulingPolicy`: its operator makes the PodGroup itself.
pub fn kubeflow_scheduling_policy(ctx: &Ctx) -> Option<Value> {
    matches!(
        ctx.gang,
        Some(GangScheduler::Volcano | GangScheduler::Coscheduling)
    )
    .then(|| {
        json!({
            "minAvailable": min_member(ctx),
            "queue": ctx.job.spec.scheduling.queue,
        })
    })
}
