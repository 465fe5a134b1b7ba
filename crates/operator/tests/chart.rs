//! charts/trainctl: its CRDs are exactly `trainctl crd`, its templates render to valid
//! Kubernetes objects, and the Deployment, Service and RBAC objects fit together.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::chart::{chart_dir, object, render};

#[test]
fn the_chart_crds_are_exactly_what_trainctl_crd_prints() {
    let generated = [
        ("trainingjobs.yaml", trainctl_operator::crd()),
        ("experiments.yaml", trainctl_kube_client::experiment_crd()),
    ];
    for (file, crd) in generated {
        let path = chart_dir().join("crds").join(file);
        let in_chart = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the chart has crds/{file}: {e}"));
        assert!(
            in_chart == serde_yaml_ng::to_string(&crd).unwrap(),
            "{} drifted from the Rust types: regenerate it from `trainctl crd` \
             (the trainingjobs document, then the experiments one)",
            path.display()
        );
    }
}

#[test]
fn every_rendered_object_and_the_crd_pass_kubernetes_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = render("tc", "trainctl-system")
        .into_iter()
        .map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    files.push(chart_dir().join("crds/trainingjobs.yaml"));
    files.push(chart_dir().join("crds/experiments.yaml"));
    let schema = dir.path().join("trainingjob.schema.json");
    let job_schema = trainctl_spec::TrainingJob::json_schema();
    std::fs::write(&schema, serde_json::to_string(&job_schema).unwrap()).unwrap();
    let kube_tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kube/tests");
    let out = Command::new("python3")
        .arg(kube_tests.join("validate_objects.py"))
        .args(["--crds"])
        .arg(kube_tests.join("schemas"))
        .arg("--trainingjob-schema")
        .arg(&schema)
        .args(["--kubernetes-version", "1.33"])
        .args(&files)
        .output()
        .expect("validate_objects.py runs");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "validation failed (a missing kubernetes_validate module means: run scripts/test, \
         which installs tests/requirements.txt into .venv and puts it first on PATH):\n{report}"
    );
    for kind in [
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "CustomResourceDefinition",
    ] {
        assert!(report.contains(kind), "{kind} not validated:\n{report}");
    }
}

#[test]
fn the_deployment_runs_the_operator_with_probes_metrics_and_its_service_account() {
    let deployment = object("tc", "trainctl-system", "deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"][0], "operator");
    assert_eq!(container["args"][2], "0.0.0.0:8080");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz");
        assert_eq!(container[probe]["httpGet"]["port"], "metrics");
    }
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        ["POD_NAME", "POD_NAMESPACE", "TRAINCTL_COLLECTOR_IMAGE"],
        "the lease identity, and the image of the collectors beside jobs' TensorBoards"
    );
    assert_eq!(
        container["env"][2]["value"], container["image"],
        "the collector runs the operator's own image"
    );
    let account = pod["serviceAccountName"].as_str().unwrap();
    for binding in ["clusterrolebinding.yaml", "rolebinding.yaml"] {
        let binding = object("tc", "trainctl-system", binding);
        assert_eq!(binding["subjects"][0]["name"], account);
        assert_eq!(binding["subjects"][0]["namespace"], "trainctl-system");
    }
    let service = object("tc", "trainctl-system", "service.yaml");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
}
