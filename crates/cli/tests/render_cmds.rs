//! `trainctl render`, `lint` and `convert` as a user runs them: output, messages and exit
//! codes; and lint in front of `submit`.

mod common;

use common::{job_yaml, Sandbox};
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs trainctl, which must exit with 1 and say `needle` on stderr.
fn fails_with(sb: &Sandbox, args: &[&str], needle: &str) -> std::process::Output {
    let out = sb.tc(args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    out
}

const GPU_JOB: &str = "  framework: tensorflow\n  image: tf:2.15-gpu\n  command: [python3, train.py]\n  replicas: {ps: {count: 1}, worker: {count: 2, resources: {gpu: 1, gpuType: T4}}}\n";

#[test]
fn render_prints_yaml_documents_and_a_json_list() {
    let sb = Sandbox::new();
    let file = sb.job("job.yaml", &job_yaml("dist", GPU_JOB));
    let file = file.to_str().unwrap();
    let yaml = sb.ok(&["render", file, "--profile", "tencent-eks", "-n", "team-a"]);
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 6, "{yaml}");
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "team-a"));
    assert!(
        yaml.contains("eks.tke.cloud.tencent.com/gpu-type: T4"),
        "{yaml}"
    );
    let json: Value =
        serde_json::from_str(&sb.ok(&["render", file, "--target", "kubeflow", "-o", "json"]))
            .unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["kind"], "TFJob");
    let gang = sb.ok(&["render", file, "--target", "jobset", "--gang", "volcano"]);
    assert!(
        gang.contains("kind: PodGroup") && gang.contains("kind: JobSet"),
        "{gang}"
    );
}

#[test]
fn render_refuses_bad_input_with_a_clear_message() {
    let sb = Sandbox::new();
    let no_image = sb.job(
        "local.yaml",
        &job_yaml(
            "local",
            "  command: [python3, t.py]\n  replicas: {worker: {}}\n",
        ),
    );
    let out = fails_with(
        &sb,
        &["render", no_image.to_str().unwrap()],
        "need an image on Kubernetes; set spec.image",
    );
    assert!(out.stdout.is_empty());

    let shell = sb.job(
        "shell.yaml",
        &job_yaml(
            "sh",
            "  image: x:1\n  command: [prep, '&&', train]\n  replicas: {worker: {}}\n",
        ),
    );
    let out = fails_with(
        &sb,
        &["render", shell.to_str().unwrap()],
        "error[shell-syntax]: spec.command[1]",
    );
    assert!(out.stdout.is_empty());

    let good = sb.job("good.yaml", &job_yaml("good", GPU_JOB));
    for args in [
        ["--target", "helm"],
        ["--profile", "aws"],
        ["--gang", "yunikorn"],
    ] {
        let out = sb.tc(&["render", good.to_str().unwrap(), args[0], args[1]]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("invalid value"), "{}", stderr(&out));
    }
    fails_with(&sb, &["render", "missing.yaml"], "cannot read the job file");
}

#[test]
fn lint_reports_errors_and_warnings_with_the_exit_code() {
    let sb = Sandbox::new();
    let clean = sb.job("clean.yaml", &job_yaml("clean", GPU_JOB));
    let out = sb.tc(&["lint", clean.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("no problems found"));

    let warn = sb.job("warn.yaml", &job_yaml("warn", "  image: tensorflow/tensorflow:2.15.0\n  command: [a]\n  replicas: {worker: {resources: {gpu: 1}}}\n"));
    let out = sb.tc(&["lint", warn.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning[gpu-image]: spec.image"),
        "{}",
        stderr(&out)
    );

    let bad = sb.job(
        "bad.yaml",
        &job_yaml(
            "bad",
            "  framework: tensorflow\n  command: [a]\n  replicas: {chief: {}, ps: {count: 2}}\n",
        ),
    );
    fails_with(
        &sb,
        &["lint", bad.to_str().unwrap()],
        "error[ps-without-workers]: spec.replicas.ps",
    );

    let invalid = sb.job(
        "invalid.yaml",
        &job_yaml("x", "  replicas: {worker: {count: -1}}\n"),
    );
    fails_with(&sb, &["lint", invalid.to_str().unwrap()], "invalid.yaml:6:");
}

#[test]
fn lint_reads_plain_kubernetes_manifests_too() {
    let sb = Sandbox::new();
    let manifest = sb.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: train}\nspec:\n  containers:\n  - name: c\n    image: x:gpu\n    resources: {limits: {alpha.kubernetes.io/nvidia-gpu: 1}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n",
    );
    let err = stderr(&fails_with(
        &sb,
        &["lint", manifest.to_str().unwrap()],
        "error[legacy-gpu-resource]",
    ));
    assert!(
        err.contains("error[legacy-gpu-resource]: pod/train: spec.containers[0].resources.limits"),
        "{err}"
    );
    assert!(
        err.contains("error[restart-always]: pod/train: spec.restartPolicy"),
        "{err}"
    );
    let not_objects = sb.write("list.yaml", "- a\n- b\n");
    fails_with(
        &sb,
        &["lint", not_objects.to_str().unwrap()],
        "not a Kubernetes object",
    );
}

#[test]
fn convert_prints_a_trainingjob_that_renders_and_converts_back_the_same() {
    let sb = Sandbox::new();
    let tfjob = sb.write(
        "tfjob.yaml",
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: mnist, namespace: team-a}\nspec:\n  tfReplicaSpecs:\n    PS: {replicas: 1, template: {spec: {containers: [{name: tensorflow, image: 'tf:1-gpu', command: [python, m.py], args: ['--batch_size=20', '--epochs=100', '--learning_rate=0.001']}]}}}\n    Worker: {replicas: 2, restartPolicy: OnFailure, template: {spec: {containers: [{name: tensorflow, image: 'tf:1-gpu', command: [python, m.py], args: ['--batch_size=20', '--epochs=100', '--learning_rate=0.001'], resources: {limits: {nvidia.com/gpu: 1}}}]}}}\n",
    );
    let out = sb.tc(&["convert", tfjob.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(yaml.contains("gpu: 1\n"), "GPUs as whole numbers:\n{yaml}");
    assert!(!yaml.contains("gpu: 1.0"), "{yaml}");
    let job = trainctl_spec::parse_job_str("converted.yaml", &yaml).unwrap();
    assert_eq!(job.spec.replicas.total(), 3);
    assert_eq!(job.spec.command, ["python", "m.py"]);
    let hyper: Vec<String> = job
        .spec
        .hyperparameters
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        hyper,
        ["batch_size=20", "epochs=100", "learning_rate=0.001"]
    );
    assert!(
        stderr(&out).contains("warning: not converted: per-replica restartPolicy"),
        "{}",
        stderr(&out)
    );
    let converted = sb.write("converted.yaml", &yaml);
    let back = sb.ok(&[
        "render",
        converted.to_str().unwrap(),
        "--target",
        "kubeflow",
    ]);
    assert!(
        back.contains("kind: TFJob") && back.contains("replicas: 2"),
        "{back}"
    );
    assert!(
        back.contains("- m.py\n") && back.contains("- --batch_size=20\n"),
        "the hyperparameters are argv words again:\n{back}"
    );
    // convert -> render -> convert gives the same job file.
    let rendered = sb.write("rendered.yaml", &back);
    let again = sb.tc(&["convert", rendered.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), yaml);

    let not_a_job = sb.write(
        "job.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: j}\n",
    );
    fails_with(
        &sb,
        &["convert", not_a_job.to_str().unwrap()],
        "expected a kubeflow.org/v1 TFJob or PyTorchJob or a batch/v1 Job",
    );
}

#[test]
fn submit_refuses_a_job_that_lint_finds_broken() {
    let sb = Sandbox::new();
    let file = sb.job(
        "job.yaml",
        &job_yaml(
            "broken",
            "  command: [python3, prep.py, '&&', python3, train.py]\n  replicas: {worker: {}}\n",
        ),
    );
    fails_with(
        &sb,
        &["submit", file.to_str().unwrap()],
        "error[shell-syntax]: spec.command[2]",
    );
    let out = sb.tc(&["get", "broken"]);
    assert!(!out.status.success(), "the refused job was created");
}

#[test]
fn run_checks_only_the_rules_that_hold_on_this_machine() {
    let sb = Sandbox::new();
    // On a cluster: the checkpoints die with the pod and EKS pods cannot download.
    let file = sb.job(
        "job.yaml",
        &job_yaml(
            "here",
            "  command: [python3, -c, 'print(1)', '--download=mnist']\n  replicas: {worker: {}}\n  checkpointDir: ckpt\n  cloud: {profile: tencent-eks}\n",
        ),
    );
    let file = file.to_str().unwrap();
    let lint = sb.tc(&["lint", file]);
    assert!(lint.status.success(), "{}", stderr(&lint));
    for rule in ["checkpoint-not-persistent", "download-without-egress"] {
        assert!(
            stderr(&lint).contains(&format!("warning[{rule}]")),
            "{}",
            stderr(&lint)
        );
    }
    let run = sb.tc(&["run", file]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!stderr(&run).contains("warning["), "{}", stderr(&run));
}
