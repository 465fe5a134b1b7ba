//! A PyTorch job with a master and workers on a JobSet. Workers need `RANK = index + 1`,
//! which no pod field of a per-role replicated job gives; so when the master and the
//! workers run the same command, image, env and resources, every rank runs as one pod of a
//! single Indexed Job (replicated job `node`, completions = parallelism = world size):
//! `RANK` is the pod's completion index, and `MASTER_ADDR` is the JobSet host name of rank
//! 0, `<jobset>-node-0-0.<jobset>` (JobSet names pods `<jobset>-<replicated job>-<job
//! index>-<pod index>` under the subdomain of its headless Service, the JobSet's name).
//!
//! What differs from the per-replica wiring: `TRAINCTL_REPLICA_TYPE` is `node` and
//! `TRAINCTL_REPLICA_INDEX` the rank for every pod, and the JobSet succeeds when every rank
//! has finished (DDP ranks finish together) rather than when the master alone has.

use serde_json::json;
use trainctl_spec::{Framework, ReplicaType};

use super::env;
use super::jobset::{replicated_job, Layout, ReplicatedJob};
use super::meta::{job_labels, REPLICA_TYPE};
use super::{Ctx, RenderError};

/// The replicated job that runs every rank.
pub const NODE: &str = "node";
/// The annotation an Indexed Job gives each pod with its completion index.
const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Whether the job is PyTorch with a master and workers: ranks a role index cannot give.
pub fn applies(ctx: &Ctx) -> bool {
    let replicas = &ctx.job.spec.replicas;
    ctx.job.spec.framework == Framework::Pytorch
        && replicas.count(ReplicaType::Master) > 0
        && replicas.count(ReplicaType::Worker) > 0
}

/// The JobSet layout of every rank as one Indexed Job; fails when the master and the
/// workers differ in what their pods run.
pub fn layout(ctx: &Ctx) -> Result<Layout, RenderError> {
    check_alike(ctx)?;
    let name = ctx.job.name();
    let master_addr = format!("{name}-{NODE}-0-0.{name}");
    let env = env::ranked_template(
        ctx,
        &format!("metadata.annotations['{COMPLETION_INDEX}']"),
        &master_addr,
        NODE,
        "jobset",
    )?;
    let mut labels = job_labels(ctx);
    labels.insert(REPLICA_TYPE.into(), NODE.into());
    let size = ReplicatedJob {
        jobs: 1,
        pods_per_job: ctx.job.spec.replicas.total(),
    };
    Ok(Layout {
        services: Vec::new(),
        replicated_jobs: vec![replicated_job(
            ctx,
            NODE,
            ReplicaType::Master,
            size,
            labels,
            env,
        )],
        success_policy: json!({"operator": "All", "targetReplicatedJobs": [NODE]}),
        network: Some(json!({"enableDNSHostnames": true, "publishNotReadyAddresses": true})),
    })
}

/// Fails naming the first of command, image, env and resources in which the master and
/// the workers differ.
fn check_alike(ctx: &Ctx) -> Result<(), RenderError> {
    let job = &ctx.job;
    let spec_of = |role| job.spec.replicas.get(role).cloned().unwrap_or_default();
    let (master, worker) = (spec_of(ReplicaType::Master), spec_of(ReplicaType::Worker));
    let image = |r: &trainctl_spec::ReplicaSpec| r.image.clone().or_else(|| job.spec.image.clone());
    let differences = [
        (
            "commands",
            job.command_of(ReplicaType::Master) != job.command_of(ReplicaType::Worker),
        ),
        ("images", image(&master) != image(&worker)),
        ("env", master.env != worker.env),
        ("resources", master.resources != worker.resources),
    ];
    match differences.into_iter().find(|(_, differs)| *differs) {
        Some((what, _)) => Err(RenderError::RanksDiffer {
            target: "jobset",
            what: what.to_string(),
        }),
        None => Ok(()),
    }
}
