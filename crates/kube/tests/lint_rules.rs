//! One test per lint rule: it fires on the mistake (with the field path and a fix) and stays
//! quiet on the corrected job or manifest.

mod common;

use serde_json::{json, Value};
use trainctl_kube::{lint_job, lint_objects, Finding, Severity};

const HEAD: &str =
    "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\nspec:\n";

fn job_findings(spec: &str) -> Vec<Finding> {
    lint_job(&common::job(&format!("{HEAD}{spec}")))
}

fn of_rule<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

/// The rule fires once on `bad` at `path` with `severity`, and never on `good`.
fn check_job_rule(rule: &str, bad: &str, good: &str, path: &str, severity: Severity) {
    let found = job_findings(bad);
    let hits = of_rule(&found, rule);
    assert_eq!(hits.len(), 1, "{rule} on bad job: {found:#?}");
    assert_eq!(hits[0].path, path);
    assert_eq!(hits[0].severity, severity);
    assert!(!hits[0].fix.is_empty());
    let clean = job_findings(good);
    assert!(
        of_rule(&clean, rule).is_empty(),
        "{rule} on good job: {clean:#?}"
    );
}

fn pod(containers: Value, extra: Value) -> Value {
    let mut spec = json!({"containers": containers, "restartPolicy": "Never"});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn container(resources: Value) -> Value {
    json!([{"name": "c", "image": "x:gpu", "resources": resources}])
}

/// The object rule fires on `bad` (once, at `path`) and not on `good`.
fn check_object_rule(rule: &str, bad: Value, good: Value, path: &str, severity: Severity) {
    let found = lint_objects(&[bad]);
    let hits = of_rule(&found, rule);
    assert_eq!(hits.len(), 1, "{rule} on bad object: {found:#?}");
    assert_eq!(hits[0].path, path);
    assert_eq!(hits[0].severity, severity);
    let clean = lint_objects(&[good]);
    assert!(
        of_rule(&clean, rule).is_empty(),
        "{rule} on good object: {clean:#?}"
    );
}

#[test]
fn gpu_requests_without_equal_limits_are_an_error() {
    check_object_rule(
        "gpu-requests",
        pod(
            container(json!({"requests": {"nvidia.com/gpu": 1}})),
            json!({}),
        ),
        pod(
            container(json!({"limits": {"nvidia.com/gpu": 1}})),
            json!({}),
        ),
        "pod/p: spec.containers[0].resources.requests",
        Severity::Error,
    );
    check_object_rule(
        "gpu-requests",
        pod(
            container(json!({"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}})),
            json!({}),
        ),
        pod(
            container(
                json!({"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": 2}}),
            ),
            json!({}),
        ),
        "pod/p: spec.containers[0].resources.requests",
        Severity::Error,
    );
}

#[test]
fn fractional_gpu_limits_are_an_error() {
    check_object_rule(
        "fractional-gpu",
        pod(
            container(json!({"limits": {"nvidia.com/gpu": "500m"}})),
            json!({}),
        ),
        pod(
            container(json!({"limits": {"nvidia.com/gpu": "1"}})),
            json!({}),
        ),
        "pod/p: spec.containers[0].resources.limits",
        Severity::Error,
    );
}

#[test]
fn fractional_gpus_in_a_job_file_are_already_a_located_parse_error() {
    let err = trainctl_spec::parse_job_str(
        "j.yaml",
        &format!("{HEAD}  command: [a]\n  replicas: {{worker: {{resources: {{gpu: 0.5}}}}}}\n"),
    )
    .unwrap_err();
    assert!(
        err[0].to_string().contains("GPUs are whole devices"),
        "{err:?}"
    );
}

#[test]
fn the_legacy_nvidia_gpu_resource_is_an_error() {
    check_object_rule(
        "legacy-gpu-resource",
        pod(
            container(json!({"limits": {"alpha.kubernetes.io/nvidia-gpu": 1}})),
            json!({}),
        ),
        pod(
            container(json!({"limits": {"nvidia.com/gpu": 1}})),
            json!({}),
        ),
        "pod/p: spec.containers[0].resources.limits",
        Severity::Error,
    );
}

#[test]
fn host_path_mounts_of_nvidia_devices_and_drivers_are_warned_once_per_job() {
    check_object_rule(
        "gpu-driver-hostpath",
        pod(
            container(json!({})),
            json!({"volumes": [{"name": "dev", "hostPath": {"path": "/dev/nvidia0"}}]}),
        ),
        pod(
            container(json!({})),
            json!({"volumes": [{"name": "data", "hostPath": {"path": "/data"}}]}),
        ),
        "pod/p: spec.volumes[0].hostPath.path",
        Severity::Warning,
    );
    // From a job file, through its rendered objects: reported once for all replicas.
    let found = job_findings("  command: [a]\n  replicas: {worker: {count: 3}}\n  volumes: [{name: drv, mountPath: /usr/local/nvidia, hostPath: {path: /usr/local/nvidia}}]\n");
    let hits = of_rule(&found, "gpu-driver-hostpath");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert_eq!(
        hits[0].path,
        "job/j-worker-0: spec.template.spec.volumes[0].hostPath.path"
    );
}

#[test]
fn restart_policy_always_is_an_error_on_batch_workloads_only() {
    let tfjob = |policy: &str| {
        json!({
            "apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "t"},
            "spec": {"tfReplicaSpecs": {"Worker": {"restartPolicy": policy, "template": {"spec": {"containers": container(json!({}))}}}}}
        })
    };
    check_object_rule(
        "restart-always",
        tfjob("Always"),
        tfjob("OnFailure"),
        "tfjob/t: spec.tfReplicaSpecs.Worker.restartPolicy",
        Severity::Error,
    );
    let bare = |policy: Option<&str>| {
        let mut p = pod(container(json!({})), json!({}));
        match policy {
            Some(policy) => p["spec"]["restartPolicy"] = policy.into(),
            None => {
                p["spec"].as_object_mut().unwrap().remove("restartPolicy");
            }
        }
        p
    };
    check_object_rule(
        "restart-always",
        bare(None),
        bare(Some("Never")),
        "pod/p: spec.restartPolicy",
        Severity::Error,
    );
    // A Deployment (TensorBoard) is not a batch workload.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": container(json!({})), "restartPolicy": "Always"}}}});
    assert!(lint_objects(&[deploy]).is_empty());
}

#[test]
fn eks_gpu_count_without_cpu_and_mem_is_an_error() {
    let annotated = |keys: &[&str]| {
        let annotations: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| (format!("eks.tke.cloud.tencent.com/{k}"), json!("1")))
            .collect();
        let mut p = pod(
            container(json!({"limits": {"nvidia.com/gpu": 1}})),
            json!({}),
        );
        p["metadata"]["annotations"] = Value::Object(annotations);
        p
    };
    check_object_rule(
        "eks-gpu-count",
        annotated(&["gpu-type", "gpu-count", "cpu"]),
        annotated(&["gpu-type", "gpu-count", "cpu", "mem"]),
        "pod/p: metadata.annotations",
        Severity::Error,
    );
    // Pinning on tencent-eks without memory in the job: the rendered pods lack mem.
    let found = job_findings("  image: tf:gpu\n  command: [a]\n  replicas: {worker: {resources: {gpu: 1, cpu: '4'}}}\n  cloud: {profile: tencent-eks, pinResources: true}\n");
    let hits = of_rule(&found, "eks-gpu-count");
    assert_eq!(hits.len(), 1, "{found:#?}");
    assert!(hits[0].message.contains("eks.tke.cloud.tencent.com/mem"));
    let ok = job_findings("  image: tf:gpu\n  command: [a]\n  replicas: {worker: {resources: {gpu: 1, cpu: '4', memory: 16Gi}}}\n  cloud: {profile: tencent-eks, pinResources: true}\n");
    assert!(of_rule(&ok, "eks-gpu-count").is_empty(), "{ok:#?}");
}

#[test]
fn shell_syntax_in_an_argv_without_shell_is_an_error_at_its_word() {
    check_job_rule(
        "shell-syntax",
        "  command: [python3, prep.py, '&&', python3, train.py]\n  replicas: {worker: {}}\n",
        "  command: [python3, prep.py, '&&', python3, train.py]\n  shell: true\n  replicas: {worker: {}}\n",
        "spec.command[2]",
        Severity::Error,
    );
    check_job_rule(
        "shell-syntax",
        "  command: [python3, train.py, '--data=$DATA_DIR']\n  replicas: {worker: {}}\n",
        "  command: [python3, train.py, '--data=/data']\n  replicas: {worker: {}}\n",
        "spec.command[2]",
        Severity::Error,
    );
    // An explicit shell or inline code after -c is shell syntax on purpose.
    let explicit =
        job_findings("  command: [sh, -c, 'prep && train | tee log']\n  replicas: {worker: {}}\n");
    assert!(
        of_rule(&explicit, "shell-syntax").is_empty(),
        "{explicit:#?}"
    );
    let role = job_findings("  command: [a]\n  replicas: {worker: {command: [run, '|', tee]}}\n");
    assert_eq!(
        of_rule(&role, "shell-syntax")[0].path,
        "spec.replicas.worker.command[1]"
    );
}

#[test]
fn a_gpu_job_on_a_cpu_image_is_warned() {
    check_job_rule(
        "gpu-image",
        "  image: tensorflow/tensorflow:2.15.0\n  command: [a]\n  replicas: {worker: {resources: {gpu: 1}}}\n",
        "  image: tensorflow/tensorflow:2.15.0-gpu\n  command: [a]\n  replicas: {worker: {resources: {gpu: 1}}}\n",
        "spec.image",
        Severity::Warning,
    );
    for image in [
        "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
        "nvcr.io/nvidia/pytorch:24.01-py3",
        "my/train:cu121",
    ] {
        let found = job_findings(&format!(
            "  image: {image}\n  command: [a]\n  replicas: {{worker: {{resources: {{gpu: 1}}}}}}\n"
        ));
        assert!(
            of_rule(&found, "gpu-image").is_empty(),
            "{image}: {found:#?}"
        );
    }
    // CPU-only replicas may use any image.
    let cpu = job_findings("  image: python:3.12\n  command: [a]\n  replicas: {worker: {}}\n");
    assert!(of_rule(&cpu, "gpu-image").is_empty());
}

#[test]
fn parameter_servers_without_workers_are_an_error() {
    check_job_rule(
        "ps-without-workers",
        "  framework: tensorflow\n  command: [a]\n  replicas: {chief: {}, ps: {count: 2}}\n",
        "  framework: tensorflow\n  command: [a]\n  replicas: {chief: {}, ps: {count: 2}, worker: {count: 2}}\n",
        "spec.replicas.ps",
        Severity::Error,
    );
}

#[test]
fn a_checkpoint_dir_not_on_a_persistent_volume_is_warned() {
    check_job_rule(
        "checkpoint-not-persistent",
        "  command: [a]\n  replicas: {worker: {}}\n  volumes: [{name: s, mountPath: /ckpt, emptyDir: {}}]\n  checkpointDir: /ckpt/run1\n",
        "  command: [a]\n  replicas: {worker: {}}\n  volumes: [{name: s, mountPath: /ckpt, persistentVolumeClaim: {claimName: c}}]\n  checkpointDir: /ckpt/run1\n",
        "spec.checkpointDir",
        Severity::Warning,
    );
    let nowhere =
        job_findings("  command: [a]\n  replicas: {worker: {}}\n  checkpointDir: /ckpt\n");
    assert_eq!(of_rule(&nowhere, "checkpoint-not-persistent").len(), 1);
}

#[test]
fn downloads_on_a_profile_without_egress_are_warned() {
    check_job_rule(
        "download-without-egress",
        "  command: [python3, train.py, --download]\n  replicas: {worker: {}}\n  cloud: {profile: alibaba-eci}\n",
        "  command: [python3, train.py, --download]\n  replicas: {worker: {}}\n  cloud: {profile: alibaba-eci, egress: true}\n",
        "spec.command[2]",
        Severity::Warning,
    );
    let generic =
        job_findings("  command: [python3, train.py, --download]\n  replicas: {worker: {}}\n");
    assert!(of_rule(&generic, "download-without-egress").is_empty());
    let hp = job_findings("  command: [a]\n  hyperparameters: {download: true}\n  replicas: {worker: {}}\n  cloud: {profile: tencent-eks}\n");
    assert_eq!(
        of_rule(&hp, "download-without-egress")[0].path,
        "spec.hyperparameters.download"
    );
}

#[test]
fn the_seed_jobs_lint_clean() {
    for seed in ["eks-t4.yaml", "eci-nas.yaml", "ack-mnist.yaml"] {
        let found = lint_job(&common::seed(seed));
        assert!(found.is_empty(), "{seed}: {found:#?}");
    }
}

#[test]
fn a_finding_reads_as_severity_rule_path_message_and_fix() {
    let f = &job_findings("  command: [a]\n  replicas: {worker: {}}\n  checkpointDir: /c\n")[0];
    assert_eq!(
        f.to_string(),
        format!(
            "warning[checkpoint-not-persistent]: spec.checkpointDir: {}; fix: {}",
            f.message, f.fix
        )
    );
}

/// Before a local `run`/`submit` only the rules that hold wherever the job runs apply:
/// images, checkpoints lost with a pod and egress are cluster matters.
#[test]
fn local_lint_keeps_the_rules_that_hold_everywhere() {
    let job = common::job(&format!(
        "{HEAD}  image: tf:2.15\n  command: [python3, t.py, '--download=imagenet', '&&', echo]\n  replicas: {{chief: {{resources: {{gpu: 1}}}}, ps: {{count: 1}}}}\n  checkpointDir: /ckpt\n  cloud: {{profile: tencent-eks}}\n"
    ));
    let rules = |findings: Vec<Finding>| {
        let mut rules: Vec<&'static str> = findings.iter().map(|f| f.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    };
    assert_eq!(
        rules(trainctl_kube::lint_local(&job)),
        ["ps-without-workers", "shell-syntax"]
    );
    assert_eq!(
        rules(lint_job(&job)),
        [
            "checkpoint-not-persistent",
            "download-without-egress",
            "gpu-image",
            "ps-without-workers",
            "shell-syntax"
        ]
    );
}
