//! The pod writes of a job's reconciles that the pod cache ([`crate::pod_cache`]) has not
//! shown yet (Kubeflow's "expectations"). A reconcile that read a cache still missing its
//! job's last creates or deletes would start those pods again, so it waits instead: the
//! watch event that brings the write into the cache wakes the job again. A write the cache
//! never shows (its pod was created and deleted while the watch was down) is given up on
//! after [`GIVE_UP_AFTER`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::observe::is_tracked;

/// How long a write may stay unseen before the cache is trusted without it.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// What a write to a pod makes the cache show once it has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The pod was created: it is in the cache.
    Created,
    /// Its tracking finalizer was dropped: it is gone, or without the finalizer.
    Released,
    /// It was deleted: it is gone, or marked for deletion.
    Deleted,
}

impl Expect {
    fn seen_in(self, pod: Option<&Pod>) -> bool {
        match (self, pod) {
            (Expect::Created, pod) => pod.is_some(),
            (_, None) => true,
            (Expect::Released, Some(pod)) => !is_tracked(pod),
            (Expect::Deleted, Some(pod)) => pod.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// Whether a job's pods in the cache can be acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The cache shows every write of the job's reconciles.
    Yes,
    /// Some writes are not shown yet; the oldest is given up on after this long.
    Waiting(Duration),
    /// These writes (`Created pod-name`) went unseen for [`GIVE_UP_AFTER`] and are
    /// forgotten.
    GaveUp(Vec<String>),
}

#[derive(Debug)]
struct Pending {
    pod_uid: String,
    pod_name: String,
    expect: Expect,
    since: Instant,
}

/// The unseen writes, per job uid.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Expectations {
    /// Notes a write to `pod` (as it was written) of the job `job_uid`.
    pub fn expect(&self, job_uid: &str, pod: &Pod, expect: Expect) {
        let Some(pod_uid) = pod.uid() else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .entry(job_uid.to_string())
            .or_default()
            .push(Pending {
                pod_uid,
                pod_name: pod.name_any(),
                expect,
                since: Instant::now(),
            });
    }

    /// Drops the writes of `job_uid` that `pods` (the job's pods in the cache) show, and
    /// says whether any are left.
    pub fn settle(&self, job_uid: &str, pods: &[Arc<Pod>], now: Instant) -> Settled {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(writes) = pending.get_mut(job_uid) else {
            return Settled::Yes;
        };
        let by_uid: HashMap<String, &Pod> =
            pods.iter().filter_map(|p| Some((p.uid()?, &**p))).collect();
        writes.retain(|w| !w.expect.seen_in(by_uid.get(&w.pod_uid).copied()));
        let oldest = writes.iter().map(|w| w.since).min();
        let outcome = match oldest {
            None => Settled::Yes,
            Some(since) => match GIVE_UP_AFTER.checked_sub(now.saturating_duration_since(since)) {
                Some(left) if !left.is_zero() => return Settled::Waiting(left),
                _ => Settled::GaveUp(
                    writes
                        .iter()
                        .map(|w| format!("{:?} {}", w.expect, w.pod_name))
                        .collect(),
                ),
            },
        };
        pending.remove(job_uid);
        outcome
    }

    /// Forgets a job (it is gone).
    pub fn forget(&self, job_uid: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::TRACKING_FINALIZER;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(uid: &str, tracked: bool, deleting: bool) -> Arc<Pod> {
        let mut pod = Pod::default();
        pod.metadata.uid = Some(uid.into());
        pod.metadata.name = Some(format!("pod-{uid}"));
        if tracked {
            pod.metadata.finalizers = Some(vec![TRACKING_FINALIZER.into()]);
        }
        if deleting {
            pod.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        }
        Arc::new(pod)
    }

    #[test]
    fn a_job_waits_until_the_cache_shows_each_kind_of_write() {
        let e = Expectations::default();
        let now = Instant::now();
        assert_eq!(e.settle("job", &[], now), Settled::Yes);

        e.expect("job", &pod("new", true, false), Expect::Created);
        assert!(matches!(e.settle("job", &[], now), Settled::Waiting(_)));
        assert_eq!(e.settle("other", &[], now), Settled::Yes, "per job");
        assert_eq!(
            e.settle("job", &[pod("new", true, false)], now),
            Settled::Yes
        );

        e.expect("job", &pod("old", true, false), Expect::Released);
        e.expect("job", &pod("old", true, false), Expect::Deleted);
        let before = [pod("old", true, false)];
        assert!(matches!(e.settle("job", &before, now), Settled::Waiting(_)));
        // Released but not yet marked deleted: still waiting for the delete.
        let released = [pod("old", false, false)];
        assert!(matches!(
            e.settle("job", &released, now),
            Settled::Waiting(_)
        ));
        assert_eq!(
            e.settle("job", &[pod("old", false, true)], now),
            Settled::Yes
        );

        e.expect("job", &pod("gone", true, false), Expect::Released);
        e.expect("job", &pod("gone", true, false), Expect::Deleted);
        assert_eq!(e.settle("job", &[], now), Settled::Yes, "gone shows both");
    }

    #[test]
    fn unseen_writes_are_given_up_on_and_forgotten() {
        let e = Expectations::default();
        let start = Instant::now();
        e.expect("job", &pod("lost", true, false), Expect::Created);
        match e.settle("job", &[], start + Duration::from_secs(10)) {
            Settled::Waiting(left) => assert!(left <= GIVE_UP_AFTER - Duration::from_secs(9)),
            other => panic!("expected to wait, got {other:?}"),
        }
        assert_eq!(
            e.settle("job", &[], start + GIVE_UP_AFTER + Duration::from_secs(1)),
            Settled::GaveUp(vec!["Created pod-lost".to_string()])
        );
        assert_eq!(e.settle("job", &[], start), Settled::Yes);
        e.expect("job", &pod("x", true, false), Expect::Created);
        e.forget("job");
        assert_eq!(e.settle("job", &[], start), Settled::Yes);
    }
}
