//! `trainctl crd` and `trainctl operator` as processes against kube-sim over HTTP: the CRDs
//! the command prints are accepted by the server, the operator runs a job to success, serves
//! `/metrics` and `/healthz`, and stops cleanly on SIGTERM.

mod kube_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::Api;
use kube_sim::{KubeSim, NodeSpec};

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("operator endpoint reachable");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

async fn poll<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_crd_installs_and_the_operator_process_runs_a_job() {
    let sim = KubeSim::start().await.unwrap();
    sim.add_node(&NodeSpec::new("node-1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = sim.write_kubeconfig(&dir.path().join("config")).unwrap();
    let client = kube_support::client_for(&sim).await;

    let out = Command::new(env!("CARGO_BIN_EXE_trainctl"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for document in text.split("---\n") {
        let crd: CustomResourceDefinition = serde_yaml_ng::from_str(document).unwrap();
        Api::<CustomResourceDefinition>::all(client.clone())
            .create(&PostParams::default(), &crd)
            .await
            .expect("the server accepts the printed CRDs");
    }

    let mut operator = Command::new(env!("CARGO_BIN_EXE_trainctl"))
        .args(["operator", "--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(operator.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("trainctl operator: metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(http_get(&addr, "/healthz").ends_with("ok"));

    let job: DynamicObject = serde_yaml_ng::from_str(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: cli, namespace: default}\n\
         spec: {image: 'busybox:1', command: [sh, -c, 'true'], replicas: {worker: {count: 1}}}\n",
    )
    .unwrap();
    let resource = ApiResource {
        group: "trainctl.dev".into(),
        version: "v1alpha1".into(),
        api_version: "trainctl.dev/v1alpha1".into(),
        kind: "TrainingJob".into(),
        plural: "trainingjobs".into(),
    };
    let jobs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    poll("the pod to run", async || {
        let pod = pods.get_opt("cli-worker-0").await.ok()??;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    sim.finish_pod("default", "cli-worker-0", 0).unwrap();
    poll("the job to succeed", async || {
        let job = jobs.get("cli").await.ok()?;
        (job.data["status"]["phase"] == "Succeeded").then_some(())
    })
    .await;
    let metrics = http_get(&addr, "/metrics");
    assert!(
        metrics.contains("trainctl_operator_reconciles_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("trainctl_operator_jobs{phase=\"Succeeded\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(operator.id() as i32, libc::SIGTERM) };
    let status = operator.wait().unwrap();
    assert!(
        status.success(),
        "the operator exits 0 on SIGTERM: {status:?}"
    );
}
