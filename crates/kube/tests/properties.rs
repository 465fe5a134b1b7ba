//! Properties of Kubeflow `convert` over generated input (proptest; the libFuzzer target in
//! fuzz/ goes further): any text is converted or refused with an error, never a panic;
//! TFJobs and PyTorchJobs with anything in their fields are too; and what convert prints is
//! a job file that parses back to the same job, so `trainctl run` takes it as shown.

use proptest::prelude::*;
use serde_json::{json, Value};
use trainctl_kube::{convert, job_document};
use trainctl_spec::parse_job_str;

/// Any JSON value, small.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A word of an argv, a name, an image or an env value.
fn word() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-zA-Z0-9_./:=-]{1,12}".prop_map(Value::from),
        "--[a-z_-]{1,6}=[a-z0-9.]{0,4}".prop_map(Value::from),
        any_value(),
    ]
}

/// A container as users write them, each field sometimes of the wrong type.
fn container() -> impl Strategy<Value = Value> {
    (
        prop::option::of(word()),
        prop::option::of(word()),
        prop::option::of(prop::collection::vec(word(), 0..4)),
        prop::option::of(prop::collection::vec(word(), 0..4)),
        prop::option::of(prop::collection::vec(("[A-Z_]{1,6}", word()), 0..3)),
        prop::option::of(any_value()),
    )
        .prop_map(|(name, image, command, args, env, resources)| {
            let mut c = json!({});
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    c[k] = v;
                }
            };
            set("name", name);
            set("image", image);
            set("command", command.map(Value::from));
            set("args", args.map(Value::from));
            set(
                "env",
                env.map(|e| {
                    e.into_iter()
                        .map(|(n, v)| json!({"name": n, "value": v}))
                        .collect::<Vec<_>>()
                        .into()
                }),
            );
            set("resources", resources);
            c
        })
}

/// A TFJob or PyTorchJob with generated replica specs.
fn kubeflow_job() -> impl Strategy<Value = String> {
    let roles = prop::sample::select(vec![
        "Chief",
        "PS",
        "Worker",
        "Evaluator",
        "Master",
        "worker",
        "Other",
    ]);
    (
        prop::sample::select(vec![
            ("TFJob", "tfReplicaSpecs"),
            ("PyTorchJob", "pytorchReplicaSpecs"),
        ]),
        "[a-z][a-z0-9-]{0,12}",
        prop::collection::vec(
            (
                roles,
                prop::option::of(any_value()),
                prop::option::of(word()),
                prop::collection::vec(container(), 0..3),
            ),
            0..4,
        ),
        prop::option::of(any_value()),
    )
        .prop_map(|((kind, field), name, replicas, run_policy)| {
            let mut specs = serde_json::Map::new();
            for (role, count, restart, containers) in replicas {
                let mut spec = json!({"template": {"spec": {"containers": containers}}});
                if let Some(count) = count {
                    spec["replicas"] = count;
                }
                if let Some(restart) = restart {
                    spec["restartPolicy"] = restart;
                }
                specs.insert(role.to_string(), spec);
            }
            let mut doc = json!({
                "apiVersion": "kubeflow.org/v1",
                "kind": kind,
                "metadata": {"name": name},
                "spec": {field: specs},
            });
            if let Some(policy) = run_policy {
                doc["spec"]["runPolicy"] = policy;
            }
            serde_yaml_ng::to_string(&doc).expect("YAML")
        })
}

/// What `trainctl convert` prints parses back to the job it converted.
fn prints_a_job_that_parses_back(text: &str) -> Result<(), TestCaseError> {
    if let Ok(converted) = convert(text) {
        let yaml = serde_yaml_ng::to_string(&job_document(&converted.job)).expect("YAML");
        let again = parse_job_str("converted.yaml", &yaml)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{yaml}")))?;
        prop_assert_eq!(again, converted.job, "{}", yaml);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_is_converted_or_refused(text in "(?s).{0,300}") {
        prints_a_job_that_parses_back(&text)?;
    }

    #[test]
    fn kubeflow_jobs_with_anything_in_their_fields_convert_to_jobs_that_parse_back(
        text in kubeflow_job(),
    ) {
        prints_a_job_that_parses_back(&text)?;
    }
}
