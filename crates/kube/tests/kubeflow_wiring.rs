//! The wiring env our plain target gives each replica is exactly what Kubeflow's training
//! operator (v1) gives the same job; and Kubeflow jobs convert to TrainingJobs and back.
//!
//! The expected values are computed here from a TFJob / PyTorchJob manifest by Kubeflow
//! v1's rules (service `<job>-<type>-<i>.<namespace>.svc`, the port named tfjob-port /
//! pytorchjob-port or 2222 / 23456, types lower-case and sorted, master rank 0 and worker
//! i rank i+1), independently of trainctl-core's code.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;
use trainctl_kube::{convert, render, RenderOptions, Target};
use trainctl_spec::{ReplicaType, RestartPolicy, TrainingJob};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(common::crate_dir().join("tests/kubeflow").join(name)).unwrap()
}

/// Kubeflow's port of a replica type: the container port named `port_name`, else `default`.
fn kubeflow_port(spec: &Value, port_name: &str, default: u64) -> u64 {
    spec["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == port_name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or(default)
}

/// TF_CONFIG of every replica as Kubeflow v1 sets it, keyed by `type-index` (none for a
/// job with one replica in all: Kubeflow leaves local training alone).
fn kubeflow_tf_configs(tfjob: &Value) -> BTreeMap<String, Option<String>> {
    let name = tfjob["metadata"]["name"].as_str().unwrap();
    let ns = tfjob["metadata"]["namespace"].as_str().unwrap_or("default");
    let specs = tfjob["spec"]["tfReplicaSpecs"].as_object().unwrap();
    let mut cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rtype, spec) in specs {
        let rt = rtype.to_lowercase();
        let port = kubeflow_port(spec, "tfjob-port", 2222);
        let n = spec["replicas"].as_u64().unwrap_or(1);
        cluster.insert(
            rt.clone(),
            (0..n)
                .map(|i| format!("{name}-{rt}-{i}.{ns}.svc:{port}"))
                .collect(),
        );
    }
    let cluster_json = serde_json::to_string(&cluster).unwrap();
    let distributed = cluster.values().map(Vec::len).sum::<usize>() > 1;
    let mut out = BTreeMap::new();
    for (rt, hosts) in &cluster {
        for i in 0..hosts.len() {
            out.insert(
                format!("{rt}-{i}"),
                distributed.then(|| format!(r#"{{"cluster":{cluster_json},"task":{{"type":"{rt}","index":{i}}},"environment":"cloud"}}"#)),
            );
        }
    }
    out
}

/// The env of every replica Job of a plain render, keyed by `type-index`.
fn plain_envs(job: &TrainingJob, namespace: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let opts = RenderOptions {
        namespace: Some(namespace.into()),
        ..RenderOptions::default()
    };
    render(job, &opts)
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "Job")
        .map(|o| {
            let labels = &o["metadata"]["labels"];
            let key = format!(
                "{}-{}",
                labels["trainctl.dev/replica-type"].as_str().unwrap(),
                labels["trainctl.dev/replica-index"].as_str().unwrap()
            );
            let container = &o["spec"]["template"]["spec"]["containers"][0];
            (key, common::env_of(container))
        })
        .collect()
}

fn kubeflow_render(job: &TrainingJob) -> Value {
    let objects = render(
        job,
        &RenderOptions {
            target: Target::Kubeflow,
            ..RenderOptions::default()
        },
    )
    .unwrap();
    objects
        .into_iter()
        .find(|o| o["apiVersion"] == "kubeflow.org/v1")
        .unwrap()
}

fn assert_tf_config_matches_kubeflow(job: &TrainingJob, tfjob: &Value) {
    let ns = tfjob["metadata"]["namespace"].as_str().unwrap_or("default");
    let expected = kubeflow_tf_configs(tfjob);
    let envs = plain_envs(job, ns);
    assert_eq!(
        envs.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "replicas differ"
    );
    for (replica, tf_config) in expected {
        assert_eq!(
            envs[&replica].get("TF_CONFIG"),
            tf_config.as_ref(),
            "{replica}"
        );
    }
}

#[test]
fn tf_config_of_a_converted_tfjob_is_kubeflows() {
    let text = fixture("tfjob-dist.yaml");
    let tfjob: Value = serde_yaml_ng::from_str(&text).unwrap();
    let job = convert(&text).unwrap().job;
    assert_tf_config_matches_kubeflow(&job, &tfjob);
}

#[test]
fn tf_config_of_every_tensorflow_shape_is_kubeflows() {
    for seed in ["ack-mnist.yaml", "eks-t4.yaml"] {
        let job = common::seed(seed);
        let tfjob = kubeflow_render(&job);
        assert_tf_config_matches_kubeflow(&job, &tfjob);
    }
    let job = common::job(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: cpwe, namespace: ml}\nspec:\n  framework: tensorflow\n  image: tf:gpu\n  command: [python3, t.py]\n  replicas: {chief: {port: 3000}, ps: {count: 2}, worker: {count: 3}, evaluator: {}}\n",
    );
    let tfjob = kubeflow_render(&job);
    assert_eq!(kubeflow_tf_configs(&tfjob).len(), 7);
    assert_tf_config_matches_kubeflow(&job, &tfjob);
}

#[test]
fn pytorch_env_of_a_converted_pytorchjob_is_kubeflows() {
    let text = fixture("pytorchjob.yaml");
    let pj: Value = serde_yaml_ng::from_str(&text).unwrap();
    let job = convert(&text).unwrap().job;
    let envs = plain_envs(&job, "default");
    let master_port = kubeflow_port(
        &pj["spec"]["pytorchReplicaSpecs"]["Master"],
        "pytorchjob-port",
        23456,
    );
    let expected = [("master-0", "0"), ("worker-0", "1"), ("worker-1", "2")];
    assert_eq!(envs.len(), expected.len());
    for (replica, rank) in expected {
        let env = &envs[replica];
        assert_eq!(
            env["MASTER_ADDR"], "pytorch-dist-mnist-master-0",
            "{replica}"
        );
        assert_eq!(env["MASTER_PORT"], master_port.to_string(), "{replica}");
        assert_eq!(env["WORLD_SIZE"], "3", "{replica}");
        assert_eq!(env["RANK"], rank, "{replica}");
        assert_eq!(env["PYTHONUNBUFFERED"], "1", "{replica}");
    }
}

/// The parts of a Kubeflow job that decide what runs, for comparing two of them.
fn essentials(kf: &Value) -> Value {
    let field = if kf["kind"] == "TFJob" {
        "tfReplicaSpecs"
    } else {
        "pytorchReplicaSpecs"
    };
    let mut replicas = serde_json::Map::new();
    for (rtype, spec) in kf["spec"][field].as_object().unwrap() {
        let c = spec["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "tensorflow" || c["name"] == "pytorch")
            .unwrap();
        let mut argv: Vec<Value> = c["command"].as_array().cloned().unwrap_or_default();
        argv.extend(c["args"].as_array().cloned().unwrap_or_default());
        let env: BTreeMap<String, String> = common::env_of(c)
            .into_iter()
            // trainctl's own variables, and hyperparameters also given as HP_<NAME>.
            .filter(|(k, _)| !k.starts_with("TRAINCTL_") && !k.starts_with("HP_"))
            .collect();
        let port_name = if kf["kind"] == "TFJob" {
            "tfjob-port"
        } else {
            "pytorchjob-port"
        };
        let default = if kf["kind"] == "TFJob" { 2222 } else { 23456 };
        replicas.insert(
            rtype.clone(),
            serde_json::json!({
                "replicas": spec["replicas"].as_u64().unwrap_or(1),
                "restartPolicy": spec["restartPolicy"],
                "image": c["image"],
                "argv": argv,
                "env": env,
                "port": kubeflow_port(spec, port_name, default),
                "limits": c["resources"]["limits"],
                "mounts": c["volumeMounts"],
            }),
        );
    }
    let rp = &kf["spec"]["runPolicy"];
    serde_json::json!({
        "kind": kf["kind"],
        "name": kf["metadata"]["name"],
        "replicas": replicas,
        "cleanPodPolicy": rp["cleanPodPolicy"],
        "backoffLimit": rp["backoffLimit"],
        "ttl": rp["ttlSecondsAfterFinished"],
    })
}

/// Quantities compare by value: YAML's `1` and the rendered `"1"` are the same GPU.
fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

#[test]
fn converted_jobs_render_back_to_equivalent_kubeflow_jobs() {
    for (name, backoff_default) in [("tfjob-dist.yaml", None), ("pytorchjob.yaml", Some(3))] {
        let text = fixture(name);
        let original: Value = serde_yaml_ng::from_str(&text).unwrap();
        let job = convert(&text).unwrap().job;
        let back = kubeflow_render(&job);
        let mut want = essentials(&original);
        if let Some(limit) = backoff_default {
            // Left out in the original: the TrainingJob default is written out.
            want["backoffLimit"] = limit.into();
        }
        assert_eq!(normalize(essentials(&back)), normalize(want), "{name}");
    }
}

#[test]
fn convert_reports_what_has_no_trainingjob_field() {
    let converted = convert(&fixture("pytorchjob.yaml")).unwrap();
    let dropped = converted.dropped.join("\n");
    assert!(
        dropped.contains("containers[1] (log-shipper): sidecar"),
        "{dropped}"
    );
    assert!(dropped.contains("command: not set"), "{dropped}");
    let tf = convert(&fixture("tfjob-dist.yaml")).unwrap();
    assert!(tf
        .dropped
        .iter()
        .any(|d| d.contains("Worker.template.spec.nodeSelector")));
    assert_eq!(
        tf.job.spec.image.as_deref(),
        Some("kubeflow/tf-dist-mnist-test:1.0-gpu")
    );
    assert_eq!(tf.job.spec.env["MODEL_DIR"], "/train/model");
}

#[test]
fn convert_refuses_what_is_not_a_kubeflow_or_batch_job() {
    for (text, expected) in [
        ("apiVersion: apps/v1\nkind: Deployment\n", "expected a kubeflow.org/v1 TFJob or PyTorchJob or a batch/v1 Job"),
        ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\n", "spec.template.spec.containers: the replica has no container"),
        ("apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: x}\nspec: {}\n", "spec.tfReplicaSpecs is missing"),
        ("apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: x}\nspec:\n  tfReplicaSpecs:\n    Driver: {replicas: 1}\n", "unknown replica type \"Driver\""),
        ("apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: Bad_Name}\nspec:\n  tfReplicaSpecs:\n    Worker:\n      template: {spec: {containers: [{name: tensorflow, image: x, command: [a]}]}}\n", "metadata.name"),
        (": : :", "not a YAML document"),
    ] {
        let err = convert(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn a_batch_job_converts_to_one_generic_worker_with_its_pod_restart_policy_and_limits() {
    let text = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: train, namespace: ml}\nspec:\n  backoffLimit: 4\n  activeDeadlineSeconds: 600\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: OnFailure\n      containers: [{name: main, image: 'py:3', command: [python3, t.py, --lr=0.1], resources: {limits: {nvidia.com/gpu: 1}}}]\n";
    let c = convert(text).unwrap();
    let spec = &c.job.spec;
    assert_eq!(spec.framework, trainctl_spec::Framework::Generic);
    assert_eq!(spec.command, ["python3", "t.py"]);
    assert_eq!(spec.hyperparameters["lr"].to_string(), "0.1");
    assert_eq!(spec.run_policy.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(spec.run_policy.backoff_limit, 4);
    assert_eq!(spec.run_policy.active_deadline_seconds, Some(600));
    let worker = spec.replicas.get(ReplicaType::Worker).unwrap();
    assert_eq!((worker.count, worker.resources.gpu), (1, Some(1.0)));
    assert!(
        c.dropped.iter().any(|d| d.starts_with("spec.parallelism")),
        "{:?}",
        c.dropped
    );
}

/// A two-role TFJob whose PS and Worker run `ps_args` and `worker_args` after `python t.py`.
fn tfjob_with_args(ps_args: &str, worker_args: &str) -> String {
    let role = |name: &str, args: &str| {
        format!("    {name}:\n      template: {{spec: {{containers: [{{name: tensorflow, image: 'tf:1', command: [python, t.py], args: {args}}}]}}}}\n")
    };
    format!(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {{name: hp, namespace: ml}}\nspec:\n  tfReplicaSpecs:\n{}{}",
        role("PS", ps_args),
        role("Worker", worker_args)
    )
}

#[test]
fn convert_takes_trailing_shared_name_value_arguments_as_hyperparameters() {
    // (PS args, Worker args, hyperparameters found, the command left)
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "[--batch_size=32, '--data=/d', --lr=0.1, --use_amp=true]",
            "[--batch_size=32, '--data=/d', --lr=0.1, --use_amp=true]",
            "batch_size=32 data=/d lr=0.1 use_amp=true",
            "python t.py",
        ),
        // Only the words every replica ends with.
        (
            "[--role_flag, --epochs=5]",
            "[--other, --epochs=5]",
            "epochs=5",
            "",
        ),
        // Render writes hyperparameters sorted by name: an out-of-order word stays argv.
        (
            "[--lr=0.1, --epochs=5]",
            "[--lr=0.1, --epochs=5]",
            "epochs=5",
            "python t.py --lr=0.1",
        ),
        // Values keep their exact text (1e-3 stays a string, 1.0 a float).
        (
            "[--decay=1e-3, --scale=1.0]",
            "[--decay=1e-3, --scale=1.0]",
            "decay=1e-3 scale=1.0",
            "python t.py",
        ),
        // Names a job file refuses (dotted, leading `_`) stay argv, so the job validates.
        (
            "[--_seed=1, --model.depth=3]",
            "[--_seed=1, --model.depth=3]",
            "",
            "python t.py --_seed=1 --model.depth=3",
        ),
        // Not name=value words: nothing to take.
        (
            "[--verbose, data.csv]",
            "[--verbose, data.csv]",
            "",
            "python t.py --verbose data.csv",
        ),
    ];
    for (ps, worker, hyper, command) in cases {
        let text = tfjob_with_args(ps, worker);
        let job = convert(&text).unwrap_or_else(|e| panic!("{ps}: {e}")).job;
        let found: Vec<String> = job
            .spec
            .hyperparameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(found.join(" "), hyper, "{ps} / {worker}");
        assert_eq!(job.spec.command.join(" "), command, "{ps} / {worker}");
        // Render gives back every replica's argv word for word.
        let original: Value = serde_yaml_ng::from_str(&text).unwrap();
        let back = kubeflow_render(&job);
        for role in ["PS", "Worker"] {
            let argv = |kf: &Value| {
                let c = &kf["spec"]["tfReplicaSpecs"][role]["template"]["spec"]["containers"][0];
                let mut words = c["command"].as_array().cloned().unwrap_or_default();
                words.extend(c["args"].as_array().cloned().unwrap_or_default());
                words
            };
            assert_eq!(argv(&back), argv(&original), "{role}: {ps} / {worker}");
        }
        // And converting the render gives the same job again.
        let rendered = trainctl_kube::to_yaml(&[back]).unwrap();
        assert_eq!(convert(&rendered).unwrap().job, job, "{ps} / {worker}");
    }
}
