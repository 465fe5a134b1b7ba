//! The scenario table (crate `trainctl-scenarios`) run against the state machine alone: a
//! simulated engine with its own clock carries out `decide`'s actions and ends attempts as
//! each row's steps say.

use std::collections::BTreeMap;

use trainctl_core::state_machine::{
    decide, Action, Backoff, Observation, Outcome, ReplicaObservation, ReplicaState,
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

/// Simulated time that passes when nothing is scripted (a deadline may fall in it).
const IDLE_SECONDS: f64 = 1.0;

/// The simulated engine gives up on a job that has not ended by then.
const GIVE_UP_AT: f64 = 3600.0;

/// One replica as the simulated engine tracks it.
struct SimReplica {
    state: ReplicaState,
    attempt: u32,
    finished_at: Option<f64>,
    restart_at: Option<f64>,
    stopped: bool,
}

/// A job run by the simulated engine.
struct Sim {
    job: TrainingJob,
    now: f64,
    started_at: Option<f64>,
    restarts: u32,
    replicas: BTreeMap<ReplicaId, SimReplica>,
    ended: Option<Outcome>,
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
                    attempt: 0,
                    finished_at: None,
                    restart_at: None,
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
            replicas,
            ended: None,
        }
    }

    fn observe(&self) -> Observation {
        Observation {
            now: self.now,
            admitted: true,
            started_at: self.started_at,
            restarts: self.restarts,
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
        }
    }

    /// Decides and carries the actions out; returns whether they changed anything.
    fn decide_and_act(&mut self) -> bool {
        let decision = decide(&self.job, &self.observe(), BACKOFF);
        if self.ended.is_none() {
            self.ended = decision.outcome();
        }
        let mut changed = false;
        for action in decision.actions {
            match action {
                Action::Start(id) => self.run(id, 0),
                Action::Restart { id, not_before } => {
                    let r = self.replica(id);
                    if r.restart_at == Some(not_before) {
                        continue;
                    }
                    r.restart_at = Some(not_before);
                }
                Action::Stop(id) => {
                    let r = self.replica(id);
                    r.state = ReplicaState::Stopped;
                    r.stopped = true;
                }
            }
            changed = true;
        }
        changed
    }

    fn replica(&mut self, id: ReplicaId) -> &mut SimReplica {
        self.replicas.get_mut(&id).expect("a replica of the job")
    }

    fn run(&mut self, id: ReplicaId, attempt: u32) {
        self.started_at.get_or_insert(self.now);
        let r = self.replica(id);
        *r = SimReplica {
            state: ReplicaState::Running,
            attempt,
            finished_at: None,
            restart_at: None,
            stopped: false,
        };
    }

    /// Carries out the earliest pending restart, moving the clock to it; false when none.
    fn restart_next(&mut self) -> bool {
        let next = self
            .replicas
            .iter()
            .filter_map(|(id, r)| r.restart_at.map(|at| (at, *id)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((at, id)) = next else {
            return false;
        };
        self.now = self.now.max(at);
        self.restarts += 1;
        let attempt = self.replicas[&id].attempt + 1;
        self.run(id, attempt);
        true
    }

    /// Ends the running attempt a step names.
    fn play(&mut self, s: &Scenario, step: &Step) {
        let now = self.now;
        let r = self.replica(id(step.replica));
        assert!(
            r.state == ReplicaState::Running && r.attempt == step.attempt,
            "{}: {} attempt {} is not running before its step (it is {:?}, attempt {})",
            s.name,
            step.replica,
            step.attempt,
            r.state,
            r.attempt
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
        let acted = sim.decide_and_act();
        if sim.ended.is_some() {
            if acted {
                continue;
            }
            break;
        }
        if acted || sim.restart_next() {
            continue;
        }
        match steps.next() {
            Some(step) => sim.play(s, step),
            None => sim.now += IDLE_SECONDS,
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
            r.attempt,
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
