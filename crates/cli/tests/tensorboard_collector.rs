//! The collector beside a cluster job's TensorBoard: the real `trainctl` binary runs with
//! the arguments the operator put in the TensorBoard Deployment (kube-sim runs no
//! containers, so this test runs it, with the logDir on this machine), records the job's
//! metrics as event files while its pod prints them, and keeps running after the job ends.

mod kube_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube_sim::{KubeSim, NodeSpec};
use tokio::io::{AsyncBufReadExt, BufReader};
use trainctl_metrics::event_lines::END_LINE;
use trainctl_metrics::writer::EventWriter;

const NS: &str = "default";

fn trainctl(dir: &Path, kubeconfig: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_trainctl"));
    command
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env("TRAINCTL_HOME", dir.join("state"))
        .env_remove("KUBERNETES_SERVICE_HOST");
    command
}

/// The collector container's arguments in the job's TensorBoard Deployment.
async fn collector_args(client: &kube::Client, job: &str) -> Vec<String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let name = format!("{job}-tensorboard");
    let deployment = kube_sim::eventually(
        &format!("Deployment {name}"),
        Duration::from_secs(20),
        || async { deployments.get_opt(&name).await.ok()? },
    )
    .await;
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let collector = pod.containers.into_iter().find(|c| c.name == "collector");
    collector
        .and_then(|c| c.args)
        .expect("the TensorBoard pod runs the collector")
}

async fn running(client: &kube::Client, pod: &str) {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NS);
    kube_sim::eventually(
        &format!("{pod} running"),
        Duration::from_secs(20),
        || async {
            let p = pods.get_opt(pod).await.ok()??;
            (p.status?.phase.as_deref() == Some("Running")).then_some(())
        },
    )
    .await
}

/// A cluster job `tb` with TensorBoard in kube-sim with the operator, and the collector the
/// operator put beside it running here (the logDir, a volume in the cluster, is a folder of
/// this test's directory), its stdout piped.
struct Setup {
    sim: KubeSim,
    client: kube::Client,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
    logdir: std::path::PathBuf,
    collector: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Setup {
    async fn start() -> Setup {
        let sim = KubeSim::start().await.unwrap();
        sim.add_node(&NodeSpec::new("node-1")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let kubeconfig = sim
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .unwrap();
        let client = kube_support::client_for(&sim).await;
        kube_support::install_crd(&client).await;
        kube_support::spawn_operator(&client);
        let job_file = dir.path().join("job.yaml");
        std::fs::write(
            &job_file,
            kube_support::job_yaml("tb", "{worker: {count: 1}}")
                + "  tensorboard: {logDir: /logs/tb}\n",
        )
        .unwrap();
        let out = trainctl(dir.path(), &kubeconfig)
            .args(["submit", job_file.to_str().unwrap(), "--kube"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "submit: {out:?}");

        // Run what the sidecar runs, with the logDir (a volume in the cluster) here.
        let mut args = collector_args(&client, "tb").await;
        assert!(args.contains(&"--keep-running".to_string()), "{args:?}");
        let logdir = dir.path().join("logs/tb");
        let at = args.iter().position(|a| a == "--logdir").unwrap() + 1;
        args[at] = logdir.to_str().unwrap().into();
        let mut collector = trainctl(dir.path(), &kubeconfig)
            .args(&args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(collector.stdout.take().unwrap()).lines();
        Setup {
            sim,
            client,
            dir,
            kubeconfig,
            logdir,
            collector,
            lines,
        }
    }

    /// The collector's next line on stdout.
    async fn next_line(&mut self) -> String {
        next_line(&mut self.lines).await
    }
}

/// The collector's next line on stdout.
async fn next_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the collector prints a line")
        .unwrap()
        .expect("a line on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_collector_writes_event_files_and_outlives_the_job() {
    let Setup {
        sim,
        client,
        dir,
        kubeconfig,
        logdir,
        mut collector,
        mut lines,
    } = Setup::start().await;

    running(&client, "tb-worker-0").await;
    sim.append_log(
        NS,
        "tb-worker-0",
        "",
        &["Step: 1, Epoch: 1, Cost: 0.9", "loss=0.8 accuracy=0.5"],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.append_log(
        NS,
        "tb-worker-0",
        "",
        &["Step: 2, Epoch: 1, Cost: 0.5", "loss=0.4 accuracy=0.7"],
    );
    sim.finish_pod(NS, "tb-worker-0", 0).unwrap();

    // Its own event files (stdout/) are no event files of the job: no metric line for them.
    assert_eq!(next_line(&mut lines).await, END_LINE);
    let ended = next_line(&mut lines).await;
    assert!(
        ended.starts_with("job tb ended: 6 points collected into"),
        "{ended}"
    );
    // It stays (a Deployment would restart a container that exits).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        collector.try_wait().unwrap().is_none(),
        "the collector exited after the job ended"
    );
    collector.kill().await.unwrap();

    // The event files in the logDir, read back with our reader (as TensorBoard would).
    let out = trainctl(dir.path(), &kubeconfig)
        .args([
            "metrics",
            "--logdir",
            logdir.to_str().unwrap(),
            "-o",
            "json",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "metrics --logdir: {out:?}");
    // (run, tag, [points, step, last, min, max]); event files store float32 values.
    let f32 = |x: f64| x as f32 as f64;
    let series = kube_support::series_by_tag(&String::from_utf8_lossy(&out.stdout));
    let run = "stdout/worker-0".to_string();
    assert_eq!(
        series,
        [
            (
                run.clone(),
                "accuracy".into(),
                serde_json::json!([2, 2, f32(0.7), f32(0.5), f32(0.7)])
            ),
            (
                run.clone(),
                "cost".into(),
                serde_json::json!([2, 2, f32(0.5), f32(0.5), f32(0.9)])
            ),
            (
                run,
                "loss".into(),
                serde_json::json!([2, 2, f32(0.4), f32(0.4), f32(0.8)])
            ),
        ]
    );
    assert!(logdir.join("metrics.db").is_file());
}

/// Writes `(tag, step, value)` scalars to the event file at `path` (appending).
fn write_scalars(path: &Path, scalars: &[(&str, i64, f32)]) {
    let mut writer = EventWriter::append(path, 1.0e9).unwrap();
    for (tag, step, value) in scalars {
        writer.add_scalar(tag, *step, 1.0e9, *value);
    }
    writer.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_prints_the_scalars_of_the_jobs_own_event_files_as_they_are_written() {
    let mut s = Setup::start().await;
    running(&s.client, "tb-worker-0").await;
    // What Keras' TensorBoard callback writes: a run per split, the same tags in each.
    let train = s
        .logdir
        .join("train/events.out.tfevents.1000000000.pod.1.v2");
    let validation = s
        .logdir
        .join("validation/events.out.tfevents.1000000000.pod.2.v2");
    write_scalars(
        &train,
        &[("epoch_loss", 0, 0.75), ("epoch_accuracy", 0, 0.5)],
    );
    write_scalars(&validation, &[("epoch_accuracy", 0, 0.25)]);
    let mut first = vec![
        s.next_line().await,
        s.next_line().await,
        s.next_line().await,
    ];
    first.sort();
    assert_eq!(
        first,
        [
            "[trainctl events train] epoch_accuracy=0.5 step=0",
            "[trainctl events train] epoch_loss=0.75 step=0",
            "[trainctl events validation] epoch_accuracy=0.25 step=0",
        ]
    );
    // Only what a file gained since is printed; the replica's own output (which the
    // collector turns into event files under stdout/) gives no such line.
    s.sim
        .append_log(NS, "tb-worker-0", "", &["loss=0.8 accuracy=0.5"]);
    write_scalars(&validation, &[("epoch_accuracy", 1, 0.625)]);
    assert_eq!(
        s.next_line().await,
        "[trainctl events validation] epoch_accuracy=0.625 step=1"
    );
    s.sim.finish_pod(NS, "tb-worker-0", 0).unwrap();
    assert_eq!(s.next_line().await, END_LINE);
    let ended = s.next_line().await;
    assert!(
        ended.starts_with("job tb ended: 2 points collected into"),
        "{ended}"
    );
    assert!(s.logdir.join("stdout/worker-0").is_dir());
}
