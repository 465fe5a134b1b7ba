//! Jobs of different shapes, each driven to its end by finishing its pods in order, with
//! the phase, restarts and attempts it must end with.

use k8s_openapi::jiff::Timestamp;

use super::{job_yaml, Cluster};

/// A job, the pods to finish (replica, attempt, exit code) in order, and its right end.
pub struct Scenario {
    pub name: &'static str,
    pub replicas: &'static str,
    pub run_policy: &'static str,
    /// Every replica of the job (`worker-0`).
    pub replica_ids: &'static [&'static str],
    pub finishes: &'static [(&'static str, u32, i64)],
    pub phase: &'static str,
    pub restarts: u32,
    /// Replicas whose final attempt is not 0.
    pub attempts: &'static [(&'static str, u32)],
    /// Replicas whose pod the operator stops when the job ends.
    pub stopped: &'static [&'static str],
}

/// Eight shapes: chief success (PS stopped), worker-0 without chief, AllWorkers, an
/// ExitCode 130 restart then success, an exit-1 failure, backoffLimit exceeded, and
/// OnFailure restarts of a non-leading worker.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "chief",
        replicas: "{chief: {count: 1}, ps: {count: 1}, worker: {count: 1}}",
        run_policy: "{}",
        replica_ids: &["chief-0", "ps-0", "worker-0"],
        finishes: &[("chief-0", 0, 0)],
        phase: "Succeeded",
        restarts: 0,
        attempts: &[],
        stopped: &["ps-0", "worker-0"],
    },
    Scenario {
        name: "worker0",
        replicas: "{ps: {count: 1}, worker: {count: 2}}",
        run_policy: "{}",
        replica_ids: &["ps-0", "worker-0", "worker-1"],
        finishes: &[("worker-0", 0, 0)],
        phase: "Succeeded",
        restarts: 0,
        attempts: &[],
        stopped: &["ps-0", "worker-1"],
    },
    Scenario {
        name: "allworkers",
        replicas: "{worker: {count: 2}}",
        run_policy: "{successPolicy: AllWorkers}",
        replica_ids: &["worker-0", "worker-1"],
        finishes: &[("worker-0", 0, 0), ("worker-1", 0, 0)],
        phase: "Succeeded",
        restarts: 0,
        attempts: &[],
        stopped: &[],
    },
    Scenario {
        name: "sigint",
        replicas: "{worker: {count: 1}}",
        run_policy: "{restartPolicy: ExitCode, backoffLimit: 3}",
        replica_ids: &["worker-0"],
        finishes: &[("worker-0", 0, 130), ("worker-0", 1, 0)],
        phase: "Succeeded",
        restarts: 1,
        attempts: &[("worker-0", 1)],
        stopped: &[],
    },
    Scenario {
        name: "fatal",
        replicas: "{ps: {count: 1}, worker: {count: 1}}",
        run_policy: "{restartPolicy: ExitCode, backoffLimit: 3}",
        replica_ids: &["ps-0", "worker-0"],
        finishes: &[("worker-0", 0, 1)],
        phase: "Failed",
        restarts: 0,
        attempts: &[],
        stopped: &["ps-0"],
    },
    Scenario {
        name: "exhausted",
        replicas: "{worker: {count: 1}}",
        run_policy: "{restartPolicy: OnFailure, backoffLimit: 1}",
        replica_ids: &["worker-0"],
        finishes: &[("worker-0", 0, 1), ("worker-0", 1, 1)],
        phase: "Failed",
        restarts: 1,
        attempts: &[("worker-0", 1)],
        stopped: &[],
    },
    Scenario {
        name: "flaky",
        replicas: "{worker: {count: 2}}",
        run_policy: "{restartPolicy: OnFailure, backoffLimit: 4}",
        replica_ids: &["worker-0", "worker-1"],
        finishes: &[("worker-1", 0, 137), ("worker-1", 1, 2), ("worker-0", 0, 0)],
        phase: "Succeeded",
        restarts: 2,
        attempts: &[("worker-1", 2)],
        stopped: &["worker-1"],
    },
    Scenario {
        name: "evalr",
        replicas: "{chief: {count: 1}, worker: {count: 2}, evaluator: {count: 1}}",
        run_policy: "{restartPolicy: ExitCode, backoffLimit: 2}",
        replica_ids: &["chief-0", "worker-0", "worker-1", "evaluator-0"],
        finishes: &[("worker-0", 0, 143), ("chief-0", 0, 0)],
        phase: "Succeeded",
        restarts: 1,
        attempts: &[("worker-0", 1)],
        stopped: &["worker-0", "worker-1", "evaluator-0"],
    },
];

impl Scenario {
    /// The job file.
    pub fn yaml(&self) -> String {
        job_yaml(self.name, self.replicas, self.run_policy)
    }

    /// The final attempt of a replica.
    pub fn final_attempt(&self, replica: &str) -> u32 {
        self.attempts
            .iter()
            .find(|(r, _)| *r == replica)
            .map_or(0, |(_, a)| *a)
    }

    /// Every (job/replica, attempt) that must have had exactly one pod.
    pub fn expected_pods(&self) -> Vec<(String, u32)> {
        self.replica_ids
            .iter()
            .flat_map(|r| {
                (0..=self.final_attempt(r)).map(move |a| (format!("{}/{r}", self.name), a))
            })
            .collect()
    }

    /// Submits the job, waits for all its pods to run, finishes them in order, waits for its end and checks the
    /// status: phase, restarts, attempts, times, and the stopped pods gone.
    pub async fn drive(&self, c: &Cluster) {
        c.submit(&self.yaml()).await;
        for replica in self.replica_ids {
            c.running_pod(&format!("{}-{replica}", self.name), 0).await;
        }
        for (replica, attempt, code) in self.finishes {
            let pod = format!("{}-{replica}", self.name);
            c.finish(&pod, *attempt, *code).await;
            if *code != 0 && *attempt < self.final_attempt(replica) {
                c.running_pod(&pod, attempt + 1).await;
            }
        }
        let status = c.wait_phase(self.name, self.phase).await;
        assert_eq!(status.restarts, self.restarts, "{}: restarts", self.name);
        for replica in self.replica_ids {
            let recorded = status.attempts.get(*replica).copied().unwrap_or(0);
            assert_eq!(
                recorded,
                self.final_attempt(replica),
                "{}: attempt of {replica}",
                self.name
            );
        }
        let time = |t: &Option<String>, what: &str| -> Timestamp {
            let text = t
                .as_deref()
                .unwrap_or_else(|| panic!("{}: no {what}", self.name));
            text.parse().expect("an RFC 3339 time")
        };
        let start = time(&status.start_time, "startTime");
        let end = time(&status.completion_time, "completionTime");
        assert!(
            start <= end,
            "{}: started {start}, completed {end}",
            self.name
        );
        for replica in self.stopped {
            c.gone(&format!("{}-{replica}", self.name)).await;
        }
    }
}
