//! The simulated cluster: a scheduler and a kubelet running as a background task over the
//! store, plus the pod logs the test supplies.

mod index;
mod kubelet;
mod logs;
mod printer;
mod scheduler;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::time::MissedTickBehavior;

use crate::registry::ResourceType;
use crate::server::Shared;
use crate::store::{object_name, EventType, Store};
use index::PodIndex;

pub(crate) use kubelet::{fail_pods_on_node, terminate_pod};
pub(crate) use logs::serve_logs;

/// Annotation with a per-pod script for the kubelet, e.g. `run 2s then exit 1`.
pub const SCRIPT_ANNOTATION: &str = "kube-sim.trainctl.dev/script";

/// Annotation with a per-pod print schedule, e.g. `every 1s step {n} loss 0.5`: the pod
/// prints that line once per interval of simulated time while it runs.
pub const PRINT_ANNOTATION: &str = "kube-sim.trainctl.dev/print";

/// How often the simulated cluster looks at the store when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);

/// The shortest time between two passes: changes arriving meanwhile share the next pass.
const MIN_GAP: Duration = Duration::from_millis(15);

/// The namespaces every server starts with.
pub(crate) fn seed(store: &mut Store) {
    let namespaces = builtin(store, "", "namespaces");
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        store
            .create(&namespaces, "", json!({"metadata": {"name": name}}))
            .expect("seeding an empty store cannot fail");
    }
}

/// A built-in resource type (always registered).
pub(crate) fn builtin(store: &Store, group: &str, plural: &str) -> ResourceType {
    store
        .registry
        .find(group, "v1", plural)
        .cloned()
        .expect("built-in resources are always registered")
}

/// Runs the scheduler and kubelet until the server stops: a pass after each change, wake
/// or tick, at most one per [`MIN_GAP`].
pub(crate) async fn run(shared: Arc<Shared>) {
    let (mut changes, mut index) = {
        let store = shared.store();
        (store.subscribe(), PodIndex::new(&store))
    };
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_pass = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shared.wake.notified() => {}
            received = changes.recv() => {
                if !index.receive(received) {
                    return;
                }
            }
        }
        tokio::time::sleep_until((last_pass + MIN_GAP).into()).await;
        last_pass = Instant::now();
        let gang = *shared
            .gang_scheduling
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut store = shared.store();
        index.catch_up(&mut changes, &store);
        scheduler::schedule(&mut store, gang, &mut index);
        index.catch_up(&mut changes, &store);
        let missing = shared.missing_images().clone();
        let printed = kubelet::step(&mut store, &mut index, shared.now(), &missing);
        // Lines are added before the store lock goes, so a reader that sees a pod ended
        // also sees everything it printed.
        let mut logs = shared.logs();
        drop(store);
        for ((ns, pod), lines) in printed {
            crate::control::append_lines(&mut logs, &ns, &pod, "", lines);
        }
        // Drops the log lines of deleted pods, so a new pod of the same name starts empty.
        for pod in index.take_deleted() {
            logs.remove(&pod);
        }
    }
}

/// Writes a pod back with a new status (the simulation's writes skip validation).
fn write_pod(store: &mut Store, pod: Value) {
    let pods = builtin(store, "", "pods");
    store.put(&pods, pod, EventType::Modified);
}

/// Records a core/v1 Event about `pod`.
fn record_event(store: &mut Store, pod: &Value, reason: &str, message: &str, component: &str) {
    let events = builtin(store, "", "events");
    let (ns, name) = object_name(pod);
    let now = crate::store::now();
    let event = json!({
        "metadata": {"generateName": format!("{name}."), "namespace": ns},
        "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": ns, "name": name,
                            "uid": pod["metadata"]["uid"]},
        "reason": reason, "message": message, "type": "Warning",
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    });
    if let Err(e) = store.create(&events, &ns, event) {
        eprintln!(
            "kube-sim: cannot record event {reason} for {ns}/{name}: {}",
            e.message
        );
    }
}
