//! The CLI's Kubernetes client: a connection from the kubeconfig, and the TrainingJob calls
//! behind `submit`, `get`, `describe`, `logs`, `wait`, `delete`, `suspend` and `resume`.
//! Every failure is turned into a message that says what to do: no kubeconfig, an
//! unreachable server, the CRD not installed, RBAC forbidding the call.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context as _, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::KubeConfigOptions;
use kube::{Api, ResourceExt};
use serde_json::json;
use trainctl_core::ReplicaId;
use trainctl_spec::{Experiment, TrainingJob};

use crate::crd::TrainingJobResource;
use crate::experiment::{
    owned_trials, trial_selector, ExperimentResource, ExperimentStatus, TrialView,
};
use crate::names::{job_selector, log_archive_name, pod_attempt};

/// The group/version the TrainingJob CRD serves.
const GROUP_VERSION: &str = "trainctl.dev/v1alpha1";

/// A client bound to one namespace of one cluster.
pub struct Cluster {
    client: kube::Client,
    /// The namespace the verbs act in.
    pub namespace: String,
    /// The API server's URL, for messages.
    pub url: String,
}

/// Where one attempt's log is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// Archived by the operator when the pod was deleted.
    Archived(String),
    /// The pod still exists: read (or follow) it live.
    Live(String),
}

/// One attempt of one replica, and where its log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    /// The replica.
    pub replica: ReplicaId,
    /// The attempt (0 is the first run).
    pub attempt: u32,
    /// Where its log is.
    pub source: LogSource,
}

impl Cluster {
    /// Connects with the kubeconfig (`context`, else its current context; else the
    /// in-cluster config); the namespace defaults to the context's.
    pub async fn connect(context: Option<&str>, namespace: Option<&str>) -> Result<Cluster> {
        let mut config = match context {
            Some(name) => {
                let options = KubeConfigOptions {
                    context: Some(name.into()),
                    ..KubeConfigOptions::default()
                };
                kube::Config::from_kubeconfig(&options)
                    .await
                    .with_context(|| format!("cannot use kubeconfig context {name:?}"))?
            }
            None => kube::Config::infer().await.map_err(|e| {
                // kube's error repeats its causes in its own message; say the last one once.
                let mut cause: &dyn std::error::Error = &e;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                let file = std::env::var("KUBECONFIG")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "~/.kube/config".into());
                let missing = cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound);
                if missing {
                    anyhow!(
                        "no Kubernetes configuration found: set KUBECONFIG, create \
                         ~/.kube/config, or run inside a cluster ({file}: {cause})"
                    )
                } else {
                    anyhow!("cannot use the Kubernetes configuration {file}: {cause}")
                }
            })?,
        };
        config.connect_timeout = Some(std::time::Duration::from_secs(10));
        let url = config.cluster_url.to_string();
        let namespace = namespace.map_or(config.default_namespace.clone(), str::to_string);
        let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
        Ok(Cluster {
            client,
            namespace,
            url,
        })
    }

    /// The underlying kube-rs client, for calls beyond TrainingJobs (doctor's checks).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn jobs(&self) -> Api<TrainingJobResource> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates the TrainingJob of a job file (in its own namespace if it names one, which
    /// must then agree with the connection's).
    pub async fn create(&self, job: &TrainingJob) -> Result<TrainingJobResource> {
        if let Some(ns) = job
            .metadata
            .namespace
            .as_deref()
            .filter(|ns| *ns != self.namespace)
        {
            anyhow::bail!(
                "the job file's namespace {ns:?} does not match the namespace {:?}; \
                 drop metadata.namespace or pass -n {ns}",
                self.namespace
            );
        }
        let resource = TrainingJobResource::from_job(job, &self.namespace);
        match self.jobs().create(&PostParams::default(), &resource).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(e)) if e.code == 409 => Err(anyhow!(
                "trainingjob {} already exists in namespace {}; delete it first or pick another name",
                job.name(),
                self.namespace
            )),
            Err(e) => Err(self.explain(e, "create trainingjobs").await),
        }
    }

    /// Every TrainingJob of the namespace, by name.
    pub async fn list(&self) -> Result<Vec<TrainingJobResource>> {
        let mut items = match self.jobs().list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => return Err(self.explain(e, "list trainingjobs").await),
        };
        items.sort_by_key(|j| j.name_any());
        Ok(items)
    }

    /// One TrainingJob.
    pub async fn get(&self, name: &str) -> Result<TrainingJobResource> {
        match self.jobs().get(name).await {
            Ok(job) => Ok(job),
            Err(e) => Err(self.explain_named(e, name, "get trainingjobs").await),
        }
    }

    /// Deletes a TrainingJob; its pods, services and archived logs go with it.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.jobs().delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain_named(e, name, "delete trainingjobs").await),
        }
    }

    /// Sets `spec.runPolicy.suspend`: the operator stops (or starts again) every pod.
    pub async fn set_suspended(&self, name: &str, suspended: bool) -> Result<()> {
        let patch = json!({"spec": {"runPolicy": {"suspend": suspended}}});
        match self
            .jobs()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain_named(e, name, "patch trainingjobs").await),
        }
    }

    /// The job's pods, by name.
    pub async fn job_pods(&self, name: &str) -> Result<Vec<Pod>> {
        let params = ListParams::default().labels(&job_selector(name));
        match self.pods().list(&params).await {
            Ok(list) => {
                let mut pods = list.items;
                pods.sort_by_key(|p| p.name_any());
                Ok(pods)
            }
            Err(e) => Err(self.explain(e, "list pods").await),
        }
    }

    /// The Events about the job and its pods, oldest first.
    pub async fn job_events(&self, name: &str, pods: &[Pod]) -> Result<Vec<Event>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = match events.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => return Err(self.explain(e, "list events").await),
        };
        let pod_names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
        let mut about: Vec<Event> = list
            .into_iter()
            .filter(|e| {
                let involved = e.involved_object.name.clone().unwrap_or_default();
                involved == name || pod_names.contains(&involved)
            })
            .collect();
        about.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
        Ok(about)
    }

    /// The attempts whose logs exist (archived ones, then the live pod), for one replica or
    /// all, one attempt or all.
    pub async fn log_sources(
        &self,
        job: &TrainingJobResource,
        replica: Option<ReplicaId>,
        attempt: Option<u32>,
    ) -> Result<Vec<AttemptLog>> {
        let name = job.name_any();
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let archive = match maps.get_opt(&log_archive_name(&name)).await {
            Ok(map) => map.and_then(|m| m.data).unwrap_or_default(),
            Err(e) => return Err(self.explain(e, "get configmaps").await),
        };
        let pods = self.job_pods(&name).await?;
        let wanted = |id: ReplicaId, n: u32| {
            replica.is_none_or(|r| r == id) && attempt.is_none_or(|a| a == n)
        };
        Ok(attempt_sources(job, &archive, &pods)
            .into_iter()
            .filter(|a| wanted(a.replica, a.attempt))
            .collect())
    }

    /// Whether the job has reached its end (Succeeded or Failed).
    pub async fn finished(&self, name: &str) -> Result<bool> {
        let job = self.get(name).await?;
        Ok(job.status.is_some_and(|s| s.outcome().is_some()))
    }

    /// The whole log of one attempt so far: from its pod while it exists, else from the
    /// archive; `None` when neither has it (not started yet, or nothing printed). A pod
    /// that cannot give its log (still starting, just deleted) counts as having none yet.
    pub async fn attempt_log(
        &self,
        job: &TrainingJobResource,
        replica: ReplicaId,
        attempt: u32,
    ) -> Result<Option<String>> {
        let sources = self.log_sources(job, Some(replica), Some(attempt)).await?;
        Ok(match sources.into_iter().next().map(|s| s.source) {
            Some(LogSource::Archived(text)) => Some(text),
            Some(LogSource::Live(pod)) => self.pod_log(&pod).await.ok(),
            None => None,
        })
    }

    /// A live pod's log so far.
    pub async fn pod_log(&self, pod: &str) -> Result<String> {
        match self.pods().logs(pod, &LogParams::default()).await {
            Ok(text) => Ok(text),
            Err(e) => Err(self.explain(e, "get pods/log").await),
        }
    }

    /// A follower of a live pod's log: every line once, through dropped connections, until
    /// the pod ends.
    pub fn log_follower(&self, pod: &str) -> crate::log_follow::LogFollower {
        crate::log_follow::LogFollower::new(self.pods(), pod, None)
    }

    /// A live pod's log, streamed until the pod ends.
    pub async fn follow_pod_log(&self, pod: &str) -> Result<impl futures::AsyncBufRead + use<>> {
        let params = LogParams {
            follow: true,
            ..LogParams::default()
        };
        match self.pods().log_stream(pod, &params).await {
            Ok(stream) => Ok(stream),
            Err(e) => Err(self.explain(e, "get pods/log").await),
        }
    }

    /// An error about a named job: a 404 means the job, or the whole CRD, is missing.
    async fn explain_named(&self, error: kube::Error, name: &str, action: &str) -> anyhow::Error {
        match &error {
            kube::Error::Api(e) if e.code == 404 && self.crd_installed().await => anyhow!(
                "trainingjob {name:?} not found in namespace {}",
                self.namespace
            ),
            _ => self.explain(error, action).await,
        }
    }

    /// A message that says what went wrong and what to do.
    async fn explain(&self, error: kube::Error, action: &str) -> anyhow::Error {
        match &error {
            kube::Error::Api(e) if e.code == 403 => anyhow!(
                "forbidden: you may not {action} in namespace {} ({}); ask a cluster admin \
                 for a Role that allows it (charts/trainctl has one)",
                self.namespace,
                e.message
            ),
            kube::Error::Api(e) if e.code == 404 && !self.crd_installed().await => anyhow!(
                "the TrainingJob CRD is not installed on {}: run `trainctl crd | kubectl apply -f -` \
                 and install the operator (helm install trainctl charts/trainctl)",
                self.url
            ),
            kube::Error::Api(e) => anyhow!("the API server refused to {action}: {}", e.message),
            _ => anyhow!(
                "cannot reach the Kubernetes API server at {}: {error}; check the kubeconfig \
                 context and that the cluster is up",
                self.url
            ),
        }
    }

    /// Whether the API server serves trainingjobs.trainctl.dev.
    async fn crd_installed(&self) -> bool {
        self.client
            .list_api_group_resources(GROUP_VERSION)
            .await
            .is_ok_and(|list| list.resources.iter().any(|r| r.name == "trainingjobs"))
    }
}

/// The attempts of every replica of `job` whose logs exist, from its log archive and its
/// pods (archived attempts first, then the live pod's), by replica.
pub fn attempt_sources(
    job: &TrainingJobResource,
    archive: &BTreeMap<String, String>,
    pods: &[Pod],
) -> Vec<AttemptLog> {
    let spec = job.to_job();
    let mut out = Vec::new();
    for id in ReplicaId::all_of(&spec) {
        let prefix = format!("{id}.attempt-");
        let mut found: BTreeMap<u32, LogSource> = archive
            .iter()
            .filter_map(|(key, text)| {
                let n = key
                    .strip_prefix(&prefix)?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()?;
                Some((n, LogSource::Archived(text.clone())))
            })
            .collect();
        if let Some(pod) = pods
            .iter()
            .find(|p| p.name_any() == trainctl_core::wiring::replica_object_name(&spec, id))
        {
            found.insert(pod_attempt(pod), LogSource::Live(pod.name_any()));
        }
        out.extend(found.into_iter().map(|(attempt, source)| AttemptLog {
            replica: id,
            attempt,
            source,
        }));
    }
    out
}

impl Cluster {
    fn experiments_api(&self) -> Api<ExperimentResource> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates the Experiment of an experiment file.
    pub async fn create_experiment(&self, exp: &Experiment) -> Result<ExperimentResource> {
        let resource = ExperimentResource::from_experiment(exp, &self.namespace);
        match self
            .experiments_api()
            .create(&PostParams::default(), &resource)
            .await
        {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(e)) if e.code == 409 => Err(anyhow!(
                "experiment {:?} already exists in namespace {}; delete it first \
                 (trainctl delete experiment {} --kube) or pick another name",
                exp.name(),
                self.namespace,
                exp.name()
            )),
            Err(e) => Err(self.explain(e, "create experiments").await),
        }
    }

    /// One Experiment with its trials (by number).
    pub async fn experiment(&self, name: &str) -> Result<(ExperimentResource, Vec<TrialView>)> {
        self.find_experiment(name).await?.ok_or_else(|| {
            anyhow!(
                "experiment {name:?} not found in namespace {} (trainctl get experiments --kube lists them)",
                self.namespace
            )
        })
    }

    /// One Experiment with its trials (by number); None when the namespace has none by
    /// that name.
    pub async fn find_experiment(
        &self,
        name: &str,
    ) -> Result<Option<(ExperimentResource, Vec<TrialView>)>> {
        let resource = match self.experiments_api().get_opt(name).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.explain(e, "get experiments").await),
        };
        let trials = self.trials_of(&resource).await?;
        Ok(Some((resource, trials)))
    }

    /// Resumes an Experiment, as `resume experiment` does locally: `max_trials` becomes its
    /// `maxTrialCount` (never below the trials it has), and an ended experiment is set
    /// running again (phase Created, reason ExperimentResumed) for the operator, which goes
    /// on suggesting from every trial it has. Writes carry the resource version they were
    /// computed from; one that raced with the operator is computed again.
    pub async fn resume_experiment(&self, name: &str, max_trials: Option<u64>) -> Result<()> {
        let api = self.experiments_api();
        for _ in 0..10 {
            let (resource, trials) = self.experiment(name).await?;
            let status = resource.status.clone().unwrap_or_default();
            match max_trials {
                Some(n) if (n as usize) < trials.len() => anyhow::bail!(
                    "--max-trials {n} is below the {} trials already run",
                    trials.len()
                ),
                None if !status.has_ended() => anyhow::bail!(
                    "experiment {name:?} is {}: the operator runs it; nothing to resume \
                     (--max-trials N raises its budget)",
                    resource.phase()
                ),
                _ => {}
            }
            let mut version = resource.resource_version();
            if let Some(n) = max_trials {
                let patch = json!({
                    "metadata": {"resourceVersion": version},
                    "spec": {"maxTrialCount": n},
                });
                match api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(patched) => version = patched.resource_version(),
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(self.explain(e, "patch experiments").await),
                }
            }
            if !status.has_ended() {
                return Ok(());
            }
            let message = match max_trials {
                Some(n) => format!("resumed with maxTrialCount {n}"),
                None => "resumed".to_string(),
            };
            let patch = json!({
                "metadata": {"resourceVersion": version},
                "status": ExperimentStatus::resume_patch(&message),
            });
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(self.explain(e, "patch experiments/status").await),
            }
        }
        anyhow::bail!("experiment {name:?} kept changing while it was resumed; try again")
    }

    /// Every Experiment of the namespace with its trials, by name.
    pub async fn experiments(&self) -> Result<Vec<(ExperimentResource, Vec<TrialView>)>> {
        let mut items = match self.experiments_api().list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => return Err(self.explain(e, "list experiments").await),
        };
        items.sort_by_key(|e| e.name_any());
        let mut out = Vec::new();
        for resource in items {
            let trials = self.trials_of(&resource).await?;
            out.push((resource, trials));
        }
        Ok(out)
    }

    /// Deletes an Experiment; its trials, their pods and services go with it.
    pub async fn delete_experiment(&self, name: &str) -> Result<()> {
        match self
            .experiments_api()
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Err(anyhow!(
                "experiment {name:?} not found in namespace {}",
                self.namespace
            )),
            Err(e) => Err(self.explain(e, "delete experiments").await),
        }
    }

    /// The trials an Experiment owns, by number.
    async fn trials_of(&self, exp: &ExperimentResource) -> Result<Vec<TrialView>> {
        let params = ListParams::default().labels(&trial_selector(&exp.name_any()));
        match self.jobs().list(&params).await {
            Ok(list) => Ok(owned_trials(exp, list.items)),
            Err(e) => Err(self.explain(e, "list trainingjobs").await),
        }
    }
}
