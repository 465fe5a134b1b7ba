//! The JobSet target: one `jobset.x-k8s.io/v1alpha2` JobSet with a replicated job per role.
//! The JobSet succeeds with the chief (or master, or workers) and then stops the rest (the
//! parameter servers); it restarts the whole gang on a failure, up to backoffLimit times.
//! Per-replica headless Services keep the wiring env's DNS names. A PyTorch job with a
//! master and workers runs as one indexed job instead ([`ranked`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use trainctl_core::state_machine::{success_deciders, Deciders};
use trainctl_core::ReplicaId;
use trainctl_spec::{ReplicaType, RestartPolicy};

use k8s_openapi::api::core::v1::EnvVar;

use super::meta::{role_labels, workload_metadata};
use super::plain::{job_spec, replica_service, saturating_i32};
use super::RenderError;
use super::{env, gang, image_cache, pod, ranked, retry, tensorboard, to_value, volumes, Ctx};

/// JobSet's label and annotation of a pod's job index within its replicated job.
const JOB_INDEX: &str = "jobset.sigs.k8s.io/job-index";

/// What a JobSet holds for a job: its replicated jobs, the Services in front of their
/// pods, what decides success, and the JobSet's network settings when it names pods itself.
pub struct Layout {
    /// Services the wiring env's host names need.
    pub services: Vec<Value>,
    /// `spec.replicatedJobs`.
    pub replicated_jobs: Vec<Value>,
    /// `spec.successPolicy`.
    pub success_policy: Value,
    /// `spec.network`, if set.
    pub network: Option<Value>,
}

/// Every object of the JobSet target, in apply order.
pub fn objects(ctx: &Ctx) -> Result<Vec<Value>, RenderError> {
    let layout = if ranked::applies(ctx) {
        ranked::layout(ctx)?
    } else {
        per_role(ctx)?
    };
    let mut out = image_cache::objects(ctx);
    out.extend(volumes::share_objects(ctx));
    out.extend(gang::objects(ctx));
    out.extend(layout.services);
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
        "replicatedJobs": layout.replicated_jobs,
        "successPolicy": layout.success_policy,
        "failurePolicy": failure,
    });
    if let Some(network) = layout.network {
        spec["network"] = network;
    }
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

/// A replicated job per role, a Job per replica whose pod reads its index from the JobSet's
/// job-index annotation, and per replica a headless Service `<job>-<role>-<i>` selecting it.
fn per_role(ctx: &Ctx) -> Result<Layout, RenderError> {
    let services = ReplicaId::all_of(&ctx.job)
        .into_iter()
        .map(|id| {
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
            to_value(&replica_service(ctx, id, selector))
        })
        .collect();
    let mut replicated_jobs = Vec::new();
    for (role, r) in ctx.job.spec.replicas.roles() {
        let env = env::role_template(
            ctx,
            role,
            &format!("metadata.annotations['{JOB_INDEX}']"),
            &[],
            "jobset",
        )?;
        replicated_jobs.push(replicated_job(
            ctx,
            role.as_str(),
            role,
            ReplicatedJob {
                jobs: r.count,
                pods_per_job: 1,
            },
            role_labels(ctx, role),
            env,
        ));
    }
    Ok(Layout {
        services,
        replicated_jobs,
        success_policy: success_policy(ctx),
        network: None,
    })
}

/// How many Jobs a replicated job has, and how many pods each Job runs.
pub struct ReplicatedJob {
    /// The replicated job's `replicas`.
    pub jobs: u32,
    /// Completions and parallelism of each Job; more than one makes it an Indexed Job.
    pub pods_per_job: u32,
}

/// One entry of `spec.replicatedJobs`: Jobs whose pods run `role`'s container with `env`,
/// each failing on its first failed pod so that the JobSet restarts the whole gang.
pub fn replicated_job(
    ctx: &Ctx,
    name: &str,
    role: ReplicaType,
    size: ReplicatedJob,
    labels: BTreeMap<String, String>,
    env: Vec<EnvVar>,
) -> Value {
    let retry = retry::whole_gang(&ctx.job.spec.run_policy);
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
    if size.pods_per_job > 1 {
        let pods = saturating_i32(u64::from(size.pods_per_job));
        spec.completions = Some(pods);
        spec.parallelism = Some(pods);
        spec.completion_mode = Some("Indexed".into());
    }
    json!({
        "name": name,
        "replicas": size.jobs,
        "template": {"metadata": {"labels": labels}, "spec": to_value(&spec)},
    })
}

/// Core's deciders of success: the chief or master, else any worker's Job completing
/// (JobSet cannot single out worker 0), or all of them under AllWorkers.
fn success_policy(ctx: &Ctx) -> Value {
    match success_deciders(&ctx.job) {
        Deciders::One(id) => json!({"operator": "Any", "targetReplicatedJobs": [id.role.as_str()]}),
        Deciders::AllWorkers => json!({"operator": "All", "targetReplicatedJobs": ["worker"]}),
    }
}
