//! The environment and argv a replica gets (docs/job-file.md, "What a replica gets"), checked
//! against the values Kubeflow training-operator v1 would produce. Expected TF_CONFIG strings are
//! written out literally so that any change in key order, spacing or host form fails.

use std::collections::BTreeMap;

use trainctl_core::wiring::{
    cluster_port, hyperparameter_env_name, pytorch_rank, replica_argv, replica_env,
    replica_object_name, tf_config, AttemptContext, Hosts, DEFAULT_PYTORCH_PORT, DEFAULT_TF_PORT,
};
use trainctl_core::ReplicaId;
use trainctl_spec::{parse_job_str, ReplicaType, TrainingJob};

fn job(yaml: &str) -> TrainingJob {
    parse_job_str("test.yaml", yaml).unwrap_or_else(|e| panic!("invalid test job: {e:?}"))
}

fn id(s: &str) -> ReplicaId {
    s.parse().unwrap()
}

fn ports(list: &[(&str, u16)]) -> BTreeMap<ReplicaId, u16> {
    list.iter().map(|(r, p)| (id(r), *p)).collect()
}

const CTX: AttemptContext<'static> = AttemptContext {
    attempt: 2,
    checkpoint_dir: "/ckpt/run",
    log_dir: "/ckpt/run/logs",
};

fn env(job: &TrainingJob, replica: &str, hosts: &Hosts) -> BTreeMap<String, String> {
    replica_env(job, id(replica), hosts, &CTX)
}

fn tf(job: &TrainingJob, replica: &str, hosts: &Hosts) -> Option<String> {
    tf_config(job, id(replica), hosts)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const CLUSTER: Hosts<'static> = Hosts::Cluster { namespace: "ns" };

// ---------------------------------------------------------------------------------------------
// TensorFlow: chief + ps + workers
// ---------------------------------------------------------------------------------------------

const CHIEF_PS_WORKERS: &str = r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: mnist}
spec:
  framework: tensorflow
  command: ["python3", "mnist.py"]
  replicas:
    worker: {count: 2}
    ps: {count: 2}
    chief: {count: 1}
"#;

#[test]
fn tf_chief_ps_workers_on_a_cluster() {
    let j = job(CHIEF_PS_WORKERS);
    let cluster = r#"{"chief":["mnist-chief-0.ns.svc:2222"],"ps":["mnist-ps-0.ns.svc:2222","mnist-ps-1.ns.svc:2222"],"worker":["mnist-worker-0.ns.svc:2222","mnist-worker-1.ns.svc:2222"]}"#;
    for (replica, task) in [
        ("chief-0", r#"{"type":"chief","index":0}"#),
        ("ps-0", r#"{"type":"ps","index":0}"#),
        ("ps-1", r#"{"type":"ps","index":1}"#),
        ("worker-0", r#"{"type":"worker","index":0}"#),
        ("worker-1", r#"{"type":"worker","index":1}"#),
    ] {
        let want = format!(r#"{{"cluster":{cluster},"task":{task},"environment":"cloud"}}"#);
        assert_eq!(tf(&j, replica, &CLUSTER).as_deref(), Some(want.as_str()));
        assert_eq!(
            env(&j, replica, &CLUSTER).get("TF_CONFIG"),
            Some(&want),
            "{replica}"
        );
    }
    // One full string, without the format! above, as a user would read it.
    assert_eq!(
        tf(&j, "worker-1", &CLUSTER).unwrap(),
        r#"{"cluster":{"chief":["mnist-chief-0.ns.svc:2222"],"ps":["mnist-ps-0.ns.svc:2222","mnist-ps-1.ns.svc:2222"],"worker":["mnist-worker-0.ns.svc:2222","mnist-worker-1.ns.svc:2222"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
    );
}

#[test]
fn tf_chief_ps_workers_locally() {
    let j = job(CHIEF_PS_WORKERS);
    let p = ports(&[
        ("chief-0", 41000),
        ("ps-0", 41001),
        ("ps-1", 41002),
        ("worker-0", 41003),
        ("worker-1", 41004),
    ]);
    let local = Hosts::Local { ports: &p };
    assert_eq!(
        tf(&j, "worker-1", &local).unwrap(),
        r#"{"cluster":{"chief":["127.0.0.1:41000"],"ps":["127.0.0.1:41001","127.0.0.1:41002"],"worker":["127.0.0.1:41003","127.0.0.1:41004"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
    );
    assert_eq!(
        env(&j, "ps-0", &local).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["127.0.0.1:41000"],"ps":["127.0.0.1:41001","127.0.0.1:41002"],"worker":["127.0.0.1:41003","127.0.0.1:41004"]},"task":{"type":"ps","index":0},"environment":"cloud"}"#
    );
    assert_eq!(
        env(&j, "chief-0", &local).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["127.0.0.1:41000"],"ps":["127.0.0.1:41001","127.0.0.1:41002"],"worker":["127.0.0.1:41003","127.0.0.1:41004"]},"task":{"type":"chief","index":0},"environment":"cloud"}"#
    );
}

// ---------------------------------------------------------------------------------------------
// TensorFlow: ps + workers (the quickstart shape)
// ---------------------------------------------------------------------------------------------

const PS_WORKERS: &str = r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: quickstart}
spec:
  framework: tensorflow
  command: ["python3", "train.py"]
  replicas:
    ps: {count: 1}
    worker: {count: 2}
"#;

#[test]
fn tf_ps_workers_on_a_cluster() {
    let j = job(PS_WORKERS);
    assert_eq!(
        env(&j, "worker-0", &CLUSTER).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"ps":["quickstart-ps-0.ns.svc:2222"],"worker":["quickstart-worker-0.ns.svc:2222","quickstart-worker-1.ns.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
    );
    assert_eq!(
        env(&j, "ps-0", &CLUSTER).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"ps":["quickstart-ps-0.ns.svc:2222"],"worker":["quickstart-worker-0.ns.svc:2222","quickstart-worker-1.ns.svc:2222"]},"task":{"type":"ps","index":0},"environment":"cloud"}"#
    );
    let other_ns = Hosts::Cluster {
        namespace: "team-a",
    };
    assert_eq!(
        tf(&j, "worker-1", &other_ns).unwrap(),
        r#"{"cluster":{"ps":["quickstart-ps-0.team-a.svc:2222"],"worker":["quickstart-worker-0.team-a.svc:2222","quickstart-worker-1.team-a.svc:2222"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
    );
}

#[test]
fn tf_ps_workers_locally() {
    let j = job(PS_WORKERS);
    let p = ports(&[("ps-0", 50123), ("worker-0", 50200), ("worker-1", 50007)]);
    let local = Hosts::Local { ports: &p };
    assert_eq!(
        env(&j, "worker-1", &local).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"ps":["127.0.0.1:50123"],"worker":["127.0.0.1:50200","127.0.0.1:50007"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
    );
    assert_eq!(
        env(&j, "ps-0", &local).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"ps":["127.0.0.1:50123"],"worker":["127.0.0.1:50200","127.0.0.1:50007"]},"task":{"type":"ps","index":0},"environment":"cloud"}"#
    );
}

// ---------------------------------------------------------------------------------------------
// TensorFlow: chief + ps + worker + evaluator (the evaluator is part of the cluster)
// ---------------------------------------------------------------------------------------------

const WITH_EVALUATOR: &str = r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: est}
spec:
  framework: tensorflow
  command: ["python3", "estimator.py"]
  replicas:
    evaluator: {count: 1}
    worker: {count: 1}
    ps: {count: 1}
    chief: {count: 1}
"#;

#[test]
fn tf_evaluator_is_in_the_cluster_on_a_cluster() {
    let j = job(WITH_EVALUATOR);
    assert_eq!(
        env(&j, "evaluator-0", &CLUSTER).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["est-chief-0.ns.svc:2222"],"evaluator":["est-evaluator-0.ns.svc:2222"],"ps":["est-ps-0.ns.svc:2222"],"worker":["est-worker-0.ns.svc:2222"]},"task":{"type":"evaluator","index":0},"environment":"cloud"}"#
    );
    assert_eq!(
        env(&j, "worker-0", &CLUSTER).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["est-chief-0.ns.svc:2222"],"evaluator":["est-evaluator-0.ns.svc:2222"],"ps":["est-ps-0.ns.svc:2222"],"worker":["est-worker-0.ns.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
    );
}

#[test]
fn tf_evaluator_is_in_the_cluster_locally() {
    let j = job(WITH_EVALUATOR);
    let p = ports(&[
        ("chief-0", 30001),
        ("evaluator-0", 30002),
        ("ps-0", 30003),
        ("worker-0", 30004),
    ]);
    let local = Hosts::Local { ports: &p };
    assert_eq!(
        env(&j, "evaluator-0", &local).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["127.0.0.1:30001"],"evaluator":["127.0.0.1:30002"],"ps":["127.0.0.1:30003"],"worker":["127.0.0.1:30004"]},"task":{"type":"evaluator","index":0},"environment":"cloud"}"#
    );
    assert_eq!(
        env(&j, "chief-0", &local).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["127.0.0.1:30001"],"evaluator":["127.0.0.1:30002"],"ps":["127.0.0.1:30003"],"worker":["127.0.0.1:30004"]},"task":{"type":"chief","index":0},"environment":"cloud"}"#
    );
}

#[test]
fn tf_legacy_master_role_sorts_between_evaluator_and_ps() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: legacy}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  replicas:
    worker: {count: 1}
    ps: {count: 1}
    master: {count: 1}
    evaluator: {count: 1}
"#);
    assert_eq!(
        tf(&j, "master-0", &CLUSTER).unwrap(),
        r#"{"cluster":{"evaluator":["legacy-evaluator-0.ns.svc:2222"],"master":["legacy-master-0.ns.svc:2222"],"ps":["legacy-ps-0.ns.svc:2222"],"worker":["legacy-worker-0.ns.svc:2222"]},"task":{"type":"master","index":0},"environment":"cloud"}"#
    );
    let p = ports(&[
        ("evaluator-0", 1001),
        ("master-0", 1002),
        ("ps-0", 1003),
        ("worker-0", 1004),
    ]);
    assert_eq!(
        tf(&j, "worker-0", &Hosts::Local { ports: &p }).unwrap(),
        r#"{"cluster":{"evaluator":["127.0.0.1:1001"],"master":["127.0.0.1:1002"],"ps":["127.0.0.1:1003"],"worker":["127.0.0.1:1004"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
    );
    // A tensorflow job gets no PyTorch wiring, even with a master.
    let e = env(&j, "master-0", &CLUSTER);
    for k in ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"] {
        assert!(!e.contains_key(k), "{k}");
    }
}

// ---------------------------------------------------------------------------------------------
// Custom ports per role
// ---------------------------------------------------------------------------------------------

const CUSTOM_PORTS: &str = r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: mnist-dist}
spec:
  framework: tensorflow
  command: ["python3", "mnist.py"]
  replicas:
    chief: {count: 1, port: 7000}
    ps: {count: 2, port: 9000}
    worker: {count: 2, port: 8000}
    evaluator: {count: 1}
"#;

#[test]
fn tf_custom_ports_on_a_cluster() {
    let j = job(CUSTOM_PORTS);
    assert_eq!(cluster_port(&j, ReplicaType::Chief), 7000);
    assert_eq!(cluster_port(&j, ReplicaType::Ps), 9000);
    assert_eq!(cluster_port(&j, ReplicaType::Worker), 8000);
    assert_eq!(cluster_port(&j, ReplicaType::Evaluator), 2222);
    assert_eq!(
        env(&j, "ps-1", &CLUSTER).get("TF_CONFIG").unwrap(),
        r#"{"cluster":{"chief":["mnist-dist-chief-0.ns.svc:7000"],"evaluator":["mnist-dist-evaluator-0.ns.svc:2222"],"ps":["mnist-dist-ps-0.ns.svc:9000","mnist-dist-ps-1.ns.svc:9000"],"worker":["mnist-dist-worker-0.ns.svc:8000","mnist-dist-worker-1.ns.svc:8000"]},"task":{"type":"ps","index":1},"environment":"cloud"}"#
    );
}

#[test]
fn tf_custom_ports_are_ignored_locally_in_favour_of_the_engine_ports() {
    let j = job(CUSTOM_PORTS);
    let p = ports(&[
        ("chief-0", 40010),
        ("evaluator-0", 40011),
        ("ps-0", 40012),
        ("ps-1", 40013),
        ("worker-0", 40014),
        ("worker-1", 40015),
    ]);
    assert_eq!(
        env(&j, "worker-0", &Hosts::Local { ports: &p })
            .get("TF_CONFIG")
            .unwrap(),
        r#"{"cluster":{"chief":["127.0.0.1:40010"],"evaluator":["127.0.0.1:40011"],"ps":["127.0.0.1:40012","127.0.0.1:40013"],"worker":["127.0.0.1:40014","127.0.0.1:40015"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
    );
}

// ---------------------------------------------------------------------------------------------
// Single replica: no TF_CONFIG
// ---------------------------------------------------------------------------------------------

#[test]
fn tf_single_replica_gets_no_tf_config_on_either_host() {
    let one_worker = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: solo}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  replicas:
    worker: {count: 1}
"#);
    let p = ports(&[("worker-0", 45000)]);
    let local = Hosts::Local { ports: &p };
    for hosts in [&CLUSTER, &local] {
        assert_eq!(tf(&one_worker, "worker-0", hosts), None);
        let e = env(&one_worker, "worker-0", hosts);
        assert!(!e.contains_key("TF_CONFIG"), "{e:?}");
        assert_eq!(e["TRAINCTL_REPLICA_TYPE"], "worker");
    }

    let one_chief = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: solo}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  replicas:
    chief: {}
"#);
    assert_eq!(tf(&one_chief, "chief-0", &CLUSTER), None);

    // A role with count 0 does not count: one replica in total.
    let zero_ps = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: solo}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  replicas:
    ps: {count: 0}
    worker: {count: 1}
"#);
    assert_eq!(tf(&zero_ps, "worker-0", &CLUSTER), None);
}

#[test]
fn tf_one_worker_and_one_evaluator_is_distributed() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: pair}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  replicas:
    worker: {count: 1}
    evaluator: {count: 1}
"#);
    assert_eq!(
        tf(&j, "worker-0", &CLUSTER).unwrap(),
        r#"{"cluster":{"evaluator":["pair-evaluator-0.ns.svc:2222"],"worker":["pair-worker-0.ns.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
    );
}

#[test]
fn user_tf_config_is_kept_when_the_wiring_sets_none() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: solo}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  env: {TF_CONFIG: "{}"}
  replicas:
    worker: {count: 1}
"#);
    assert_eq!(env(&j, "worker-0", &CLUSTER)["TF_CONFIG"], "{}");
}

#[test]
fn wiring_tf_config_overrides_a_user_set_one() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: w}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  env: {TF_CONFIG: "job-level", TRAINCTL_JOB: "spoofed"}
  replicas:
    worker: {count: 2, env: {TF_CONFIG: "role-level", TRAINCTL_ATTEMPT: "99"}}
"#);
    let e = env(&j, "worker-1", &CLUSTER);
    assert_eq!(
        e["TF_CONFIG"],
        r#"{"cluster":{"worker":["w-worker-0.ns.svc:2222","w-worker-1.ns.svc:2222"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
    );
    assert_eq!(e["TRAINCTL_JOB"], "w");
    assert_eq!(e["TRAINCTL_ATTEMPT"], "2");
}

// ---------------------------------------------------------------------------------------------
// PyTorch: master + workers
// ---------------------------------------------------------------------------------------------

const MASTER_WORKERS: &str = r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: bert}
spec:
  framework: pytorch
  command: ["torchrun", "train.py"]
  replicas:
    master: {count: 1}
    worker: {count: 3}
"#;

#[test]
fn pytorch_master_workers_on_a_cluster_full_env() {
    let j = job(MASTER_WORKERS);
    let base = |rank: &str, role: &str, index: &str| {
        map(&[
            ("MASTER_ADDR", "bert-master-0"),
            ("MASTER_PORT", "23456"),
            ("WORLD_SIZE", "4"),
            ("RANK", rank),
            ("PET_MASTER_ADDR", "bert-master-0"),
            ("PET_MASTER_PORT", "23456"),
            ("PET_NNODES", "4"),
            ("PET_NODE_RANK", rank),
            ("PET_NPROC_PER_NODE", "1"),
            ("PYTHONUNBUFFERED", "1"),
            ("TRAINCTL_JOB", "bert"),
            ("TRAINCTL_REPLICA_TYPE", role),
            ("TRAINCTL_REPLICA_INDEX", index),
            ("TRAINCTL_ATTEMPT", "2"),
            ("TRAINCTL_CHECKPOINT_DIR", "/ckpt/run"),
            ("TRAINCTL_LOG_DIR", "/ckpt/run/logs"),
        ])
    };
    assert_eq!(env(&j, "master-0", &CLUSTER), base("0", "master", "0"));
    assert_eq!(env(&j, "worker-0", &CLUSTER), base("1", "worker", "0"));
    assert_eq!(env(&j, "worker-1", &CLUSTER), base("2", "worker", "1"));
    assert_eq!(env(&j, "worker-2", &CLUSTER), base("3", "worker", "2"));
}

#[test]
fn pytorch_master_workers_locally() {
    let j = job(MASTER_WORKERS);
    let p = ports(&[
        ("master-0", 29511),
        ("worker-0", 29512),
        ("worker-1", 29513),
        ("worker-2", 29514),
    ]);
    let local = Hosts::Local { ports: &p };
    for (replica, rank) in [
        ("master-0", "0"),
        ("worker-0", "1"),
        ("worker-1", "2"),
        ("worker-2", "3"),
    ] {
        let e = env(&j, replica, &local);
        assert_eq!(e["MASTER_ADDR"], "127.0.0.1", "{replica}");
        assert_eq!(e["MASTER_PORT"], "29511", "{replica}");
        assert_eq!(e["PET_MASTER_ADDR"], "127.0.0.1", "{replica}");
        assert_eq!(e["PET_MASTER_PORT"], "29511", "{replica}");
        assert_eq!(e["WORLD_SIZE"], "4", "{replica}");
        assert_eq!(e["PET_NNODES"], "4", "{replica}");
        assert_eq!(e["RANK"], rank, "{replica}");
        assert_eq!(e["PET_NODE_RANK"], rank, "{replica}");
        assert_eq!(e["PET_NPROC_PER_NODE"], "1", "{replica}");
        assert_eq!(e["PYTHONUNBUFFERED"], "1", "{replica}");
        assert!(!e.contains_key("TF_CONFIG"), "{replica}");
    }
}

#[test]
fn pytorch_master_port_comes_from_the_master_role_on_a_cluster() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: ddp}
spec:
  framework: pytorch
  command: ["python3", "ddp.py"]
  replicas:
    master: {count: 1, port: 29500}
    worker: {count: 1, port: 31000}
"#);
    assert_eq!(cluster_port(&j, ReplicaType::Master), 29500);
    let e = env(&j, "worker-0", &CLUSTER);
    assert_eq!(e["MASTER_ADDR"], "ddp-master-0");
    assert_eq!(e["MASTER_PORT"], "29500");
    assert_eq!(e["PET_MASTER_PORT"], "29500");
    assert_eq!(e["RANK"], "1");
    assert_eq!(e["WORLD_SIZE"], "2");
    // Locally the configured port does not matter: the engine's port of master-0 does.
    let p = ports(&[("master-0", 45001), ("worker-0", 45002)]);
    let e = env(&j, "worker-0", &Hosts::Local { ports: &p });
    assert_eq!(e["MASTER_ADDR"], "127.0.0.1");
    assert_eq!(e["MASTER_PORT"], "45001");
}

#[test]
fn pytorch_workers_without_a_master_rank_from_worker_0() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: ddp}
spec:
  framework: pytorch
  command: ["python3", "ddp.py"]
  replicas:
    worker: {count: 3}
"#);
    for (replica, rank) in [("worker-0", "0"), ("worker-1", "1"), ("worker-2", "2")] {
        let e = env(&j, replica, &CLUSTER);
        assert_eq!(e["MASTER_ADDR"], "ddp-worker-0", "{replica}");
        assert_eq!(e["MASTER_PORT"], "23456", "{replica}");
        assert_eq!(e["WORLD_SIZE"], "3", "{replica}");
        assert_eq!(e["RANK"], rank, "{replica}");
        assert_eq!(e["PET_NODE_RANK"], rank, "{replica}");
    }
    let p = ports(&[
        ("worker-0", 38000),
        ("worker-1", 38001),
        ("worker-2", 38002),
    ]);
    let e = env(&j, "worker-2", &Hosts::Local { ports: &p });
    assert_eq!(e["MASTER_ADDR"], "127.0.0.1");
    assert_eq!(e["MASTER_PORT"], "38000");
    assert_eq!(e["RANK"], "2");
}

#[test]
fn pytorch_single_master_is_world_of_one() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: one}
spec:
  framework: pytorch
  command: ["python3", "t.py"]
  replicas:
    master: {}
"#);
    let e = env(&j, "master-0", &CLUSTER);
    assert_eq!(e["MASTER_ADDR"], "one-master-0");
    assert_eq!(e["MASTER_PORT"], "23456");
    assert_eq!(e["WORLD_SIZE"], "1");
    assert_eq!(e["RANK"], "0");
    let p = ports(&[("master-0", 47000)]);
    let e = env(&j, "master-0", &Hosts::Local { ports: &p });
    assert_eq!(e["MASTER_ADDR"], "127.0.0.1");
    assert_eq!(e["MASTER_PORT"], "47000");
    assert_eq!(e["WORLD_SIZE"], "1");
    assert_eq!(e["PET_NNODES"], "1");
}

#[test]
fn pytorch_rank_and_world_size() {
    let j = job(MASTER_WORKERS);
    assert_eq!(pytorch_rank(&j, id("master-0")), (0, 4));
    assert_eq!(pytorch_rank(&j, id("worker-0")), (1, 4));
    assert_eq!(pytorch_rank(&j, id("worker-2")), (3, 4));
}

// ---------------------------------------------------------------------------------------------
// Generic framework and the variables every replica gets
// ---------------------------------------------------------------------------------------------

#[test]
fn generic_gets_only_trainctl_vars_user_env_and_hyperparameters() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: gen}
spec:
  command: ["./run.sh"]
  env: {MODEL_DIR: /tf/model}
  hyperparameters: {lr: 0.5}
  replicas:
    master: {count: 1}
    worker: {count: 2}
"#);
    let want = map(&[
        ("MODEL_DIR", "/tf/model"),
        ("HP_LR", "0.5"),
        ("TRAINCTL_JOB", "gen"),
        ("TRAINCTL_REPLICA_TYPE", "worker"),
        ("TRAINCTL_REPLICA_INDEX", "1"),
        ("TRAINCTL_ATTEMPT", "2"),
        ("TRAINCTL_CHECKPOINT_DIR", "/ckpt/run"),
        ("TRAINCTL_LOG_DIR", "/ckpt/run/logs"),
    ]);
    assert_eq!(env(&j, "worker-1", &CLUSTER), want);
    let p = ports(&[("master-0", 1), ("worker-0", 2), ("worker-1", 3)]);
    assert_eq!(env(&j, "worker-1", &Hosts::Local { ports: &p }), want);
}

#[test]
fn trainctl_vars_follow_the_attempt_context() {
    let j = job(PS_WORKERS);
    let ctx = AttemptContext {
        attempt: 0,
        checkpoint_dir: "/data/ck",
        log_dir: "/data/tb",
    };
    let e = replica_env(&j, id("ps-0"), &CLUSTER, &ctx);
    assert_eq!(e["TRAINCTL_JOB"], "quickstart");
    assert_eq!(e["TRAINCTL_REPLICA_TYPE"], "ps");
    assert_eq!(e["TRAINCTL_REPLICA_INDEX"], "0");
    assert_eq!(e["TRAINCTL_ATTEMPT"], "0");
    assert_eq!(e["TRAINCTL_CHECKPOINT_DIR"], "/data/ck");
    assert_eq!(e["TRAINCTL_LOG_DIR"], "/data/tb");
}

#[test]
fn role_env_overrides_job_env() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: envs}
spec:
  framework: tensorflow
  command: ["python3", "t.py"]
  env: {SHARED: job, ONLY_JOB: "1"}
  replicas:
    ps: {count: 1}
    worker: {count: 1, env: {SHARED: worker, ONLY_WORKER: "2"}}
"#);
    let w = env(&j, "worker-0", &CLUSTER);
    assert_eq!(w["SHARED"], "worker");
    assert_eq!(w["ONLY_JOB"], "1");
    assert_eq!(w["ONLY_WORKER"], "2");
    let ps = env(&j, "ps-0", &CLUSTER);
    assert_eq!(ps["SHARED"], "job");
    assert_eq!(ps["ONLY_JOB"], "1");
    assert!(!ps.contains_key("ONLY_WORKER"));
}

// ---------------------------------------------------------------------------------------------
// Hyperparameters: HP_ variables and --name=value arguments
// ---------------------------------------------------------------------------------------------

const HYPER: &str = r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: hp}
spec:
  framework: tensorflow
  command: ["python3", "mnist.py", "--data", "/data"]
  hyperparameters: {learning_rate: 0.001, epochs: 100, batch_size: 20, optimizer: adam, use_amp: true, warmup-steps: 500}
  replicas:
    ps: {count: 1}
    worker: {count: 2, command: ["python3", "worker.py"]}
"#;

#[test]
fn hyperparameters_as_env() {
    let j = job(HYPER);
    let e = env(&j, "worker-0", &CLUSTER);
    assert_eq!(e["HP_LEARNING_RATE"], "0.001");
    assert_eq!(e["HP_EPOCHS"], "100");
    assert_eq!(e["HP_BATCH_SIZE"], "20");
    assert_eq!(e["HP_OPTIMIZER"], "adam");
    assert_eq!(e["HP_USE_AMP"], "true");
    assert_eq!(e["HP_WARMUP_STEPS"], "500");
    let hp: Vec<&str> = e
        .keys()
        .filter(|k| k.starts_with("HP_"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        hp,
        [
            "HP_BATCH_SIZE",
            "HP_EPOCHS",
            "HP_LEARNING_RATE",
            "HP_OPTIMIZER",
            "HP_USE_AMP",
            "HP_WARMUP_STEPS"
        ]
    );
    assert_eq!(hyperparameter_env_name("learning_rate"), "HP_LEARNING_RATE");
    assert_eq!(hyperparameter_env_name("model.depth"), "HP_MODEL_DEPTH");
    assert_eq!(hyperparameter_env_name("dropout2"), "HP_DROPOUT2");
}

#[test]
fn hyperparameters_as_sorted_args_after_the_command() {
    let j = job(HYPER);
    assert_eq!(
        replica_argv(&j, ReplicaType::Ps),
        strings(&[
            "python3",
            "mnist.py",
            "--data",
            "/data",
            "--batch_size=20",
            "--epochs=100",
            "--learning_rate=0.001",
            "--optimizer=adam",
            "--use_amp=true",
            "--warmup-steps=500",
        ])
    );
    // The worker role's own command replaces the job's.
    assert_eq!(
        replica_argv(&j, ReplicaType::Worker),
        strings(&[
            "python3",
            "worker.py",
            "--batch_size=20",
            "--epochs=100",
            "--learning_rate=0.001",
            "--optimizer=adam",
            "--use_amp=true",
            "--warmup-steps=500",
        ])
    );
}

#[test]
fn no_hyperparameters_leaves_argv_alone() {
    let j = job(PS_WORKERS);
    assert_eq!(
        replica_argv(&j, ReplicaType::Worker),
        strings(&["python3", "train.py"])
    );
    assert!(!env(&j, "worker-0", &CLUSTER)
        .keys()
        .any(|k| k.starts_with("HP_")));
}

#[test]
fn shell_true_makes_one_sh_c_script() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: sh}
spec:
  command: ["cd /src &&", "python3 train.py"]
  shell: true
  hyperparameters: {lr: 0.1, epochs: 3}
  replicas:
    worker: {count: 1}
"#);
    assert_eq!(
        replica_argv(&j, ReplicaType::Worker),
        strings(&[
            "sh",
            "-c",
            "cd /src && python3 train.py --epochs=3 --lr=0.1"
        ])
    );
    // Without hyperparameters the script is the joined command.
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: sh}
spec:
  command: ["echo $HOME"]
  shell: true
  replicas:
    worker: {count: 1}
"#);
    assert_eq!(
        replica_argv(&j, ReplicaType::Worker),
        strings(&["sh", "-c", "echo $HOME"])
    );
}

#[test]
fn shell_scripts_quote_hyperparameter_values_and_floats_stay_floats() {
    let j = job(r#"
apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {name: sh}
spec:
  command: ["python3 train.py"]
  shell: true
  hyperparameters: {note: "a b; rm -rf x", lr: 1.0, who: "it's"}
  replicas:
    worker: {count: 1}
"#);
    assert_eq!(
        replica_argv(&j, ReplicaType::Worker),
        strings(&[
            "sh",
            "-c",
            "python3 train.py --lr=1.0 '--note=a b; rm -rf x' '--who=it'\\''s'"
        ])
    );
    assert_eq!(env(&j, "worker-0", &CLUSTER)["HP_LR"], "1.0");
}

// ---------------------------------------------------------------------------------------------
// Names and defaults
// ---------------------------------------------------------------------------------------------

#[test]
fn object_names_and_default_ports() {
    let j = job(CHIEF_PS_WORKERS);
    assert_eq!(replica_object_name(&j, id("worker-1")), "mnist-worker-1");
    assert_eq!(replica_object_name(&j, id("chief-0")), "mnist-chief-0");
    assert_eq!(DEFAULT_TF_PORT, 2222);
    assert_eq!(DEFAULT_PYTORCH_PORT, 23456);
    assert_eq!(cluster_port(&j, ReplicaType::Worker), 2222);
    assert_eq!(
        cluster_port(&job(MASTER_WORKERS), ReplicaType::Master),
        23456
    );
    assert_eq!(
        CLUSTER.tf_address(&j, id("ps-1")),
        "mnist-ps-1.ns.svc:2222".to_string()
    );
}

#[test]
fn replica_ids_in_tf_config_order() {
    let j = job(WITH_EVALUATOR);
    let all: Vec<String> = ReplicaId::all_of(&j)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(all, ["chief-0", "evaluator-0", "ps-0", "worker-0"]);
    assert!("worker".parse::<ReplicaId>().is_err());
    assert!("boss-0".parse::<ReplicaId>().is_err());
    assert!("worker-x".parse::<ReplicaId>().is_err());
}
