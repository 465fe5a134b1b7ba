//! The verbs on the TrainingJobs of a Kubernetes namespace, over `trainctl_kube_client`;
//! `describe` is in `cluster_describe`, `logs` in `cluster_logs`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kube::ResourceExt;
use trainctl_kube::Finding;
use trainctl_kube_client::client::Cluster;
use trainctl_kube_client::job_metrics::{collect_job, job_metrics};
use trainctl_kube_client::TrainingJobResource;
use trainctl_metrics::series::Run;
use trainctl_spec::TrainingJob;

use crate::{Backend, JobSummary, LogRequest, Waited};

/// How long `wait` lets a job go without a status before it says the operator may be
/// missing.
const OPERATOR_GRACE: Duration = Duration::from_secs(5);
/// How often `collect` reads the job's logs.
const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// The TrainingJobs of one namespace of a cluster.
pub struct ClusterBackend {
    /// The client.
    pub cluster: Cluster,
}

impl ClusterBackend {
    /// Connects with the kubeconfig (`context`, else its current context; else the
    /// in-cluster config); the namespace defaults to the context's.
    pub async fn connect(context: Option<&str>, namespace: Option<&str>) -> Result<Self> {
        let cluster = Cluster::connect(context, namespace).await?;
        Ok(ClusterBackend { cluster })
    }
}

/// Seconds since a Kubernetes timestamp (0 without one).
pub(crate) fn seconds_since(
    time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> f64 {
    time.map_or(0.0, |t| {
        (k8s_openapi::jiff::Timestamp::now() - t.0)
            .total(k8s_openapi::jiff::Unit::Second)
            .unwrap_or(0.0)
    })
}

/// A job's line in `get`: `running/total` replicas from its status (or its spec before any
/// status).
fn summary(job: &TrainingJobResource) -> Result<JobSummary> {
    let status = job.status.clone().unwrap_or_default();
    let active: u32 = status.replica_statuses.values().map(|r| r.active).sum();
    Ok(JobSummary {
        name: job.name_any(),
        phase: job.phase(),
        replicas: format!("{active}/{}", job.spec.0.replicas.total()),
        restarts: status.restarts,
        age: seconds_since(job.metadata.creation_timestamp.as_ref()),
        wide: vec![status.reason.unwrap_or_else(|| "-".into())],
        object: serde_json::to_value(job)?,
    })
}

impl Backend for ClusterBackend {
    fn scope(&self) -> String {
        format!(" in namespace {}", self.cluster.namespace)
    }

    fn wide_columns(&self) -> &'static [&'static str] {
        &["REASON"]
    }

    fn lint(&self, job: &TrainingJob) -> Vec<Finding> {
        trainctl_kube::lint_job(job)
    }

    async fn submit(&mut self, job: &TrainingJob, _: &Path) -> Result<()> {
        self.cluster.create(job).await?;
        Ok(())
    }

    async fn job(&mut self, name: &str) -> Result<TrainingJob> {
        Ok(self.cluster.get(name).await?.to_job())
    }

    async fn list(&mut self, name: Option<&str>) -> Result<Vec<JobSummary>> {
        let jobs = match name {
            Some(n) => vec![self.cluster.get(n).await?],
            None => self.cluster.list().await?,
        };
        jobs.iter().map(summary).collect()
    }

    async fn describe(&mut self, name: &str) -> Result<String> {
        crate::cluster_describe::describe(&self.cluster, name).await
    }

    async fn logs(
        &mut self,
        job: &TrainingJob,
        request: &LogRequest,
        out: &mut dyn Write,
    ) -> Result<()> {
        crate::cluster_logs::logs(&self.cluster, job.name(), request, out).await
    }

    async fn wait(&mut self, name: &str, timeout: Option<Duration>) -> Result<Waited> {
        let started = Instant::now();
        let mut warned = false;
        loop {
            let job = self.cluster.get(name).await?;
            let status = job.status.clone().unwrap_or_default();
            if let Some(outcome) = status.outcome() {
                return Ok(Waited::Ended(outcome));
            }
            if status.phase.is_none() && !warned && started.elapsed() >= OPERATOR_GRACE {
                eprintln!(
                    "warning: trainingjob/{name} has no status after {}s: is the trainctl operator \
                     running? (helm install trainctl charts/trainctl, or `trainctl operator`)",
                    OPERATOR_GRACE.as_secs()
                );
                warned = true;
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Ok(Waited::TimedOut(format!(
                    "timed out waiting for trainingjob/{name} (phase {})",
                    job.phase()
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn delete(&mut self, name: &str, _: Duration) -> Result<()> {
        self.cluster.delete(name).await
    }

    async fn set_suspended(&mut self, name: &str, suspended: bool) -> Result<()> {
        self.cluster.set_suspended(name, suspended).await
    }

    async fn resume_lost(&mut self) -> Result<Vec<String>> {
        bail!(
            "resume --lost resumes this machine's jobs whose supervisor was lost; \
             the operator supervises cluster jobs and does not lose them"
        )
    }

    async fn metrics(&mut self, name: &str) -> Result<Vec<(String, Run)>> {
        job_metrics(&self.cluster, name).await
    }

    async fn collect(
        &mut self,
        name: &str,
        dir: &Path,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        collect_job(&self.cluster, name, dir, COLLECT_EVERY, progress).await
    }
}
