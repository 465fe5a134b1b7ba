//! The scenario table (crate `trainctl-scenarios`) run against core alone: a simulated engine
//! with its own clock observes, asks [`plan`] what to do (launches with their attempts,
//! stops, restart count, start time, next wake time), records it, carries it out, and ends
//! attempts as each row's steps say. Every number the checks read comes from core.

use std::collections::BTreeMap;

use trainctl_core::plan::plan;
use trainctl_core::state_machine::{
    Backoff, Observation, Outcome, ReplicaObservation, ReplicaState,
};
use trainctl_core::ReplicaId;
use trainctl_scenarios::{Scenario, Step};
use trainctl_spec::{parse_job_str, TrainingJob};

/// Restart delays of the simulated engine: 50 ms doubling to 1 s.
const BACKOFF: Backoff = Backoff {
    base: 0.05,
    max: 1.0,
};

/// Simulated time between two steps: short next to any deadline of the table.
const STEP_SECONDS: f64 = 0.01;

/// Simulated time that passes when nothing is scripted and core names no wake time.
const IDLE_SECONDS: f64 = 1.0;

/// The simulated engine gives up on a job that has not ended by then.
const GIVE_UP_AT: f64 = 3600.0;

/// One replica as the simulated engine tracks it.
struct SimReplica {
    state: ReplicaState,
    finished_at: Option<f64>,
    stopped: bool,
}

/// A job run by the simulated engine: what it observed and what core told it to record.
struct Sim {
    job: TrainingJob,
    now: f64,
    started_at: Option<f64>,
    restarts: u32,
    attempts: BTreeMap<ReplicaId, u32>,
    replicas: BTreeMap<ReplicaId, SimReplica>,
    ended: Option<Outcome>,
    wake_at: Option<f64>,
}

impl Sim {
    fn new(s: &Scenario) -> Sim {
        let yaml = s.job_yaml(&s.job_name(), "  command: [python3, train.py]\n");
        let job = parse_job_str("scenario.yaml", &yaml)
            .unwrap_or_else(|e| panic!("{}: invalid job: {e:?}", s.name));
        let replicas = s
            .replica_ids()
            .iter()
            .map(|r| {
                let replica = SimReplica {
                    state: ReplicaState::NotStarted,
                    finished_at: None,
                    stopped: false,
                };
                (id(r), replica)
            })
            .collect();
        Sim {
            job,
            now: 0.0,
            started_at: None,
            restarts: 0,
            attempts: BTreeMap::new(),
            replicas,
            ended: None,
            wake_at: None,
        }
    }

    fn observe(&self) -> Observation {
        Observation {
            now: self.now,
            admitted: true,
            started_at: self.started_at,
            restarts: self.restarts,
            attempts: self.attempts.clone(),
            replicas: self
                .replicas
                .iter()
                .map(|(id, r)| ReplicaObservation {
                    id: *id,
                    state: r.state,
                    finished_at: r.finished_at,
                })
                .collect(),
            ended: self.ended.clone(),
            ..Observation::default()
        }
    }

    /// Plans, records and carries the plan out; returns whether it launched or stopped any.
    fn plan_and_act(&mut self) -> bool {
        let plan = plan(&self.job, &self.observe(), BACKOFF);
        if self.ended.is_none() {
            self.ended = plan.decision.outcome();
        }
        self.restarts = plan.restarts;
        self.attempts = plan.attempts;
        self.started_at = plan.started_at;
        self.wake_at = plan.wake_at;
        let changed = !plan.launches.is_empty() || !plan.stops.is_empty();
        for launch in plan.launches {
            *self.replica(launch.id) = SimReplica {
                state: ReplicaState::Running,
                finished_at: None,
                stopped: false,
            };
        }
        for id in plan.stops {
            let r = self.replica(id);
            r.state = ReplicaState::Stopped;
            r.stopped = true;
        }
        changed
    }

    fn replica(&mut self, id: ReplicaId) -> &mut SimReplica {
        self.replicas.get_mut(&id).expect("a replica of the job")
    }

    fn attempt(&self, id: ReplicaId) -> u32 {
        self.attempts.get(&id).copied().unwrap_or(0)
    }

    /// Ends the running attempt a step names.
    fn play(&mut self, s: &Scenario, step: &Step) {
        let now = self.now;
        let replica = id(step.replica);
        let attempt = self.attempt(replica);
        let r = self.replica(replica);
        assert!(
            r.state == ReplicaState::Running && attempt == step.attempt,
            "{}: {} attempt {} is not running before its step (it is {:?}, attempt {attempt})",
            s.name,
            step.replica,
            step.attempt,
            r.state,
        );
        let code = step.end.exit_code();
        r.state = if code == 0 {
            ReplicaState::Succeeded
        } else {
            ReplicaState::Failed { exit_code: code }
        };
        r.finished_at = Some(now);
        self.now += STEP_SECONDS;
    }
}

fn id(replica: &str) -> ReplicaId {
    replica.parse().expect("a replica id")
}

/// Plays the scenario on the simulated engine and checks how the job ends.
fn run(s: &Scenario) {
    let mut sim = Sim::new(s);
    let mut steps = s.steps.iter();
    loop {
        let acted = sim.plan_and_act();
        if acted {
            continue;
        }
        if sim.ended.is_some() {
            break;
        }
        // A restart waiting for its backoff comes before the next step, as on a real engine
        // whose replicas take longer than the backoff to end.
        let restart_due = sim
            .replicas
            .values()
            .any(|r| matches!(r.state, ReplicaState::Failed { .. }));
        match (sim.wake_at, restart_due) {
            (Some(at), true) => sim.now = sim.now.max(at),
            _ => match steps.next() {
                Some(step) => sim.play(s, step),
                None => {
                    let next = sim.wake_at.filter(|&at| at > sim.now);
                    sim.now = next.unwrap_or(sim.now + IDLE_SECONDS);
                }
            },
        }
        assert!(sim.now < GIVE_UP_AT, "{}: the job never ended", s.name);
    }
    let left: Vec<&Step> = steps.collect();
    assert!(left.is_empty(), "{}: the job ended before {left:?}", s.name);

    let ended = sim.ended.clone().expect("ended");
    assert_eq!(
        (
            ended.phase.as_str(),
            ended.reason.as_str(),
            ended.message.as_str()
        ),
        (s.phase, s.reason, s.message),
        "{}: phase, reason, message",
        s.name
    );
    assert_eq!(sim.restarts, s.restarts, "{}: restarts", s.name);
    for (id, r) in &sim.replicas {
        let name = id.to_string();
        assert_eq!(
            sim.attempt(*id),
            s.final_attempt(&name),
            "{}: final attempt of {name}",
            s.name
        );
        assert_eq!(r.stopped, s.is_stopped(&name), "{}: {name} stopped", s.name);
        assert_eq!(
            r.state == ReplicaState::Running,
            s.left_running().contains(&name),
            "{}: {name} still running",
            s.name
        );
    }
}

trainctl_scenarios::scenario_tests!(fn run);
