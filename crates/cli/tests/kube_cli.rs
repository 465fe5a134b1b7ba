//! The CLI's Kubernetes backend: the real `trainctl` binary against kube-sim over HTTP, with
//! the operator running in this process. Covers submit/get/describe/logs/wait/delete,
//! suspend/resume, `backend: kube` in the config file, logs after the pod is gone, and the
//! errors a user meets (no kubeconfig, unknown context, unreachable server, CRD missing,
//! RBAC forbidden, no operator, lint errors).

mod kube_support;

use kube_support::Run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube_sim::{FaultRule, InjectedError, KubeSim, NodeSpec};
use trainctl_metrics::event_lines::END_LINE;

/// kube-sim, a kubeconfig for it, a HOME with no other config, and (optionally) the CRD and
/// the operator.
struct Env {
    sim: KubeSim,
    client: kube::Client,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
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
            kube_support::install_crd(&client).await;
        }
        if operator {
            kube_support::spawn_operator(&client);
        }
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Env {
            sim,
            client,
            dir,
            kubeconfig,
        }
    }

    /// A cluster with the operator running job `name`: one worker, restarted on failure.
    async fn with_one_worker(name: &str) -> Env {
        let env = Env::start(true, true).await;
        let file = env.write(
            "job.yaml",
            &kube_support::job_yaml(name, "{worker: {count: 1}}"),
        );
        let run = env
            .trainctl(&["submit", file.to_str().unwrap(), "--kube"])
            .await;
        assert_ok(&run, "submit");
        env
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
        kube_support::trainctl_in(self.dir.path(), kubeconfig, args).await
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
        &kube_support::job_yaml("mnist", "{ps: {count: 1}, worker: {count: 1}}"),
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

    // The operator records the new attempt's Running after its debounce: poll like a user.
    let table = kube_sim::eventually(
        "get to show the job running again",
        Duration::from_secs(20),
        || async {
            let run = env.trainctl(&["get", "--kube"]).await;
            assert_ok(&run, "get");
            run.stdout.contains(" Running ").then_some(run.stdout)
        },
    )
    .await;
    let lines: Vec<Vec<&str>> = table
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
    let file = env.write(
        "job.yaml",
        &kube_support::job_yaml("pause", "{worker: {count: 2}}"),
    );
    // -n alone picks the cluster.
    let run = env
        .trainctl(&["submit", file.to_str().unwrap(), "-n", "default"])
        .await;
    assert_ok(&run, "submit -n");
    env.running("pause-worker-1", 0).await;

    // Without -n or the config file, suspend acts on this machine, which has no such job.
    let run = env.trainctl(&["suspend", "pause"]).await;
    assert_fails(&run, 1, "job \"pause\" not found");

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
    // Each replica resumes as its next attempt, as on this machine.
    env.running("pause-worker-0", 1).await;
    env.running("pause-worker-1", 1).await;

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
    let file = env.write(
        "job.yaml",
        &kube_support::job_yaml("lonely", "{worker: {count: 1}}"),
    );
    let path = file.to_str().unwrap();

    let run = env
        .trainctl_with(&["get", "--kube"], Path::new("/nonexistent/kubeconfig"))
        .await;
    assert_fails(&run, 1, "no Kubernetes configuration found");
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "the cause is said once: {}",
        run.stderr
    );
    let broken = env.write("broken-kubeconfig", "clusters: [");
    let run = env.trainctl_with(&["get", "--kube"], &broken).await;
    assert_fails(&run, 1, "cannot use the Kubernetes configuration");

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

    kube_support::install_crd(&env.client).await;
    let bad = env.write(
        "bad.yaml",
        &kube_support::job_yaml("bad", "{worker: {count: 1}}")
            .replace("train.py]", "train.py, '|', tee]"),
    );
    let run = env
        .trainctl(&["submit", bad.to_str().unwrap(), "--kube"])
        .await;
    assert_fails(&run, 1, "shell-syntax");
    let run = env.trainctl(&["get", "bad", "--kube"]).await;
    assert_fails(&run, 1, "not found");

    // No operator: the job is created but nothing answers; it is Pending (as the dashboard
    // shows it), and wait says so.
    let run = env.trainctl(&["submit", path, "--kube"]).await;
    assert_ok(&run, "submit");
    let run = env.trainctl(&["get", "lonely", "--kube"]).await;
    assert_ok(&run, "get");
    assert!(run.stdout.contains("lonely   Pending"), "{}", run.stdout);
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
    assert!(run.stderr.contains("(phase Pending)"), "{}", run.stderr);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_a_replica_across_its_attempts_until_the_job_ends() {
    let env = Env::with_one_worker("relay").await;
    env.running("relay-worker-0", 0).await;
    env.sim
        .append_log("default", "relay-worker-0", "", &["step 1", "step 2"]);

    let one = env.trainctl(&["logs", "relay", "-f", "--kube", "--replica", "worker-0"]);
    let all = env.trainctl(&["logs", "relay", "-f", "--kube", "--tail", "1"]);
    let cluster = async {
        // Let both followers attach to the first pod before it prints more and dies.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        env.sim
            .append_log("default", "relay-worker-0", "", &["step 3", "oom"]);
        env.sim
            .finish_pod("default", "relay-worker-0", 137)
            .unwrap();
        env.running("relay-worker-0", 1).await;
        env.sim
            .append_log("default", "relay-worker-0", "", &["resumed at 3"]);
        tokio::time::sleep(Duration::from_millis(800)).await;
        env.sim
            .append_log("default", "relay-worker-0", "", &["step 4", "done"]);
        env.sim.finish_pod("default", "relay-worker-0", 0).unwrap();
    };
    let (one, all, ()) = tokio::time::timeout(
        Duration::from_secs(60),
        futures::future::join3(one, all, cluster),
    )
    .await
    .expect("logs -f ends when the job ends");
    assert_ok(&one, "logs -f --replica");
    assert_eq!(
        one.stdout,
        "step 1\nstep 2\nstep 3\noom\n--- worker-0 attempt 1 ---\nresumed at 3\nstep 4\ndone\n"
    );
    assert_ok(&all, "logs -f --tail 1");
    assert_eq!(
        all.stdout,
        "[worker-0] step 2\n[worker-0] step 3\n[worker-0] oom\n\
         [worker-0] --- worker-0 attempt 1 ---\n[worker-0] resumed at 3\n\
         [worker-0] step 4\n[worker-0] done\n"
    );

    // The finished job: -f prints what is there and ends; an archived attempt alone.
    let run = env
        .trainctl(&["logs", "relay", "-f", "--kube", "--attempt", "0"])
        .await;
    assert_ok(&run, "logs -f --attempt 0 of a finished job");
    assert_eq!(
        run.stdout,
        "[worker-0] step 1\n[worker-0] step 2\n[worker-0] step 3\n[worker-0] oom\n"
    );
    let run = env
        .trainctl(&["logs", "relay", "--kube", "--attempt", "7"])
        .await;
    assert_fails(&run, 1, "job relay has no log for attempt 7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_each_line_once_through_dropped_connections() {
    let env = Env::with_one_worker("stream").await;
    let pod = "stream-worker-0";
    env.running(pod, 0).await;
    // Every followed connection breaks off after 2 KiB; a batch a simulated second or two
    // (a resumed follow sends the lines of the last second again, which must fit).
    env.sim.cut_log_follows_after(Some(2048));
    env.sim.set_clock_speed(40.0);
    let follow = env.trainctl(&["logs", "stream", "-f", "--kube"]);
    let mut printed = Vec::new();
    let cluster = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for batch in 0..40 {
            let lines: Vec<String> = (0..5)
                .map(|i| format!("{:<99}", format!("batch {batch} line {i}")))
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            env.sim.append_log("default", pod, "", &refs);
            printed.extend(lines);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        env.sim.finish_pod("default", pod, 0).unwrap();
    };
    let (run, ()) = tokio::time::timeout(
        Duration::from_secs(60),
        futures::future::join(follow, cluster),
    )
    .await
    .expect("logs -f ends when the job ends");
    assert_ok(&run, "logs -f");
    let expected: String = printed
        .iter()
        .map(|l| format!("[worker-0] {l}\n"))
        .collect();
    assert_eq!(run.stdout, expected, "every line once, in order");
    // Re-reading the whole log on every look for the job's end would fetch it many times
    // over; the follower fetches each line once, and each break costs one timestamped read
    // of what came since the last break (about twice the bytes printed in all here).
    let fetched = env.sim.log_bytes_served("default", pod);
    assert!(
        fetched < 3 * expected.len() as u64,
        "{fetched} bytes fetched for {} printed",
        expected.len()
    );
}

/// The `series` of `metrics -o json`, by tag: (points, step, last, min, max).
fn series_by_tag(run: &Run) -> Vec<(String, String, serde_json::Value)> {
    kube_support::series_by_tag(&run.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_cluster_job_come_from_every_attempt_and_collect_writes_event_files() {
    let env = Env::with_one_worker("curves").await;
    let logdir = env.dir.path().join("tb");
    let collect_args = [
        "collect",
        "curves",
        "--kube",
        "--logdir",
        logdir.to_str().unwrap(),
    ];
    let collect = env.trainctl(&collect_args);
    let cluster = async {
        env.running("curves-worker-0", 0).await;
        env.sim.append_log(
            "default",
            "curves-worker-0",
            "",
            &["Step: 1, Epoch: 1, Cost: 0.9", "loss=0.8 accuracy=0.5"],
        );
        // Collect reads the live pod before the restart.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        env.sim.append_log(
            "default",
            "curves-worker-0",
            "",
            &["Step: 2, Epoch: 1, Cost: 0.7", "oom"],
        );
        env.sim
            .finish_pod("default", "curves-worker-0", 137)
            .unwrap();
        env.running("curves-worker-0", 1).await;
        // The restart resumes from step 2: the first attempt's step 2 is replaced.
        env.sim.append_log(
            "default",
            "curves-worker-0",
            "",
            &[
                "Step: 2, Epoch: 1, Cost: 0.65",
                "loss=0.4",
                "Step: 3, Epoch: 2, Cost: 0.3",
            ],
        );
        let run = env.trainctl(&["metrics", "curves", "--kube"]).await;
        assert_ok(&run, "metrics of a running job");
        assert!(run.stdout.starts_with("RUN"), "{}", run.stdout);
        assert!(run.stdout.contains("stdout/worker-0"), "{}", run.stdout);
        env.sim.finish_pod("default", "curves-worker-0", 0).unwrap();
    };
    let (collected, ()) = tokio::time::timeout(
        Duration::from_secs(60),
        futures::future::join(collect, cluster),
    )
    .await
    .expect("collect ends when the job ends");
    assert_ok(&collected, "collect");
    // The job writes no event files of its own: only the collector's end line comes first.
    assert!(
        collected.stdout.starts_with(&format!(
            "{END_LINE}\njob curves ended: 7 points collected into"
        )),
        "{}",
        collected.stdout
    );

    let run = env
        .trainctl(&["metrics", "curves", "--kube", "-o", "json"])
        .await;
    assert_ok(&run, "metrics -o json");
    let from_cluster = series_by_tag(&run);
    let worker = "stdout/worker-0".to_string();
    assert_eq!(
        from_cluster,
        [
            (
                worker.clone(),
                "accuracy".into(),
                serde_json::json!([1, 1, 0.5, 0.5, 0.5])
            ),
            (
                worker.clone(),
                "cost".into(),
                serde_json::json!([3, 3, 0.3, 0.3, 0.9])
            ),
            (
                worker.clone(),
                "loss".into(),
                serde_json::json!([2, 2, 0.4, 0.4, 0.8])
            ),
        ]
    );

    // The event files collect wrote hold the same series (our reader, as TensorBoard's).
    let run = env
        .trainctl(&[
            "metrics",
            "--logdir",
            logdir.to_str().unwrap(),
            "-o",
            "json",
        ])
        .await;
    assert_ok(&run, "metrics --logdir of the collected event files");
    let from_files: Vec<_> = series_by_tag(&run)
        .into_iter()
        .map(|(_, tag, stats)| (tag, stats))
        .collect();
    let expected: Vec<_> = from_cluster
        .into_iter()
        .map(|(_, tag, stats)| {
            // Event files store float32 values.
            let rounded: Vec<f64> = stats
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32 as f64)
                .collect();
            (tag, serde_json::json!(rounded))
        })
        .collect();
    let from_files: Vec<_> = from_files
        .into_iter()
        .map(|(tag, stats)| {
            let values: Vec<f64> = stats
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (tag, serde_json::json!(values))
        })
        .collect();
    assert_eq!(from_files, expected);
    assert!(logdir.join("metrics.db").is_file());

    let png = env.dir.path().join("loss.png");
    let run = env
        .trainctl(&[
            "metrics",
            "curves",
            "--kube",
            "--plot",
            png.to_str().unwrap(),
        ])
        .await;
    assert_ok(&run, "metrics --plot");
    assert!(run.stdout.contains("(loss, 1 run(s))"), "{}", run.stdout);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    let run = env
        .trainctl(&["collect", "curves", "--logdir", logdir.to_str().unwrap()])
        .await;
    assert_fails(&run, 1, "collect is for cluster jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_verbs_work_against_the_cluster_with_the_local_tables() {
    let env = Env::start(true, true).await;
    let file = env.write(
        "exp.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {name: tune}\nspec:\n  \
         objective: {type: maximize, objectiveMetricName: accuracy}\n  \
         algorithm: {algorithmName: random}\n  parallelTrialCount: 2\n  maxTrialCount: 2\n  \
         parameters: [{name: lr, parameterType: double, feasibleSpace: {min: 0.1, max: 0.2}}]\n  \
         trialTemplate: {spec: {image: train:1, command: [train], replicas: {worker: {count: 1}}}}\n",
    );
    let run = env
        .trainctl(&["submit", file.to_str().unwrap(), "--kube"])
        .await;
    assert_ok(&run, "submit experiment");
    assert_eq!(run.stdout, "experiment/tune created\n");
    for (n, accuracy) in [(0, "0.5"), (1, "0.75")] {
        let pod = format!("tune-{n}-worker-0");
        env.running(&pod, 0).await;
        let line = format!("Step: 1, Accuracy: {accuracy}");
        env.sim.append_log("default", &pod, "", &[line.as_str()]);
        env.sim.finish_pod("default", &pod, 0).unwrap();
    }
    kube_sim::eventually("tune to succeed", Duration::from_secs(30), || async {
        let run = env.trainctl(&["get", "experiments", "--kube"]).await;
        run.stdout.contains("Succeeded").then_some(())
    })
    .await;
    let table = env.trainctl(&["get", "experiments", "--kube"]).await;
    assert_ok(&table, "get experiments");
    let lines: Vec<Vec<&str>> = table
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![
                "NAME",
                "STATUS",
                "REASON",
                "TRIALS",
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                "STOPPED",
                "BEST",
                "OBJECTIVE"
            ],
            vec![
                "tune",
                "Succeeded",
                "ExperimentMaxTrialsReached",
                "2",
                "0",
                "2",
                "0",
                "0",
                "tune-1",
                "0.75"
            ],
        ]
    );
    let json = env
        .trainctl(&["get", "experiments", "tune", "--kube", "-o", "json"])
        .await;
    assert_ok(&json, "get -o json");
    let object: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        object["status"]["currentOptimalTrial"]["bestTrialName"],
        "tune-1"
    );
    let describe = env
        .trainctl(&["describe", "experiment", "tune", "--kube"])
        .await;
    assert_ok(&describe, "describe experiment");
    assert!(
        describe.stdout.contains("best trial tune-1: accuracy=0.75"),
        "{}",
        describe.stdout
    );
    let export = env
        .trainctl(&["export", "experiment", "tune", "--kube"])
        .await;
    assert_ok(&export, "export");
    assert_eq!(
        export.stdout.lines().count(),
        3,
        "a header and two trials:\n{}",
        export.stdout
    );
    let delete = env
        .trainctl(&["delete", "experiment", "tune", "--kube"])
        .await;
    assert_ok(&delete, "delete experiment");
    kube_sim::eventually(
        "tune's trials to be gone",
        Duration::from_secs(30),
        || async {
            let run = env.trainctl(&["get", "--kube"]).await;
            (!run.stdout.contains("tune-")).then_some(())
        },
    )
    .await;
    let gone = env
        .trainctl(&["describe", "experiment", "tune", "--kube"])
        .await;
    assert_fails(
        &gone,
        1,
        "experiment \"tune\" not found in namespace default",
    );
}

impl Env {
    /// Plays trial `n` of `experiment` as its training program would: once its pod runs,
    /// prints the accuracy `1 - (x - 0.3)^2` of the pod's `HP_X` and exits 0.
    async fn train_trial(&self, experiment: &str, n: u64) {
        let pod = format!("{experiment}-{n}-worker-0");
        self.running(&pod, 0).await;
        let spec = self.pods().get(&pod).await.unwrap().spec.unwrap();
        let x: f64 = spec.containers[0]
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "HP_X")
            .and_then(|e| e.value.as_ref()?.parse().ok())
            .expect("the trial's pod has HP_X");
        let line = format!("Step: 1, Accuracy: {}", 1.0 - (x - 0.3) * (x - 0.3));
        self.sim.append_log("default", &pod, "", &[line.as_str()]);
        self.sim.finish_pod("default", &pod, 0).unwrap();
    }

    /// Waits until `get experiments NAME --kube -o json` shows `phase` with `trials` trials.
    async fn experiment_reaches(&self, name: &str, phase: &str, trials: u64) {
        kube_sim::eventually(
            &format!("{name} {phase} with {trials} trials"),
            Duration::from_secs(30),
            || async {
                let run = self
                    .trainctl(&["get", "experiments", name, "--kube", "-o", "json"])
                    .await;
                let object: serde_json::Value = serde_json::from_str(&run.stdout).ok()?;
                (object["status"]["phase"] == phase && object["status"]["trials"] == trials)
                    .then_some(())
            },
        )
        .await
    }

    /// Each trial's number, `x` and accuracy, from `export experiment NAME --kube`.
    async fn exported(&self, name: &str) -> Vec<(u64, f64, f64)> {
        let run = self
            .trainctl(&["export", "experiment", name, "--kube", "--format", "json"])
            .await;
        assert_ok(&run, "export");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
        rows.iter()
            .map(|r| {
                let x = r["x"].as_f64().unwrap();
                (
                    r["trial"].as_u64().unwrap(),
                    x,
                    r["accuracy"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    /// The experiment's conditions as (type, status) and its completion time.
    async fn conditions(&self, name: &str) -> (Vec<(String, String)>, Option<String>) {
        let api: Api<trainctl_kube_client::ExperimentResource> =
            Api::namespaced(self.client.clone(), "default");
        let status = api.get(name).await.unwrap().status.unwrap_or_default();
        let conditions = status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        (conditions, status.completion_time)
    }
}

/// A TPE experiment over `x` in [0, 1] (two random trials, then TPE), one trial at a time.
fn tpe_experiment(name: &str, max_trials: u64) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: {name}}}\nspec:\n  \
         objective: {{type: maximize, objectiveMetricName: accuracy}}\n  \
         algorithm: {{algorithmName: tpe, algorithmSettings: [{{name: random_state, value: \"4\"}}, \
         {{name: n_startup_trials, value: \"2\"}}]}}\n  parallelTrialCount: 1\n  maxTrialCount: {max_trials}\n  \
         parameters: [{{name: x, parameterType: double, feasibleSpace: {{min: 0, max: 1}}}}]\n  \
         trialTemplate: {{spec: {{image: train:1, command: [train], replicas: {{worker: {{count: 1}}}}}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_experiment_suggests_what_one_with_the_larger_budget_would_have() {
    let env = Env::start(true, true).await;
    for (name, max) in [("short", 2), ("long", 4)] {
        let file = env.write(&format!("{name}.yaml"), &tpe_experiment(name, max));
        let run = env
            .trainctl(&["submit", file.to_str().unwrap(), "--kube"])
            .await;
        assert_ok(&run, "submit experiment");
    }
    for n in 0..4 {
        env.train_trial("long", n).await;
    }
    for n in 0..2 {
        env.train_trial("short", n).await;
    }
    env.experiment_reaches("short", "Succeeded", 2).await;
    env.experiment_reaches("long", "Succeeded", 4).await;
    let short = |extra: &[&'static str]| -> Vec<&'static str> {
        [&["resume", "experiment", "short", "--kube"][..], extra].concat()
    };

    let run = env.trainctl(&short(&["--max-trials", "1"])).await;
    assert_fails(&run, 1, "--max-trials 1 is below the 2 trials already run");
    let run = env.trainctl(&short(&["--max-trials", "4"])).await;
    assert_ok(&run, "resume experiment --kube");
    assert_eq!(run.stdout, "experiment/short resumed\n");

    // The operator runs it again: Running, no longer Succeeded, a third trial.
    env.experiment_reaches("short", "Running", 3).await;
    let (conditions, completed) = env.conditions("short").await;
    assert!(
        conditions.contains(&("Running".into(), "True".into()))
            && conditions.contains(&("Succeeded".into(), "False".into())),
        "{conditions:?}"
    );
    assert_eq!(completed, None);
    let run = env.trainctl(&short(&[])).await;
    assert_fails(&run, 1, "experiment \"short\" is Running");

    for n in 2..4 {
        env.train_trial("short", n).await;
    }
    env.experiment_reaches("short", "Succeeded", 4).await;
    let (conditions, completed) = env.conditions("short").await;
    assert!(
        conditions.contains(&("Running".into(), "False".into()))
            && conditions.contains(&("Succeeded".into(), "True".into())),
        "{conditions:?}"
    );
    assert!(completed.is_some());
    let (resumed, uninterrupted) = (env.exported("short").await, env.exported("long").await);
    assert_eq!(resumed.len(), 4);
    assert_eq!(
        resumed, uninterrupted,
        "the same trials, parameters and values as the uninterrupted experiment"
    );

    let run = env
        .trainctl(&["resume", "experiment", "nope", "--kube"])
        .await;
    assert_fails(
        &run,
        1,
        "experiment \"nope\" not found in namespace default",
    );
}
