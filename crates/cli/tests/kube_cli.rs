//! The CLI's Kubernetes backend: the real `trainctl` binary against kube-sim over HTTP, with
//! the operator running in this process. Covers submit/get/describe/logs/wait/delete,
//! suspend/resume, `backend: kube` in the config file, logs after the pod is gone, and the
//! errors a user meets (no kubeconfig, unknown context, unreachable server, CRD missing,
//! RBAC forbidden, no operator, lint errors).

mod kube_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::Api;
use kube_sim::{FaultRule, InjectedError, KubeSim, NodeSpec};
use trainctl_operator::metrics::Metrics;
use trainctl_operator::{run_controller, OperatorConfig};

/// kube-sim, a kubeconfig for it, a HOME with no other config, and (optionally) the CRD and
/// the operator.
struct Env {
    sim: KubeSim,
    client: kube::Client,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    async fn start(crd: bool, operator: bool) -> Env {
        let sim = KubeSim::start().await.unwrap();
        sim.add_node(&NodeSpec::new("node-1")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = sim
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        let client = kube_support::client_for(&sim).await;
        if crd {
            Api::<CustomResourceDefinition>::all(client.clone())
                .create(&PostParams::default(), &trainctl_operator::crd())
                .await
                .unwrap();
        }
        if operator {
            let config = OperatorConfig {
                retry: Duration::from_millis(50),
                ..OperatorConfig::default()
            };
            tokio::spawn(run_controller(
                client.clone(),
                config,
                Arc::new(Metrics::default()),
                std::future::pending(),
            ));
        }
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Env {
            sim,
            client,
            dir,
            kubeconfig,
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs trainctl with this kubeconfig, HOME and XDG_CONFIG_HOME in the sandbox.
    async fn trainctl(&self, args: &[&str]) -> Run {
        self.trainctl_with(args, &self.kubeconfig).await
    }

    async fn trainctl_with(&self, args: &[&str], kubeconfig: &Path) -> Run {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trainctl"))
            .args(args)
            .current_dir(self.dir.path())
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("TRAINCTL_HOME", self.dir.path().join("state"))
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

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Waits until pod `name` runs attempt `attempt`.
    async fn running(&self, name: &str, attempt: u32) {
        kube_sim::eventually(
            &format!("{name} attempt {attempt} running"),
            Duration::from_secs(20),
            || async {
                let pod = self.pods().get_opt(name).await.ok()??;
                let labels = pod.metadata.labels.clone().unwrap_or_default();
                let running = pod.status.as_ref()?.phase.as_deref() == Some("Running");
                (running && labels.get("trainctl.dev/attempt") == Some(&attempt.to_string()))
                    .then_some(())
            },
        )
        .await
    }

    async fn gone(&self, name: &str) {
        kube_sim::eventually(&format!("{name} gone"), Duration::from_secs(20), || async {
            self.pods()
                .get_opt(name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await
    }
}

fn job_yaml(name: &str, replicas: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\n\
         spec:\n  framework: tensorflow\n  image: registry.example.com/train:1\n  \
         command: [python3, train.py]\n  replicas: {replicas}\n  \
         runPolicy: {{restartPolicy: OnFailure, backoffLimit: 3}}\n"
    )
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(
        run.code, 0,
        "{what} failed:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

fn assert_fails(run: &Run, code: i32, needle: &str) {
    assert_eq!(
        run.code, code,
        "expected exit {code}:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "stderr lacks {needle:?}: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_works_against_the_cluster_and_logs_outlive_their_pods() {
    let env = Env::start(true, true).await;
    let file = env.write(
        "job.yaml",
        &job_yaml("mnist", "{ps: {count: 1}, worker: {count: 1}}"),
    );
    let run = env
        .trainctl(&["submit", file.to_str().unwrap(), "--kube"])
        .await;
    assert_ok(&run, "submit");
    assert_eq!(
        run.stdout,
        "trainingjob/mnist created in namespace default\n"
    );

    env.running("mnist-ps-0", 0).await;
    env.running("mnist-worker-0", 0).await;
    env.sim
        .append_log("default", "mnist-ps-0", "", &["ps serving"]);
    env.sim.append_log(
        "default",
        "mnist-worker-0",
        "",
        &["epoch 1 loss 0.9", "killed"],
    );
    env.sim
        .finish_pod("default", "mnist-worker-0", 137)
        .unwrap();
    env.running("mnist-worker-0", 1).await;
    env.sim
        .append_log("default", "mnist-worker-0", "", &["epoch 2 loss 0.5"]);

    let run = env.trainctl(&["get", "--kube"]).await;
    assert_ok(&run, "get");
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "PHASE", "REPLICAS", "RESTARTS", "AGE"]);
    assert_eq!(lines[1][..4], ["mnist", "Running", "2/2", "1"]);

    let run = env
        .trainctl(&["get", "mnist", "--kube", "-o", "json"])
        .await;
    assert_ok(&run, "get -o json");
    let object: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(object["kind"], "TrainingJob");
    assert_eq!(object["status"]["attempts"]["worker-0"], 1);

    let run = env.trainctl(&["describe", "mnist", "--kube"]).await;
    assert_ok(&run, "describe");
    for needle in [
        "Phase:         Running",
        "Replicas:      ps 1, worker 1",
        "restartPolicy",
        "Restarts:      1",
    ] {
        assert!(run.stdout.contains(needle), "{needle:?} in {}", run.stdout);
    }
    let pod_line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("mnist-worker-0"))
        .expect("the worker pod is listed");
    let cells: Vec<&str> = pod_line.split_whitespace().collect();
    assert_eq!(cells[..4], ["mnist-worker-0", "1", "node-1", "Running"]);
    let conditions = run.stdout.split("Conditions:").nth(1).unwrap();
    assert!(conditions.contains("Created") && conditions.contains("Running"));
    let events = run.stdout.split("Events:").nth(1).unwrap();
    assert!(events.contains("mnist"), "events listed: {events}");

    // The replaced attempt's log comes from the archive; the current one live.
    let run = env
        .trainctl(&[
            "logs",
            "mnist",
            "--kube",
            "-r",
            "worker-0",
            "--attempt",
            "0",
        ])
        .await;
    assert_ok(&run, "logs --attempt 0");
    assert_eq!(run.stdout, "epoch 1 loss 0.9\nkilled\n");
    let run = env.trainctl(&["logs", "mnist", "--kube"]).await;
    assert_ok(&run, "logs");
    assert_eq!(
        run.stdout,
        "[ps-0] ps serving\n[worker-0] epoch 2 loss 0.5\n"
    );

    // worker-0 succeeds: the job succeeds and the ps pod is stopped; its log stays.
    env.sim.finish_pod("default", "mnist-worker-0", 0).unwrap();
    let run = env
        .trainctl(&["wait", "mnist", "--kube", "--timeout", "20s"])
        .await;
    assert_ok(&run, "wait");
    assert!(
        run.stdout.starts_with("trainingjob/mnist Succeeded"),
        "{}",
        run.stdout
    );
    env.gone("mnist-ps-0").await;
    let run = env
        .trainctl(&["logs", "mnist", "--kube", "--replica", "ps-0"])
        .await;
    assert_ok(&run, "logs after the pod is gone");
    assert_eq!(run.stdout, "ps serving\n");
    let run = env
        .trainctl(&["logs", "mnist", "--kube", "-r", "chief-0"])
        .await;
    assert_fails(
        &run,
        1,
        "job mnist has no replica chief-0; it has ps-0, worker-0",
    );

    let run = env.trainctl(&["delete", "mnist", "--kube"]).await;
    assert_ok(&run, "delete");
    assert_eq!(run.stdout, "trainingjob/mnist deleted\n");
    let run = env.trainctl(&["get", "mnist", "--kube"]).await;
    assert_fails(
        &run,
        1,
        "trainingjob \"mnist\" not found in namespace default",
    );
    let run = env.trainctl(&["delete", "mnist", "--kube"]).await;
    assert_fails(&run, 1, "not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_resume_stop_and_restart_the_pods_and_the_config_file_selects_the_cluster() {
    let env = Env::start(true, true).await;
    let file = env.write("job.yaml", &job_yaml("pause", "{worker: {count: 2}}"));
    // -n alone picks the cluster.
    let run = env
        .trainctl(&["submit", file.to_str().unwrap(), "-n", "default"])
        .await;
    assert_ok(&run, "submit -n");
    env.running("pause-worker-1", 0).await;

    let run = env.trainctl(&["suspend", "pause"]).await;
    assert_fails(&run, 1, "not supported locally yet");

    env.write("xdg/trainctl/config.yaml", "backend: kube\n");
    let run = env.trainctl(&["suspend", "pause"]).await;
    assert_ok(&run, "suspend with backend: kube");
    assert_eq!(run.stdout, "trainingjob/pause suspended\n");
    env.gone("pause-worker-0").await;
    env.gone("pause-worker-1").await;
    let run = env.trainctl(&["get"]).await;
    assert_ok(&run, "get");
    assert!(run.stdout.contains("Suspended"), "{}", run.stdout);

    let run = env.trainctl(&["resume", "pause"]).await;
    assert_ok(&run, "resume");
    assert_eq!(run.stdout, "trainingjob/pause resumed\n");
    env.running("pause-worker-0", 0).await;
    env.running("pause-worker-1", 0).await;

    // --local overrides the file: the local engine has no such job.
    let run = env.trainctl(&["get", "pause", "--local"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    env.write("xdg/trainctl/config.yaml", "backend: cloud\n");
    let run = env.trainctl(&["get"]).await;
    assert_fails(&run, 1, "not a valid trainctl config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_errors_say_what_to_do() {
    let env = Env::start(false, false).await;
    let file = env.write("job.yaml", &job_yaml("lonely", "{worker: {count: 1}}"));
    let path = file.to_str().unwrap();

    let run = env
        .trainctl_with(&["get", "--kube"], Path::new("/nonexistent/kubeconfig"))
        .await;
    assert_fails(&run, 1, "no Kubernetes configuration found");

    let run = env.trainctl(&["get", "--context", "nowhere"]).await;
    assert_fails(&run, 1, "cannot use kubeconfig context \"nowhere\"");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = env.write(
        "unreachable",
        &env.sim
            .kubeconfig()
            .replace(&env.sim.url(), &format!("http://127.0.0.1:{port}")),
    );
    let run = env.trainctl_with(&["get", "--kube"], &unreachable).await;
    assert_fails(&run, 1, "cannot reach the Kubernetes API server");

    let run = env.trainctl(&["submit", path, "--kube"]).await;
    assert_fails(&run, 1, "trainctl crd | kubectl apply -f -");

    Api::<CustomResourceDefinition>::all(env.client.clone())
        .create(&PostParams::default(), &trainctl_operator::crd())
        .await
        .unwrap();
    let bad = env.write(
        "bad.yaml",
        &job_yaml("bad", "{worker: {count: 1}}").replace("train.py]", "train.py, '|', tee]"),
    );
    let run = env
        .trainctl(&["submit", bad.to_str().unwrap(), "--kube"])
        .await;
    assert_fails(&run, 1, "shell-syntax");
    let run = env.trainctl(&["get", "bad", "--kube"]).await;
    assert_fails(&run, 1, "not found");

    // No operator: the job is created but nothing answers; wait says so.
    let run = env.trainctl(&["submit", path, "--kube"]).await;
    assert_ok(&run, "submit");
    let run = env.trainctl(&["submit", path, "--kube"]).await;
    assert_fails(
        &run,
        1,
        "trainingjob lonely already exists in namespace default",
    );
    let run = env
        .trainctl(&["wait", "lonely", "--kube", "--timeout", "6s"])
        .await;
    assert_fails(&run, 2, "is the trainctl operator running?");

    env.sim.inject_fault(FaultRule {
        verb: Some("delete".into()),
        resource: Some("trainingjobs".into()),
        rate: 1.0,
        error: InjectedError::Forbidden,
    });
    let run = env.trainctl(&["delete", "lonely", "--kube"]).await;
    assert_fails(
        &run,
        1,
        "forbidden: you may not delete trainingjobs in namespace default",
    );
}
