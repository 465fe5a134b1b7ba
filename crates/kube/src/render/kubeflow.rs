//! The Kubeflow target: a `kubeflow.org/v1` TFJob (tensorflow and generic jobs) or
//! PyTorchJob for clusters with the training operator. The operator creates the pods and
//! Services and sets the wiring env (TF_CONFIG, MASTER_ADDR, ...) itself; the template
//! carries the rest of the env and the replica index from the operator's pod label.

use serde_json::{json, Map, Value};
use trainctl_spec::{CleanPodPolicy, Framework, ReplicaType, RestartPolicy, SuccessPolicy};

use super::meta::{role_labels, workload_metadata};
use super::plain::{saturating_i32, saturating_i64};
use super::{env, gang, image_cache, pod, tensorboard, to_value, volumes, Ctx, RenderError};

/// The operator's pod label with the replica index.
const INDEX_LABEL: &str = "training.kubeflow.org/replica-index";

/// The variables the training operator sets on every replica.
const OPERATOR_ENV: &[&str] = &[
    "TF_CONFIG",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
    "PET_NNODES",
    "PET_NODE_RANK",
    "PET_NPROC_PER_NODE",
    "PYTHONUNBUFFERED",
];

/// Kubeflow's name of a replica type (the key in `tfReplicaSpecs`).
pub fn replica_type_name(role: ReplicaType) -> &'static str {
    match role {
        ReplicaType::Chief => "Chief",
        ReplicaType::Evaluator => "Evaluator",
        ReplicaType::Master => "Master",
        ReplicaType::Ps => "PS",
        ReplicaType::Worker => "Worker",
    }
}

/// The kind and the replica-spec field of a framework's Kubeflow job.
pub fn kind_of(framework: Framework) -> (&'static str, &'static str) {
    match framework {
        Framework::Pytorch => ("PyTorchJob", "pytorchReplicaSpecs"),
        Framework::Tensorflow | Framework::Generic => ("TFJob", "tfReplicaSpecs"),
    }
}

/// Kubeflow's spelling of a restart policy.
fn restart_policy(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::Never => "Never",
        RestartPolicy::OnFailure => "OnFailure",
        RestartPolicy::ExitCode => "ExitCode",
    }
}

/// Kubeflow's spelling of a clean-pod policy.
fn clean_pod_policy(policy: CleanPodPolicy) -> &'static str {
    match policy {
        CleanPodPolicy::Running => "Running",
        CleanPodPolicy::All => "All",
        CleanPodPolicy::None => "None",
    }
}

/// Every object of the Kubeflow target, in apply order.
pub fn objects(ctx: &Ctx) -> Result<Vec<Value>, RenderError> {
    let spec = &ctx.job.spec;
    let mut replica_specs = Map::new();
    for (role, r) in spec.replicas.roles() {
        let env = env::role_template(
            ctx,
            role,
            &format!("metadata.labels['{INDEX_LABEL}']"),
            OPERATOR_ENV,
            "kubeflow",
        )?;
        let template = pod::template(ctx, role, role_labels(ctx, role), env, None, false);
        replica_specs.insert(
            replica_type_name(role).to_string(),
            json!({
                "replicas": r.count,
                "restartPolicy": restart_policy(spec.run_policy.restart_policy),
                "template": to_value(&template),
            }),
        );
    }
    let run = &spec.run_policy;
    let mut run_policy = json!({
        "cleanPodPolicy": clean_pod_policy(run.clean_pod_policy),
        "backoffLimit": run.backoff_limit,
    });
    if let Some(deadline) = run.active_deadline_seconds {
        run_policy["activeDeadlineSeconds"] = json!(saturating_i64(deadline));
    }
    if let Some(ttl) = run.ttl_seconds_after_finished {
        run_policy["ttlSecondsAfterFinished"] = json!(saturating_i32(ttl));
    }
    if gang::suspended(ctx) {
        run_policy["suspend"] = json!(true);
    }
    if let Some(policy) = gang::kubeflow_scheduling_policy(ctx) {
        run_policy["schedulingPolicy"] = policy;
    }
    let (kind, specs_field) = kind_of(spec.framework);
    let mut job_spec = json!({"runPolicy": run_policy, specs_field: replica_specs});
    if kind == "TFJob" && run.success_policy == SuccessPolicy::AllWorkers {
        job_spec["successPolicy"] = json!("AllWorkers");
    }
    let metadata = workload_metadata(ctx, gang::workload_labels(ctx));
    let mut out = image_cache::objects(ctx);
    out.extend(volumes::share_objects(ctx));
    out.push(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": kind,
        "metadata": metadata,
        "spec": job_spec,
    }));
    out.extend(tensorboard::objects(ctx));
    Ok(out)
}
