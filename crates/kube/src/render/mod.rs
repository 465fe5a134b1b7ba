//! From one TrainingJob, every object a cluster needs to run it, for one of four targets:
//! plain Kubernetes objects, a JobSet, a Kubeflow TFJob/PyTorchJob, or the TrainingJob
//! custom resource itself. Built-in kinds are k8s-openapi structs; other projects' kinds are
//! JSON values shaped after their CRDs.

mod env;
mod gang;
mod image_cache;
mod jobset;
pub(crate) mod kubeflow;
mod meta;
mod plain;
mod pod;
mod ranked;
mod replica;
mod retry;
mod tensorboard;
mod volumes;

use serde::Serialize;
use serde_json::Value;
use trainctl_spec::{CloudProfile, GangScheduler, TrainingJob};

use crate::profiles::{self, ProfileTable};

pub use meta::{COMPONENT, JOB_NAME, REPLICA_INDEX, REPLICA_TYPE};
pub use pod::{container_name, port_name};
pub use replica::{kueue_queue_label, pod_group, replica_objects, ReplicaObjects};
pub use tensorboard::{
    is_under, tensorboard_objects, CollectorAccess, TensorboardObjects, COLLECTOR_CONTAINER,
    DEFAULT_COLLECTOR_IMAGE, TENSORBOARD_COMPONENT,
};

/// What kind of objects to render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Target {
    /// Per replica a batch/v1 Job and a headless Service; needs nothing installed.
    #[default]
    Plain,
    /// One `jobset.x-k8s.io/v1alpha2` JobSet with a replicated job per role.
    Jobset,
    /// A Kubeflow `kubeflow.org/v1` TFJob or PyTorchJob.
    Kubeflow,
    /// The `trainctl.dev/v1alpha1` TrainingJob resource, for the trainctl operator.
    Trainingjob,
}

/// Choices made on the command line, each overriding the job file.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// What kind of objects.
    pub target: Target,
    /// The cloud profile, instead of `spec.cloud.profile`.
    pub profile: Option<CloudProfile>,
    /// The namespace, instead of `metadata.namespace` (default `default`).
    pub namespace: Option<String>,
    /// The gang scheduler; giving one turns gang scheduling on.
    pub gang: Option<GangScheduler>,
}

/// Why a job cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// A replica has no image.
    #[error("{path}: {role} replicas need an image on Kubernetes; set spec.image (or {path})")]
    MissingImage {
        /// The role without an image.
        role: String,
        /// The field to set for this role only.
        path: String,
    },
    /// A target cannot give each replica of a role the env it needs.
    #[error(
        "--target {target} cannot set {variable} for {role} replicas: it is not the replica \
         index in every replica; use --target plain or --target kubeflow for this job"
    )]
    PerReplicaEnv {
        /// The target.
        target: &'static str,
        /// The variable.
        variable: String,
        /// The role.
        role: String,
    },
    /// A target runs a PyTorch master and its workers from one template, and they differ.
    #[error(
        "--target {target} runs the PyTorch master and workers as one indexed job (RANK from \
         the completion index), so they need the same command, image, env and resources, but \
         their {what} differ; make spec.replicas.master and spec.replicas.worker alike, or use \
         --target plain or --target kubeflow for this job"
    )]
    RanksDiffer {
        /// The target.
        target: &'static str,
        /// What differs.
        what: String,
    },
}

/// A job with the command line's choices applied, and what every renderer needs.
pub(crate) struct Ctx {
    /// The job, with the profile and namespace chosen.
    pub job: TrainingJob,
    /// The namespace everything is rendered into.
    pub namespace: String,
    /// The cloud profile's conventions.
    pub profile: &'static ProfileTable,
    /// The gang scheduler, when replicas must start together.
    pub gang: Option<GangScheduler>,
}

impl Ctx {
    fn new(job: &TrainingJob, opts: &RenderOptions) -> Ctx {
        let mut job = job.clone();
        if let Some(p) = opts.profile {
            job.spec.cloud.profile = p;
        }
        let namespace = opts
            .namespace
            .clone()
            .or_else(|| job.metadata.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        job.metadata.namespace = Some(namespace.clone());
        let gang = opts.gang.or(job
            .spec
            .scheduling
            .gang
            .then(|| job.spec.scheduling.gang_scheduler.unwrap_or_default()));
        if let Some(g) = gang {
            job.spec.scheduling.gang = true;
            job.spec.scheduling.gang_scheduler = Some(g);
        }
        Ctx {
            profile: profiles::table(job.spec.cloud.profile),
            job,
            namespace,
            gang,
        }
    }
}

/// Every object of `job` for `opts.target`, in the order they should be applied.
pub fn render(job: &TrainingJob, opts: &RenderOptions) -> Result<Vec<Value>, RenderError> {
    let ctx = Ctx::new(job, opts);
    for (role, r) in ctx.job.spec.replicas.roles() {
        if r.image.is_none() && ctx.job.spec.image.is_none() {
            return Err(RenderError::MissingImage {
                role: role.to_string(),
                path: format!("spec.replicas.{role}.image"),
            });
        }
    }
    objects(&ctx, opts.target)
}

/// The plain objects of a job for lint, rendered even when it has no image (a job meant
/// for this machine only).
pub(crate) fn render_for_lint(job: &TrainingJob) -> Vec<Value> {
    objects(&Ctx::new(job, &RenderOptions::default()), Target::Plain).unwrap_or_default()
}

fn objects(ctx: &Ctx, target: Target) -> Result<Vec<Value>, RenderError> {
    match target {
        Target::Plain => Ok(plain::objects(ctx)),
        Target::Jobset => jobset::objects(ctx),
        Target::Kubeflow => kubeflow::objects(ctx),
        Target::Trainingjob => Ok(vec![to_value(&crate::output::job_document(&ctx.job))]),
    }
}

/// A serializable object as JSON. Our types and k8s-openapi's always serialize.
pub(crate) fn to_value<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}
