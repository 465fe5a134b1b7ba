//! One reconcile of one TrainingJob: read the job fresh and its pods from the pod cache
//! (once the cache shows the job's earlier pod writes), ask core for the plan (the same
//! `plan` the local engine drives), record the status first, then create, restart or stop
//! pods. Recording before acting makes a restart of the operator at any point
//! safe: the attempt numbers in the status say which pods are current, so a pod is never
//! created twice and a restart is never counted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use trainctl_core::plan::{is_expired, plan, Launch, Plan};
use trainctl_core::state_machine::{JobPhase, Observation};
use trainctl_core::ReplicaId;
use trainctl_kube::render::{pod_group, replica_objects};

use crate::archive::archive_pod_log;
use crate::crd::TrainingJobResource;
use crate::events::record_event;
use crate::expectations::{Expect, Settled};
use crate::names::{job_selector, MANAGER};
use crate::observe::{
    is_tracked, pod_attempt, replica_state, role_counts, ATTEMPT_LABEL, TRACKING_FINALIZER,
};
use crate::status::JobStatus;
use crate::tracking::release;
use crate::{Context, Error};

/// How often a job is looked at even when nothing changes.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a job is looked at again while the pod cache has not made its first list.
const CACHE_NOT_READY_RETRY: Duration = Duration::from_millis(100);

/// Seconds since the epoch, and the same as RFC 3339.
fn clock() -> (f64, String) {
    let now = k8s_openapi::jiff::Timestamp::now();
    (now.as_millisecond() as f64 / 1000.0, now.to_string())
}

fn parse_time(text: &Option<String>) -> Option<f64> {
    let t: k8s_openapi::jiff::Timestamp = text.as_deref()?.parse().ok()?;
    Some(t.as_millisecond() as f64 / 1000.0)
}

/// Reconciles the job the controller was woken for, in a span naming the job.
#[tracing::instrument(skip_all, fields(
    namespace = trigger.namespace().unwrap_or_default(),
    name = trigger.name_any(),
))]
pub async fn reconcile(
    trigger: Arc<TrainingJobResource>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_job(&trigger, &ctx).await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.as_ref().err().map(Error::kind));
    if result.is_ok() {
        ctx.retries.succeeded(&job_key(&trigger));
    }
    result
}

/// `namespace/name` of a job, the key of its retry delays.
pub fn job_key(job: &TrainingJobResource) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

async fn reconcile_job(trigger: &TrainingJobResource, ctx: &Context) -> Result<Requeue, Error> {
    let ns = trigger.namespace().unwrap_or_default();
    if let Some(later) = wait_for_pod_cache(trigger, ctx) {
        return Ok(later);
    }
    let jobs: Api<TrainingJobResource> = Api::namespaced(ctx.client.clone(), &ns);
    // The trigger may be an older copy from the watch cache: read the newest.
    let Some(resource) = jobs.get_opt(&trigger.name_any()).await? else {
        ctx.metrics.forget(&trigger.name_any(), &ns);
        ctx.expectations.forget(&trigger.uid().unwrap_or_default());
        return Ok(Requeue::await_change());
    };
    if resource.meta().deletion_timestamp.is_some() {
        // Foreground deletion: the pods go first, so none may wait on the operator.
        let reconciler = Reconciler::new(ctx, resource, ns);
        for pod in reconciler.current_pods().values() {
            reconciler.release(pod).await?;
        }
        return Ok(Requeue::await_change());
    }
    Reconciler::new(ctx, resource, ns).run().await
}

/// When the pod cache cannot be acted on for this job yet (it has not listed the pods, or
/// does not show the pod writes of the job's earlier reconciles): when to look again. The
/// watch event that brings a missing write wakes the job sooner.
fn wait_for_pod_cache(job: &TrainingJobResource, ctx: &Context) -> Option<Requeue> {
    if !ctx.pods.is_ready() {
        return Some(Requeue::requeue(CACHE_NOT_READY_RETRY));
    }
    let uid = job.uid().unwrap_or_default();
    let pods = ctx.pods.pods_of(&uid);
    match ctx.expectations.settle(&uid, &pods, Instant::now()) {
        Settled::Yes => None,
        Settled::Waiting(left) => {
            ctx.metrics.observe_cache_wait();
            Some(Requeue::requeue(left))
        }
        Settled::GaveUp(unseen) => {
            tracing::warn!(
                "the pod watch has not shown these writes of job {} for {:?}, going on \
                 without them: {}",
                job_key(job),
                crate::expectations::GIVE_UP_AFTER,
                unseen.join(", ")
            );
            None
        }
    }
}

struct Reconciler<'a> {
    ctx: &'a Context,
    resource: TrainingJobResource,
    job: trainctl_spec::TrainingJob,
    ns: String,
    pods: Api<Pod>,
    now: f64,
    now_text: String,
}

impl<'a> Reconciler<'a> {
    fn new(ctx: &'a Context, resource: TrainingJobResource, ns: String) -> Self {
        let (now, now_text) = clock();
        Reconciler {
            job: resource.to_job(),
            pods: Api::namespaced(ctx.client.clone(), &ns),
            ctx,
            resource,
            ns,
            now,
            now_text,
        }
    }

    async fn run(self) -> Result<Requeue, Error> {
        let old = self.resource.status.clone().unwrap_or_default();
        if let Some(requeue) = self.expire(&old).await? {
            return Ok(requeue);
        }
        let pods = self.current_pods();
        let attempts: BTreeMap<ReplicaId, u32> = old
            .attempts
            .iter()
            .filter_map(|(id, attempt)| Some((id.parse().ok()?, *attempt)))
            .collect();
        let replicas: Vec<_> = ReplicaId::all_of(&self.job)
            .into_iter()
            .map(|id| {
                let attempt = attempts.get(&id).copied().unwrap_or(0);
                replica_state(id, pods.get(&id).map(|p| &**p), attempt)
            })
            .collect();
        let observation = Observation {
            now: self.now,
            admitted: true,
            started_at: parse_time(&old.start_time),
            restarts: old.restarts,
            replicas: replicas.clone(),
            ended: old.outcome(),
            finished_at: parse_time(&old.completion_time),
            attempts,
            ..Observation::default()
        };
        let plan = plan(&self.job, &observation, self.ctx.config.backoff);
        let decision = &plan.decision;

        let mut status = old.clone();
        status.apply(decision, &self.now_text);
        status.replicas = replicas.len() as u32;
        status.replica_statuses = role_counts(&replicas);
        status.restarts = plan.restarts;
        status.attempts = plan
            .attempts
            .iter()
            .map(|(id, attempt)| (id.to_string(), *attempt))
            .collect();
        if plan.started_at.is_some() && status.start_time.is_none() {
            status.start_time = Some(self.now_text.clone());
        }
        if status != old {
            self.write_status(&status).await?;
        }
        self.ctx
            .metrics
            .set_phase(&self.job.metadata.name, &self.ns, decision.phase);
        // A new job's first Pending says only that the operator accepted it: the Created
        // condition says so, and the pods' creation gets its own Event (as Kubeflow's
        // operators do), so it costs no write of its own.
        let accepted = old.phase.is_none() && decision.phase == JobPhase::Pending;
        if old.phase.as_deref() != status.phase.as_deref() && !accepted {
            let warning = decision.phase == JobPhase::Failed;
            record_event(
                &self.ctx.client,
                &self.resource,
                warning,
                &decision.reason,
                &decision.message,
            )
            .await;
        }
        self.act(&plan, &pods).await?;
        Ok(self.next_look(&plan))
    }

    /// Deletes a finished job whose TTL has passed; says when to look again otherwise.
    async fn expire(&self, status: &JobStatus) -> Result<Option<Requeue>, Error> {
        if !is_expired(&self.job, parse_time(&status.completion_time), self.now) {
            return Ok(None);
        }
        let jobs: Api<TrainingJobResource> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        match jobs
            .delete(&self.job.metadata.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Some(Requeue::await_change()))
    }

    /// The job's pods by replica, from the pod cache.
    fn current_pods(&self) -> BTreeMap<ReplicaId, Arc<Pod>> {
        let uid = self.resource.uid().unwrap_or_default();
        let mut out = BTreeMap::new();
        for pod in self.ctx.pods.pods_of(&uid) {
            let labels = pod.labels();
            let id = format!(
                "{}-{}",
                labels
                    .get(trainctl_kube::render::REPLICA_TYPE)
                    .map_or("", String::as_str),
                labels
                    .get(trainctl_kube::render::REPLICA_INDEX)
                    .map_or("", String::as_str)
            );
            if let Ok(id) = id.parse::<ReplicaId>() {
                out.insert(id, pod);
            }
        }
        out
    }

    async fn write_status(&self, status: &JobStatus) -> Result<(), Error> {
        let jobs: Api<TrainingJobResource> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let patch = json!({
            "metadata": {"resourceVersion": self.resource.resource_version()},
            "status": status,
        });
        jobs.patch_status(
            &self.job.metadata.name,
            &PatchParams {
                field_manager: Some(MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }

    /// Carries out the decision: services and pods to create, pods to replace or stop.
    async fn act(&self, plan: &Plan, pods: &BTreeMap<ReplicaId, Arc<Pod>>) -> Result<(), Error> {
        if !plan.launches.is_empty() {
            self.ensure_pod_group().await?;
            let first_start = self
                .resource
                .status
                .as_ref()
                .is_none_or(|s| s.start_time.is_none());
            self.ensure_services(first_start).await?;
            crate::tensorboard::ensure_tensorboard(
                &self.ctx.client,
                &self.job,
                &self.ns,
                self.owner(),
                &self.ctx.config.collector_image,
                &self.post(),
            )
            .await?;
        }
        let mut removed = BTreeSet::new();
        let mut created = Vec::new();
        for &Launch { id, attempt, .. } in &plan.launches {
            if let Some(old) = pods.get(&id) {
                self.remove_pod(id, old).await?;
                removed.insert(id);
            }
            if self.create_pod(id, attempt).await? {
                created.push(format!("{id} (attempt {attempt})"));
            }
        }
        self.tell(false, "SuccessfulCreatePod", "created pods", &created)
            .await;
        let mut stopped = Vec::new();
        for id in &plan.stops {
            if let Some(pod) = pods.get(id) {
                self.remove_pod(*id, pod).await?;
                removed.insert(*id);
                stopped.push(id.to_string());
            }
        }
        self.tell(false, "SuccessfulDeletePod", "stopped pods", &stopped)
            .await;
        // A pod deleted from outside waits on its finalizer until its deletion is counted
        // (a newer attempt is due) or the job has ended; the pods of a deleted job are
        // released by the orphan sweeper, so a finished job's pods cost no extra write.
        // A pod of an attempt the status has moved past (a suspension ends the attempt; a
        // reconcile that recorded that may have failed before deleting it) goes too.
        let ended = plan.decision.phase.is_terminal();
        for (id, pod) in pods.iter().filter(|(id, _)| !removed.contains(id)) {
            let current = plan.attempts.get(id).copied().unwrap_or(0);
            let deleting = pod.metadata.deletion_timestamp.is_some();
            let stale = pod_attempt(pod) < current;
            if !deleting && stale {
                self.remove_pod(*id, pod).await?;
            } else if is_tracked(pod) && deleting && (ended || stale) {
                self.release_pod(*id, pod).await?;
            }
        }
        Ok(())
    }

    /// One Event for one kind of pod action of this reconcile (none when nothing was done).
    async fn tell(&self, warning: bool, reason: &str, what: &str, pods: &[String]) {
        if pods.is_empty() {
            return;
        }
        let message = format!("{what} {}", pods.join(", "));
        record_event(&self.ctx.client, &self.resource, warning, reason, &message).await;
    }

    /// Archives the log of a pod that is done with, then lets it go (drops its tracking
    /// finalizer). A pod deleted from outside gets an Event saying so.
    async fn release_pod(&self, id: ReplicaId, pod: &Pod) -> Result<(), Error> {
        archive_pod_log(&self.ctx.client, &self.resource, id, pod_attempt(pod), pod).await?;
        self.release(pod).await?;
        if is_tracked(pod) && pod.metadata.deletion_timestamp.is_some() {
            let what = format!("{id} (attempt {})", pod_attempt(pod));
            self.tell(
                true,
                "PodDeleted",
                "deleted from outside (its log is archived):",
                &[what],
            )
            .await;
        }
        Ok(())
    }

    /// Drops a pod's tracking finalizer, and expects the cache to show it.
    async fn release(&self, pod: &Pod) -> Result<(), Error> {
        if is_tracked(pod) {
            release(&self.pods, pod).await?;
            self.expect(pod, Expect::Released);
        }
        Ok(())
    }

    fn expect(&self, pod: &Pod, expect: Expect) {
        if let Some(job) = self.resource.uid() {
            self.ctx.expectations.expect(&job, pod, expect);
        }
    }

    /// Creates the PodGroup of a gang-scheduled job before any of its pods.
    async fn ensure_pod_group(&self) -> Result<(), Error> {
        let Some(group) = pod_group(&self.job, &self.ns) else {
            return Ok(());
        };
        let mut group: kube::api::DynamicObject = serde_json::from_value(group)?;
        group.metadata.owner_references = self.owner().map(|o| vec![o]);
        let gvk = kube::core::GroupVersionKind::try_from(
            group
                .types
                .as_ref()
                .ok_or_else(|| Error::Invalid("PodGroup without apiVersion".into()))?,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "podgroups");
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), &self.ns, &resource);
        ignore_exists(api.create(&self.post(), &group).await).map(|_| ())
    }

    /// Creates the headless Services; after the job's first start they exist already,
    /// unless deleted from outside, so they are only checked when `all_new` is false.
    async fn ensure_services(&self, all_new: bool) -> Result<(), Error> {
        let services: Api<Service> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        let existing: Vec<String> = if all_new {
            Vec::new()
        } else {
            services
                .list_metadata(
                    &ListParams::default().labels(&job_selector(&self.job.metadata.name)),
                )
                .await?
                .items
                .into_iter()
                .map(|s| s.name_any())
                .collect()
        };
        for id in ReplicaId::all_of(&self.job) {
            let mut service = replica_objects(&self.job, &self.ns, id).service;
            if existing.contains(&service.name_any()) {
                continue;
            }
            service.metadata.owner_references = self.owner().map(|o| vec![o]);
            ignore_exists(services.create(&self.post(), &service).await)?;
        }
        Ok(())
    }

    /// Creates the pod of one attempt; says whether this call created it.
    async fn create_pod(&self, id: ReplicaId, attempt: u32) -> Result<bool, Error> {
        let mut pod = replica_objects(&self.job, &self.ns, id).pod;
        pod.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(ATTEMPT_LABEL.into(), attempt.to_string());
        pod.metadata.owner_references = self.owner().map(|o| vec![o]);
        pod.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some(spec) = pod.spec.as_mut() {
            for c in &mut spec.containers {
                c.env
                    .get_or_insert_with(Vec::new)
                    .push(k8s_openapi::api::core::v1::EnvVar {
                        name: "TRAINCTL_ATTEMPT".into(),
                        value: Some(attempt.to_string()),
                        value_from: None,
                    });
            }
        }
        match self.pods.create(&self.post(), &pod).await {
            Ok(created) => {
                self.expect(&created, Expect::Created);
                Ok(true)
            }
            other => ignore_exists(other),
        }
    }

    /// Archives a pod's log, drops its tracking finalizer (so its deletion is not taken for
    /// one from outside), then deletes it unless it is being deleted already.
    async fn remove_pod(&self, id: ReplicaId, pod: &Pod) -> Result<(), Error> {
        self.release_pod(id, pod).await?;
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: pod.uid().map(|uid| kube::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.pods.delete(&pod.name_any(), &params).await {
            Ok(_) => {
                self.expect(pod, Expect::Deleted);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn owner(&self) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
        self.resource.controller_owner_ref(&())
    }

    fn post(&self) -> PostParams {
        PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        }
    }

    /// When to look again without a change: when the plan says (a pending restart, the
    /// deadline, the TTL), and at the latest after [`RESYNC`].
    fn next_look(&self, plan: &Plan) -> Requeue {
        let wait = plan
            .wake_at
            .map_or(RESYNC.as_secs_f64(), |at| at - self.now);
        Requeue::requeue(Duration::from_secs_f64(
            wait.clamp(0.05, RESYNC.as_secs_f64()),
        ))
    }
}

/// A create that finds the object already there has nothing left to do; says whether
/// this call created it.
pub(crate) fn ignore_exists<T>(result: kube::Result<T>) -> Result<bool, Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "AlreadyExists" => Ok(false),
        Err(e) => Err(e.into()),
    }
}
