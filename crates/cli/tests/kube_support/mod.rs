//! Shared by the Kubernetes tests of the CLI: a kube-rs client for a kube-sim, the CRD and
//! the operator.

#![allow(dead_code)]

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::KubeSim;

/// A kube-rs client from kube-sim's kubeconfig.
pub async fn client_for(sim: &KubeSim) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&sim.kubeconfig()).expect("kubeconfig parses"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kube-rs accepts the kubeconfig");
    kube::Client::try_from(config).expect("client builds")
}

/// Installs the TrainingJob and Experiment CRDs, as `trainctl crd | kubectl apply -f -`
/// would.
pub async fn install_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    for crd in [
        trainctl_operator::crd(),
        trainctl_kube_client::experiment_crd(),
    ] {
        kube::Api::<CustomResourceDefinition>::all(client.clone())
            .create(&kube::api::PostParams::default(), &crd)
            .await
            .expect("the server accepts the CRD");
    }
}

/// Runs the operator in this process for as long as the runtime lives, retrying failed
/// reconciles and gathering triggers for 50 ms.
pub fn spawn_operator(client: &kube::Client) {
    let config = trainctl_operator::OperatorConfig {
        retry: std::time::Duration::from_millis(50),
        debounce: std::time::Duration::from_millis(50),
        ..trainctl_operator::OperatorConfig::default()
    };
    tokio::spawn(trainctl_operator::run_controller(
        client.clone(),
        config,
        std::sync::Arc::new(trainctl_operator::metrics::Metrics::default()),
        std::future::pending(),
    ));
}

/// A TensorFlow TrainingJob with these replicas, restarted on failure up to 3 times.
pub fn job_yaml(name: &str, replicas: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\n\
         spec:\n  framework: tensorflow\n  image: registry.example.com/train:1\n  \
         command: [python3, train.py]\n  replicas: {replicas}\n  \
         runPolicy: {{restartPolicy: OnFailure, backoffLimit: 3}}\n"
    )
}

/// The `series` of `metrics -o json` output: (run, tag, [points, step, last, min, max]).
pub fn series_by_tag(stdout: &str) -> Vec<(String, String, serde_json::Value)> {
    let object: serde_json::Value = serde_json::from_str(stdout).expect("metrics prints JSON");
    object["series"]
        .as_array()
        .expect("a series list")
        .iter()
        .map(|s| {
            let stats = serde_json::json!([s["points"], s["step"], s["last"], s["min"], s["max"]]);
            (
                s["run"].as_str().unwrap().to_string(),
                s["tag"].as_str().unwrap().to_string(),
                stats,
            )
        })
        .collect()
}

/// What one trainctl run printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs trainctl against `kubeconfig` with HOME, XDG_CONFIG_HOME and TRAINCTL_HOME inside
/// `dir` (and not as if inside a pod).
pub async fn trainctl_in(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trainctl"))
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env("TRAINCTL_HOME", dir.join("state"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
