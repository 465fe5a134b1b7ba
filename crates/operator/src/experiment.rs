//! The Experiment controller: the same pure search code as the local engine (no suggestion
//! service, no database). One reconcile reads the experiment and its trials (TrainingJobs it
//! owns, named `<experiment>-<n>`), brings each running trial's observation up to date from
//! its replicas' logs (followed across reconciles, [`TrialLogs`]; written to the trial's status), stops trials early stopping rejects
//! (their TrainingJob ends with reason EarlyStopped), decides whether the experiment is over,
//! and creates trials up to `parallelTrialCount`. A trial is created with its number and
//! assignment in its annotations, before any of its pods exist, and its name is fixed by
//! its number: an operator killed at any point neither loses a trial nor creates one twice,
//! and the samplers, seeded and fed with the recorded trials, suggest what they would have.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use trainctl_core::state_machine::{Decision, JobPhase};
use trainctl_kube_client::experiment::{
    owned_trials, trial_selector, ExperimentResource, ExperimentStatus, NamedValue, Observation,
    OptimalTrial, TrialView, EARLY_STOPPED, EXPERIMENT_ENDED, TRIAL_ASSIGNMENT_ANNOTATION,
    TRIAL_NUMBER_ANNOTATION,
};
use trainctl_kube_client::trial_metrics::TrialLogs;
use trainctl_metrics::stdout::StdoutParser;
use trainctl_search::{Suggestion, Trial, TrialState};
use trainctl_spec::trial::{ending, state, to_hyper, to_value, trial_job, Tally};
use trainctl_spec::Experiment;

use crate::metrics::Metrics;
use crate::names::MANAGER;
use crate::status::JobCondition;
use crate::{Error, TrainingJobResource};

/// What every experiment reconcile shares.
pub struct ExperimentContext {
    /// The API client.
    pub client: kube::Client,
    /// How often an experiment with running trials reads their logs.
    pub poll: Duration,
    /// Delay before a failed reconcile is retried.
    pub retry: Duration,
    /// Metrics (the time each suggestion takes).
    pub metrics: Arc<Metrics>,
    /// Per trial: the last step early stopping was asked about.
    asked_at: Mutex<HashMap<String, u64>>,
    /// Per running trial: when its observation was last written (or the trial first seen).
    written_at: Mutex<HashMap<String, Instant>>,
    /// Per experiment (`namespace/name`), per running trial: its followed logs, kept
    /// across reconciles until the trial's observation is complete.
    logs: Mutex<HashMap<String, ExperimentLogs>>,
}

/// The followed logs of one experiment's running trials, by trial name.
type ExperimentLogs = HashMap<String, Arc<tokio::sync::Mutex<TrialLogs>>>;

impl ExperimentContext {
    /// The followed logs of trial `trial` of experiment `key`, started with `parser`.
    fn trial_logs(
        &self,
        key: &str,
        trial: &str,
        parser: impl FnOnce() -> Result<StdoutParser, Error>,
    ) -> Result<Arc<tokio::sync::Mutex<TrialLogs>>, Error> {
        let mut logs = self.logs.lock().expect("not poisoned");
        let trials = logs.entry(key.to_string()).or_default();
        if let Some(found) = trials.get(trial) {
            return Ok(found.clone());
        }
        let started = Arc::new(tokio::sync::Mutex::new(TrialLogs::new(parser()?)));
        trials.insert(trial.to_string(), started.clone());
        Ok(started)
    }

    /// Stops following the logs of experiment `key`'s trials but those in `running` (all
    /// when None).
    fn keep_logs(&self, key: &str, running: Option<&[String]>) {
        let mut logs = self.logs.lock().expect("not poisoned");
        match running {
            Some(names) => {
                if let Some(trials) = logs.get_mut(key) {
                    trials.retain(|name, _| names.contains(name));
                }
            }
            None => {
                logs.remove(key);
            }
        }
    }
}

/// A running trial's observation is written at most this often; the complete one (once
/// its job ended) at once. Between writes the operator keeps the newer values in memory
/// (early stopping reads them there, and a trial it stops gets them with its end); the
/// logs they come from outlive an operator restart.
pub const OBSERVATION_EVERY: Duration = Duration::from_secs(10);

/// Runs the Experiment controller until `shutdown` resolves.
pub async fn run_experiments(
    client: kube::Client,
    namespace: Option<String>,
    poll: Duration,
    retry: Duration,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (experiments, jobs): (Api<ExperimentResource>, Api<TrainingJobResource>) = match &namespace
    {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let ctx = Arc::new(ExperimentContext {
        client,
        poll,
        retry,
        metrics,
        asked_at: Mutex::new(HashMap::new()),
        written_at: Mutex::new(HashMap::new()),
        logs: Mutex::new(HashMap::new()),
    });
    Controller::new(experiments, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy(
    exp: Arc<ExperimentResource>,
    error: &Error,
    ctx: Arc<ExperimentContext>,
) -> Requeue {
    tracing::warn!(
        namespace = exp.namespace().unwrap_or_default(),
        name = exp.name_any(),
        kind = error.kind(),
        "experiment reconcile failed, retrying in {:?}: {error}",
        ctx.retry
    );
    Requeue::requeue(ctx.retry)
}

/// The trial as the samplers and stopping rules see it.
fn history(t: &TrialView) -> Trial {
    Trial {
        number: t.number,
        assignment: t
            .assignment
            .iter()
            .map(|(n, v)| (n.clone(), to_value(v)))
            .collect(),
        state: match t.state {
            state::RUNNING => TrialState::Running,
            state::SUCCEEDED => TrialState::Completed,
            state::EARLY_STOPPED => TrialState::Pruned,
            _ => TrialState::Failed,
        },
        value: t.value.filter(|_| t.state == state::SUCCEEDED),
        intermediate: t.intermediate.clone(),
    }
}

/// Reconciles one experiment.
pub async fn reconcile(
    trigger: Arc<ExperimentResource>,
    ctx: Arc<ExperimentContext>,
) -> Result<Requeue, Error> {
    let ns = trigger.namespace().unwrap_or_default();
    let experiments: Api<ExperimentResource> = Api::namespaced(ctx.client.clone(), &ns);
    let key = format!("{ns}/{}", trigger.name_any());
    let Some(resource) = experiments.get_opt(&trigger.name_any()).await? else {
        ctx.keep_logs(&key, None);
        return Ok(Requeue::await_change());
    };
    if resource.meta().deletion_timestamp.is_some() {
        ctx.keep_logs(&key, None);
        return Ok(Requeue::await_change());
    }
    Reconciler {
        jobs: Api::namespaced(ctx.client.clone(), &ns),
        experiments,
        exp: resource.to_experiment(),
        resource,
        ctx: &ctx,
        key,
    }
    .run()
    .await
}

struct Reconciler<'a> {
    ctx: &'a ExperimentContext,
    /// `namespace/name` of the experiment.
    key: String,
    resource: ExperimentResource,
    exp: Experiment,
    jobs: Api<TrainingJobResource>,
    experiments: Api<ExperimentResource>,
}

impl Reconciler<'_> {
    async fn run(self) -> Result<Requeue, Error> {
        let old = self.resource.status.clone().unwrap_or_default();
        let invalid = |e: trainctl_search::SearchError| Error::Invalid(e.to_string());
        let space = self.exp.search_space().map_err(invalid);
        let sampler = self.exp.sampler().map_err(invalid);
        let rule = self.exp.early_stopping().map_err(invalid);
        let (space, sampler, rule) = match (space, sampler, rule) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                let mut status = old.clone();
                set_phase(&mut status, "Failed", "InvalidSpec", &e.to_string());
                self.write_status(&old, &status).await?;
                return Ok(Requeue::await_change());
            }
        };
        let mut trials = self.trials().await?;
        for t in trials.iter_mut().filter(|t| t.state == state::RUNNING) {
            self.observe(t).await?;
        }
        let running: Vec<String> = trials
            .iter()
            .filter(|t| t.state == state::RUNNING)
            .map(TrialView::name)
            .collect();
        self.ctx.keep_logs(&self.key, Some(&running));
        let history: Vec<Trial> = trials.iter().map(history).collect();
        let ended = matches!(old.phase.as_deref(), Some("Succeeded" | "Failed"));
        if let (Some(rule), false) = (&rule, ended) {
            for (t, h) in trials.iter().zip(&history) {
                if t.state != state::RUNNING
                    || t.resource
                        .status
                        .as_ref()
                        .and_then(|s| s.outcome())
                        .is_some()
                {
                    continue;
                }
                let Some((step, _)) = h.last() else { continue };
                let since = self
                    .ctx
                    .asked_at
                    .lock()
                    .expect("not poisoned")
                    .insert(t.name(), step);
                if since == Some(step) {
                    continue;
                }
                if rule.should_stop(self.exp.direction(), h, &history, since) {
                    let message = format!("stopped early at step {step}");
                    self.end_trial(t, JobPhase::Succeeded, EARLY_STOPPED, &message)
                        .await?;
                }
            }
        }
        let running = trials.iter().filter(|t| t.state == state::RUNNING).count() as u64;
        let count = |s: &str| trials.iter().filter(|t| t.state == s).count() as u64;
        let best = self.best(&trials);
        let mut tally = Tally {
            trials: trials.len() as u64,
            running,
            failed: count(state::FAILED) + count(state::METRICS_UNAVAILABLE),
            best: best.map(|t| (t.number, t.value.unwrap_or(f64::NAN))),
            exhausted: old.reason.as_deref() == Some("ExperimentSuggestionEndReached"),
        };
        let mut status = old.clone();
        let mut over = ending(&self.exp, &tally);
        if over.is_none() && !ended {
            self.launch(&space, &sampler, &trials, &mut tally).await?;
            if tally.exhausted {
                over = ending(&self.exp, &tally);
            }
        }
        if over.is_some() || ended {
            for t in trials.iter().filter(|t| t.state == state::RUNNING) {
                let message = "stopped: the experiment ended";
                self.end_trial(t, JobPhase::Failed, EXPERIMENT_ENDED, message)
                    .await?;
            }
        }
        match over {
            Some((phase, reason, message)) if !ended && running == 0 => {
                set_phase(&mut status, phase, reason, &message)
            }
            Some(_) => {}
            None if !ended => set_phase(
                &mut status,
                "Running",
                "ExperimentRunning",
                "the experiment runs its trials",
            ),
            None => {}
        }
        self.count(&mut status, &trials);
        self.write_status(&old, &status).await?;
        let done = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        Ok(if done && running == 0 {
            Requeue::await_change()
        } else {
            Requeue::requeue(self.ctx.poll)
        })
    }

    /// The experiment's trials (the TrainingJobs it owns), by number.
    async fn trials(&self) -> Result<Vec<TrialView>, Error> {
        let params = ListParams::default().labels(&trial_selector(self.exp.name()));
        let jobs = self.jobs.list(&params).await?.items;
        Ok(owned_trials(&self.resource, jobs))
    }

    /// Brings a running trial's observation up to date from its followed logs; records it
    /// when it changed (complete once its job had ended and every log was read to its end).
    async fn observe(&self, t: &mut TrialView) -> Result<(), Error> {
        let status = t.resource.status.clone().unwrap_or_default();
        let job_ended = status.outcome().is_some();
        let parser = || {
            let job = t.resource.to_job();
            StdoutParser::for_spec(job.spec.metrics.as_ref())
                .map_err(|e| Error::Invalid(format!("trial {}: {e}", t.name())))
        };
        let logs = self.ctx.trial_logs(&self.key, &t.name(), parser)?;
        let mut logs = logs.lock().await;
        let read_all = logs
            .pass(&self.ctx.client, &t.resource)
            .await
            .map_err(|e| Error::Invalid(format!("trial {}: {e:#}", t.name())))?;
        let objective = &self.exp.spec.objective;
        let mut metrics = vec![objective.objective_metric_name.clone()];
        metrics.extend(objective.additional_metric_names.iter().cloned());
        let mut observation = logs.observe(&metrics);
        drop(logs);
        observation.complete = job_ended && read_all;
        if status.observation.as_ref() != Some(&observation)
            && self.due(&t.name(), observation.complete)
        {
            let patch = json!({"status": {"observation": observation}});
            self.jobs
                .patch_status(&t.name(), &patch_params(), &Patch::Merge(&patch))
                .await?;
        }
        let mut resource = t.resource.clone();
        resource
            .status
            .get_or_insert_with(Default::default)
            .observation = Some(observation);
        *t = TrialView::of(&self.exp, resource).expect("the trial was read with its number");
        Ok(())
    }

    /// Whether a changed observation of the trial is to be written now: always once it is
    /// complete, else when [`OBSERVATION_EVERY`] has passed since the last write (or since the
    /// trial was first seen).
    fn due(&self, trial: &str, complete: bool) -> bool {
        let mut written = self.ctx.written_at.lock().expect("not poisoned");
        if complete {
            written.remove(trial);
            return true;
        }
        let now = Instant::now();
        let last = *written.entry(trial.to_string()).or_insert(now);
        if now.duration_since(last) < OBSERVATION_EVERY {
            return false;
        }
        written.insert(trial.to_string(), now);
        true
    }

    /// Ends a trial's TrainingJob with `reason` (its pods are stopped by the job's reconcile).
    async fn end_trial(
        &self,
        t: &TrialView,
        phase: JobPhase,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let mut status = t.resource.status.clone().unwrap_or_default();
        if status.outcome().is_some() {
            return Ok(());
        }
        let decision = Decision {
            phase,
            reason: reason.into(),
            message: message.into(),
            actions: Vec::new(),
        };
        status.apply(&decision, &now());
        let patch = json!({
            "metadata": {"resourceVersion": t.resource.resource_version()},
            "status": status,
        });
        match self
            .jobs
            .patch_status(&t.name(), &patch_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            // Changed meanwhile: the next reconcile (woken by the change) asks again.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let mut asked = self.ctx.asked_at.lock().expect("not poisoned");
                asked.remove(&t.name());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates trials up to the parallel limit and the trial budget (counted in `tally`).
    async fn launch(
        &self,
        space: &trainctl_search::Space,
        sampler: &trainctl_search::Sampler,
        trials: &[TrialView],
        tally: &mut Tally,
    ) -> Result<(), Error> {
        let mut history: Vec<Trial> = trials.iter().map(history).collect();
        let mut number = trials.last().map_or(0, |t| t.number + 1).max(tally.trials);
        while tally.running < self.exp.parallel_trial_count()
            && self.exp.max_trial_count().is_none_or(|m| tally.trials < m)
        {
            let started = Instant::now();
            let suggested = sampler.suggest(space, self.exp.direction(), &history, number);
            self.ctx.metrics.observe_suggestion(started.elapsed());
            let assignment = match suggested.map_err(|e| Error::Invalid(e.to_string()))? {
                Suggestion::Assign(a) => a,
                Suggestion::Exhausted => {
                    tally.exhausted = true;
                    break;
                }
            };
            let job = trial_job(&self.exp, number, &assignment);
            let ns = self.resource.namespace().unwrap_or_default();
            let mut resource = TrainingJobResource::from_job(&job, &ns);
            // Values as text: JSON numbers would not come back bit for bit.
            let recorded: BTreeMap<&str, String> = assignment
                .iter()
                .map(|(n, v)| (n.as_str(), to_hyper(v).to_string()))
                .collect();
            let annotations = resource
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            annotations.insert(TRIAL_NUMBER_ANNOTATION.into(), number.to_string());
            annotations.insert(
                TRIAL_ASSIGNMENT_ANNOTATION.into(),
                serde_json::to_string(&recorded)?,
            );
            resource.metadata.owner_references =
                self.resource.controller_owner_ref(&()).map(|o| vec![o]);
            let post = PostParams {
                field_manager: Some(MANAGER.into()),
                ..PostParams::default()
            };
            if !crate::reconcile::ignore_exists(self.jobs.create(&post, &resource).await)? {
                // Created by an earlier reconcile this one's list did not show yet.
                break;
            }
            history.push(Trial {
                number,
                assignment,
                state: TrialState::Running,
                value: None,
                intermediate: Vec::new(),
            });
            number += 1;
            tally.trials += 1;
            tally.running += 1;
        }
        Ok(())
    }

    /// The succeeded trial with the best value.
    fn best<'t>(&self, trials: &'t [TrialView]) -> Option<&'t TrialView> {
        let direction = self.exp.direction();
        trials
            .iter()
            .filter(|t| t.state == state::SUCCEEDED)
            .filter_map(|t| t.value.map(|v| (t, direction.loss(v))))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(t, _)| t)
    }

    /// Counts per trial state and the current optimal trial.
    fn count(&self, status: &mut ExperimentStatus, trials: &[TrialView]) {
        let n = |s: &str| trials.iter().filter(|t| t.state == s).count() as u64;
        status.trials = trials.len() as u64;
        status.trials_running = n(state::RUNNING);
        status.trials_succeeded = n(state::SUCCEEDED);
        status.trials_failed = n(state::FAILED);
        status.trials_early_stopped = n(state::EARLY_STOPPED);
        status.trials_killed = n(state::KILLED);
        status.trial_metrics_unavailable = n(state::METRICS_UNAVAILABLE);
        let best = self.best(trials);
        status.best_objective = best.and_then(|t| t.value);
        status.current_optimal_trial = best.map(|t| OptimalTrial {
            best_trial_name: t.name(),
            parameter_assignments: t
                .assignment
                .iter()
                .map(|(n, v)| NamedValue {
                    name: n.clone(),
                    value: v.to_string(),
                })
                .collect(),
            observation: Observation {
                metrics: t.metrics(),
            },
        });
    }

    async fn write_status(
        &self,
        old: &ExperimentStatus,
        status: &ExperimentStatus,
    ) -> Result<(), Error> {
        if status == old {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"resourceVersion": self.resource.resource_version()},
            "status": status,
        });
        self.experiments
            .patch_status(
                &self.exp.metadata.name,
                &patch_params(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }
}

/// Sets the phase, reason and message; the condition of the phase becomes true (and
/// Running false once the experiment ended; Succeeded and Failed false, with no completion
/// time, once a resumed experiment runs again).
fn set_phase(status: &mut ExperimentStatus, phase: &str, reason: &str, message: &str) {
    if status.phase.as_deref() == Some(phase) && status.reason.as_deref() == Some(reason) {
        return;
    }
    let now = now();
    let condition = |type_: &str, value: &str| JobCondition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now.clone(),
    };
    let ends = phase == "Succeeded" || phase == "Failed";
    let mut changes = Vec::new();
    if phase != "Running" {
        changes.push(condition("Running", "False"));
    }
    changes.push(condition(phase, "True"));
    if !ends {
        changes.extend(
            status
                .conditions
                .iter()
                .filter(|c| (c.type_ == "Succeeded" || c.type_ == "Failed") && c.status == "True")
                .map(|c| condition(&c.type_, "False")),
        );
    }
    for change in changes {
        match status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == change.type_)
        {
            Some(c) => *c = change,
            None => status.conditions.push(change),
        }
    }
    status.completion_time = ends.then_some(now);
    status.phase = Some(phase.into());
    status.reason = Some(reason.into());
    status.message = Some(message.into());
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition<'a>(status: &'a ExperimentStatus, type_: &str) -> Option<&'a str> {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.as_str())
    }

    #[test]
    fn a_resumed_experiment_that_runs_again_is_no_longer_succeeded() {
        let mut status = ExperimentStatus::default();
        set_phase(&mut status, "Running", "ExperimentRunning", "runs");
        set_phase(
            &mut status,
            "Succeeded",
            "ExperimentMaxTrialsReached",
            "2 trials ran",
        );
        assert!(status.completion_time.is_some());
        assert_eq!(condition(&status, "Succeeded"), Some("True"));
        status.phase = Some("Created".into());
        status.reason = Some("ExperimentResumed".into());
        set_phase(&mut status, "Running", "ExperimentRunning", "runs");
        assert_eq!(condition(&status, "Running"), Some("True"));
        assert_eq!(condition(&status, "Succeeded"), Some("False"));
        assert_eq!(condition(&status, "Failed"), None, "it never failed");
        assert_eq!(status.completion_time, None);
        set_phase(
            &mut status,
            "Succeeded",
            "ExperimentMaxTrialsReached",
            "4 trials ran",
        );
        assert_eq!(
            (
                condition(&status, "Running"),
                condition(&status, "Succeeded")
            ),
            (Some("False"), Some("True"))
        );
    }
}
