//! The bookkeeping around a decision, as pure code: which replicas to launch now and with
//! which attempt, which to stop, the restart count and start time to record, when to decide
//! again without news, and when a finished job expires. Engines observe, call [`plan`], record
//! what it says and carry it out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trainctl_spec::TrainingJob;

use crate::state_machine::{decide, Action, Backoff, Decision, JobPhase, Observation};
use crate::ReplicaId;

/// One replica attempt to launch now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// Which replica.
    pub id: ReplicaId,
    /// The attempt it runs (0 is the first).
    pub attempt: u32,
    /// A restart of a failed attempt (counted in the job's restarts).
    pub restart: bool,
}

/// The decision and everything the engine records and does because of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The state machine's decision.
    pub decision: Decision,
    /// Starts, and restarts whose backoff has passed, in that order.
    pub launches: Vec<Launch>,
    /// Replicas to stop.
    pub stops: Vec<ReplicaId>,
    /// Restarts over the whole job, these launches counted.
    pub restarts: u32,
    /// The current attempt of each replica, these launches counted.
    pub attempts: BTreeMap<ReplicaId, u32>,
    /// When the replicas first started, these launches counted.
    pub started_at: Option<f64>,
    /// When to decide again at the latest if nothing changes: the next pending restart, the
    /// active deadline, or the end of the finished job's TTL; `None` when only a change can.
    pub wake_at: Option<f64>,
}

/// Decides on `obs` and works out the launches, stops, counts and next look.
pub fn plan(job: &TrainingJob, obs: &Observation, backoff: Backoff) -> Plan {
    let decision = decide(job, obs, backoff);
    let mut attempts = obs.attempts.clone();
    let mut launches = Vec::new();
    let mut stops = Vec::new();
    let mut wake_at: Option<f64> = None;
    let mut wake = |at: f64| wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
    for action in &decision.actions {
        match *action {
            Action::Start(id) => launches.push(Launch {
                id,
                attempt: attempts.get(&id).copied().unwrap_or(0),
                restart: false,
            }),
            Action::Restart { id, not_before } if not_before <= obs.now => {
                let attempt = attempts.get(&id).copied().unwrap_or(0) + 1;
                attempts.insert(id, attempt);
                launches.push(Launch {
                    id,
                    attempt,
                    restart: true,
                });
            }
            Action::Restart { not_before, .. } => wake(not_before),
            Action::Stop(id) => {
                if decision.phase == JobPhase::Suspended {
                    let current = obs.attempts.get(&id).copied().unwrap_or(0);
                    attempts.insert(id, resumed_attempt(current));
                }
                stops.push(id);
            }
        }
    }
    let started_at = match obs.started_at {
        None if !launches.is_empty() => Some(obs.now),
        recorded => recorded,
    };
    let policy = &job.spec.run_policy;
    if decision.phase.is_terminal() {
        if let Some(at) = expires_at(job, Some(obs.finished_at.unwrap_or(obs.now))) {
            wake(at);
        }
    } else if let (Some(limit), Some(start)) = (policy.active_deadline_seconds, started_at) {
        wake(start + limit as f64);
    }
    Plan {
        restarts: obs.restarts + launches.iter().filter(|l| l.restart).count() as u32,
        decision,
        launches,
        stops,
        attempts,
        started_at,
        wake_at,
    }
}

/// The attempt a replica resumes with after its attempt `current` was ended by a
/// suspension (the user's, a preemption, or a lost supervisor): the next one, so every
/// run has its own log, while the restart count and `backoffLimit` stay untouched.
pub fn resumed_attempt(current: u32) -> u32 {
    current + 1
}

/// When a job that finished at `finished_at` is to be deleted (ttlSecondsAfterFinished).
pub fn expires_at(job: &TrainingJob, finished_at: Option<f64>) -> Option<f64> {
    let ttl = job.spec.run_policy.ttl_seconds_after_finished?;
    Some(finished_at? + ttl as f64)
}

/// Whether a job that finished at `finished_at` is to be deleted by `now`.
pub fn is_expired(job: &TrainingJob, finished_at: Option<f64>, now: f64) -> bool {
    expires_at(job, finished_at).is_some_and(|at| now >= at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_machine::{Outcome, ReplicaObservation, ReplicaState};

    fn job(run_policy: &str) -> TrainingJob {
        crate::state_machine::tests::job("{worker: {count: 2}}", run_policy)
    }

    fn id(s: &str) -> ReplicaId {
        s.parse().unwrap()
    }

    /// At `now` = 100 s: worker-0 in `w0` (ended at 90 s), worker-1 running.
    fn obs(w0: ReplicaState) -> Observation {
        let replica = |r, state, finished_at| ReplicaObservation {
            id: id(r),
            state,
            finished_at,
        };
        Observation {
            now: 100.0,
            admitted: true,
            started_at: Some(50.0),
            replicas: vec![
                replica("worker-0", w0, Some(90.0)),
                replica("worker-1", ReplicaState::Running, None),
            ],
            ..Observation::default()
        }
    }

    const ON_FAILURE: &str = "{restartPolicy: OnFailure}";
    const FAILED: ReplicaState = ReplicaState::Failed { exit_code: 137 };
    const BACKOFF: Backoff = Backoff {
        base: 4.0,
        max: 60.0,
    };

    #[test]
    fn first_launch_runs_attempt_zero_and_records_the_start_time() {
        let mut o = obs(ReplicaState::NotStarted);
        o.started_at = None;
        o.replicas[1].state = ReplicaState::NotStarted;
        let p = plan(&job("{}"), &o, BACKOFF);
        let ids: Vec<_> = p
            .launches
            .iter()
            .map(|l| (l.id, l.attempt, l.restart))
            .collect();
        assert_eq!(
            ids,
            [(id("worker-0"), 0, false), (id("worker-1"), 0, false)]
        );
        assert_eq!((p.started_at, p.restarts), (Some(100.0), 0));
    }

    #[test]
    fn a_due_restart_runs_the_next_attempt_and_counts_one_restart() {
        let mut o = obs(FAILED);
        o.now = 94.0;
        o.restarts = 2;
        o.attempts.insert(id("worker-0"), 3);
        let policy = "{restartPolicy: OnFailure, backoffLimit: 5}";
        let p = plan(
            &job(policy),
            &o,
            Backoff {
                base: 1.0,
                max: 4.0,
            },
        );
        assert_eq!(
            p.launches,
            [Launch {
                id: id("worker-0"),
                attempt: 4,
                restart: true
            }]
        );
        assert_eq!(p.restarts, 3);
        assert_eq!(p.attempts[&id("worker-0")], 4);
        assert_eq!(p.started_at, Some(50.0), "the first start time stays");
    }

    #[test]
    fn a_replica_without_a_recorded_attempt_restarts_as_attempt_one() {
        let p = plan(&job(ON_FAILURE), &obs(FAILED), Backoff::default());
        assert_eq!(p.launches[0].attempt, 1);
        assert_eq!(p.attempts, BTreeMap::from([(id("worker-0"), 1)]));
    }

    #[test]
    fn a_restart_not_yet_due_launches_nothing_and_wakes_at_its_time() {
        let p = plan(
            &job(ON_FAILURE),
            &obs(FAILED),
            Backoff {
                base: 30.0,
                max: 60.0,
            },
        );
        assert_eq!(p.decision.phase, JobPhase::Restarting);
        assert!(p.launches.is_empty());
        assert_eq!((p.restarts, p.wake_at), (0, Some(120.0)));
        assert!(p.attempts.is_empty());
    }

    #[test]
    fn a_running_job_wakes_at_its_deadline_or_never() {
        let running = obs(ReplicaState::Running);
        assert_eq!(plan(&job("{}"), &running, BACKOFF).wake_at, None);
        let p = plan(&job("{activeDeadlineSeconds: 70}"), &running, BACKOFF);
        assert_eq!(p.wake_at, Some(120.0));
        let p = plan(
            &job("{restartPolicy: OnFailure, activeDeadlineSeconds: 70}"),
            &obs(FAILED),
            Backoff {
                base: 40.0,
                max: 60.0,
            },
        );
        assert_eq!(
            p.wake_at,
            Some(120.0),
            "the earlier of restart and deadline"
        );
    }

    #[test]
    fn a_finished_job_wakes_when_its_ttl_ends_and_not_at_its_deadline() {
        let job = job("{ttlSecondsAfterFinished: 30, activeDeadlineSeconds: 60}");
        let mut o = obs(ReplicaState::Succeeded);
        let p = plan(&job, &o, BACKOFF);
        assert_eq!(p.decision.phase, JobPhase::Succeeded);
        assert_eq!(p.stops, [id("worker-1")]);
        assert_eq!(p.wake_at, Some(130.0), "finished now: 30 s from now");
        o.ended = p.decision.outcome();
        o.finished_at = Some(80.0);
        assert_eq!(plan(&job, &o, BACKOFF).wake_at, Some(110.0));
    }

    #[test]
    fn a_finished_job_expires_once_its_ttl_has_passed() {
        let ttl = job("{ttlSecondsAfterFinished: 30}");
        assert_eq!(expires_at(&ttl, Some(10.0)), Some(40.0));
        assert!(!is_expired(&ttl, Some(10.0), 39.9));
        assert!(is_expired(&ttl, Some(10.0), 40.0));
        assert!(!is_expired(&ttl, None, 1e9), "not finished");
        assert!(!is_expired(&job("{}"), Some(10.0), 1e9), "no TTL");
    }

    #[test]
    fn a_suspension_stops_the_running_replicas_and_moves_them_to_their_next_attempt() {
        let mut o = obs(ReplicaState::Succeeded);
        o.restarts = 2;
        o.attempts.insert(id("worker-1"), 3);
        let p = plan(
            &job("{suspend: true, restartPolicy: OnFailure}"),
            &o,
            BACKOFF,
        );
        assert_eq!(p.decision.phase, JobPhase::Suspended);
        assert_eq!(p.stops, [id("worker-1")]);
        assert_eq!(
            p.attempts,
            BTreeMap::from([(id("worker-1"), 4)]),
            "the finished worker-0 keeps its attempt"
        );
        assert_eq!(p.restarts, 2, "a suspension is not a restart");
    }

    #[test]
    fn a_resumed_job_starts_each_replica_at_its_recorded_next_attempt_without_a_restart() {
        let mut o = obs(ReplicaState::NotStarted);
        o.replicas[1].state = ReplicaState::NotStarted;
        o.attempts = BTreeMap::from([(id("worker-0"), 2), (id("worker-1"), 4)]);
        o.restarts = 1;
        let p = plan(
            &job("{restartPolicy: OnFailure, backoffLimit: 1}"),
            &o,
            BACKOFF,
        );
        let launched: Vec<_> = p.launches.iter().map(|l| (l.attempt, l.restart)).collect();
        assert_eq!(launched, [(2, false), (4, false)]);
        assert_eq!(
            p.restarts, 1,
            "resuming counts no restart, even at backoffLimit"
        );
        assert_eq!(resumed_attempt(4), 5);
    }

    #[test]
    fn a_stop_request_stops_every_running_replica_even_without_cleanup() {
        let mut o = obs(ReplicaState::Running);
        o.stop_requested = Some(crate::state_machine::StopRequest::Delete);
        let p = plan(&job("{cleanPodPolicy: None}"), &o, BACKOFF);
        assert_eq!(p.stops, [id("worker-0"), id("worker-1")]);
        assert_eq!(
            p.decision.outcome(),
            Some(Outcome {
                phase: JobPhase::Failed,
                reason: "Deleted".into(),
                message: "the job was stopped by the user".into(),
            })
        );
    }
}
