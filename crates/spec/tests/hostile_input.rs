//! Job files a careless user or an attacker writes: hyperparameter names that are no flag
//! name or that collide in their `HP_` variable, values that are no number, string or
//! boolean, and commands whose program name is empty. Each is refused at its line.

use trainctl_spec::{parse_job_str, HyperValue};

fn with_spec(extra: &str) -> String {
    format!("apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: j\nspec:\n{extra}")
}

/// The errors of a refused file, as the user reads them.
fn errors(text: &str) -> Vec<String> {
    parse_job_str("job.yaml", text)
        .expect_err("the job should be refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn with_hyperparameters(entries: &str) -> String {
    with_spec(&format!(
        "  command: [python3, train.py]\n  hyperparameters:\n{entries}  replicas:\n    worker: {{}}\n"
    ))
}

#[test]
fn hyperparameter_names_that_map_to_one_variable_are_refused() {
    let errs = errors(&with_hyperparameters(
        "    a-b: 1\n    a_b: 2\n    lr: 3\n    LR: 4\n",
    ));
    assert_eq!(
        errs,
        [
            "job.yaml:9:5: spec.hyperparameters.a_b: \"a-b\" and \"a_b\" are both passed as \
             HP_A_B, so one value would be lost: rename one of them",
            "job.yaml:10:5: spec.hyperparameters.lr: \"LR\" and \"lr\" are both passed as \
             HP_LR, so one value would be lost: rename one of them",
        ]
    );
}

#[test]
fn hyperparameter_names_that_are_no_flag_name_are_refused() {
    let errs = errors(&with_hyperparameters(
        "    \"--flag\": 2\n    a.b: 3\n    _x: 4\n    9lives: 5\n    \"\": 6\n",
    ));
    let rule = "a hyperparameter is passed as --NAME=value, so its name holds letters, digits, \
                '-' and '_', starting with a letter";
    assert_eq!(
        errs,
        [
            format!("job.yaml:12:5: spec.hyperparameters.: \"\" is not a flag name: {rule}"),
            format!("job.yaml:8:5: spec.hyperparameters.--flag: \"--flag\" is not a flag name: {rule} (write \"flag\" for --flag)"),
            format!("job.yaml:11:5: spec.hyperparameters.9lives: \"9lives\" is not a flag name: {rule}"),
            format!("job.yaml:10:5: spec.hyperparameters._x: \"_x\" is not a flag name: {rule}"),
            format!("job.yaml:9:5: spec.hyperparameters.a.b: \"a.b\" is not a flag name: {rule}"),
        ]
    );
}

#[test]
fn hyperparameter_names_with_dashes_and_underscores_stay_valid() {
    let text = with_hyperparameters("    num-layers: 4\n    batch_size: 32\n    lr2: 0.1\n");
    let job = parse_job_str("job.yaml", &text).expect("valid flag names");
    assert_eq!(job.spec.hyperparameters["num-layers"], HyperValue::Int(4));
    assert_eq!(job.spec.hyperparameters["batch_size"], HyperValue::Int(32));
}

#[test]
fn a_null_or_list_hyperparameter_value_is_refused_at_its_own_line() {
    for (value, what) in [("~", "null"), ("[1, 2]", "a list"), ("{a: 1}", "a map")] {
        let errs = errors(&with_hyperparameters(&format!(
            "    epochs: 5\n    lr: 0.1\n    bad: {value}\n"
        )));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!(
                "job.yaml:10:10: spec.hyperparameters.bad: {what} is not a hyperparameter \
                 value: use a number, a string or a boolean"
            )),
            "{value}: {errs:?}"
        );
    }
}

#[test]
fn hyperparameter_values_keep_their_types() {
    let text = with_hyperparameters(
        "    a: true\n    b: -3\n    c: 18446744073709551615\n    d: 0.5\n    e: adam\n    f: \"7\"\n",
    );
    let hp = parse_job_str("job.yaml", &text)
        .unwrap()
        .spec
        .hyperparameters;
    assert_eq!(hp["a"], HyperValue::Bool(true));
    assert_eq!(hp["b"], HyperValue::Int(-3));
    assert_eq!(hp["c"], HyperValue::Float(18446744073709551615.0));
    assert_eq!(hp["d"], HyperValue::Float(0.5));
    assert_eq!(hp["e"], HyperValue::String("adam".into()));
    assert_eq!(hp["f"], HyperValue::String("7".into()));
}

#[test]
fn an_empty_program_name_is_refused_at_the_command() {
    for command in ["[\"\"]", "[\"  \", train.py]"] {
        let errs = errors(&with_spec(&format!(
            "  command: {command}\n  replicas:\n    worker: {{}}\n"
        )));
        assert_eq!(
            errs,
            [
                "job.yaml:6:13: spec.command[0]: the program name (the first word of the command) \
              is empty; write the program to run, such as [\"python3\", \"train.py\"]"
            ],
            "{command}"
        );
    }
}

#[test]
fn an_empty_program_name_in_a_role_command_is_refused_at_that_role() {
    let errs = errors(&with_spec(
        "  command: [python3, train.py]\n  replicas:\n    ps: {command: [\"\"]}\n    worker: {}\n",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("job.yaml:8:20: spec.replicas.ps.command[0]: the program name"),
        "{errs:?}"
    );
}

#[test]
fn a_blank_shell_script_is_refused_but_an_empty_first_word_with_a_script_is_not() {
    let errs = errors(&with_spec(
        "  shell: true\n  command: [\"\", \" \"]\n  replicas:\n    worker: {}\n",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("job.yaml:7:3: spec.command: the shell script is empty"),
        "{errs:?}"
    );
    let fine =
        with_spec("  shell: true\n  command: [\"\", \"echo hi\"]\n  replicas:\n    worker: {}\n");
    parse_job_str("job.yaml", &fine).expect("a script after an empty word runs");
}
