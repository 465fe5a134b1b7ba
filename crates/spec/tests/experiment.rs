//! Experiment files (`kind: Experiment`): Katib's field names, numbers as numbers or strings,
//! and every bad input located at file:line:column with its field path.

use trainctl_search::{Direction, Domain, EarlyStopping, Value};
use trainctl_spec::{parse_experiment, parse_experiment_str, ParameterType};

/// The issue's example, with a trial template filled in.
const EXAMPLE: &str = r#"apiVersion: trainctl.dev/v1alpha1
kind: Experiment
metadata: {name: digits-lr}
spec:
  objective: {type: maximize, objectiveMetricName: accuracy, goal: 0.99, additionalMetricNames: [loss]}
  algorithm: {algorithmName: tpe, algorithmSettings: [{name: random_state, value: "7"}]}
  earlyStopping: {algorithmName: asha}
  parallelTrialCount: 3
  maxTrialCount: "40"
  maxFailedTrialCount: 5
  parameters:
    - {name: learning_rate, parameterType: double, feasibleSpace: {min: "0.001", max: 1, distribution: logUniform}}
    - {name: batch_size, parameterType: int, feasibleSpace: {min: 16, max: "256", step: 16}}
    - {name: optimizer, parameterType: categorical, feasibleSpace: {list: [sgd, momentum]}}
  trialTemplate:
    spec:
      command: [python3, train.py]
      hyperparameters: {epochs: 9}
      replicas:
        worker: {count: 1}
"#;

#[test]
fn the_issue_example_parses_with_numbers_written_either_way() {
    let exp = parse_experiment_str("exp.yaml", EXAMPLE).unwrap();
    assert_eq!(exp.name(), "digits-lr");
    assert_eq!(exp.direction(), Direction::Maximize);
    assert_eq!(exp.goal(), Some(0.99));
    assert_eq!(exp.parallel_trial_count(), 3);
    assert_eq!(exp.max_trial_count(), Some(40));
    assert_eq!(exp.max_failed_trial_count(), Some(5));
    assert_eq!(
        exp.spec.parameters[2].parameter_type,
        ParameterType::Categorical
    );
    let space = exp.search_space().unwrap();
    assert_eq!(
        space.params()[0].domain,
        Domain::Double {
            min: 0.001,
            max: 1.0,
            log: true,
            step: None
        }
    );
    assert_eq!(
        space.params()[1].domain,
        Domain::Int {
            min: 16,
            max: 256,
            log: false,
            step: 16
        }
    );
    assert_eq!(exp.sampler().unwrap().seed, 7);
    assert!(matches!(
        exp.early_stopping().unwrap(),
        Some(EarlyStopping::Asha(_))
    ));
    // The sampler's suggestion is an assignment of this space.
    let suggestion = exp
        .sampler()
        .unwrap()
        .suggest(&space, exp.direction(), &[], 0)
        .unwrap();
    let trainctl_search::Suggestion::Assign(a) = suggestion else {
        panic!("tpe never ends")
    };
    assert!(space.contains(&a));
    assert!(matches!(a[2].1, Value::Str(ref s) if s == "sgd" || s == "momentum"));
}

#[test]
fn an_experiment_file_is_read_from_disk_and_a_missing_one_named() {
    let dir = std::env::temp_dir().join(format!("trainctl-exp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("exp.yaml");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(parse_experiment(&path).unwrap().name(), "digits-lr");
    let missing = parse_experiment(&dir.join("nope.yaml")).unwrap_err()[0].to_string();
    assert!(
        missing.contains("nope.yaml") && missing.contains("cannot read the experiment file"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The example with `from` replaced by `to` (which must occur).
fn edited(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "the example has no {from:?}");
    EXAMPLE.replacen(from, to, 1)
}

#[test]
fn bad_experiments_get_located_errors() {
    // (what is wrong, the edit, the line, the path and message the error must show)
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "min >= max",
            edited(r#"min: "0.001", max: 1"#, "min: 2, max: 1"),
            12, "spec.parameters[0].feasibleSpace: parameter learning_rate: min (2) must be less than max (1)",
        ),
        (
            "logUniform with min <= 0",
            edited(r#"min: "0.001""#, "min: 0"),
            12, "spec.parameters[0].feasibleSpace: parameter learning_rate: logUniform needs min > 0",
        ),
        (
            "a step that does not divide the range",
            edited("step: 16", "step: 100"),
            13, "spec.parameters[1].feasibleSpace: parameter batch_size: step 100 does not divide the range [16, 256]",
        ),
        (
            "grid over a double without step",
            edited("algorithmName: tpe, algorithmSettings: [{name: random_state, value: \"7\"}]", "algorithmName: grid"),
            12, "spec.parameters[0].feasibleSpace: parameter learning_rate: grid search needs a `step`",
        ),
        (
            "an empty list",
            edited("list: [sgd, momentum]", "list: []"),
            14, "spec.parameters[2].feasibleSpace: parameter optimizer: the list of values is empty",
        ),
        (
            "a parameter name that is not a hyperparameter name",
            edited("name: batch_size", "name: batch size"),
            13, "spec.parameters[1].name: \"batch size\" is not a hyperparameter name",
        ),
        (
            "an objective metric that is also a parameter",
            edited("objectiveMetricName: accuracy", "objectiveMetricName: optimizer"),
            5, "spec.objective.objectiveMetricName: \"optimizer\" is also a parameter name",
        ),
        (
            "an unknown algorithm",
            edited("algorithmName: tpe", "algorithmName: bayesianoptimization"),
            6, "spec.algorithm.algorithmName: unknown algorithm \"bayesianoptimization\"; known algorithms: random, grid, sobol, tpe, multivariate-tpe, cmaes",
        ),
        (
            "an unknown setting",
            edited("name: random_state", "name: seed"),
            6,
            "spec.algorithm.algorithmSettings: unknown setting \"seed\" for tpe; known settings: random_state,",
        ),
        (
            "an unknown early-stopping algorithm",
            edited("{algorithmName: asha}", "{algorithmName: pbt}"),
            7, "spec.earlyStopping.algorithmName: unknown early stopping algorithm \"pbt\"; known: medianstop, asha, hyperband",
        ),
        (
            "a count that is not a number",
            edited("maxTrialCount: \"40\"", "maxTrialCount: forty"),
            9, "spec.maxTrialCount: forty is not a whole number >= 1",
        ),
        (
            "a bound that is not a number",
            edited("max: \"256\"", "max: lots"),
            13,
            "spec.parameters[1].feasibleSpace: parameter batch_size: max \"lots\" is not a whole number",
        ),
        (
            "a typo in a field name",
            edited("feasibleSpace: {list", "feasibleSpaces: {list"),
            14, "spec.parameters[2]",
        ),
        (
            "an unknown distribution",
            edited("distribution: logUniform", "distribution: normal"),
            12,
            "unknown variant `normal`, expected `uniform` or `logUniform`",
        ),
        (
            "a bad trial template, located inside it",
            edited("worker: {count: 1}", "worker: {count: 1, command: [\" \"]}"),
            20,
            "spec.trialTemplate.spec.replicas.worker.command",
        ),
        (
            "more trials at once than in all",
            edited("parallelTrialCount: 3", "parallelTrialCount: 50"),
            8, "spec.parallelTrialCount: 50 trials at once is more than maxTrialCount (40)",
        ),
    ];
    for (case, text, line, want) in cases {
        let errors = parse_experiment_str("exp.yaml", &text).expect_err(case);
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let at = format!("exp.yaml:{line}:");
        assert!(
            shown.iter().any(|e| e.starts_with(&at) && e.contains(want)),
            "{case}: want {at}...{want:?}, got {shown:#?}"
        );
    }
}

/// The max_resource of the experiment's successive halving, if any.
fn max_resource(text: &str) -> Option<f64> {
    let exp = parse_experiment_str("exp.yaml", text).unwrap();
    match exp.early_stopping().unwrap() {
        Some(EarlyStopping::Asha(h) | EarlyStopping::Hyperband(h)) => h.max_resource,
        other => panic!("not successive halving: {other:?}"),
    }
}

#[test]
fn asha_without_max_resource_runs_full_trials_for_the_templates_epochs() {
    // The template's epochs hyperparameter (9).
    assert_eq!(max_resource(EXAMPLE), Some(9.0));
    // A max_resource that is given wins.
    let given = EXAMPLE.replace(
        "{algorithmName: asha}",
        "{algorithmName: asha, algorithmSettings: [{name: max_resource, value: \"27\"}]}",
    );
    assert_eq!(max_resource(&given), Some(27.0));
    // A searched epochs: its largest value.
    let searched = EXAMPLE
        .replace("hyperparameters: {epochs: 9}", "hyperparameters: {}")
        .replace(
            "  trialTemplate:",
            "    - {name: epochs, parameterType: int, feasibleSpace: {min: 2, max: 6}}\n  trialTemplate:",
        );
    assert_eq!(max_resource(&searched), Some(6.0));
    // No epochs anywhere: the most steps a completed trial reports (decided later).
    let none = EXAMPLE.replace("hyperparameters: {epochs: 9}", "hyperparameters: {}");
    assert_eq!(max_resource(&none), None);
    // Epochs not above min_resource say nothing about rungs.
    let one = EXAMPLE.replace("{epochs: 9}", "{epochs: 1}");
    assert_eq!(max_resource(&one), None);
}
