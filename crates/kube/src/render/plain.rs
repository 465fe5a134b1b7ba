//! The plain target: per replica a batch/v1 Job and a headless Service named
//! `<job>-<role>-<i>`, so replicas find each other by the cluster DNS names of the wiring
//! env. Needs nothing installed on the cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use trainctl_core::wiring::{cluster_port, replica_object_name};
use trainctl_core::ReplicaId;

use super::meta::{object_meta, replica_labels, replica_selector};
use super::pod::{self, port_name};
use super::retry::{self, JobRetry};
use super::{env, gang, image_cache, tensorboard, to_value, volumes, Ctx};

/// Every object of the plain target, in apply order.
pub fn objects(ctx: &Ctx) -> Vec<Value> {
    let ids = ReplicaId::all_of(&ctx.job);
    let mut out = image_cache::objects(ctx);
    out.extend(volumes::share_objects(ctx));
    out.extend(gang::objects(ctx));
    for &id in &ids {
        out.push(to_value(&replica_service(
            ctx,
            id,
            replica_selector(ctx, id),
        )));
    }
    for &id in &ids {
        out.push(to_value(&replica_job(ctx, id)));
    }
    out.extend(tensorboard::objects(ctx));
    out
}

/// The headless Service `<job>-<role>-<i>` in front of the pod that `selector` picks. It
/// publishes the address before the pod is ready: replicas wait for each other at start.
pub fn replica_service(ctx: &Ctx, id: ReplicaId, selector: BTreeMap<String, String>) -> Service {
    let port = i32::from(cluster_port(&ctx.job, id.role));
    Service {
        metadata: object_meta(
            ctx,
            replica_object_name(&ctx.job, id),
            replica_labels(ctx, id),
        ),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(port_name(ctx.job.spec.framework).into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                ..ServicePort::default()
            }]),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The batch/v1 Job of one replica.
fn replica_job(ctx: &Ctx, id: ReplicaId) -> Job {
    let retry = retry::per_replica(&ctx.job.spec.run_policy);
    let template = pod::template(
        ctx,
        id.role,
        replica_labels(ctx, id),
        env::replica(ctx, id),
        Some(retry.pod_restart_policy),
        true,
    );
    let mut labels = gang::workload_labels(ctx);
    labels.extend(replica_labels(ctx, id));
    Job {
        metadata: object_meta(ctx, replica_object_name(&ctx.job, id), labels),
        spec: Some(job_spec(ctx, retry, template)),
        status: None,
    }
}

/// The spec of a Job that runs one replica pod to completion.
pub fn job_spec(ctx: &Ctx, retry: JobRetry, template: PodTemplateSpec) -> JobSpec {
    let run = &ctx.job.spec.run_policy;
    JobSpec {
        backoff_limit: Some(retry.backoff_limit),
        pod_failure_policy: retry.pod_failure_policy,
        active_deadline_seconds: run.active_deadline_seconds.map(saturating_i64),
        ttl_seconds_after_finished: run.ttl_seconds_after_finished.map(saturating_i32),
        suspend: gang::suspended(ctx).then_some(true),
        completions: Some(1),
        parallelism: Some(1),
        template,
        ..JobSpec::default()
    }
}

/// `n` as an i64, capped.
pub fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `n` as an i32, capped.
pub fn saturating_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
