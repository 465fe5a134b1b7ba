//! One reconcile of one TrainingJob: read the job and its pods fresh, ask the core state
//! machine (the same `decide` the local engine drives), record the status first, then
//! create, restart or stop pods. Recording before acting makes a restart of the operator
//! at any point safe: the attempt numbers in the status say which pods are current, so a
//! pod is never created twice and a restart is never counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use trainctl_core::state_machine::{decide, Action, Decision, Observation};
use trainctl_core::ReplicaId;
use trainctl_kube::render::{pod_group, replica_objects};

use crate::archive::archive_pod_log;
use crate::crd::TrainingJobResource;
use crate::events::record_event;
use crate::names::{job_selector, MANAGER};
use crate::observe::{pod_attempt, replica_state, role_counts, ATTEMPT_LABEL};
use crate::status::JobStatus;
use crate::{Context, Error};

/// How often a job is looked at even when nothing changes.
const RESYNC: Duration = Duration::from_secs(300);

/// Seconds since the epoch, and the same as RFC 3339.
fn clock() -> (f64, String) {
    let now = k8s_openapi::jiff::Timestamp::now();
    (now.as_millisecond() as f64 / 1000.0, now.to_string())
}

fn parse_time(text: &Option<String>) -> Option<f64> {
    let t: k8s_openapi::jiff::Timestamp = text.as_deref()?.parse().ok()?;
    Some(t.as_millisecond() as f64 / 1000.0)
}

/// Reconciles the job the controller was woken for.
pub async fn reconcile(
    trigger: Arc<TrainingJobResource>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_job(&trigger, &ctx).await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.is_err());
    result
}

async fn reconcile_job(trigger: &TrainingJobResource, ctx: &Context) -> Result<Requeue, Error> {
    let ns = trigger.namespace().unwrap_or_default();
    let jobs: Api<TrainingJobResource> = Api::namespaced(ctx.client.clone(), &ns);
    // The trigger may be an older copy from the watch cache: read the newest.
    let Some(resource) = jobs.get_opt(&trigger.name_any()).await? else {
        ctx.metrics.forget(&trigger.name_any(), &ns);
        return Ok(Requeue::await_change());
    };
    if resource.meta().deletion_timestamp.is_some() {
        return Ok(Requeue::await_change());
    }
    Reconciler::new(ctx, resource, ns).run().await
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
        let pods = self.current_pods().await?;
        let ids = ReplicaId::all_of(&self.job);
        let attempt = |id: ReplicaId| old.attempts.get(&id.to_string()).copied().unwrap_or(0);
        let replicas: Vec<_> = ids
            .iter()
            .map(|&id| replica_state(id, pods.get(&id), attempt(id)))
            .collect();
        let observation = Observation {
            now: self.now,
            admitted: true,
            started_at: parse_time(&old.start_time),
            restarts: old.restarts,
            replicas: replicas.clone(),
            ended: old.outcome(),
        };
        let decision = decide(&self.job, &observation, self.ctx.config.backoff);

        let mut status = old.clone();
        status.apply(&decision, &self.now_text);
        status.replicas = ids.len() as u32;
        status.replica_statuses = role_counts(&replicas);
        let due: Vec<ReplicaId> = self.due_restarts(&decision);
        for id in &due {
            status.restarts += 1;
            status.attempts.insert(id.to_string(), attempt(*id) + 1);
        }
        let starting = decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::Start(_)))
            || !due.is_empty();
        if starting && status.start_time.is_none() {
            status.start_time = Some(self.now_text.clone());
        }
        if status != old {
            self.write_status(&status).await?;
        }
        self.ctx
            .metrics
            .set_phase(&self.job.metadata.name, &self.ns, decision.phase);
        if old.phase.as_deref() != status.phase.as_deref() {
            let warning = decision.phase == trainctl_core::state_machine::JobPhase::Failed;
            record_event(
                &self.ctx.client,
                &self.resource,
                warning,
                &decision.reason,
                &decision.message,
            )
            .await;
        }
        self.act(&decision, &pods, &status).await?;
        Ok(self.next_look(&decision, &status))
    }

    /// Deletes a finished job whose TTL has passed; says when to look again otherwise.
    async fn expire(&self, status: &JobStatus) -> Result<Option<Requeue>, Error> {
        let (Some(ttl), Some(done)) = (
            self.job.spec.run_policy.ttl_seconds_after_finished,
            parse_time(&status.completion_time),
        ) else {
            return Ok(None);
        };
        if self.now < done + ttl as f64 {
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

    /// The job's pods by replica (pods of other owners with the same labels are ignored).
    async fn current_pods(&self) -> Result<BTreeMap<ReplicaId, Pod>, Error> {
        let uid = self.resource.uid();
        let list = self
            .pods
            .list(&ListParams::default().labels(&job_selector(&self.job.metadata.name)))
            .await?;
        let mut out = BTreeMap::new();
        for pod in list.items {
            let owned = pod
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref());
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
            if let (true, Ok(id)) = (owned, id.parse::<ReplicaId>()) {
                out.insert(id, pod);
            }
        }
        Ok(out)
    }

    /// Restarts whose backoff has passed.
    fn due_restarts(&self, decision: &Decision) -> Vec<ReplicaId> {
        decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Restart { id, not_before } if *not_before <= self.now => Some(*id),
                _ => None,
            })
            .collect()
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
    async fn act(
        &self,
        decision: &Decision,
        pods: &BTreeMap<ReplicaId, Pod>,
        status: &JobStatus,
    ) -> Result<(), Error> {
        let due = self.due_restarts(decision);
        let starts: Vec<ReplicaId> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Start(id) => Some(*id),
                _ => None,
            })
            .chain(due)
            .collect();
        if !starts.is_empty() {
            self.ensure_pod_group().await?;
            self.ensure_services(pods.is_empty()).await?;
        }
        for id in starts {
            let attempt = status.attempts.get(&id.to_string()).copied().unwrap_or(0);
            if let Some(old) = pods.get(&id) {
                self.remove_pod(id, old).await?;
            }
            self.create_pod(id, attempt).await?;
        }
        for action in &decision.actions {
            if let Action::Stop(id) = action {
                if let Some(pod) = pods.get(id) {
                    self.remove_pod(*id, pod).await?;
                }
            }
        }
        Ok(())
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
        ignore_exists(api.create(&self.post(), &group).await)
    }

    /// Creates the headless Services; when some pods exist they exist already, unless
    /// deleted from outside, so they are only checked when `all_new` is false.
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

    async fn create_pod(&self, id: ReplicaId, attempt: u32) -> Result<(), Error> {
        let mut pod = replica_objects(&self.job, &self.ns, id).pod;
        pod.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(ATTEMPT_LABEL.into(), attempt.to_string());
        pod.metadata.owner_references = self.owner().map(|o| vec![o]);
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
        ignore_exists(self.pods.create(&self.post(), &pod).await)
    }

    /// Archives a pod's log, then deletes the pod.
    async fn remove_pod(&self, id: ReplicaId, pod: &Pod) -> Result<(), Error> {
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        archive_pod_log(&self.ctx.client, &self.resource, id, pod_attempt(pod), pod).await?;
        let params = DeleteParams {
            preconditions: pod.uid().map(|uid| kube::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.pods.delete(&pod.name_any(), &params).await {
            Ok(_) => Ok(()),
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

    /// When to look again without a change: a pending restart, the deadline, the TTL.
    fn next_look(&self, decision: &Decision, status: &JobStatus) -> Requeue {
        let policy = &self.job.spec.run_policy;
        let mut at = self.now + RESYNC.as_secs_f64();
        for action in &decision.actions {
            if let Action::Restart { not_before, .. } = action {
                at = at.min(*not_before);
            }
        }
        if let (Some(limit), Some(start), false) = (
            policy.active_deadline_seconds,
            parse_time(&status.start_time),
            decision.phase.is_terminal(),
        ) {
            at = at.min(start + limit as f64);
        }
        if let (Some(ttl), Some(done)) = (
            policy.ttl_seconds_after_finished,
            parse_time(&status.completion_time),
        ) {
            at = at.min(done + ttl as f64);
        }
        Requeue::requeue(Duration::from_secs_f64((at - self.now).max(0.05)))
    }
}

/// A create that finds the object already there has nothing left to do.
fn ignore_exists<T>(result: kube::Result<T>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e.into()),
    }
}
