//! The JobSet target: one `jobset.x-k8s.io/v1alpha2` JobSet with a replicated job per role.
//! The JobSet succeeds with the chief (or master, or workers) and then stops the rest (the
//! parameter servers); it restarts the whole gang on a failure, up to backoffLimit times.
//! Per-replica headless Services keep the wiring env's DNS names.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use trainctl_core::ReplicaId;
use trainctl_spec::{ReplicaType, RestartPolicy, SuccessPolicy};

use super::meta::{role_labels, workload_metadata};
use super::plain::{job_spec, replica_service, saturating_i32};
use super::RenderError;
use super::{env, gang, image_cache, pod, retry, tensorboard, to_value, volumes, Ctx};

/// JobSet's label and annotation of a pod's job index within its replicated job.
const JOB_INDEX: &str = "jobset.sigs.k8s.io/job-index";

/// Every object of the JobSet target, in apply order.
pub fn objects(ctx: &Ctx) -> Result<Vec<Value>, RenderError> {
    let mut out = image_cache::objects(ctx);
    out.extend(volumes::share_objects(ctx));
    out.extend(gang::objects(ctx));
    for id in ReplicaId::all_of(&ctx.job) {
        let selector = BTreeMap::from([
            (
                "jobset.sigs.k8s.io/jobset-name".to_string(),
                ctx.job.name().to_string(),
            ),
            (
                "jobset.sigs.k8s.io/replicatedjob-name".to_string(),
                id.role.to_string(),
            ),
            (JOB_INDEX.to_string(), id.index.to_string()),
        ]);
        out.push(to_value(&replica_service(ctx, id, selector)));
    }
    let mut replicated = Vec::new();
    for (role, r) in ctx.job.spec.replicas.roles() {
        let env = env::role_template(
            ctx,
            role,
            &format!("metadata.annotations['{JOB_INDEX}']"),
            &[],
            "jobset",
        )?;
        let retry = retry::whole_gang(&ctx.job.spec.run_policy);
        let labels = role_labels(ctx, role);
        let template = pod::template(
            ctx,
            role,
            labels.clone(),
            env,
            Some(retry.pod_restart_policy),
            true,
        );
        let mut spec = job_spec(ctx, retry, template);
        // The JobSet is suspended as a whole.
        spec.suspend = None;
        replicated.push(json!({
            "name": role.as_str(),
            "replicas": r.count,
            "template": {"metadata": {"labels": labels}, "spec": to_value(&spec)},
        }));
    }
    let run = &ctx.job.spec.run_policy;
    let mut failure = json!({
        "maxRestarts": if run.restart_policy == RestartPolicy::Never { 0 } else { run.backoff_limit },
    });
    if run.restart_policy == RestartPolicy::ExitCode {
        failure["rules"] = json!([{
            "name": "fatal-exit-code",
            "action": "FailJobSet",
            "onJobFailureReasons": ["PodFailurePolicy"],
        }]);
    }
    let mut spec = json!({
        "replicatedJobs": replicated,
        "successPolicy": success_policy(ctx),
        "failurePolicy": failure,
    });
    if gang::suspended(ctx) {
        spec["suspend"] = json!(true);
    }
    if let Some(ttl) = run.ttl_seconds_after_finished {
        spec["ttlSecondsAfterFinished"] = json!(saturating_i32(ttl));
    }
    let metadata = workload_metadata(ctx, gang::workload_labels(ctx));
    out.push(json!({
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": metadata,
        "spec": spec,
    }));
    out.extend(tensorboard::objects(ctx));
    Ok(out)
}

/// The chief or master decides when there is one; else any worker's Job completing
/// (JobSet cannot single out worker 0), or all of them under AllWorkers.
fn success_policy(ctx: &Ctx) -> Value {
    let replicas = &ctx.job.spec.replicas;
    let decider = [ReplicaType::Chief, ReplicaType::Master]
        .into_iter()
        .find(|r| replicas.count(*r) > 0);
    match (decider, ctx.job.spec.run_policy.success_policy) {
        (Some(role), _) => json!({"operator": "Any", "targetReplicatedJobs": [role.as_str()]}),
        (None, SuccessPolicy::AllWorkers) => {
            json!({"operator": "All", "targetReplicatedJobs": ["worker"]})
        }
        (None, SuccessPolicy::ChiefOrWorker0) => {
            json!({"operator": "Any", "targetReplicatedJobs": ["worker"]})
        }
    }
}
