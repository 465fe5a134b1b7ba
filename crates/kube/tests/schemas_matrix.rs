//! Every object render emits, for every target x cloud profile x job shape (and every gang
//! scheduler), validated against the official schemas: built-in kinds with
//! `kubernetes-validate --strict` for Kubernetes 1.28 and 1.37, the kinds of Kubeflow,
//! JobSet, Volcano, coscheduling and Kueue with their CRDs in tests/crds. The operator's
//! TensorBoard objects (collector sidecar, ServiceAccount, Role, RoleBinding) are checked too.

mod common;

use trainctl_kube::render::{tensorboard_objects, DEFAULT_COLLECTOR_IMAGE};
use trainctl_kube::{render, RenderOptions, Target};
use trainctl_spec::{CloudProfile, GangScheduler, TrainingJob};

const TARGETS: [Target; 4] = [
    Target::Plain,
    Target::Jobset,
    Target::Kubeflow,
    Target::Trainingjob,
];
const PROFILES: [CloudProfile; 5] = [
    CloudProfile::Generic,
    CloudProfile::TencentEks,
    CloudProfile::TencentTke,
    CloudProfile::AlibabaEci,
    CloudProfile::AlibabaAck,
];

const HEADER: &str = "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\n";

/// The job shapes of the matrix, by name.
fn shapes() -> Vec<(&'static str, TrainingJob)> {
    let body = |name: &str, spec: &str| {
        common::job(&format!(
            "{HEADER}metadata: {{name: {name}}}\nspec:\n{spec}"
        ))
    };
    vec![
        ("single-gpu", body("single", "  image: tf:2.15-gpu\n  command: [python3, train.py]\n  replicas: {worker: {resources: {gpu: 1, gpuType: T4, cpu: '4', memory: 16Gi}}}\n  cloud: {pinResources: true, imageCache: true, instanceType: ecs.gn6i-c4g1.xlarge}\n")),
        ("ps-workers-nfs", body("psw", "  framework: tensorflow\n  image: tf:2.15-gpu\n  command: [python3, train.py]\n  hyperparameters: {epochs: 3, learning_rate: 0.01}\n  replicas: {ps: {count: 2, port: 9000}, worker: {count: 2, resources: {gpu: 1}}}\n  volumes: [{name: data, mountPath: /tf, nfs: {server: 10.0.0.8, path: /exports}}]\n  checkpointDir: /tf/ckpt\n  tensorboard: {logDir: /tf/logs}\n  runPolicy: {restartPolicy: ExitCode, backoffLimit: 4, activeDeadlineSeconds: 3600, ttlSecondsAfterFinished: 600}\n")),
        ("chief-ps-workers-evaluator-pvc", body("cpwe", "  framework: tensorflow\n  image: tf:2.15-gpu\n  command: [python3, train.py]\n  replicas:\n    chief: {resources: {gpu: 1}}\n    ps: {count: 1}\n    worker: {count: 2, resources: {gpu: 2, gpuType: V100}}\n    evaluator: {}\n  volumes: [{name: ckpt, mountPath: /ckpt, persistentVolumeClaim: {claimName: shared-ckpt}}, {name: scratch, mountPath: /scratch, emptyDir: {sizeLimit: 1Gi}}]\n  checkpointDir: /ckpt\n  tensorboard: {logDir: /ckpt/logs, serviceType: NodePort, image: tensorflow/tensorflow:2.15.0}\n  runPolicy: {restartPolicy: OnFailure, successPolicy: AllWorkers, cleanPodPolicy: All}\n")),
        ("pytorch-master-workers", body("ptmw", "  framework: pytorch\n  image: pytorch:2.3-cuda12.1\n  command: [torchrun, train.py]\n  replicas: {master: {resources: {gpu: 1}}, worker: {count: 3, resources: {gpu: 1}}}\n  volumes: [{name: nas, mountPath: /mnt, nfs: {server: nas.example.com, path: /, nasFlexVolume: true}}]\n  tensorboard: {logDir: /mnt/tb, serviceType: LoadBalancer}\n")),
        ("pytorch-workers-share", body("ptw", "  framework: pytorch\n  image: pytorch:2.3-cuda12.1\n  command: [torchrun, train.py]\n  replicas: {worker: {count: 2, resources: {gpu: 1}}}\n  volumes: [{name: data, mountPath: /data, nfs: {server: 10.0.0.9, path: /d}, persistentVolume: {capacity: 50Gi, labels: {train: ptw}}}, {name: host, mountPath: /cache, hostPath: {path: /var/cache/ds}}]\n  checkpointDir: /data/ckpt\n  runPolicy: {suspend: true}\n")),
        ("generic-single", body("gen", "  image: busybox:1.36\n  command: [echo, hi]\n  replicas: {worker: {}}\n")),
    ]
}

/// Renders every combination into files in a temp dir and validates them all at once.
#[test]
fn every_rendered_object_passes_the_official_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let gangs = [
        None,
        Some(GangScheduler::Volcano),
        Some(GangScheduler::Coscheduling),
        Some(GangScheduler::Kueue),
    ];
    for (shape, job) in shapes() {
        // The operator's TensorBoard: with the collector and its ServiceAccount and Role.
        if let Some(tb) = tensorboard_objects(&job, "team-a", DEFAULT_COLLECTOR_IMAGE) {
            let access = tb
                .collector
                .expect("the operator's TensorBoard has a collector");
            let objects = [
                to_value(&access.service_account),
                to_value(&access.role),
                to_value(&access.role_binding),
                to_value(&tb.deployment),
                to_value(&tb.service),
            ];
            let name = format!("{shape}-operator-tensorboard.yaml");
            files.push(common::write_yaml(dir.path(), &name, &objects));
        }
        for target in TARGETS {
            for profile in PROFILES {
                // Gang settings do not depend on the profile: every gang with one profile.
                let gangs = if profile == CloudProfile::Generic {
                    &gangs[..]
                } else {
                    &gangs[..1]
                };
                for &gang in gangs {
                    let opts = RenderOptions {
                        target,
                        profile: Some(profile),
                        namespace: Some("team-a".into()),
                        gang,
                    };
                    let name = format!("{shape}-{target:?}-{profile:?}-{gang:?}.yaml");
                    match render(&job, &opts) {
                        Ok(objects) => {
                            assert!(!objects.is_empty(), "{name}: nothing rendered");
                            files.push(common::write_yaml(dir.path(), &name, &objects));
                        }
                        Err(e) => panic!("{name}: {e}"),
                    }
                }
            }
        }
    }
    let report = common::validate(&files, &["1.28", "1.37"]);
    println!("{}", report.lines().last().unwrap_or_default());
    for version in ["1.28", "1.37"] {
        for kind in [
            "Job",
            "Service",
            "Deployment",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "ServiceAccount",
            "Role",
            "RoleBinding",
        ] {
            let prefix = format!("ok (kubernetes {version} strict)");
            assert!(
                report
                    .lines()
                    .any(|l| l.starts_with(&prefix) && l.contains(&format!(" {kind}/"))),
                "no {kind} was validated for {version}:\n{report}"
            );
        }
    }
    // PyTorch master + workers as one indexed JobSet job, checked like every other shape.
    assert!(
        report.lines().any(|l| l.starts_with("ok (CRD schema)")
            && l.contains("pytorch-master-workers-Jobset-Generic-None.yaml JobSet/ptmw")),
        "the ranked JobSet was not validated:\n{report}"
    );
    for kind in [
        "JobSet",
        "TFJob",
        "PyTorchJob",
        "PodGroup",
        "ImageCache",
        "TrainingJob",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok (CRD schema)") && l.contains(&format!(" {kind}/"))),
            "no {kind} was validated:\n{report}"
        );
    }
}

/// The validator is not a rubber stamp: an unknown field, a wrong type and an unknown
/// kind each fail it.
#[test]
fn the_validator_rejects_what_a_server_would() {
    let dir = tempfile::tempdir().unwrap();
    let job = shapes().remove(1).1;
    let mut objects = render(&job, &RenderOptions::default()).unwrap();
    objects[0]["spec"]["clusterIp"] = "None".into();
    let mut jobset = render(
        &job,
        &RenderOptions {
            target: Target::Jobset,
            ..RenderOptions::default()
        },
    )
    .unwrap();
    let js = jobset.iter_mut().find(|o| o["kind"] == "JobSet").unwrap();
    js["spec"]["replicatedJobs"][0]["replicas"] = "two".into();
    let unknown = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    for (name, objs) in [
        ("typo.yaml", objects),
        ("type.yaml", vec![js.clone()]),
        ("unknown.yaml", vec![unknown]),
    ] {
        let path = common::write_yaml(dir.path(), name, &objs);
        let (ok, report) = common::run_validator(&[path], &["1.37"]);
        assert!(
            !ok && report.contains("FAIL"),
            "{name} passed validation:\n{report}"
        );
    }
}

/// An object as JSON (k8s-openapi types always serialize).
fn to_value<T: serde::Serialize>(object: &T) -> serde_json::Value {
    serde_json::to_value(object).expect("serializes")
}
