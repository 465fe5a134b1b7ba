//! Experiments reconciled by the operator on the in-memory API server: trials are
//! TrainingJobs owned by their experiment, whose pods a simulated trainer (this test) runs:
//! it prints metric lines into each trial pod's log, computed from the pod's `HP_X`, then
//! ends the pod, as a training program would.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use common::{eventually, Cluster, NS, OPERATOR_USER};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use kube_sim::{FaultRule, InjectedError};
use trainctl_kube::render::{COLLECTOR_CONTAINER, COMPONENT};
use trainctl_kube_client::experiment::{TRIAL_ASSIGNMENT_ANNOTATION, TRIAL_NUMBER_ANNOTATION};
use trainctl_kube_client::{ExperimentResource, ExperimentStatus};
use trainctl_metrics::event_lines::{format_line, EventScalar, END_LINE};
use trainctl_operator::TrainingJobResource;

/// What a trial pod does: the lines it prints, and its exit code (None: it keeps running).
type Script = (Vec<String>, Option<i64>);

/// An experiment over `x` in [0, 1] maximizing `accuracy`; `extra` adds spec fields (YAML
/// lines indented by two spaces).
fn experiment_yaml(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: {name}}}\n\
         spec:\n  objective: {{type: maximize, objectiveMetricName: accuracy}}\n\
         \x20 parameters:\n  - {{name: x, parameterType: double, feasibleSpace: {{min: 0, max: 1}}}}\n\
         \x20 trialTemplate:\n    spec: {{framework: tensorflow, image: registry.example.com/train:1, \
         command: [python3, train.py], replicas: {{worker: {{count: 1}}}}}}\n{extra}"
    )
}

async fn submit(c: &Cluster, yaml: &str) -> trainctl_spec::Experiment {
    let exp = trainctl_spec::parse_experiment_str("exp.yaml", yaml).expect("valid experiment");
    experiments(c)
        .create(
            &PostParams::default(),
            &ExperimentResource::from_experiment(&exp, NS),
        )
        .await
        .expect("experiment created");
    exp
}

fn experiments(c: &Cluster) -> Api<ExperimentResource> {
    Api::namespaced(c.client.clone(), NS)
}

/// Waits until the experiment's phase is `phase`; returns its status.
async fn wait_experiment(c: &Cluster, name: &str, phase: &str) -> ExperimentStatus {
    eventually(&format!("experiment {name} to be {phase}"), || async {
        let s = experiments(c).get_opt(name).await.ok()??.status?;
        (s.phase.as_deref() == Some(phase)).then_some(s)
    })
    .await
}

/// The experiment's trials by number.
async fn trials(c: &Cluster, name: &str) -> BTreeMap<u64, TrainingJobResource> {
    let list = c
        .jobs()
        .list(&ListParams::default().labels(&format!("trainctl.dev/experiment={name}")))
        .await
        .expect("trials listed");
    list.items
        .into_iter()
        .map(|t| {
            let n = t.annotations()[TRIAL_NUMBER_ANNOTATION].parse().unwrap();
            (n, t)
        })
        .collect()
}

/// Runs `until` while the simulated training program runs the trial pods of `experiment`:
/// every trial pod that runs gets the script `script(trial number, x)` once. Returns what
/// `until` gave and the most trial pods seen running at once.
async fn training<T>(
    c: &Cluster,
    experiment: &str,
    script: impl Fn(u64, f64) -> Script,
    until: impl std::future::Future<Output = T>,
) -> (T, usize) {
    let peak = Mutex::new(0);
    let train = async {
        let mut done = BTreeSet::new();
        let selector = format!("trainctl.dev/experiment={experiment}");
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let Ok(list) = c
                .pods_api()
                .list(&ListParams::default().labels(&selector))
                .await
            else {
                continue;
            };
            let running: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                // A trial's TensorBoard pod is no replica (see `collectors`).
                .filter(|p| !p.labels().contains_key(COMPONENT))
                .collect();
            let mut seen = peak.lock().unwrap();
            *seen = (*seen).max(running.len());
            drop(seen);
            for pod in running {
                if !done.insert(pod.uid().unwrap()) {
                    continue;
                }
                let job = &pod.labels()["trainctl.dev/job-name"];
                let number: u64 = job.rsplit('-').next().unwrap().parse().unwrap();
                let x: f64 = pod.spec.as_ref().unwrap().containers[0]
                    .env
                    .iter()
                    .flatten()
                    .find(|e| e.name == "HP_X")
                    .and_then(|e| e.value.as_ref()?.parse().ok())
                    .expect("the trial's pod has HP_X");
                let (lines, exit) = script(number, x);
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                c.sim.append_log(NS, &pod.name_any(), "", &lines);
                if let Some(code) = exit {
                    let _ = c.sim.finish_pod(NS, &pod.name_any(), code);
                }
            }
        }
    };
    let out = tokio::select! {
        out = until => out,
        never = train => never,
    };
    let peak = *peak.lock().unwrap();
    (out, peak)
}

/// Plays the Deployment controller and the collector for the TensorBoard of each trial of
/// `experiment`, as `trainctl collect` would run on the cluster (kube-sim runs neither):
/// creates the pod of the trial's TensorBoard Deployment; once it runs, prints on its
/// collector container what the collector prints of the job's own event files (`accuracy`
/// = `value(trial number)` at steps 1..=4 in run `validation`) and, when `ends(trial
/// number)`, ends the trial's worker as the training program would; once the trial's job
/// has ended, prints the collector's end line.
async fn collectors(
    c: &Cluster,
    experiment: &str,
    value: impl Fn(u64) -> f64,
    ends: impl Fn(u64) -> bool,
) {
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    let selector = format!("trainctl.dev/experiment={experiment}");
    // Per trial: 0 pod created, 1 metrics printed, 2 end printed.
    let mut progress: BTreeMap<String, u8> = BTreeMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(list) = deployments
            .list(&ListParams::default().labels(&selector))
            .await
        else {
            continue;
        };
        for deployment in list.items {
            let job = deployment.labels()["trainctl.dev/job-name"].clone();
            let number: u64 = job.rsplit('-').next().unwrap().parse().unwrap();
            let pod_name = format!("{}-0", deployment.name_any());
            let Some(done) = progress.get(&job).copied() else {
                let template = deployment.spec.unwrap().template;
                let mut pod = Pod {
                    metadata: template.metadata.unwrap_or_default(),
                    spec: template.spec,
                    status: None,
                };
                pod.metadata.name = Some(pod_name);
                if c.pods_api()
                    .create(&PostParams::default(), &pod)
                    .await
                    .is_ok()
                {
                    progress.insert(job, 0);
                }
                continue;
            };
            let Ok(Some(pod)) = c.pods_api().get_opt(&pod_name).await else {
                continue;
            };
            let running = pod.status.and_then(|s| s.phase).as_deref() == Some("Running");
            if done == 0 && running {
                let lines: Vec<String> = (1..=4)
                    .map(|step| {
                        format_line(&EventScalar {
                            run: "validation".into(),
                            tag: "accuracy".into(),
                            step,
                            value: value(number),
                        })
                    })
                    .collect();
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                c.sim.append_log(NS, &pod_name, COLLECTOR_CONTAINER, &lines);
                if ends(number) {
                    let _ = c.sim.finish_pod(NS, &format!("{job}-worker-0"), 0);
                }
                progress.insert(job, 1);
            } else if done == 1 {
                let Ok(Some(trial)) = c.jobs().get_opt(&job).await else {
                    continue;
                };
                if trial.status.as_ref().and_then(|s| s.outcome()).is_some() {
                    c.sim
                        .append_log(NS, &pod_name, COLLECTOR_CONTAINER, &[END_LINE]);
                    progress.insert(job, 2);
                }
            }
        }
    }
}

/// Prints `accuracy` = `value` at steps 1..=`steps` in the progress form.
fn curve(value: f64, steps: u64) -> Vec<String> {
    (1..=steps)
        .map(|s| format!("Step: {s}, Accuracy: {value}"))
        .collect()
}

/// Equal but for the last bits (a JSON number read by serde_json may be off by one ulp: a
/// trial's spec and its pods' `HP_X` pass through it, its recorded assignment does not).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

/// The value of `x` a trial ran with, from its recorded assignment.
fn assigned_x(trial: &TrainingJobResource) -> f64 {
    let a: serde_json::Value =
        serde_json::from_str(&trial.annotations()[TRIAL_ASSIGNMENT_ANNOTATION]).unwrap();
    a["x"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_runs_max_trial_count_trials_in_parallel_and_finds_the_best() {
    let c = Cluster::start().await;
    submit(
        &c,
        &experiment_yaml(
            "mt",
            "  algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: \"3\"}]}\n  \
             parallelTrialCount: 2\n  maxTrialCount: 6\n",
        ),
    )
    .await;
    let script = |_, x| (curve(x, 3), Some(0));
    let (status, peak) = training(&c, "mt", script, wait_experiment(&c, "mt", "Succeeded")).await;
    assert_eq!(status.reason.as_deref(), Some("ExperimentMaxTrialsReached"));
    assert_eq!((status.trials, status.trials_succeeded), (6, 6));
    let trials = trials(&c, "mt").await;
    assert_eq!(
        trials.keys().copied().collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    let best_x = trials.values().map(assigned_x).fold(f64::MIN, f64::max);
    assert!(close(status.best_objective.unwrap(), best_x));
    let optimal = status.current_optimal_trial.expect("a best trial");
    assert_eq!(optimal.observation.metrics[0].name, "accuracy");
    assert!(close(optimal.observation.metrics[0].max, best_x));
    for t in trials.values() {
        assert_eq!(
            t.name_any(),
            format!("mt-{}", t.annotations()[TRIAL_NUMBER_ANNOTATION])
        );
        let owner = &t.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Experiment", "mt")
        );
        let o = t.status.as_ref().unwrap().observation.as_ref().unwrap();
        assert!(o.complete);
        let steps: Vec<u64> = o.steps().iter().map(|p| p.0).collect();
        assert_eq!(steps, vec![1, 2, 3]);
        assert!(o.steps().iter().all(|p| close(p.1, assigned_x(t))));
    }
    assert!(
        peak <= 2,
        "{peak} trials ran at once (parallelTrialCount 2)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaching_the_goal_ends_the_experiment_early() {
    let c = Cluster::start().await;
    let yaml = experiment_yaml(
        "goal",
        "  algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: \"1\"}]}\n  \
         maxTrialCount: 200\n",
    )
    .replace("objectiveMetricName: accuracy}", "objectiveMetricName: accuracy, goal: 0.8}");
    submit(&c, &yaml).await;
    let script = |_, x| (curve(x, 1), Some(0));
    let (status, _) = training(&c, "goal", script, wait_experiment(&c, "goal", "Succeeded")).await;
    assert_eq!(status.reason.as_deref(), Some("ExperimentGoalReached"));
    assert!(status.best_objective.unwrap() >= 0.8);
    assert!(status.trials < 200);
    let trials = trials(&c, "goal").await;
    let reached: Vec<u64> = trials
        .iter()
        .filter(|(_, t)| assigned_x(t) >= 0.8)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        reached,
        vec![status.trials - 1],
        "the last trial reached the goal, none before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_stopping_ends_a_running_trial_and_deletes_its_pods() {
    let c = Cluster::start().await;
    submit(
        &c,
        &experiment_yaml(
            "es",
            "  algorithm: {algorithmName: random}\n  \
             earlyStopping: {algorithmName: medianstop, algorithmSettings: [{name: min_trials_required, value: \"3\"}, {name: start_step, value: \"2\"}]}\n  \
             maxTrialCount: 5\n",
        ),
    )
    .await;
    // Trials 0-2 reach 0.9 and end; later ones print 0.1 and would run for ever.
    let script = |n, _| {
        if n < 3 {
            (curve(0.9, 4), Some(0))
        } else {
            (curve(0.1, 4), None)
        }
    };
    let (status, _) = training(&c, "es", script, wait_experiment(&c, "es", "Succeeded")).await;
    assert_eq!(status.reason.as_deref(), Some("ExperimentMaxTrialsReached"));
    assert_eq!(
        (status.trials_succeeded, status.trials_early_stopped),
        (3, 2)
    );
    for n in [3, 4] {
        let trial = &trials(&c, "es").await[&n];
        let s = trial.status.as_ref().unwrap();
        assert_eq!(s.reason.as_deref(), Some("EarlyStopped"), "trial {n}");
        // The ended job's pods go as the operator cleans up after it.
        let job = trial.name_any();
        eventually(&format!("trial {n}'s pods to be deleted"), || async {
            c.pods(&job).await.is_empty().then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_failed_trial_count_fails_the_experiment() {
    let c = Cluster::start().await;
    submit(
        &c,
        &experiment_yaml(
            "mf",
            "  algorithm: {algorithmName: random}\n  maxTrialCount: 10\n  maxFailedTrialCount: 2\n",
        ),
    )
    .await;
    let script = |_, _| (vec!["Traceback: boom".to_string()], Some(1));
    let (status, _) = training(&c, "mf", script, wait_experiment(&c, "mf", "Failed")).await;
    assert_eq!(
        status.reason.as_deref(),
        Some("ExperimentMaxFailedTrialsReached")
    );
    assert_eq!((status.trials, status.trials_failed), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_that_never_reports_the_objective_is_metrics_unavailable() {
    let c = Cluster::start().await;
    submit(
        &c,
        &experiment_yaml(
            "mu",
            "  algorithm: {algorithmName: random}\n  maxTrialCount: 1\n",
        ),
    )
    .await;
    let script = |_, _| (vec!["loss=0.3".to_string()], Some(0));
    let (status, _) = training(&c, "mu", script, wait_experiment(&c, "mu", "Succeeded")).await;
    assert_eq!((status.trials, status.trial_metrics_unavailable), (1, 1));
    assert_eq!(status.current_optimal_trial, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_whose_objective_is_only_in_its_event_files_gets_it_from_the_collector_log() {
    let c = Cluster::start().await;
    let yaml = experiment_yaml(
        "ev",
        "  algorithm: {algorithmName: random}\n  \
         earlyStopping: {algorithmName: medianstop, algorithmSettings: [{name: min_trials_required, value: \"3\"}, {name: start_step, value: \"2\"}]}\n  \
         maxTrialCount: 5\n",
    )
    .replace(
        "{worker: {count: 1}}}",
        "{worker: {count: 1}}, tensorboard: {logDir: /logs}}",
    );
    submit(&c, &yaml).await;
    // The replicas print no objective; the event files carry it: trials 0-2 reach 0.9
    // and end, later ones 0.1 and would run for ever.
    let script = |_, _| (vec!["loss=0.3".to_string()], None);
    let value = |n| if n < 3 { 0.9 } else { 0.1 };
    let until = async {
        tokio::select! {
            status = wait_experiment(&c, "ev", "Succeeded") => status,
            _ = collectors(&c, "ev", value, |n| n < 3) => unreachable!("collectors run until told"),
        }
    };
    let (status, _) = training(&c, "ev", script, until).await;
    assert_eq!(status.reason.as_deref(), Some("ExperimentMaxTrialsReached"));
    assert_eq!(
        (status.trials_succeeded, status.trials_early_stopped),
        (3, 2)
    );
    assert_eq!(status.best_objective, Some(0.9));
    let trials = trials(&c, "ev").await;
    for (n, trial) in &trials {
        let s = trial.status.as_ref().unwrap();
        let o = s.observation.as_ref().unwrap();
        assert_eq!(o.metrics[0].name, "accuracy", "trial {n}");
        if *n < 3 {
            assert!(o.complete, "trial {n}");
            assert_eq!(o.steps(), vec![(1, 0.9), (2, 0.9), (3, 0.9), (4, 0.9)]);
        } else {
            assert_eq!(s.reason.as_deref(), Some("EarlyStopped"), "trial {n}");
            assert!(o.steps().iter().all(|p| p.1 == 0.1), "trial {n}: {o:?}");
        }
    }
}

/// The random sampler's suggestion for trial `n` of `exp`, computed here.
fn expected_x(exp: &trainctl_spec::Experiment, n: u64) -> f64 {
    let suggestion = exp
        .sampler()
        .unwrap()
        .suggest(&exp.search_space().unwrap(), exp.direction(), &[], n)
        .unwrap();
    match suggestion {
        trainctl_search::Suggestion::Assign(a) => match a[0].1 {
            trainctl_search::Value::Float(x) => x,
            ref other => panic!("x is a double, not {other:?}"),
        },
        trainctl_search::Suggestion::Exhausted => panic!("random never runs out"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_at_random_points_creates_each_trial_once() {
    let c = Cluster::without_operator().await;
    let exp = submit(
        &c,
        &experiment_yaml(
            "kill",
            "  algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: \"5\"}]}\n  \
             parallelTrialCount: 3\n  maxTrialCount: 12\n",
        ),
    )
    .await;
    let crashes = async {
        let mut rng = fastrand::Rng::with_seed(14);
        for _ in 0..100 {
            let (_stop, operator) = c.spawn_operator();
            tokio::time::sleep(Duration::from_millis(rng.u64(100..1500))).await;
            operator.abort();
            let _ = operator.await;
            if experiments(&c).get("kill").await.unwrap().phase() == "Succeeded" {
                return;
            }
        }
        panic!("the experiment never finished");
    };
    let script = |_, x| (curve(x, 2), Some(0));
    training(&c, "kill", script, crashes).await;
    let trials = trials(&c, "kill").await;
    assert_eq!(
        trials.keys().copied().collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    for (n, t) in &trials {
        assert_eq!(
            assigned_x(t),
            expected_x(&exp, *n),
            "trial {n}'s suggestion"
        );
        let in_spec: f64 = t.spec.0.hyperparameters["x"].to_string().parse().unwrap();
        assert!(
            close(in_spec, assigned_x(t)),
            "trial {n} runs with its assignment"
        );
    }
    let status = experiments(&c).get("kill").await.unwrap().status.unwrap();
    assert_eq!((status.trials, status.trials_succeeded), (12, 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_completes_through_ten_percent_api_faults() {
    let c = Cluster::start().await;
    c.sim.inject_fault_for_user(
        OPERATOR_USER,
        FaultRule {
            verb: None,
            resource: None,
            rate: 0.1,
            error: InjectedError::ServerError,
        },
    );
    submit(
        &c,
        &experiment_yaml(
            "flaky",
            "  algorithm: {algorithmName: tpe, algorithmSettings: [{name: random_state, value: \"2\"}]}\n  \
             parallelTrialCount: 2\n  maxTrialCount: 8\n",
        ),
    )
    .await;
    let script = |_, x| (curve(x, 2), Some(0));
    let (status, _) = training(
        &c,
        "flaky",
        script,
        wait_experiment(&c, "flaky", "Succeeded"),
    )
    .await;
    assert_eq!((status.trials, status.trials_succeeded), (8, 8));
    assert_eq!(trials(&c, "flaky").await.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_experiment_removes_every_trial_and_pod() {
    let c = Cluster::start().await;
    submit(
        &c,
        &experiment_yaml(
            "del",
            "  algorithm: {algorithmName: random}\n  parallelTrialCount: 3\n  maxTrialCount: 9\n",
        ),
    )
    .await;
    let script = |_, x| (curve(x, 1), None);
    let three_running = async {
        for n in 0..3 {
            c.running_pod(&format!("del-{n}-worker-0"), 0).await;
        }
    };
    training(&c, "del", script, three_running).await;
    experiments(&c)
        .delete("del", &DeleteParams::background())
        .await
        .unwrap();
    eventually("every trial and pod of del to be gone", || async {
        let trials = trials(&c, "del").await;
        let pods = c
            .pods_api()
            .list(&ListParams::default().labels("trainctl.dev/experiment=del"))
            .await
            .ok()?;
        (trials.is_empty() && pods.items.is_empty()).then_some(())
    })
    .await;
}

/// Waits until trial pod `pod` runs with a uid other than `before`; returns its uid.
async fn running_pod(c: &Cluster, pod: &str, before: Option<&str>) -> String {
    eventually(&format!("pod {pod} running"), || async {
        let p = c.pods_api().get_opt(pod).await.ok()??;
        let uid = p.uid()?;
        let running = p.status?.phase.as_deref() == Some("Running");
        (running && before != Some(uid.as_str())).then_some(uid)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_log_is_followed_once_and_a_failed_attempt_still_counts_after_its_pod_went() {
    let c = Cluster::start().await;
    let yaml = experiment_yaml(
        "flow",
        "  algorithm: {algorithmName: random}\n  maxTrialCount: 1\n",
    )
    .replace(
        "replicas: {worker: {count: 1}}}",
        "replicas: {worker: {count: 1}}, runPolicy: {restartPolicy: OnFailure, backoffLimit: 3}}",
    );
    submit(&c, &yaml).await;
    let pod = "flow-0-worker-0";
    // A metric line padded to 100 bytes, so the log API's timestamps add under a third.
    let line = |step: u64| {
        format!(
            "{:<99}",
            format!("Step: {step}, Accuracy: {}", step as f64 / 1000.0)
        )
    };
    let mut printed = 0;
    let mut print = |steps: std::ops::RangeInclusive<u64>| {
        let lines: Vec<String> = steps.map(line).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        c.sim.append_log(NS, pod, "", &refs);
        printed += lines.iter().map(|l| l.len() as u64 + 1).sum::<u64>();
    };
    // The first attempt prints for about 3 s (the operator looks every 100 ms), then fails:
    // the operator archives its log, deletes the pod and starts the next attempt.
    let first = running_pod(&c, pod, None).await;
    for batch in 0..30 {
        print(batch * 5 + 1..=batch * 5 + 5);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.sim.finish_pod(NS, pod, 1).unwrap();
    running_pod(&c, pod, Some(&first)).await;
    print(151..=152);
    c.sim.finish_pod(NS, pod, 0).unwrap();
    let status = wait_experiment(&c, "flow", "Succeeded").await;
    assert_eq!(status.trials_succeeded, 1);
    let trial = &trials(&c, "flow").await[&0];
    let o = trial.status.as_ref().unwrap().observation.clone().unwrap();
    let expected: Vec<(u64, f64)> = (1..=152).map(|s| (s, s as f64 / 1000.0)).collect();
    assert_eq!(o.steps(), expected, "both attempts' values by step");
    // Re-reading the growing log on each of some 30 looks would fetch it about 15 times
    // over; following it fetches each line once (with its timestamp), plus at most one
    // read of the first attempt's log for its archive.
    let fetched = c.sim.log_bytes_served(NS, pod);
    assert!(
        fetched < 3 * printed,
        "{fetched} bytes fetched for {printed} printed"
    );
}
