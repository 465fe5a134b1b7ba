//! Watches every trainctl pod over HTTP while a test runs and records what a user of the
//! cluster could see go wrong: two live pods for one replica, or one (replica, attempt)
//! created more than once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

/// `job/role-index`, from a pod's labels.
type Replica = String;

#[derive(Default)]
struct Seen {
    /// Pod uids by (replica, attempt).
    created: BTreeMap<(Replica, u32), BTreeSet<String>>,
    /// Live (not deleting) pods: uid -> replica.
    live: BTreeMap<String, Replica>,
    /// The live set being rebuilt after a watch restart.
    relisting: BTreeMap<String, Replica>,
    /// What went wrong, as messages.
    problems: Vec<String>,
}

impl Seen {
    fn replica_of(pod: &Pod) -> (Replica, u32) {
        let labels = pod.labels();
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let replica = format!(
            "{}/{}-{}",
            label("trainctl.dev/job-name"),
            label("trainctl.dev/replica-type"),
            label("trainctl.dev/replica-index")
        );
        (replica, label("trainctl.dev/attempt").parse().unwrap_or(0))
    }

    fn record(&mut self, pod: &Pod, live: &mut BTreeMap<String, Replica>) {
        let uid = pod.uid().unwrap_or_default();
        let (replica, attempt) = Seen::replica_of(pod);
        self.created
            .entry((replica.clone(), attempt))
            .or_default()
            .insert(uid.clone());
        if pod.metadata.deletion_timestamp.is_some() {
            live.remove(&uid);
        } else {
            live.insert(uid, replica);
        }
    }

    fn check_live(&mut self) {
        let mut per_replica: BTreeMap<&Replica, u32> = BTreeMap::new();
        for replica in self.live.values() {
            *per_replica.entry(replica).or_default() += 1;
        }
        for (replica, n) in per_replica.into_iter().filter(|(_, n)| *n > 1) {
            self.problems
                .push(format!("{n} live pods at once for {replica}"));
        }
    }

    fn apply(&mut self, event: Event<Pod>) {
        match event {
            Event::Apply(pod) => {
                let mut live = std::mem::take(&mut self.live);
                self.record(&pod, &mut live);
                self.live = live;
                self.check_live();
            }
            Event::Delete(pod) => {
                self.live.remove(&pod.uid().unwrap_or_default());
            }
            Event::Init => self.relisting.clear(),
            Event::InitApply(pod) => {
                let mut relisting = std::mem::take(&mut self.relisting);
                self.record(&pod, &mut relisting);
                self.relisting = relisting;
            }
            Event::InitDone => {
                self.live = std::mem::take(&mut self.relisting);
                self.check_live();
            }
        }
    }
}

/// A running pod audit; [`PodAudit::report`] stops it and says what it saw.
pub struct PodAudit {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl PodAudit {
    /// Starts watching the pods of `client`'s cluster in `ns`.
    pub fn start(client: kube::Client, ns: &str) -> PodAudit {
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = seen.clone();
        let config = watcher::Config::default().labels("trainctl.dev/job-name");
        let task = tokio::spawn(async move {
            let mut events = watcher::watcher(pods, config).boxed();
            while let Some(event) = events.next().await {
                if let Ok(event) = event {
                    sink.lock().unwrap().apply(event);
                }
            }
        });
        PodAudit { seen, task }
    }

    /// How many pods were seen for each (replica, attempt), and every problem seen.
    pub fn report(self) -> (BTreeMap<(String, u32), usize>, Vec<String>) {
        self.task.abort();
        let mut seen = self.seen.lock().unwrap();
        let counts = seen
            .created
            .iter()
            .map(|(k, uids)| (k.clone(), uids.len()))
            .collect();
        let mut problems = std::mem::take(&mut seen.problems);
        for ((replica, attempt), uids) in &seen.created {
            if uids.len() > 1 {
                problems.push(format!(
                    "{replica} attempt {attempt} was created {} times",
                    uids.len()
                ));
            }
        }
        (counts, problems)
    }

    /// Asserts that nothing went wrong and that exactly the pods of `expected` (replica,
    /// attempt) were created, each once.
    pub fn assert_one_pod_per_attempt(self, mut expected: Vec<(String, u32)>) {
        let (pods, problems) = self.report();
        assert!(problems.is_empty(), "{problems:#?}");
        expected.sort();
        let seen: Vec<(String, u32)> = pods.keys().cloned().collect();
        assert_eq!(seen, expected, "one pod per (replica, attempt)");
    }
}
