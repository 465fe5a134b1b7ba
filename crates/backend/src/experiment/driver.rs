//! The experiment loop: reads each running trial's objective, ends trials (and stops those
//! early stopping rejects), decides whether the experiment is over, and starts new trials up
//! to `parallelTrialCount`. Trials are ordinary local jobs, each supervised on a thread of
//! this process (which also records its metrics, see [`supervise_collecting`]); a trial
//! that some other process supervises (a user resumed it by hand) is watched through the
//! store. A trial whose supervision died with an earlier run of the experiment is resumed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use trainctl_core::state_machine::{JobPhase, LOST_REASON};
use trainctl_local::store::{ExperimentRow, JobRow, Store, TrialRow};
use trainctl_local::{now, process, EngineError, Home, LocalEngine};
use trainctl_search::{Direction, EarlyStopping, Sampler, Space, Suggestion, Trial, TrialState};

use trainctl_spec::trial::{
    counted_value, ending, to_hyper, to_value, trial_job, Ending, Tally, EXPERIMENT_LABEL,
};

use super::objective::{last_lines, ObjectiveReader};
use super::status::{best_trial, state, Counts};
use crate::run::{collector, supervise_collecting};

/// How often the loop reads its trials' objectives and the store; a trial's supervision
/// ending wakes it at once, so the next trial does not wait for the tick.
const TICK: Duration = Duration::from_millis(20);

/// A trial supervised on a thread of this process.
struct Supervision {
    /// Set to stop the trial (early stopping, the experiment ending).
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<JobPhase>>,
}

impl Supervision {
    /// Supervises `job` on a new thread, which sends on `done` when it is over.
    fn start(home: &Home, job: &str, done: &Sender<()>) -> Result<Supervision> {
        let stop = Arc::new(AtomicBool::new(false));
        let (home, name, flag, done) = (home.clone(), job.to_string(), stop.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name(format!("supervise {job}"))
            .spawn(move || {
                let phase = supervise_collecting(&home, &name, &flag);
                let _ = done.send(());
                phase
            })
            .with_context(|| format!("cannot start supervising trial {job}"))?;
        Ok(Supervision { stop, thread })
    }
}

/// The trials supervised here, by number.
#[derive(Default)]
struct Supervised(HashMap<u64, Supervision>);

impl Drop for Supervised {
    /// Stops the trials still supervised (only left after an error) and waits for them, so
    /// none outlives its supervision.
    fn drop(&mut self) {
        for s in self.0.values() {
            s.stop.store(true, Ordering::SeqCst);
        }
        for (_, s) in self.0.drain() {
            let _ = s.thread.join();
        }
    }
}

struct Driver<'a> {
    home: &'a Home,
    exp: ExperimentRow,
    space: Space,
    sampler: Sampler,
    early_stopping: Option<EarlyStopping>,
    direction: Direction,
    store: Store,
    engine: LocalEngine,
    /// This process, which supervises the trials it started or resumed.
    me: i32,
    /// The trials supervised here.
    supervised: Supervised,
    /// Each supervising thread says when it is done, to wake the loop.
    done: (Sender<()>, Receiver<()>),
    readers: HashMap<u64, ObjectiveReader>,
    live: HashMap<u64, Vec<(u64, f64)>>,
    asked_at: HashMap<u64, u64>,
    early_stopped: HashSet<u64>,
    killed: HashSet<u64>,
    /// The live supervisors (pid, start ticks) of the running trials that other processes
    /// supervise, as of the last look.
    supervisors: Vec<(i32, u64)>,
    exhausted: bool,
    ending: Option<Ending>,
}

/// Drives experiment `name` until it ends (or `stop` is set, which stops its trials);
/// `on_change` sees the experiment and its trials whenever a trial starts or ends. Returns
/// the final record. On an error the trials supervised here are stopped first.
pub fn drive(
    home: &Home,
    name: &str,
    stop: &AtomicBool,
    on_change: &mut dyn FnMut(&ExperimentRow, &[TrialRow]),
) -> Result<ExperimentRow> {
    let store = Store::open(&home.db_path())?;
    let exp = store
        .experiment(name)?
        .with_context(|| format!("experiment {name:?} not found"))?;
    let me = std::process::id() as i32;
    store.set_experiment_driver(name, me, process::start_ticks(me).unwrap_or(0))?;
    store.set_experiment_phase(name, "Running", "ExperimentRunning", "", None)?;
    let spec = &exp.spec;
    let mut d = Driver {
        home,
        space: spec.search_space()?,
        sampler: spec.sampler()?,
        early_stopping: spec.early_stopping()?,
        direction: spec.direction(),
        exp: store.experiment(name)?.context("experiment vanished")?,
        store,
        engine: LocalEngine::open(home.clone())?,
        me,
        supervised: Supervised::default(),
        done: channel(),
        readers: HashMap::new(),
        live: HashMap::new(),
        asked_at: HashMap::new(),
        early_stopped: HashSet::new(),
        killed: HashSet::new(),
        supervisors: Vec::new(),
        exhausted: false,
        ending: None,
    };
    let mut shown = None;
    loop {
        if stop.load(Ordering::SeqCst) && d.ending.is_none() {
            d.ending = Some(("Failed", "ExperimentStopped", "stopped by the user".into()));
        }
        let trials = d.observe()?;
        let key = trials.iter().map(|t| t.state.clone()).collect::<Vec<_>>();
        if shown.as_ref() != Some(&key) {
            on_change(&d.exp, &trials);
            shown = Some(key);
        }
        let running = trials.iter().filter(|t| t.state == state::RUNNING).count();
        if d.ending.is_none() {
            d.ending = d.ends(&trials, running);
        }
        if let Some((phase, reason, message)) = d.ending.clone() {
            if running == 0 {
                d.store
                    .set_experiment_phase(name, phase, reason, &message, Some(now()))?;
                d.exp = d.store.experiment(name)?.context("experiment vanished")?;
                on_change(&d.exp, &trials);
                return Ok(d.exp);
            }
            for t in trials.iter().filter(|t| t.state == state::RUNNING) {
                if d.killed.insert(t.number) {
                    d.stop_trial(t)?;
                }
            }
        } else {
            d.launch(&trials, running)?;
        }
        d.wait_tick();
    }
}

impl Driver<'_> {
    /// Sleeps until the next tick, or until a trial's supervision ends (here, or in the
    /// other processes that supervise trials).
    fn wait_tick(&self) {
        if self.supervisors.is_empty() {
            if self.done.1.recv_timeout(TICK).is_ok() {
                while self.done.1.try_recv().is_ok() {}
            }
        } else {
            process::wait_any_exit(&self.supervisors, TICK);
        }
    }

    /// Whether trial `number`'s job is still supervised: on its thread here, or by another
    /// live process. A thread that has finished is joined; Err says why its supervision
    /// failed.
    fn still_supervised(&mut self, number: u64, job: Option<&JobRow>) -> Result<bool, String> {
        match self
            .supervised
            .0
            .get(&number)
            .map(|s| s.thread.is_finished())
        {
            Some(false) => Ok(true),
            Some(true) => {
                let s = self.supervised.0.remove(&number).expect("looked up above");
                match s.thread.join() {
                    Ok(Ok(_)) => Ok(false),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err("its supervising thread panicked".into()),
                }
            }
            None => Ok(job.is_some_and(|j| {
                j.supervisor_pid != self.me
                    && process::is_same_process(j.supervisor_pid, j.supervisor_start)
            })),
        }
    }

    /// Resumes a trial whose job lost its supervisor (an earlier run of this experiment
    /// died, or a supervisor of it did) and supervises it here: its replicas that had not
    /// succeeded start their next attempt. A job a user suspended is left suspended.
    fn recover(&mut self, number: u64, job: &JobRow) -> Result<()> {
        let lost = job.phase == JobPhase::Suspended && job.reason == LOST_REASON;
        if !lost && job.supervisor_pid == 0 {
            return Ok(());
        }
        // Reading the job through the engine records the loss (and stops what is left).
        let job = match self.engine.job(&job.name) {
            Ok(j) => j,
            Err(EngineError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if job.phase == JobPhase::Suspended && job.reason == LOST_REASON {
            match self.engine.resume_here(&job.name) {
                Ok(()) => {
                    let s = Supervision::start(self.home, &job.name, &self.done.0)?;
                    self.supervised.0.insert(number, s);
                }
                // Someone resumed it first: it is supervised elsewhere now.
                Err(EngineError::Invalid(_)) => {}
                Err(e) => return Err(e).context(format!("resuming trial {}", job.name)),
            }
        }
        Ok(())
    }

    /// The trials as the samplers see them.
    fn history(&self, trials: &[TrialRow]) -> Vec<Trial> {
        trials
            .iter()
            .map(|t| Trial {
                number: t.number,
                assignment: t
                    .assignment
                    .iter()
                    .map(|(n, v)| (n.clone(), to_value(v)))
                    .collect(),
                state: match t.state.as_str() {
                    state::RUNNING => TrialState::Running,
                    state::SUCCEEDED => TrialState::Completed,
                    state::EARLY_STOPPED => TrialState::Pruned,
                    _ => TrialState::Failed,
                },
                value: t.value,
                intermediate: self
                    .live
                    .get(&t.number)
                    .cloned()
                    .unwrap_or_else(|| t.intermediate.clone()),
            })
            .collect()
    }

    /// Reads the running trials' objectives, ends those whose jobs ended and stops those
    /// early stopping rejects; returns the trials as they stand now.
    fn observe(&mut self) -> Result<Vec<TrialRow>> {
        let name = self.exp.name.clone();
        let metric = self.exp.spec.spec.objective.objective_metric_name.clone();
        let mut trials = self.store.trials(&name)?;
        self.supervisors.clear();
        for t in trials.iter_mut().filter(|t| t.state == state::RUNNING) {
            let reader = self
                .readers
                .entry(t.number)
                .or_insert_with(|| ObjectiveReader::new(self.home, &t.job, &metric));
            let values = reader.values()?;
            t.intermediate = values.clone();
            self.live.insert(t.number, values);
            let job = self.store.job(&t.job)?;
            let supervised = self.still_supervised(t.number, job.as_ref());
            let ended = match (&job, &supervised) {
                (None, _) | (_, Err(_)) => true,
                (Some(j), Ok(s)) => j.phase.is_terminal() && !s,
            };
            if ended {
                if job
                    .as_ref()
                    .is_some_and(|j| j.supervisor_pid != 0 && j.supervisor_pid != self.me)
                {
                    // Its supervisor died without letting go: its last collection may be
                    // missing.
                    self.collect_rest(&t.job);
                }
                // The supervision is over: its last collection is in; read it.
                let reader = self.readers.get_mut(&t.number).expect("made above");
                t.intermediate = reader.values()?;
                t.metrics =
                    reader.observed(&self.exp.spec.spec.objective.additional_metric_names)?;
                let failed = supervised.err();
                let outcome = match (&failed, &job) {
                    (Some(why), _) => Some((JobPhase::Failed, "SupervisionFailed", why.as_str())),
                    (None, Some(j)) => Some((j.phase, j.reason.as_str(), j.message.as_str())),
                    (None, None) => None,
                };
                self.end_trial(t, outcome)?;
                self.readers.remove(&t.number);
                self.live.remove(&t.number);
            } else if let (Some(j), Ok(false)) = (&job, supervised) {
                self.recover(t.number, j)?;
            } else if let Some(j) = job.filter(|_| !self.supervised.0.contains_key(&t.number)) {
                self.supervisors
                    .push((j.supervisor_pid, j.supervisor_start));
            }
        }
        if let (Some(rule), None) = (&self.early_stopping, &self.ending) {
            let history = self.history(&trials);
            for (t, h) in trials.iter().zip(&history) {
                if t.state != state::RUNNING || self.early_stopped.contains(&t.number) {
                    continue;
                }
                let Some((step, _)) = h.last() else { continue };
                let since = self.asked_at.insert(t.number, step);
                if since == Some(step) {
                    continue;
                }
                if rule.should_stop(self.direction, h, &history, since) {
                    self.early_stopped.insert(t.number);
                    self.stop_trial(t)?;
                }
            }
        }
        Ok(trials)
    }

    /// Collects what a trial's job printed since its supervisor's last collection.
    fn collect_rest(&self, job: &str) {
        let collected = collector(self.home, job).and_then(|(mut c, _)| Ok(c.collect(true)?));
        if let Err(e) = collected {
            eprintln!("warning: collecting the last metrics of trial {job}: {e:#}");
        }
    }

    /// Records how trial `t` ended, from its job's phase, reason and message.
    fn end_trial(&self, t: &mut TrialRow, job: Option<(JobPhase, &str, &str)>) -> Result<()> {
        let metric = &self.exp.spec.spec.objective.objective_metric_name;
        t.value = counted_value(&self.exp.spec, &t.intermediate);
        t.finished = Some(now());
        let (st, message) = if self.early_stopped.contains(&t.number) {
            (
                state::EARLY_STOPPED,
                format!(
                    "stopped early at step {}",
                    t.intermediate.last().map_or(0, |p| p.0)
                ),
            )
        } else if self.killed.contains(&t.number) {
            (state::KILLED, "stopped: the experiment ended".to_string())
        } else {
            match job {
                Some((JobPhase::Succeeded, _, _)) if t.value.is_some() => {
                    (state::SUCCEEDED, String::new())
                }
                Some((JobPhase::Succeeded, _, _)) => (
                    state::METRICS_UNAVAILABLE,
                    format!(
                        "trial {} succeeded but never reported the objective metric {metric:?} \
                         (print `{metric}=VALUE`); its last output lines:\n{}",
                        t.job,
                        self.last_output(&t.job)?
                    ),
                ),
                Some((_, reason, message)) => (state::FAILED, format!("{reason}: {message}")),
                None => (state::FAILED, "its job was deleted".to_string()),
            }
        };
        t.state = st.to_string();
        t.message = message;
        self.store.end_trial(&self.exp.name, t)?;
        Ok(())
    }

    /// The last lines a trial's job printed (every replica's latest attempt), quoted.
    fn last_output(&self, job: &str) -> Result<String> {
        let mut out = Vec::new();
        let attempts = self.store.attempts(job)?;
        for a in attempts.iter().rev().take(1) {
            for l in last_lines(&a.log, 5) {
                out.push(format!("  [{}] {l}", a.replica));
            }
        }
        if out.is_empty() {
            out.push("  (no output)".into());
        }
        Ok(out.join("\n"))
    }

    /// Stops a running trial gracefully (its supervisor stops the replicas): its flag when
    /// it is supervised here, else SIGTERM to the process that supervises it.
    fn stop_trial(&self, t: &TrialRow) -> Result<()> {
        if let Some(s) = self.supervised.0.get(&t.number) {
            s.stop.store(true, Ordering::SeqCst);
            return Ok(());
        }
        if let Some(j) = self.store.job(&t.job)? {
            if j.supervisor_pid != self.me
                && process::is_same_process(j.supervisor_pid, j.supervisor_start)
            {
                process::signal_process(j.supervisor_pid, libc::SIGTERM);
            }
        }
        Ok(())
    }

    /// Whether the experiment is over, and how.
    fn ends(&self, trials: &[TrialRow], running: usize) -> Option<Ending> {
        let c = Counts::of(trials);
        let tally = Tally {
            trials: trials.len() as u64,
            running: running as u64,
            failed: (c.failed + c.metrics_unavailable) as u64,
            best: best_trial(&self.exp, trials).map(|t| (t.number, t.value.unwrap_or(f64::NAN))),
            exhausted: self.exhausted,
        };
        ending(&self.exp.spec, &tally)
    }

    /// Starts trials up to the parallel limit and the trial budget.
    fn launch(&mut self, trials: &[TrialRow], running: usize) -> Result<()> {
        let spec = &self.exp.spec;
        let mut total = trials.len() as u64;
        let mut running = running as u64;
        let history = self.history(trials);
        while !self.exhausted
            && running < spec.parallel_trial_count()
            && spec.max_trial_count().is_none_or(|m| total < m)
        {
            let assignment =
                match self
                    .sampler
                    .suggest(&self.space, self.direction, &history, total)?
                {
                    Suggestion::Assign(a) => a,
                    Suggestion::Exhausted => {
                        self.exhausted = true;
                        break;
                    }
                };
            let job = trial_job(spec, total, &assignment);
            replace_unrecorded(&mut self.engine, &self.store, &self.exp.name, job.name())?;
            self.engine
                .create(&job, &self.exp.workdir)
                .with_context(|| format!("cannot create trial {}", job.name()))?;
            let row = TrialRow {
                number: total,
                job: job.name().to_string(),
                assignment: job_assignment(&assignment),
                state: state::RUNNING.into(),
                value: None,
                intermediate: Vec::new(),
                message: String::new(),
                started: now(),
                finished: None,
                metrics: Vec::new(),
            };
            self.store.insert_trial(&self.exp.name, &row)?;
            let s = Supervision::start(self.home, job.name(), &self.done.0)?;
            self.supervised.0.insert(total, s);
            total += 1;
            running += 1;
            if matches!(self.sampler.algorithm, trainctl_search::Algorithm::Grid) {
                // A grid skips the points of trials already started: suggest from them too.
                return Ok(());
            }
        }
        Ok(())
    }
}

fn job_assignment(a: &trainctl_search::Assignment) -> Vec<(String, trainctl_spec::HyperValue)> {
    a.iter().map(|(n, v)| (n.clone(), to_hyper(v))).collect()
}

/// Deletes a job named like the next trial that `experiment` created but never recorded
/// as a trial (an earlier run of it died in between): it never ran, and the trial is
/// created again with the same assignment. Jobs not labelled with it stay.
fn replace_unrecorded(
    engine: &mut LocalEngine,
    store: &Store,
    experiment: &str,
    name: &str,
) -> Result<()> {
    let ours = store.job(name)?.is_some_and(|j| {
        j.spec
            .metadata
            .labels
            .get(EXPERIMENT_LABEL)
            .map(String::as_str)
            == Some(experiment)
    });
    if ours {
        engine
            .delete(name, Duration::ZERO)
            .with_context(|| format!("cannot replace the unrecorded trial job {name}"))?;
    }
    Ok(())
}
