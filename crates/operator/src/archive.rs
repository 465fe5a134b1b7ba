//! Logs that outlive pods: before the operator deletes a pod (restart, stop, suspend) it
//! copies the pod's log into the ConfigMap `<job>-logs`, owned by the job, one key per
//! attempt (`worker-0.attempt-1.log`). Each attempt keeps its last [`ATTEMPT_LIMIT`] bytes;
//! when the ConfigMap would pass [`ARCHIVE_LIMIT`] (below the 1 MiB object limit) the oldest
//! attempts are dropped. The archive goes when the job is deleted (garbage collection).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{LogParams, ObjectMeta, PostParams};
use kube::{Api, Resource};
use trainctl_core::ReplicaId;

use crate::crd::TrainingJobResource;
use crate::names::{log_archive_name, log_key, MANAGER};

/// The most bytes kept per attempt (its tail).
pub const ATTEMPT_LIMIT: usize = 64 * 1024;
/// The most bytes kept per job.
pub const ARCHIVE_LIMIT: usize = 900 * 1024;

/// Copies the log of `pod` (attempt `attempt` of `id`) into the job's archive. An empty log
/// writes nothing.
pub async fn archive_pod_log(
    client: &kube::Client,
    job: &TrainingJobResource,
    id: ReplicaId,
    attempt: u32,
    pod: &Pod,
) -> kube::Result<()> {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let name = pod.metadata.name.clone().unwrap_or_default();
    let text = match pods.logs(&name, &LogParams::default()).await {
        Ok(text) => text,
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 400 => return Ok(()),
        Err(e) => return Err(e),
    };
    if text.is_empty() {
        return Ok(());
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let archive_name = log_archive_name(job.metadata.name.as_deref().unwrap_or_default());
    let existing = maps.get_opt(&archive_name).await?;
    let mut data = existing
        .as_ref()
        .and_then(|m| m.data.clone())
        .unwrap_or_default();
    data.insert(log_key(id, attempt), tail(&text, ATTEMPT_LIMIT).to_string());
    trim(&mut data, ARCHIVE_LIMIT);
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    match existing {
        Some(mut map) => {
            map.data = Some(data);
            maps.replace(&archive_name, &params, &map).await?;
        }
        None => {
            let map = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(archive_name),
                    namespace: Some(ns),
                    labels: Some(BTreeMap::from([(
                        trainctl_kube::render::JOB_NAME.to_string(),
                        job.metadata.name.clone().unwrap_or_default(),
                    )])),
                    owner_references: job.controller_owner_ref(&()).map(|r| vec![r]),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            };
            maps.create(&params, &map).await?;
        }
    }
    Ok(())
}

/// The last `limit` bytes of `text`, starting at a character boundary.
fn tail(text: &str, limit: usize) -> &str {
    let mut start = text.len().saturating_sub(limit);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Drops the oldest attempts (lowest attempt number first) until the archive fits.
fn trim(data: &mut BTreeMap<String, String>, limit: usize) {
    let attempt_of = |key: &str| -> u32 {
        key.rsplit_once(".attempt-")
            .and_then(|(_, rest)| rest.trim_end_matches(".log").parse().ok())
            .unwrap_or(0)
    };
    while data.values().map(String::len).sum::<usize>() > limit && data.len() > 1 {
        let oldest = data
            .keys()
            .min_by_key(|k| attempt_of(k))
            .cloned()
            .unwrap_or_default();
        data.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }

    #[test]
    fn trim_drops_the_oldest_attempts_first() {
        let mut data = BTreeMap::from([
            ("worker-0.attempt-0.log".to_string(), "a".repeat(10)),
            ("worker-0.attempt-1.log".to_string(), "b".repeat(10)),
            ("worker-0.attempt-2.log".to_string(), "c".repeat(10)),
        ]);
        trim(&mut data, 20);
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["worker-0.attempt-1.log", "worker-0.attempt-2.log"]
        );
    }
}
