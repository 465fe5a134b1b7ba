//! The operator's view of the pods it manages: one watch of every trainctl pod, indexed by
//! the TrainingJob that owns each pod, so a reconcile reads its job's pods from memory
//! instead of LISTing them from the API server (which scans every pod of the namespace for
//! the label selector, on a real server as on kube-sim). The view lags the operator's own
//! writes; [`crate::expectations`] says when it has caught up.
//!
//! The cache is fed by the controller's own pod watch ([`PodCache::triggers`]): every watch
//! event updates the index before the pods it touched are handed on as
//! reconcile triggers, so a reconcile woken by a pod always sees that pod's new state. A
//! relist (after a dropped watch or a 410) applies each listed pod at once and, when it is
//! done, drops the pods it did not list and hands those on too, so a pod deleted while the
//! watch was down still wakes its job.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};

use crate::crd::TrainingJobResource;

/// Pods by uid, indexed by the uid of the TrainingJob that owns them.
#[derive(Debug, Default)]
pub struct PodCache {
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    pods: HashMap<String, Arc<Pod>>,
    by_job: HashMap<String, HashSet<String>>,
    /// The pods listed so far while a relist is under way.
    relisted: Option<HashSet<String>>,
    /// Whether a first list has completed.
    ready: bool,
}

impl PodCache {
    /// Watches the trainctl pods of `pods` (those labelled with a job name) as the
    /// controller's trigger stream: each event is applied to the cache first, then every pod
    /// it touched is shown to `touched` and handed on as the trigger of its job's reconcile.
    pub fn triggers(
        self: Arc<Self>,
        pods: Api<Pod>,
        mut touched: impl FnMut(&Arc<Pod>) + Send + 'static,
    ) -> impl Stream<Item = Result<Pod, watcher::Error>> + Send + 'static {
        let config = watcher::Config::default().labels(trainctl_kube::render::JOB_NAME);
        watcher::watcher(pods, config)
            .default_backoff()
            // The controller drops its trigger streams' errors; until the first list
            // succeeds no job is reconciled, so a watch that keeps failing (RBAC) is said.
            .inspect_err(|e| tracing::error!("pod watch: {}", watch_error(e)))
            .map_ok(move |event| {
                let pods = self.apply(event);
                pods.iter().for_each(&mut touched);
                futures::stream::iter(pods.into_iter().map(|p| Ok(trigger_of(&p))))
            })
            .try_flatten()
    }

    /// Applies one watch event; returns the pods it touched (for a deletion, the pod's last
    /// state), whose jobs are to be reconciled.
    pub fn apply(&self, event: Event<Pod>) -> Vec<Arc<Pod>> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Apply(pod) => index.insert(pod).into_iter().collect(),
            Event::Delete(pod) => pod
                .uid()
                .and_then(|uid| index.remove(&uid))
                .into_iter()
                .collect(),
            Event::Init => {
                index.relisted = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(pod) => {
                let uid = pod.uid();
                let touched = index.insert(pod);
                if let (Some(listed), Some(uid)) = (index.relisted.as_mut(), uid) {
                    listed.insert(uid);
                }
                touched.into_iter().collect()
            }
            Event::InitDone => {
                let listed = index.relisted.take().unwrap_or_default();
                index.ready = true;
                let gone: Vec<String> = index
                    .pods
                    .keys()
                    .filter(|uid| !listed.contains(*uid))
                    .cloned()
                    .collect();
                gone.iter().filter_map(|uid| index.remove(uid)).collect()
            }
        }
    }

    /// Whether the first list of pods has completed (before that the view is empty, not
    /// current).
    pub fn is_ready(&self) -> bool {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).ready
    }

    /// The pods the job with this uid owns, without their spec (the operator reads a pod's
    /// metadata and status only; the spec, most of a pod's size, is not kept).
    pub fn pods_of(&self, job_uid: &str) -> Vec<Arc<Pod>> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.by_job.get(job_uid).map_or_else(Vec::new, |uids| {
            uids.iter()
                .filter_map(|uid| index.pods.get(uid).cloned())
                .collect()
        })
    }
}

impl Index {
    fn insert(&mut self, mut pod: Pod) -> Option<Arc<Pod>> {
        let uid = pod.uid()?;
        pod.spec = None;
        pod.metadata.managed_fields = None;
        self.remove(&uid);
        for job in owning_jobs(&pod) {
            self.by_job.entry(job).or_default().insert(uid.clone());
        }
        let pod = Arc::new(pod);
        self.pods.insert(uid, pod.clone());
        Some(pod)
    }

    fn remove(&mut self, uid: &str) -> Option<Arc<Pod>> {
        let pod = self.pods.remove(uid)?;
        for job in owning_jobs(&pod) {
            if let Some(uids) = self.by_job.get_mut(&job) {
                uids.remove(uid);
                if uids.is_empty() {
                    self.by_job.remove(&job);
                }
            }
        }
        Some(pod)
    }
}

/// The uids of the TrainingJobs among a pod's owners.
fn owning_jobs(pod: &Pod) -> impl Iterator<Item = String> + '_ {
    let kind = <TrainingJobResource as kube::Resource>::kind(&());
    pod.owner_references()
        .iter()
        .filter(move |o| o.kind == kind)
        .map(|o| o.uid.clone())
}

/// A watch error in one line: the API server's own message where it gave one (kube's
/// text of an API error carries the whole Status as well).
fn watch_error(error: &watcher::Error) -> String {
    use watcher::Error::{InitialListFailed, WatchFailed, WatchStartFailed};
    match error {
        InitialListFailed(kube::Error::Api(status))
        | WatchStartFailed(kube::Error::Api(status))
        | WatchFailed(kube::Error::Api(status)) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => other.to_string(),
    }
}

/// What a reconcile trigger needs of a pod: its name, namespace and owners.
pub fn trigger_of(pod: &Pod) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            owner_references: pod.metadata.owner_references.clone(),
            ..Default::default()
        },
        ..Pod::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn pod(uid: &str, job: &str, rv: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(format!("pod-{uid}"));
        pod.metadata.uid = Some(uid.into());
        pod.metadata.resource_version = Some(rv.into());
        pod.metadata.owner_references = Some(vec![OwnerReference {
            kind: "TrainingJob".into(),
            uid: job.into(),
            ..OwnerReference::default()
        }]);
        pod
    }

    fn uids(pods: &[Arc<Pod>]) -> Vec<String> {
        let mut out: Vec<String> = pods.iter().filter_map(|p| p.uid()).collect();
        out.sort();
        out
    }

    #[test]
    fn indexes_pods_by_owning_job_and_follows_updates_and_deletions() {
        let cache = PodCache::default();
        assert!(!cache.is_ready());
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(pod("a", "job-1", "1")));
        cache.apply(Event::InitDone);
        assert!(cache.is_ready());
        let touched = cache.apply(Event::Apply(pod("b", "job-1", "2")));
        assert_eq!(uids(&touched), ["b"]);
        cache.apply(Event::Apply(pod("c", "job-2", "3")));
        assert_eq!(uids(&cache.pods_of("job-1")), ["a", "b"]);
        assert_eq!(uids(&cache.pods_of("job-2")), ["c"]);
        assert!(cache.pods_of("job-3").is_empty());

        cache.apply(Event::Apply(pod("a", "job-1", "4")));
        let rvs: Vec<String> = cache
            .pods_of("job-1")
            .iter()
            .filter_map(|p| p.resource_version())
            .collect();
        assert!(rvs.contains(&"4".to_string()) && !rvs.contains(&"1".to_string()));
        let touched = cache.apply(Event::Delete(pod("b", "job-1", "5")));
        assert_eq!(uids(&touched), ["b"]);
        assert_eq!(uids(&cache.pods_of("job-1")), ["a"]);
    }

    #[test]
    fn a_relist_drops_the_pods_it_did_not_list_and_hands_them_on() {
        let cache = PodCache::default();
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(pod("a", "job-1", "1")));
        cache.apply(Event::InitApply(pod("b", "job-1", "2")));
        cache.apply(Event::InitDone);
        // The watch drops; b is deleted meanwhile, d is created.
        cache.apply(Event::Init);
        let touched = cache.apply(Event::InitApply(pod("d", "job-1", "7")));
        assert_eq!(uids(&touched), ["d"]);
        assert_eq!(
            uids(&cache.pods_of("job-1")),
            ["a", "b", "d"],
            "listed pods show at once"
        );
        cache.apply(Event::InitApply(pod("a", "job-1", "1")));
        let gone = cache.apply(Event::InitDone);
        assert_eq!(uids(&gone), ["b"]);
        assert_eq!(uids(&cache.pods_of("job-1")), ["a", "d"]);
    }

    #[test]
    fn a_refused_watch_is_said_in_the_servers_words() {
        let mut status = kube::core::Status::failure("pods is forbidden", "Forbidden");
        status.code = 403;
        let error = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status)));
        assert_eq!(watch_error(&error), "pods is forbidden (403 Forbidden)");
        assert!(watch_error(&watcher::Error::NoResourceVersion).contains("resourceVersion"));
    }

    #[test]
    fn triggers_carry_only_what_maps_a_pod_to_its_job() {
        let full = pod("a", "job-1", "1");
        let trigger = trigger_of(&full);
        assert_eq!(trigger.metadata.name, full.metadata.name);
        assert_eq!(trigger.owner_references(), full.owner_references());
        assert!(trigger.metadata.uid.is_none() && trigger.spec.is_none());
    }
}
