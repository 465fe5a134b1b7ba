//! Parsing job files: defaults, and every kind of bad input located at file:line:column with
//! its field path.

use trainctl_spec::{
    parse_job_str, CleanPodPolicy, CloudProfile, Framework, HyperValue, ReplicaType, RestartPolicy,
    SpecError, SuccessPolicy, TrainingJob,
};

mod common;

const MINIMAL: &str = "apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata:
  name: tiny
spec:
  command: [python3, train.py]
  replicas:
    worker: {}
";

fn errors(text: &str) -> Vec<SpecError> {
    parse_job_str("job.yaml", text).expect_err("the job should be rejected")
}

/// The single error of a bad file, printed as the user sees it.
fn error(text: &str) -> String {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
    errs[0].to_string()
}

fn with_spec(extra: &str) -> String {
    format!("apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: j\nspec:\n{extra}")
}

#[test]
fn the_references_full_example_parses_with_every_field() {
    let job: TrainingJob = parse_job_str("full.yaml", &common::full_example()).unwrap();
    assert_eq!(job.name(), "mnist-dist");
    assert_eq!(job.spec.framework, Framework::Tensorflow);
    assert_eq!(job.spec.replicas.count(ReplicaType::Ps), 2);
    assert_eq!(job.spec.replicas.ps.as_ref().unwrap().port, Some(9000));
    assert_eq!(job.total_gpus(), 2);
    assert_eq!(
        job.spec.hyperparameters["learning_rate"],
        HyperValue::Float(0.001)
    );
    assert_eq!(job.spec.hyperparameters["epochs"], HyperValue::Int(100));
    assert_eq!(job.spec.volumes[0].nfs.as_ref().unwrap().server, "10.0.1.8");
    assert_eq!(job.spec.run_policy.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(job.spec.run_policy.active_deadline_seconds, Some(86400));
    assert!(job.spec.scheduling.gang);
    assert_eq!(job.spec.cloud.profile, CloudProfile::Generic);
}

#[test]
fn minimal_job_gets_the_documented_defaults() {
    let job = parse_job_str("tiny.yaml", MINIMAL).unwrap();
    assert_eq!(job.spec.framework, Framework::Generic);
    assert_eq!(job.spec.replicas.count(ReplicaType::Worker), 1);
    let p = &job.spec.run_policy;
    assert_eq!(p.restart_policy, RestartPolicy::Never);
    assert_eq!(p.backoff_limit, 3);
    assert_eq!(p.clean_pod_policy, CleanPodPolicy::Running);
    assert_eq!(p.success_policy, SuccessPolicy::ChiefOrWorker0);
    assert!(!p.suspend);
    assert_eq!(job.spec.scheduling.queue, "default");
    assert!(!job.spec.shell);
}

#[test]
fn a_parsed_job_round_trips_through_json() {
    let job = parse_job_str("full.yaml", &common::full_example()).unwrap();
    let back: TrainingJob = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
    assert_eq!(back, job);
}

#[test]
fn yaml_syntax_error_is_located() {
    let msg = error("apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x\n");
    assert!(msg.starts_with("job.yaml:"), "{msg}");
    let line: usize = msg.split(':').nth(1).unwrap().parse().unwrap();
    assert!((3..=4).contains(&line), "{msg}");
}

#[test]
fn unknown_field_names_file_line_column_and_path() {
    let text = with_spec("  command: [a]\n  replicas:\n    workers: {count: 2}\n");
    let msg = error(&text);
    assert!(
        msg.starts_with("job.yaml:8:5: spec.replicas.workers: unknown field `workers`"),
        "{msg}"
    );
    assert!(msg.contains("`worker`"), "lists the valid names: {msg}");
}

#[test]
fn wrong_type_is_located() {
    let text = with_spec("  command: [a]\n  replicas:\n    worker: {count: many}\n");
    let msg = error(&text);
    assert!(msg.starts_with("job.yaml:8:21: spec.replicas.worker.count: invalid type: string \"many\", expected u32"), "{msg}");
}

#[test]
fn negative_count_is_rejected_with_advice() {
    let text = with_spec("  command: [a]\n  replicas:\n    worker:\n      count: -2\n");
    let msg = error(&text);
    assert!(
        msg.starts_with("job.yaml:9:14: spec.replicas.worker.count: invalid type: integer `-2`"),
        "{msg}"
    );
    assert!(msg.ends_with("use a whole number from 0 to 10000"), "{msg}");
}

#[test]
fn name_must_be_a_dns1035_label() {
    let text = MINIMAL.replace("name: tiny", "name: My_Job");
    let msg = error(&text);
    assert!(
        msg.starts_with("job.yaml:4:3: metadata.name: \"My_Job\" is not a DNS-1035 label"),
        "{msg}"
    );
    assert!(msg.contains("\"my-job\""), "suggests a valid name: {msg}");
    for bad in ["1job", "job-", "a.b", &"x".repeat(64)] {
        let text = MINIMAL.replace("name: tiny", &format!("name: \"{bad}\""));
        assert!(error(&text).contains("metadata.name"), "{bad}");
    }
}

#[test]
fn a_second_master_is_rejected_at_its_count() {
    let text = with_spec(
        "  framework: pytorch\n  command: [a]\n  replicas:\n    master: {count: 2}\n    worker: {count: 1}\n",
    );
    let msg = error(&text);
    assert!(
        msg.starts_with(
            "job.yaml:9:14: spec.replicas.master.count: a job has at most one master (got 2)"
        ),
        "{msg}"
    );
}

#[test]
fn a_pytorch_job_needs_a_master_or_workers_and_no_other_roles() {
    let text = with_spec("  framework: pytorch\n  command: [a]\n  replicas:\n    ps: {count: 1}\n");
    let errs = errors(&text);
    let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        all.iter()
            .any(|m| m.contains("spec.replicas: a pytorch job needs a master or workers")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|m| m.contains("spec.replicas.ps: pytorch jobs have master and worker")),
        "{all:?}"
    );
}

#[test]
fn missing_command_is_rejected_at_spec_command() {
    let text = with_spec("  replicas:\n    worker: {count: 1}\n");
    let msg = error(&text);
    assert!(
        msg.starts_with("job.yaml:5:1: spec.command: worker replicas have no command"),
        "{msg}"
    );
}

#[test]
fn a_role_command_stands_in_for_spec_command() {
    let text = with_spec("  replicas:\n    worker: {count: 1, command: [python3, w.py]}\n");
    let job = parse_job_str("job.yaml", &text).unwrap();
    assert_eq!(job.command_of(ReplicaType::Worker), ["python3", "w.py"]);
}

#[test]
fn fractional_gpus_are_rejected_at_their_field_path() {
    let text = with_spec("  command: [a]\n  replicas:\n    worker: {resources: {gpu: 0.5}}\n");
    let msg = error(&text);
    assert!(
        msg.contains("spec.replicas.worker.resources.gpu: GPUs are whole devices"),
        "{msg}"
    );
}

#[test]
fn a_memory_that_is_no_kubernetes_quantity_is_rejected_at_its_field_path() {
    let text = with_spec("  command: [a]\n  replicas:\n    worker: {resources: {memory: 2GB}}\n");
    let msg = error(&text);
    assert!(
        msg.contains("spec.replicas.worker.resources.memory: \"2GB\" is not a Kubernetes quantity"),
        "{msg}"
    );
}

#[test]
fn wrong_api_version_and_kind_are_reported_together() {
    let text = MINIMAL
        .replace("trainctl.dev/v1alpha1", "kubeflow.org/v1")
        .replace("kind: TrainingJob", "kind: TFJob");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].path, "apiVersion");
    assert_eq!((errs[0].line, errs[0].column), (1, 1));
    assert_eq!(errs[1].path, "kind");
    assert_eq!(errs[1].line, 2);
}

/// The errors of a job with two bad volumes: the first without a source, the second with
/// the first's name and a relative mount path.
fn two_bad_volumes() -> Vec<String> {
    let text = with_spec(
        "  command: [a]\n  replicas: {worker: {}}\n  volumes:\n    - {name: data, mountPath: /d}\n    - {name: data, mountPath: rel, emptyDir: {}}\n",
    );
    errors(&text).iter().map(ToString::to_string).collect()
}

#[test]
fn a_volume_without_exactly_one_source_is_rejected_at_its_line() {
    let all = two_bad_volumes();
    assert!(
        all.iter().any(|m| m.starts_with("job.yaml:9:")
            && m.contains("spec.volumes[0]: a volume needs exactly one of")),
        "{all:?}"
    );
}

#[test]
fn a_volume_name_used_twice_is_rejected() {
    let all = two_bad_volumes();
    assert!(
        all.iter()
            .any(|m| m.contains("spec.volumes[1].name: volume name \"data\" is used twice")),
        "{all:?}"
    );
}

#[test]
fn a_relative_mount_path_is_rejected() {
    let all = two_bad_volumes();
    assert!(
        all.iter()
            .any(|m| m.contains("spec.volumes[1].mountPath: mountPath must be an absolute path")),
        "{all:?}"
    );
}

#[test]
fn an_empty_file_is_explained() {
    assert!(error("").contains("the file is empty"));
}

#[test]
fn a_job_without_replicas_is_explained() {
    let text = with_spec("  command: [a]\n");
    assert!(error(&text).contains("spec.replicas: the job has no replicas"));
}

#[test]
fn a_job_where_no_replica_decides_success_is_explained() {
    let text = with_spec("  command: [a]\n  replicas: {ps: {count: 1}}\n");
    assert!(error(&text).contains("nothing decides when this job succeeds"));
}

#[test]
fn the_json_schema_carries_the_fields_and_choices_of_the_types() {
    let schema = TrainingJob::json_schema();
    let text = schema.to_string();
    for field in [
        "restartPolicy",
        "successPolicy",
        "checkpointDir",
        "gpuType",
        "ExitCode",
    ] {
        assert!(text.contains(field), "schema lacks {field}");
    }
}

#[test]
fn a_metrics_regex_that_does_not_compile_is_located() {
    let text = with_spec("  command: [a]\n  replicas: {worker: {}}\n  metrics:\n    regex: 'loss (?P<loss>[0-9.]+'\n");
    let msg = error(&text);
    assert!(
        msg.starts_with("job.yaml:9:5: spec.metrics.regex: "),
        "{msg}"
    );
    assert!(msg.contains("unclosed group"), "{msg}");
}

#[test]
fn a_metrics_regex_must_name_a_metric() {
    let text = with_spec("  command: [a]\n  replicas: {worker: {}}\n  metrics:\n    regex: 'step (?P<step>[0-9]+)'\n");
    let msg = error(&text);
    assert!(
        msg.starts_with("job.yaml:9:5: spec.metrics.regex: "),
        "{msg}"
    );
    assert!(
        msg.contains("no named group to take a metric from"),
        "{msg}"
    );
}

#[test]
fn format_regex_without_a_regex_is_located() {
    let missing =
        with_spec("  command: [a]\n  replicas: {worker: {}}\n  metrics: {format: regex}\n");
    assert!(error(&missing)
        .starts_with("job.yaml:8:13: spec.metrics.format: format is regex but no regex"));
}
