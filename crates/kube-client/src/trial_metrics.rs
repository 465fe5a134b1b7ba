//! A trial's metrics with no sidecar: its replicas' logs followed through the API
//! ([`LogFollower`], so no line is fetched twice) and parsed line by line, as they come, by
//! the same stdout parser as locally; attempts whose pod went before it could be followed
//! are read from the operator's archive, and so is the end of one whose pod went while its
//! connection was down. A trial whose job has a TensorBoard also has the collector beside
//! it followed (its `collector` container, found by the job's labels): the scalars of the
//! job's own event files it prints ([`trainctl_metrics::event_lines`]) count as the trial's
//! values too, each run of event files like one more replica after the real ones. A
//! [`TrialLogs`] lives as long as its trial runs: the operator keeps
//! one per running trial across reconciles, and after a restart reads each log once again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;
use trainctl_core::ReplicaId;
use trainctl_kube::render::{COLLECTOR_CONTAINER, COMPONENT, TENSORBOARD_COMPONENT};
use trainctl_metrics::event_lines::{parse_line, END_LINE};
use trainctl_metrics::stdout::StdoutParser;

use crate::client::{attempt_sources, LogSource};
use crate::crd::TrainingJobResource;
use crate::experiment::TrialObservation;
use crate::log_follow::LogFollower;
use crate::names::{job_selector, log_archive_name};

/// A metric's value at a step: `(name, step, value)`.
type MetricPoint = (String, u64, f64);

/// What one attempt's log gave so far. A line's step is the step it gives, else the last one
/// seen in the attempt, else the count of metric lines so far.
#[derive(Debug, Default)]
struct AttemptPoints {
    step: Option<u64>,
    seq: u64,
    /// Lines read, and their bytes with newlines (where an archived copy goes on).
    lines: usize,
    bytes: usize,
    points: Vec<MetricPoint>,
}

impl AttemptPoints {
    /// Parses the attempt's next line.
    fn push(&mut self, parser: &StdoutParser, line: &str) {
        self.lines += 1;
        self.bytes += line.len() + 1;
        let parsed = parser.parse(line);
        if let Some(s) = parsed.step {
            self.step = Some(s.max(0) as u64);
        }
        if parsed.metrics.is_empty() {
            return;
        }
        self.seq += 1;
        let at = self.step.unwrap_or(self.seq);
        self.points
            .extend(parsed.metrics.into_iter().map(|(n, v)| (n, at, v)));
    }

    /// Parses the lines of `text` after those already read: the rest of an archived copy
    /// of the log (which may have been cut to its tail: then it is not longer than what
    /// was read, and nothing is added).
    fn push_rest(&mut self, parser: &StdoutParser, text: &str) {
        if text.len() <= self.bytes {
            return;
        }
        for line in text.lines().skip(self.lines) {
            self.push(parser, line);
        }
    }
}

/// What the collectors beside the trial's TensorBoard printed of the job's own event files:
/// per run, the value at each (tag, step) (a collector that starts again prints every
/// scalar again, which changes nothing), and whether one printed that the job had ended
/// and every scalar was printed.
#[derive(Debug, Default)]
struct EventPoints {
    runs: BTreeMap<String, BTreeMap<(i64, String), f64>>,
    ended: bool,
}

impl EventPoints {
    /// Takes the collector's next line.
    fn push(&mut self, line: &str) {
        if line == END_LINE {
            self.ended = true;
        } else if let Some(s) = parse_line(line) {
            let run = self.runs.entry(s.run).or_default();
            run.insert((s.step, s.tag), s.value);
        }
    }

    /// Each run's points in step order, runs in name order.
    fn by_run(&self) -> impl Iterator<Item = Vec<MetricPoint>> + '_ {
        self.runs.values().map(|points| {
            points
                .iter()
                .map(|((step, tag), value)| (tag.clone(), (*step).max(0) as u64, *value))
                .collect()
        })
    }
}

/// One attempt of one replica: its points and, while its pod is followed, the follower.
struct Attempt {
    points: Arc<Mutex<AttemptPoints>>,
    follower: Option<JoinHandle<Result<bool>>>,
    /// Whether every line came from the pod (else the archive may hold the end).
    whole: bool,
}

/// The logs of one trial's replicas, followed; see the module documentation.
pub struct TrialLogs {
    parser: StdoutParser,
    attempts: BTreeMap<(ReplicaId, u32), Attempt>,
    events: Arc<Mutex<EventPoints>>,
    /// The collector pods seen, by name, with their followers while they are followed.
    collectors: BTreeMap<String, Option<JoinHandle<Result<bool>>>>,
}

impl Drop for TrialLogs {
    fn drop(&mut self) {
        let collectors = self.collectors.values().flatten();
        for task in self
            .attempts
            .values()
            .filter_map(|a| a.follower.as_ref())
            .chain(collectors)
        {
            task.abort();
        }
    }
}

impl TrialLogs {
    /// Nothing read yet; lines are parsed with `parser` (from the trial's `spec.metrics`).
    pub fn new(parser: StdoutParser) -> Self {
        TrialLogs {
            parser,
            attempts: BTreeMap::new(),
            events: Arc::default(),
            collectors: BTreeMap::new(),
        }
    }

    /// Starts following every attempt of `job` whose pod is live and not followed yet,
    /// reads archived attempts nobody followed (and the archived end of followed ones whose
    /// pod went first); returns whether every follower had ended before the attempts were
    /// listed, so a job that had ended before this call has every line read. A follower
    /// that failed is reported and its attempt read again from the start next time. The
    /// running collector of the job's TensorBoard is followed too; while its pod is pending
    /// or running, every line counts as read only once it has printed that the job ended (a
    /// TensorBoard pod that has gone or ended is not waited for).
    pub async fn pass(&mut self, client: &kube::Client, job: &TrainingJobResource) -> Result<bool> {
        let failed = self.reap().await.or(self.reap_collectors().await);
        let collected = lock(&self.events).ended;
        let idle = self.attempts.values().all(|a| a.follower.is_none());
        let ns = job.namespace().unwrap_or_default();
        let name = job.name_any();
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let archive = maps
            .get_opt(&log_archive_name(&name))
            .await?
            .and_then(|m| m.data)
            .unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let live = pods
            .list(&ListParams::default().labels(&job_selector(&name)))
            .await?
            .items;
        let mut started = false;
        let collecting = live.iter().any(|p| collector_phase(p).is_some())
            || self.collectors.values().any(Option::is_some);
        for pod in live
            .iter()
            .filter(|p| collector_phase(p) == Some("Running"))
        {
            if !self.collectors.contains_key(&pod.name_any()) {
                let follower =
                    LogFollower::new(pods.clone(), &pod.name_any(), Some(COLLECTOR_CONTAINER));
                let task = spawn_follow(follower, self.events.clone(), EventPoints::push);
                self.collectors.insert(pod.name_any(), Some(task));
            }
        }
        for source in attempt_sources(job, &archive, &live) {
            let key = (source.replica, source.attempt);
            match (source.source, self.attempts.get_mut(&key)) {
                (LogSource::Live(pod), None) => {
                    let follower = LogFollower::new(pods.clone(), &pod, None);
                    self.attempts.insert(key, self.follow(follower));
                    started = true;
                }
                (LogSource::Archived(text), None) => {
                    let mut points = AttemptPoints::default();
                    points.push_rest(&self.parser, &text);
                    let attempt = Attempt {
                        points: Arc::new(Mutex::new(points)),
                        follower: None,
                        whole: true,
                    };
                    self.attempts.insert(key, attempt);
                }
                (LogSource::Archived(text), Some(attempt))
                    if attempt.follower.is_none() && !attempt.whole =>
                {
                    lock(&attempt.points).push_rest(&self.parser, &text);
                    attempt.whole = true;
                }
                _ => {}
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(idle && !started && (collected || !collecting)),
        }
    }

    /// The observation of `metrics` (the objective first) so far: the first replica that
    /// printed the objective is the trial's (as locally, where the first run with the
    /// metric counts), its attempts' points in order; else the first run of the job's own
    /// event files that has it.
    pub fn observe(&self, metrics: &[String]) -> TrialObservation {
        let Some(objective) = metrics.first() else {
            return TrialObservation::default();
        };
        let mut by_replica: BTreeMap<ReplicaId, Vec<MetricPoint>> = BTreeMap::new();
        for ((replica, _), attempt) in &self.attempts {
            let points = lock(&attempt.points);
            by_replica
                .entry(*replica)
                .or_default()
                .extend(points.points.iter().cloned());
        }
        let events = lock(&self.events);
        let points = by_replica
            .into_values()
            .chain(events.by_run())
            .find(|points| points.iter().any(|p| &p.0 == objective))
            .unwrap_or_default();
        TrialObservation::from_points(objective, metrics, &points)
    }

    /// A task parsing what `follower` delivers; it ends with whether the pod gave every line.
    fn follow(&self, follower: LogFollower) -> Attempt {
        let points = Arc::new(Mutex::new(AttemptPoints::default()));
        let parser = self.parser.clone();
        let task = spawn_follow(follower, points.clone(), move |points, line| {
            points.push(&parser, line)
        });
        Attempt {
            points,
            follower: Some(task),
            whole: false,
        }
    }

    /// Collects the followers that have ended; forgets the attempts whose follower failed
    /// (so they are read again) and returns the first failure.
    async fn reap(&mut self) -> Option<anyhow::Error> {
        let mut failure = None;
        let ended: Vec<(ReplicaId, u32)> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.follower.as_ref().is_some_and(JoinHandle::is_finished))
            .map(|(key, _)| *key)
            .collect();
        for key in ended {
            let Some(attempt) = self.attempts.get_mut(&key) else {
                continue;
            };
            let Some(task) = attempt.follower.take() else {
                continue;
            };
            match task.await {
                Ok(Ok(whole)) => attempt.whole = whole,
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                    self.attempts.remove(&key);
                }
                Err(e) => {
                    failure.get_or_insert(anyhow!("a log follower panicked: {e}"));
                    self.attempts.remove(&key);
                }
            }
        }
        failure
    }

    /// Collects the collector followers that have ended; forgets those that failed (so
    /// they are followed again) and returns the first failure.
    async fn reap_collectors(&mut self) -> Option<anyhow::Error> {
        let mut failure = None;
        for (pod, slot) in &mut self.collectors {
            let Some(task) = slot.take_if(|task| task.is_finished()) else {
                continue;
            };
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    failure.get_or_insert(e.context(format!("collector pod {pod}")));
                }
                Err(e) => {
                    failure.get_or_insert(anyhow!("a log follower panicked: {e}"));
                }
            }
        }
        if failure.is_some() {
            // Followed again from the start; the values they print again change nothing.
            self.collectors.retain(|_, slot| slot.is_some());
        }
        failure
    }
}

/// The phase of `pod` when it is a TensorBoard pod (which runs the collector) that is
/// pending or running.
fn collector_phase(pod: &Pod) -> Option<&str> {
    let component = pod.labels().get(COMPONENT).map(String::as_str);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let phase = phase.filter(|p| matches!(*p, "Pending" | "Running"));
    (component == Some(TENSORBOARD_COMPONENT)).then_some(phase)?
}

/// A task handing each line `follower` delivers to `push` with `into`; it ends with whether
/// the pod gave every line.
fn spawn_follow<T: Send + 'static>(
    mut follower: LogFollower,
    into: Arc<Mutex<T>>,
    push: impl Fn(&mut T, &str) + Send + 'static,
) -> JoinHandle<Result<bool>> {
    tokio::spawn(async move {
        while let Some(line) = follower.next_line().await? {
            push(&mut lock(&into), &line);
        }
        Ok(follower.whole())
    })
}

fn lock<T>(points: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    points.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs_of(parser: &StdoutParser, texts: &[(ReplicaId, u32, &str)]) -> TrialLogs {
        let mut logs = TrialLogs::new(parser.clone());
        for (replica, attempt, text) in texts {
            let mut points = AttemptPoints::default();
            points.push_rest(parser, text);
            let attempt_points = Attempt {
                points: Arc::new(Mutex::new(points)),
                follower: None,
                whole: true,
            };
            logs.attempts.insert((*replica, *attempt), attempt_points);
        }
        logs
    }

    #[test]
    fn the_first_replica_with_the_objective_counts_and_steps_carry_over() {
        let parser = StdoutParser::for_spec(None).unwrap();
        let worker = |i| ReplicaId::new(trainctl_spec::ReplicaType::Worker, i);
        let logs = logs_of(
            &parser,
            &[
                (worker(0), 0, "starting\n"),
                (
                    worker(1),
                    0,
                    "Step: 3, Acc: 0.5\nacc=0.6 loss=2\nStep: 5, Acc: 0.9\n",
                ),
            ],
        );
        let names = ["acc".to_string(), "loss".to_string()];
        let o = logs.observe(&names);
        assert_eq!(o.steps(), vec![(3, 0.6), (5, 0.9)]);
        assert_eq!(o.metrics[0].max, 0.9);
        assert_eq!(o.metrics[1].latest, 2.0);
    }

    #[test]
    fn an_archived_copy_adds_only_the_lines_after_those_followed_and_a_cut_one_nothing() {
        let parser = StdoutParser::for_spec(None).unwrap();
        let mut points = AttemptPoints::default();
        points.push(&parser, "acc=0.1");
        points.push_rest(&parser, "acc=0.1\nacc=0.2\n");
        points.push_rest(&parser, "acc=0.2\n");
        let values: Vec<f64> = points.points.iter().map(|p| p.2).collect();
        assert_eq!(values, [0.1, 0.2]);
        assert_eq!((points.lines, points.bytes), (2, 16));
    }
}
