//! Properties of the job-file parser and validator over generated input (proptest; the
//! libFuzzer targets in fuzz/ go further): any text gives a job or located errors and never
//! a panic, YAML shaped like a job with wrong types and sizes everywhere is refused cleanly,
//! and a valid job written back to YAML parses to the same job.

use proptest::prelude::*;
use serde_yaml_ng::{Mapping, Value};
use trainctl_spec::parse_job_str;

/// Any scalar or small collection a careless or hostile file might hold.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("worker")),
        Just(Value::from("4Gi")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((field(), inner), 0..4).prop_map(|kv| {
                Value::Mapping(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
        ]
    })
}

/// Field names of the job file, and a few that are not.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "apiVersion",
            "kind",
            "metadata",
            "name",
            "spec",
            "framework",
            "command",
            "replicas",
            "worker",
            "ps",
            "chief",
            "master",
            "evaluator",
            "count",
            "resources",
            "gpu",
            "cpu",
            "memory",
            "hyperparameters",
            "runPolicy",
            "restartPolicy",
            "backoffLimit",
            "env",
            "shell",
            "metrics",
            "regex",
            "format",
            "image",
            "volumes",
            "workingDir",
            "scheduling",
            "gang",
            "tensorboard",
            "cloud",
            "profile",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z_.-]{1,8}",
    ]
}

/// A document with the job file's outline, with anything in its fields.
fn job_shaped() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((field(), any_value()), 0..6),
        prop::collection::vec((field(), any_value()), 0..6),
        any_value(),
    )
        .prop_map(|(spec, replicas, name)| {
            let mut spec: Mapping = spec.into_iter().map(|(k, v)| (k.into(), v)).collect();
            let replicas: Mapping = replicas.into_iter().map(|(k, v)| (k.into(), v)).collect();
            spec.insert("replicas".into(), Value::Mapping(replicas));
            let mut doc = Mapping::new();
            doc.insert("apiVersion".into(), "trainctl.dev/v1alpha1".into());
            doc.insert("kind".into(), "TrainingJob".into());
            let mut metadata = Mapping::new();
            metadata.insert("name".into(), name);
            doc.insert("metadata".into(), Value::Mapping(metadata));
            doc.insert("spec".into(), Value::Mapping(spec));
            serde_yaml_ng::to_string(&doc).expect("YAML")
        })
}

/// A hyperparameter value of every kind, as YAML text.
fn hyper_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        (-1e12f64..1e12).prop_map(|f| format!("{f:?}")),
        "[ -~]{0,12}".prop_map(|s| serde_json::to_string(&s).expect("a JSON string is YAML")),
    ]
}

/// A valid job file, with every field a generated job may vary.
fn valid_job() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9-]{0,20}[a-z0-9]",
        prop::sample::select(vec!["tensorflow", "pytorch", "generic"]),
        prop::collection::vec("[a-zA-Z0-9_./=-]{1,10}", 1..4),
        1u32..6,
        prop::collection::btree_map("[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,4})?", hyper_value(), 0..5),
        prop::sample::select(vec!["Never", "OnFailure", "ExitCode"]),
        0u32..10,
    )
        .prop_map(
            |(name, framework, command, workers, hps, restart, backoff)| {
                let lead = match framework {
                    "pytorch" => "    master: {count: 1}\n",
                    "tensorflow" => "    chief: {count: 1}\n",
                    _ => "",
                };
                let command: Vec<String> = command
                    .iter()
                    .map(|w| serde_json::to_string(w).expect("JSON"))
                    .collect();
                let hps: String = hps.iter().map(|(k, v)| format!("    {k}: {v}\n")).collect();
                format!(
                "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: {name}\n\
                 spec:\n  framework: {framework}\n  command: [{}]\n  hyperparameters:\n{hps}  \
                 replicas:\n{lead}    worker: {{count: {workers}}}\n  \
                 runPolicy: {{restartPolicy: {restart}, backoffLimit: {backoff}}}\n",
                command.join(", ")
            )
                .replace("  hyperparameters:\n  replicas", "  replicas")
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_gives_a_job_or_errors_that_name_the_file(text in "(?s).{0,300}") {
        if let Err(errors) = parse_job_str("job.yaml", &text) {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(e.to_string().starts_with("job.yaml:"), "{e}");
            }
        }
    }

    #[test]
    fn a_job_shaped_document_with_anything_in_its_fields_never_panics(doc in job_shaped()) {
        if let Err(errors) = parse_job_str("job.yaml", &doc) {
            prop_assert!(!errors.is_empty());
        }
    }

    #[test]
    fn a_valid_job_written_back_to_yaml_parses_to_the_same_job(text in valid_job()) {
        let job = parse_job_str("job.yaml", &text)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        let yaml = serde_yaml_ng::to_string(&job).expect("YAML");
        let again = parse_job_str("again.yaml", &yaml)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{yaml}")))?;
        prop_assert_eq!(again, job);
    }
}
