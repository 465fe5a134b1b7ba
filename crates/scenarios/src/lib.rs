//! One table of job scenarios that every engine runs: core's state machine alone, the local
//! engine with real processes, and the operator on kube-sim. A new rule needs one new row in
//! [`table`](crate::SCENARIOS); each engine's runner turns the row into its own actions.
//!
//! The columns of a row ([`Scenario`]):
//!
//! | column       | meaning |
//! |--------------|---------|
//! | name         | the behaviour the row proves (`ps_is_stopped_when_chief_succeeds`); also the test name, and with `-` for `_` the job name |
//! | `framework`  | `tensorflow` or `pytorch` |
//! | `shape`      | the replicas: (role, count) pairs, e.g. chief 1, ps 1, worker 2 |
//! | `run_policy` | the job's `runPolicy` as a YAML flow mapping (restartPolicy, backoffLimit, successPolicy, cleanPodPolicy, activeDeadlineSeconds) |
//! | `steps`      | what the replicas do, in order: replica, attempt, and how that attempt ends (exit code or killed by a signal). An attempt without a step runs (hangs) until the engine stops it |
//! | `phase`      | the job's final phase (`Succeeded`, `Failed`) |
//! | `reason`     | the final reason (`Succeeded`, `ReplicaFailed`, `BackoffLimitExceeded`, `DeadlineExceeded`) |
//! | `message`    | the final message, exactly |
//! | `restarts`   | restarts over the whole job |
//! | `attempts`   | the final attempt of each replica that was restarted (others end at attempt 0) |
//! | `stopped`    | the replicas the engine stops when the job ends (per cleanPodPolicy) |
//!
//! How a runner plays a row: start the job and wait until every replica runs; then for each
//! step in order, wait until that replica runs that attempt, end it as the step says, and wait
//! until the engine has seen it end; after a failed attempt that the row expects to be
//! restarted, wait until the next attempt runs. Then wait for the job's end and check phase,
//! reason, message, restarts, attempts, which replicas were stopped, and that the replicas
//! neither ended nor stopped (cleanPodPolicy None) still run.

/// How one attempt of a replica ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The process exits with this code.
    Exit(i32),
    /// The process is killed by this signal (reported as exit code 128 + signal).
    Killed(i32),
}

impl End {
    /// The exit code the engine records: the code, or 128 + the signal.
    pub const fn exit_code(self) -> i32 {
        match self {
            End::Exit(code) => code,
            End::Killed(signal) => 128 + signal,
        }
    }
}

/// One thing a replica does: attempt `attempt` of `replica` ends as `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The replica, as `worker-0`.
    pub replica: &'static str,
    /// Its attempt, from 0.
    pub attempt: u32,
    /// How that attempt ends.
    pub end: End,
}

/// Attempt `attempt` of `replica` exits with `code`.
pub const fn exits(replica: &'static str, attempt: u32, code: i32) -> Step {
    Step {
        replica,
        attempt,
        end: End::Exit(code),
    }
}

/// Attempt `attempt` of `replica` is killed by `signal`.
pub const fn killed(replica: &'static str, attempt: u32, signal: i32) -> Step {
    Step {
        replica,
        attempt,
        end: End::Killed(signal),
    }
}

/// One named case: a job, what its replicas do, and how it must end. See the crate docs for
/// the columns.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The behaviour it proves, in snake case.
    pub name: &'static str,
    /// `tensorflow` or `pytorch`.
    pub framework: &'static str,
    /// (role, count) of every replica type.
    pub shape: &'static [(&'static str, u32)],
    /// `runPolicy` as a YAML flow mapping.
    pub run_policy: &'static str,
    /// Attempt ends, in order.
    pub steps: &'static [Step],
    /// Final phase.
    pub phase: &'static str,
    /// Final reason.
    pub reason: &'static str,
    /// Final message.
    pub message: &'static str,
    /// Restarts over the whole job.
    pub restarts: u32,
    /// Final attempt of each restarted replica.
    pub attempts: &'static [(&'static str, u32)],
    /// Replicas stopped when the job ends.
    pub stopped: &'static [&'static str],
}

impl Scenario {
    /// The job's name: the scenario's name with `-` for `_`.
    pub fn job_name(&self) -> String {
        self.name.replace('_', "-")
    }

    /// Every replica, as `worker-0`, in shape order.
    pub fn replica_ids(&self) -> Vec<String> {
        self.shape
            .iter()
            .flat_map(|(role, count)| (0..*count).map(move |i| format!("{role}-{i}")))
            .collect()
    }

    /// The job file named `name`; `extra_spec` is added under `spec:` (lines indented by two
    /// spaces, such as the command or the image).
    pub fn job_yaml(&self, name: &str, extra_spec: &str) -> String {
        let replicas: Vec<String> = self
            .shape
            .iter()
            .map(|(role, count)| format!("{role}: {{count: {count}}}"))
            .collect();
        format!(
            "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\n\
             spec:\n  framework: {}\n  replicas: {{{}}}\n  runPolicy: {}\n{extra_spec}",
            self.framework,
            replicas.join(", "),
            self.run_policy
        )
    }

    /// The final attempt of `replica`.
    pub fn final_attempt(&self, replica: &str) -> u32 {
        self.attempts
            .iter()
            .find(|(r, _)| *r == replica)
            .map_or(0, |(_, a)| *a)
    }

    /// Whether the failed `step` is followed by another attempt of its replica.
    pub fn is_restarted_after(&self, step: &Step) -> bool {
        step.end.exit_code() != 0 && step.attempt < self.final_attempt(step.replica)
    }

    /// How the final attempt of `replica` ends, if a step ends it.
    pub fn final_end(&self, replica: &str) -> Option<End> {
        let last = self.final_attempt(replica);
        self.steps
            .iter()
            .find(|s| s.replica == replica && s.attempt == last)
            .map(|s| s.end)
    }

    /// Whether the engine stops `replica` when the job ends.
    pub fn is_stopped(&self, replica: &str) -> bool {
        self.stopped.contains(&replica)
    }

    /// The replicas still running after the job ended: neither ended by a step nor stopped.
    pub fn left_running(&self) -> Vec<String> {
        self.replica_ids()
            .into_iter()
            .filter(|r| self.final_end(r).is_none() && !self.is_stopped(r))
            .collect()
    }

    /// Every (replica, attempt) the job runs.
    pub fn attempts_run(&self) -> Vec<(String, u32)> {
        self.replica_ids()
            .into_iter()
            .flat_map(|r| (0..=self.final_attempt(&r)).map(move |a| (r.clone(), a)))
            .collect()
    }
}

/// The scenario named `name`.
///
/// # Panics
/// When there is none (the test macros only ask for names from the table).
pub fn scenario(name: &str) -> &'static Scenario {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// Defines [`SCENARIOS`] from the rows, and `scenario_tests!`, which writes one test per row:
/// `scenario_tests!(fn run)` for a plain runner `fn run(&Scenario)`, or
/// `scenario_tests!(#[tokio::test] async fn run)` for an async one.
macro_rules! scenarios {
    ($( $(#[doc = $doc:literal])* $name:ident { $($field:ident: $value:expr),* $(,)? } )*) => {
        /// Every scenario, in table order.
        pub const SCENARIOS: &[Scenario] = &[
            $( Scenario { name: stringify!($name), $($field: $value),* } ),*
        ];

        /// One test per scenario, named after it, that runs it with the given runner.
        #[macro_export]
        macro_rules! scenario_tests {
            (fn $runner:path) => {
                $(
                    $(#[doc = $doc])*
                    #[test]
                    fn $name() {
                        $runner($crate::scenario(stringify!($name)));
                    }
                )*
            };
            (#[$attr:meta] async fn $runner:path) => {
                $(
                    $(#[doc = $doc])*
                    #[$attr]
                    async fn $name() {
                        $runner($crate::scenario(stringify!($name))).await;
                    }
                )*
            };
        }
    };
}
mod table;

pub use table::SCENARIOS;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_short_enough_for_pod_names() {
        let mut seen = BTreeSet::new();
        for s in SCENARIOS {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(s.name.len() <= 45, "{} is longer than 45", s.name);
        }
    }

    #[test]
    fn every_row_names_only_replicas_of_its_shape() {
        for s in SCENARIOS {
            let ids = s.replica_ids();
            let named = s
                .steps
                .iter()
                .map(|st| st.replica)
                .chain(s.attempts.iter().map(|(r, _)| *r))
                .chain(s.stopped.iter().copied());
            for r in named {
                assert!(ids.iter().any(|id| id == r), "{}: no replica {r}", s.name);
            }
        }
    }

    #[test]
    fn steps_of_a_replica_follow_its_attempts() {
        for s in SCENARIOS {
            for r in s.replica_ids() {
                let attempts: Vec<u32> = s
                    .steps
                    .iter()
                    .filter(|st| st.replica == r)
                    .map(|st| st.attempt)
                    .collect();
                let want: Vec<u32> = (0..attempts.len() as u32).collect();
                assert_eq!(attempts, want, "{}: attempts of {r}", s.name);
                assert!(
                    s.final_attempt(&r) + 1 >= attempts.len() as u32,
                    "{}: {r} has steps past its final attempt",
                    s.name
                );
            }
        }
    }

    #[test]
    fn only_replicas_that_still_run_are_stopped() {
        for s in SCENARIOS {
            for r in s.stopped {
                assert_eq!(
                    s.final_end(r),
                    None,
                    "{}: {r} ended, it cannot be stopped",
                    s.name
                );
            }
            let left = s.left_running();
            assert!(
                left.is_empty() || s.run_policy.contains("cleanPodPolicy: None"),
                "{}: {left:?} would run on",
                s.name
            );
        }
    }

    #[test]
    fn a_signal_is_recorded_as_128_plus_it() {
        assert_eq!(End::Killed(9).exit_code(), 137);
        assert_eq!(End::Exit(3).exit_code(), 3);
    }

    #[test]
    fn job_yaml_lists_the_shape() {
        let s = scenario("ps_is_stopped_when_chief_succeeds");
        assert_eq!(
            s.job_yaml("j", "  command: [sh, x.sh]\n"),
            "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\n\
             spec:\n  framework: tensorflow\n  \
             replicas: {chief: {count: 1}, ps: {count: 1}, worker: {count: 2}}\n  \
             runPolicy: {}\n  command: [sh, x.sh]\n"
        );
    }
}
