//! One interface over the two places a job runs: [`Backend`], with [`local::LocalBackend`]
//! (this machine, over `trainctl-local`) and [`cluster::ClusterBackend`] (a Kubernetes
//! namespace, over `trainctl-kube-client`). The CLI writes each verb once over it.
//!
//! Also here: how jobs look to users ([`view`]), and running a local job in this process
//! with its logs and metrics ([`run`]).

pub mod cluster;
mod cluster_describe;
mod cluster_logs;
pub mod experiment;
pub mod kube_doctor;
pub mod kube_top;
pub mod kube_usage;
pub mod local;
pub mod prometheus;
pub mod resource_history;
pub mod run;
pub mod top;
pub mod view;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use trainctl_core::state_machine::Outcome;
use trainctl_core::ReplicaId;
use trainctl_kube::Finding;
use trainctl_metrics::series::Run;
use trainctl_spec::TrainingJob;

/// One job as `get` shows it.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// The job's name.
    pub name: String,
    /// Its phase (Pending until an engine has seen it).
    pub phase: String,
    /// `running/total` replicas.
    pub replicas: String,
    /// Restarts over the whole job.
    pub restarts: u32,
    /// Seconds since it was created.
    pub age: f64,
    /// The values of the backend's [`Backend::wide_columns`].
    pub wide: Vec<String>,
    /// The object `-o json|yaml` prints.
    pub object: Value,
}

/// Which logs `logs` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogRequest {
    /// Only this replica (all, each line prefixed with `[replica] `, when None).
    pub replica: Option<ReplicaId>,
    /// Only this attempt (the latest of each replica when None).
    pub attempt: Option<u32>,
    /// Keep printing until the job ends.
    pub follow: bool,
    /// Only the last N lines of each attempt.
    pub tail: Option<usize>,
}

/// How `wait` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited {
    /// The job succeeded or failed.
    Ended(Outcome),
    /// It had not ended when the timeout came; why, for the user.
    TimedOut(String),
}

/// The verbs on jobs, the same on this machine and on a cluster. Errors say what to do.
// The CLI drives it on one thread through generics, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Where the jobs are, for messages: empty here, ` in namespace NS` on a cluster.
    fn scope(&self) -> String;
    /// The columns `get -o wide` adds.
    fn wide_columns(&self) -> &'static [&'static str];
    /// The lint findings that matter to this backend.
    fn lint(&self, job: &TrainingJob) -> Vec<Finding>;
    /// Creates and starts a job (replicas run in `workdir` on this machine).
    async fn submit(&mut self, job: &TrainingJob, workdir: &Path) -> Result<()>;
    /// The job as submitted.
    async fn job(&mut self, name: &str) -> Result<TrainingJob>;
    /// One job, or every job.
    async fn list(&mut self, name: Option<&str>) -> Result<Vec<JobSummary>>;
    /// What `describe` prints.
    async fn describe(&mut self, name: &str) -> Result<String>;
    /// Writes the logs `request` picks of `job` to `out`, following them when it says so.
    async fn logs(
        &mut self,
        job: &TrainingJob,
        request: &LogRequest,
        out: &mut dyn Write,
    ) -> Result<()>;
    /// Waits until the job has ended, or for `timeout`.
    async fn wait(&mut self, name: &str, timeout: Option<Duration>) -> Result<Waited>;
    /// Stops the job (SIGTERM, then SIGKILL after `grace` here) and removes it.
    async fn delete(&mut self, name: &str, grace: Duration) -> Result<()>;
    /// Stops every replica and keeps the job, or starts them again.
    async fn set_suspended(&mut self, name: &str, suspended: bool) -> Result<()>;
    /// Resumes every job suspended because its supervisor was lost; returns their names.
    async fn resume_lost(&mut self) -> Result<Vec<String>>;
    /// Every run of the job with its scalar series.
    async fn metrics(&mut self, name: &str) -> Result<Vec<(String, Run)>>;
    /// Records the job's metrics under `dir` until it ends; `progress` gets the points each
    /// pass added.
    async fn collect(
        &mut self,
        name: &str,
        dir: &Path,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()>;
}

/// The replica `--replica` names (None when it names none), checked against the job.
pub fn selected_replica(job: &TrainingJob, asked: Option<&str>) -> Result<Option<ReplicaId>> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let id: ReplicaId = asked.parse().map_err(|e: String| anyhow!(e))?;
    let all = ReplicaId::all_of(job);
    if !all.contains(&id) {
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        bail!(
            "job {} has no replica {id}; it has {}",
            job.name(),
            names.join(", ")
        );
    }
    Ok(Some(id))
}
