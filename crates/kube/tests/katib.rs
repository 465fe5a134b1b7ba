//! Katib v1beta1 Experiments (tests/katib, shaped like Katib's own examples) converted to
//! Experiment files: each result, printed as `trainctl convert` prints it, parses and
//! validates as an experiment file; the search, the template and the report of what did not
//! carry over are what a Katib user expects; bad input is a located error, never a panic.

mod common;

use trainctl_kube::{convert_document, experiment_document, Conversion, ConvertedExperiment};
use trainctl_spec::{Experiment, Framework, HyperValue, ReplicaType};

fn fixture(name: &str) -> String {
    let path = common::crate_dir().join("tests/katib").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The conversion of a fixture, and its printed form parsed back as an experiment file.
fn convert(name: &str) -> (Experiment, Vec<String>) {
    let converted = match convert_document(&fixture(name)) {
        Ok(Conversion::Experiment(c)) => c,
        other => panic!("{name}: {other:?}"),
    };
    let ConvertedExperiment {
        experiment,
        dropped,
    } = *converted;
    let yaml = serde_yaml_ng::to_string(&experiment_document(&experiment)).unwrap();
    let parsed = trainctl_spec::parse_experiment_str(name, &yaml)
        .unwrap_or_else(|e| panic!("{name} printed as\n{yaml}\ndoes not parse: {e:?}"));
    assert_eq!(parsed, experiment, "{yaml}");
    (parsed, dropped)
}

fn error(text: &str) -> String {
    match convert_document(text) {
        Err(e) => e.to_string(),
        Ok(c) => panic!("converted: {c:?}"),
    }
}

fn names(exp: &Experiment) -> Vec<&str> {
    exp.spec
        .parameters
        .iter()
        .map(|p| p.name.as_str())
        .collect()
}

fn hyper(exp: &Experiment) -> Vec<String> {
    let h = &exp.spec.trial_template.spec.hyperparameters;
    h.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn mentions(dropped: &[String], needle: &str) -> bool {
    dropped.iter().any(|d| d.contains(needle))
}

#[test]
fn a_random_search_over_a_batch_job_becomes_an_experiment_whose_trials_get_the_flags() {
    let (exp, dropped) = convert("random-job.yaml");
    assert_eq!(exp.metadata.name, "random");
    assert_eq!(exp.metadata.namespace.as_deref(), Some("kubeflow"));
    let o = &exp.spec.objective;
    assert_eq!(o.objective_metric_name, "Validation-accuracy");
    assert_eq!(o.additional_metric_names, ["Train-accuracy"]);
    assert_eq!(exp.goal(), Some(0.99));
    assert_eq!(exp.spec.algorithm.algorithm_name, "random");
    assert_eq!(
        (
            exp.parallel_trial_count(),
            exp.max_trial_count(),
            exp.max_failed_trial_count()
        ),
        (3, Some(12), Some(3))
    );
    assert_eq!(names(&exp), ["lr", "num-layers", "optimizer"]);
    // Katib's string bounds are read as numbers.
    let space = exp.search_space().unwrap();
    assert_eq!(space.params().len(), 3);
    let t = &exp.spec.trial_template.spec;
    assert_eq!(t.framework, Framework::Generic);
    assert_eq!(t.command, ["python3", "/opt/mxnet-mnist/mnist.py"]);
    assert_eq!(
        t.image.as_deref(),
        Some("docker.io/kubeflowkatib/mxnet-mnist:latest")
    );
    assert_eq!(hyper(&exp), ["batch-size=64"]);
    let worker = t.replicas.get(ReplicaType::Worker).unwrap();
    assert_eq!(worker.count, 1);
    assert_eq!(worker.resources.memory.as_ref().unwrap().0, "2Gi");
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn tpe_keeps_its_settings_and_a_placeholder_given_as_a_separate_word_converts_too() {
    let (exp, dropped) = convert("tpe-job.yaml");
    assert_eq!(exp.spec.algorithm.algorithm_name, "tpe");
    assert_eq!(
        exp.spec.algorithm.settings(),
        [
            ("random_state".to_string(), "10".to_string()),
            ("n_startup_trials".into(), "5".into()),
            ("n_ei_candidates".into(), "24".into())
        ]
    );
    assert_eq!(names(&exp), ["lr", "momentum", "batch-size"]);
    let t = &exp.spec.trial_template.spec;
    assert_eq!(t.command, ["python3", "/opt/pytorch-mnist/mnist.py"]);
    assert_eq!(hyper(&exp), ["epochs=1"]);
    assert_eq!(t.run_policy.backoff_limit, 2);
    assert_eq!(t.run_policy.active_deadline_seconds, Some(3600));
    assert_eq!(exp.spec.objective.metric_strategies.len(), 1);
    assert!(
        mentions(&dropped, "spec.resumePolicy (LongRunning)"),
        "{dropped:?}"
    );
}

#[test]
fn katib_hyperband_becomes_random_sampling_with_hyperband_stopping_over_full_length_trials() {
    let (exp, dropped) = convert("hyperband-job.yaml");
    assert_eq!(exp.spec.algorithm.algorithm_name, "random");
    let es = exp.spec.early_stopping.as_ref().unwrap();
    assert_eq!(es.algorithm_name, "hyperband");
    assert_eq!(
        es.settings(),
        [
            ("max_resource".to_string(), "9".to_string()),
            ("reduction_factor".into(), "3".into())
        ]
    );
    assert!(exp.early_stopping().unwrap().is_some());
    // The resource is no longer searched: every trial runs up to r_l epochs.
    assert_eq!(names(&exp), ["lr", "optimizer"]);
    assert_eq!(hyper(&exp), ["batch-size=32", "num-epochs=9"]);
    assert!(mentions(&dropped, "no longer searched"), "{dropped:?}");
}

#[test]
fn median_stopping_keeps_its_settings_and_a_stdout_collector_needs_nothing() {
    let (exp, dropped) = convert("median-stop-job.yaml");
    let es = exp.spec.early_stopping.as_ref().unwrap();
    assert_eq!(es.algorithm_name, "medianstop");
    assert_eq!(
        es.settings(),
        [
            ("min_trials_required".to_string(), "2".to_string()),
            ("start_step".into(), "4".into())
        ]
    );
    assert_eq!(hyper(&exp), ["epochs=5"]);
    assert!(dropped.is_empty(), "{dropped:?}");
}

#[test]
fn a_tfjob_trial_keeps_its_replicas_and_parameters_take_the_names_of_their_flags() {
    let (exp, dropped) = convert("tfjob.yaml");
    // --learning-rate=${trialParameters.learningRate} with reference learning_rate: the
    // program reads --learning-rate, so the parameter goes by that name.
    assert_eq!(names(&exp), ["learning-rate", "batch-size"]);
    let t = &exp.spec.trial_template.spec;
    assert_eq!(t.framework, Framework::Tensorflow);
    assert_eq!(t.replicas.get(ReplicaType::Chief).unwrap().count, 1);
    let worker = t.replicas.get(ReplicaType::Worker).unwrap();
    assert_eq!((worker.count, worker.resources.gpu), (2, Some(1.0)));
    assert_eq!(
        t.command,
        ["python", "/opt/tf-mnist-with-summaries/mnist.py"]
    );
    assert_eq!(
        hyper(&exp),
        ["epochs=1", "log-path=/mnist-with-summaries-logs"]
    );
    assert_eq!(
        t.tensorboard.as_ref().unwrap().log_dir,
        "/mnist-with-summaries-logs/test"
    );
    assert!(mentions(&dropped, "spec.trialTemplate.successCondition"));
    assert!(mentions(&dropped, "spec.trialTemplate.failureCondition"));
}

#[test]
fn cmaes_over_a_pytorchjob_keeps_sigma_and_reports_the_restart_strategy() {
    let (exp, dropped) = convert("pytorchjob-cmaes.yaml");
    assert_eq!(exp.spec.algorithm.algorithm_name, "cmaes");
    assert_eq!(
        exp.spec.algorithm.settings(),
        [
            ("random_state".to_string(), "10".to_string()),
            ("sigma".into(), "0.3".into())
        ]
    );
    let t = &exp.spec.trial_template.spec;
    assert_eq!(t.framework, Framework::Pytorch);
    assert_eq!(t.replicas.get(ReplicaType::Master).unwrap().count, 1);
    assert_eq!(t.replicas.get(ReplicaType::Worker).unwrap().count, 2);
    assert_eq!(names(&exp), ["lr", "momentum"]);
    assert!(
        mentions(&dropped, "algorithmSettings (restart_strategy)"),
        "{dropped:?}"
    );
}

#[test]
fn bayesian_optimization_becomes_multivariate_tpe_and_what_has_no_counterpart_is_listed() {
    let (exp, dropped) = convert("bayesian-job.yaml");
    assert_eq!(exp.spec.algorithm.algorithm_name, "multivariate-tpe");
    assert_eq!(
        exp.spec.algorithm.settings(),
        [
            ("random_state".to_string(), "10".to_string()),
            ("n_startup_trials".into(), "6".into())
        ]
    );
    for needle in [
        "bayesianoptimization",
        "(base_estimator)",
        "(acq_func)",
        "spec.nasConfig",
        "distribution normal",
        "trialParameters (unused)",
    ] {
        assert!(mentions(&dropped, needle), "{needle}: {dropped:?}");
    }
}

/// The random example with one text replaced.
fn random_with(from: &str, to: &str) -> String {
    let text = fixture("random-job.yaml");
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn a_placeholder_that_is_not_a_whole_argv_word_is_an_error_naming_its_path() {
    let e = error(&random_with(
        "\"--lr=${trialParameters.learningRate}\"",
        "\"--lr=${trialParameters.learningRate},0.1\"",
    ));
    assert!(
        e.contains("spec.trialTemplate.trialSpec.spec.template.spec.containers[0].command[3]")
            && e.contains("whole argv word"),
        "{e}"
    );
}

#[test]
fn a_placeholder_or_reference_naming_nothing_is_an_error() {
    let e = error(&random_with(
        "${trialParameters.optimizer}",
        "${trialParameters.solver}",
    ));
    assert!(
        e.contains("${trialParameters.solver} names no entry"),
        "{e}"
    );
    let e = error(&random_with("reference: lr", "reference: rate"));
    assert!(
        e.contains(
            "trialParameters[0] (learningRate): reference \"rate\" is not one of spec.parameters"
        ),
        "{e}"
    );
}

#[test]
fn algorithms_without_a_counterpart_are_errors_listing_those_that_convert() {
    let e = error(&random_with("algorithmName: random", "algorithmName: pbt"));
    assert!(
        e.contains("\"pbt\" has no counterpart") && e.contains("multivariate-tpe"),
        "{e}"
    );
    let e = error(&random_with(
        "algorithmName: random",
        "algorithmName: annealing",
    ));
    assert!(e.contains("\"annealing\" is not a Katib algorithm"), "{e}");
}

#[test]
fn a_template_in_a_configmap_or_no_trial_spec_is_an_error() {
    let e = error(&random_with(
        "    trialSpec:\n",
        "    configMap: {configMapName: trial-templates, templatePath: job.yaml}\n    trialSpec:\n",
    ));
    assert!(e.contains("spec.trialTemplate.configMap"), "{e}");
    let e = error(&random_with("    trialSpec:\n", "    notTrialSpec:\n"));
    assert!(e.contains("spec.trialTemplate.trialSpec is missing"), "{e}");
}

#[test]
fn values_katib_accepts_but_an_experiment_cannot_hold_are_reported_as_experiment_rules() {
    let e = error(&random_with("max: \"0.03\"", "max: \"0.001\""));
    assert!(e.contains("spec.parameters[0].feasibleSpace"), "{e}");
    let e = error(&random_with("type: maximize", "type: best"));
    assert!(e.contains("spec.objective.type"), "{e}");
}

#[test]
fn no_prefix_of_a_katib_experiment_makes_the_converter_panic() {
    for name in [
        "random-job.yaml",
        "tpe-job.yaml",
        "hyperband-job.yaml",
        "tfjob.yaml",
        "pytorchjob-cmaes.yaml",
        "bayesian-job.yaml",
    ] {
        let text = fixture(name);
        let lines: Vec<&str> = text.lines().collect();
        for n in 0..lines.len() {
            let prefix = lines[..n].join("\n");
            let outcome = std::panic::catch_unwind(|| convert_document(&prefix).is_ok());
            assert!(outcome.is_ok(), "{name}: the first {n} lines panic");
        }
    }
}

#[test]
fn hyperparameter_values_are_typed_as_the_job_file_would_hold_them() {
    let (exp, _) = convert("hyperband-job.yaml");
    let h = &exp.spec.trial_template.spec.hyperparameters;
    assert_eq!(h["num-epochs"], HyperValue::Int(9));
    assert_eq!(h["batch-size"], HyperValue::Int(32));
}
