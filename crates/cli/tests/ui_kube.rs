//! `trainctl ui --kube` over HTTP: the real binary serves the TrainingJobs of kube-sim (with
//! the operator running in this process) through the same JSON API and event streams as
//! local jobs: the job list with phases and filters, a finished and a running job with their
//! pods, conditions and Events, logs live and after the pod is gone, and charts parsed from
//! the logs; a cluster's experiment live from the observations the operator records; and
//! the same in headless Chromium (the experiment page too).

mod kube_support;
mod ui_support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube_sim::{KubeSim, NodeSpec};
use serde_json::{json, Value};
use ui_support::{browser, chart_points, screenshot, start_ui, until, Killed};

/// kube-sim with a node, the CRD and the operator; trainctl runs with its kubeconfig and a
/// sandboxed HOME.
struct Cluster {
    runtime: tokio::runtime::Runtime,
    sim: KubeSim,
    pods: Api<Pod>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (sim, pods) = runtime.block_on(async {
            let sim = KubeSim::start().await.unwrap();
            sim.add_node(&NodeSpec::new("node-1")).unwrap();
            sim.write_kubeconfig(&dir.path().join("kubeconfig"))
                .unwrap();
            let client = kube_support::client_for(&sim).await;
            kube_support::install_crd(&client).await;
            kube_support::spawn_operator(&client);
            (sim, Api::namespaced(client, "default"))
        });
        Cluster {
            runtime,
            sim,
            pods,
            dir,
        }
    }

    fn trainctl(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trainctl"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("TRAINCTL_HOME", self.dir.path().join("state"))
            .env_remove("KUBERNETES_SERVICE_HOST");
        command
    }

    fn submit(&self, name: &str, replicas: &str) {
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, kube_support::job_yaml(name, replicas)).unwrap();
        let out = self
            .trainctl(&["submit", path.to_str().unwrap(), "--kube"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until pod `name` runs (true) or is gone (false).
    fn pod(&self, name: &str, running: bool) {
        self.runtime.block_on(kube_sim::eventually(
            &format!("{name} running: {running}"),
            Duration::from_secs(20),
            || async {
                let pod = self.pods.get_opt(name).await.ok()?;
                let is_running = pod
                    .and_then(|p| p.status?.phase)
                    .is_some_and(|phase| phase == "Running");
                (is_running == running).then_some(())
            },
        ))
    }

    fn log(&self, pod: &str, lines: &[&str]) {
        self.sim.append_log("default", pod, "", lines);
    }

    /// `trainctl ui --kube` on a free port; returns it and its URL.
    fn ui(&self) -> (Killed, String) {
        start_ui(self.trainctl(&["ui", "--kube", "--address", "127.0.0.1:0"]))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The status and JSON body of a GET.
fn get(base: &str, path: &str) -> (u16, Value) {
    let mut response = agent().get(&format!("{base}{path}")).call().unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The events of an SSE stream, as (event, data) pairs, read as they come.
struct Events(Box<dyn BufRead + Send>);

impl Events {
    fn open(base: &str, path: &str) -> Events {
        let response = agent().get(&format!("{base}{path}")).call().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        Events(Box::new(BufReader::new(reader)))
    }

    /// The next event other than a keep-alive; None when the stream has ended.
    fn next(&mut self) -> Option<(String, Value)> {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.0.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches('\n');
            if let Some(e) = line.strip_prefix("event: ").or(line.strip_prefix("event:")) {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                data += d;
            } else if line.is_empty() && !event.is_empty() {
                return Some((event, serde_json::from_str(&data).unwrap()));
            }
        }
    }

    /// The text of `log` events until one contains `needle` (panics after 30 s).
    fn log_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut text = String::new();
        while !text.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {text:?}");
            match self.next() {
                Some((event, data)) if event == "log" => text += data["text"].as_str().unwrap(),
                Some(_) => {}
                None => panic!("the stream ended before {needle:?}: {text:?}"),
            }
        }
        text
    }

    /// The `experiment` events until one satisfies `done` (panics after 30 s or at the
    /// stream's end).
    fn experiment_until(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.next() {
                Some((event, data)) if event == "experiment" && done(&data) => return data,
                Some((event, data)) if event == "experiment" => {
                    assert!(Instant::now() < deadline, "never {what}: {data}")
                }
                Some(_) => {}
                None => panic!("the stream ended before {what}"),
            }
        }
    }

    /// Every remaining event's name and the log text, until the stream ends.
    fn rest(&mut self) -> (Vec<String>, String) {
        let (mut names, mut text) = (Vec::new(), String::new());
        while let Some((event, data)) = self.next() {
            if event == "log" {
                text += data["text"].as_str().unwrap();
            }
            names.push(event);
        }
        (names, text)
    }
}

fn loss_steps(metrics: &Value) -> Vec<i64> {
    let runs = metrics["runs"].as_array().unwrap();
    let run = runs
        .iter()
        .find(|r| r["run"].as_str().unwrap().ends_with("worker-0"))
        .unwrap_or_else(|| panic!("a worker-0 run in {metrics}"));
    run["tags"]["loss"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_i64().unwrap())
        .collect()
}

#[test]
fn the_dashboard_serves_cluster_jobs_with_pods_logs_and_charts() {
    let cluster = Cluster::start();
    // A finished job: its ps pod is stopped when the worker succeeds; its log stays.
    cluster.submit("done", "{ps: {count: 1}, worker: {count: 1}}");
    cluster.pod("done-ps-0", true);
    cluster.pod("done-worker-0", true);
    cluster.log("done-ps-0", &["ps serving"]);
    cluster.log(
        "done-worker-0",
        &["Step: 1, Loss: 0.9", "Step: 2, Loss: 0.5"],
    );
    cluster
        .sim
        .finish_pod("default", "done-worker-0", 0)
        .unwrap();
    cluster.pod("done-ps-0", false);
    // A running job, created a second later (creation times have whole seconds).
    std::thread::sleep(Duration::from_millis(1100));
    cluster.submit("live", "{worker: {count: 1}}");
    cluster.pod("live-worker-0", true);
    cluster.log("live-worker-0", &["Step: 1, Loss: 1.0"]);

    let (_ui, base) = cluster.ui();
    let (_, source) = get(&base, "/api/source");
    assert_eq!(source["kind"], "cluster");
    assert_eq!(source["namespace"], "default");

    // The operator marks the live job Running once it sees its pod run: poll like a user.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, list) = loop {
        let (status, list) = get(&base, "/api/jobs");
        if status != 200 || list["phases"]["Running"] == 1 || Instant::now() > deadline {
            break (status, list);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 2);
    assert_eq!(list["phases"]["Succeeded"], 1, "{list}");
    assert_eq!(list["phases"]["Running"], 1, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["live", "done"], "newest first");
    let (_, only) = get(&base, "/api/jobs?phase=Succeeded");
    assert_eq!(only["total"], 1);
    assert_eq!(only["items"][0]["metadata"]["name"], "done");
    assert_eq!(only["items"][0]["status"]["replicas"], 2);
    let (_, by_name) = get(&base, "/api/jobs?q=liv");
    assert_eq!(by_name["items"][0]["metadata"]["name"], "live");
    assert_eq!(
        by_name["items"][0]["status"]["replicaStatuses"]["worker"]["active"],
        1
    );

    // The finished job: pods with node and exit code, the archived attempt, conditions, events.
    let (status, done) = get(&base, "/api/jobs/done");
    assert_eq!(status, 200, "{done}");
    let s = &done["status"];
    assert_eq!(s["phase"], "Succeeded");
    let replicas = s["replicas"].as_array().unwrap();
    let worker = replicas
        .iter()
        .find(|r| r["replica"]["index"] == 0 && r["pod"] == "done-worker-0")
        .unwrap_or_else(|| panic!("the worker pod in {s}"));
    assert_eq!(worker["node"], "node-1");
    assert_eq!(worker["exitCode"], 0);
    assert_eq!(worker["state"], "Succeeded");
    assert_eq!(replicas.len(), 2);
    assert!(
        replicas.iter().any(|r| r["state"] == "NoPod"),
        "the ps pod is gone: {s}"
    );
    assert!(
        s["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["log"] == "archived"),
        "the ps log is archived: {s}"
    );
    let conditions: Vec<&str> = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(conditions.contains(&"Succeeded"), "{conditions:?}");
    assert!(!s["events"].as_array().unwrap().is_empty(), "events: {s}");
    assert_not_found(&base, "/api/jobs/nope", "nope");
    let (status, _) = get(&base, "/api/jobs/done/logs/live?replica=chief-0");
    assert_eq!(status, 404);
    // Jobs that are no experiment's trials make no experiments.
    let (status, experiments) = get(&base, "/api/experiments");
    assert_eq!(status, 200);
    assert_eq!(experiments["items"], serde_json::json!([]), "{experiments}");

    // Logs after the pod is gone, and of the whole finished job; both streams end.
    let (events, text) = Events::open(&base, "/api/jobs/done/logs/live?replica=ps-0").rest();
    assert_eq!(text, "ps serving\n");
    assert_eq!(events.last().map(String::as_str), Some("end"));
    let (_, text) = Events::open(&base, "/api/jobs/done/logs/live").rest();
    assert!(text.contains("[ps-0] ps serving\n"), "{text}");
    assert!(text.contains("[worker-0] Step: 2, Loss: 0.5\n"), "{text}");
    let (status, chart) = get(&base, "/api/jobs/done/metrics");
    assert_eq!(status, 200, "{chart}");
    assert_eq!(loss_steps(&chart), [1, 2]);

    // The running job: its log and its chart grow while we watch, then both streams end.
    let mut log = Events::open(&base, "/api/jobs/live/logs/live?replica=worker-0");
    assert_eq!(log.log_until("Loss: 1.0"), "Step: 1, Loss: 1.0\n");
    let mut chart = Events::open(&base, "/api/jobs/live/metrics/live");
    let (event, first) = chart.next().unwrap();
    assert_eq!(event, "metrics");
    assert_eq!(loss_steps(&first), [1]);
    cluster.log(
        "live-worker-0",
        &["Step: 2, Loss: 0.6", "Step: 3, Loss: 0.4"],
    );
    assert!(log.log_until("Loss: 0.4").contains("Step: 2, Loss: 0.6\n"));
    let (event, added) = chart.next().unwrap();
    assert_eq!(event, "append", "only the new points follow");
    assert_eq!(loss_steps(&added), [2, 3]);
    assert_eq!(added["runs"][0]["tags"]["loss"]["total"], 3);
    cluster
        .sim
        .finish_pod("default", "live-worker-0", 0)
        .unwrap();
    let (events, _) = log.rest();
    assert_eq!(events.last().map(String::as_str), Some("end"));
    let (events, _) = chart.rest();
    assert_eq!(events.last().map(String::as_str), Some("end"));
}

#[test]
fn the_app_shows_a_cluster_job_its_pods_an_archived_log_and_a_chart_that_grows() {
    let cluster = Cluster::start();
    cluster.submit("tf", "{ps: {count: 1}, worker: {count: 1}}");
    cluster.pod("tf-ps-0", true);
    cluster.pod("tf-worker-0", true);
    cluster.log(
        "tf-worker-0",
        &["Step: 1, Loss: 0.9", "Step: 2, Loss: 0.8", "crashed"],
    );
    cluster
        .sim
        .finish_pod("default", "tf-worker-0", 137)
        .unwrap();
    cluster.pod("tf-worker-0", false);
    cluster.pod("tf-worker-0", true);
    cluster.log("tf-worker-0", &["Step: 3, Loss: 0.7"]);
    let (_ui, url) = cluster.ui();

    cluster.runtime.block_on(async {
        let (_driver, client) = browser().await;
        client.goto(&format!("{url}/")).await.unwrap();
        let rows = until(
            &client,
            "the job list",
            "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.innerText);",
            |v| v.as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
        let row = rows[0].as_str().unwrap();
        assert!(row.contains("tf") && row.contains("Running") && row.contains("2/2"), "{row}");
        let subtitle = client
            .execute("return document.getElementById('subtitle').innerText;", vec![])
            .await
            .unwrap();
        assert!(subtitle.as_str().unwrap().contains("namespace default"), "{subtitle}");
        screenshot(&client, "cluster-list.png").await;

        client.goto(&format!("{url}/#/jobs/tf")).await.unwrap();
        let pods = until(
            &client,
            "the replicas with their pods",
            "return [...document.querySelectorAll('#replicas tbody tr')].map(r => r.innerText);",
            |v| v.as_array().is_some_and(|a| a.len() == 2),
        )
        .await;
        let worker = pods.as_array().unwrap()[1].as_str().unwrap();
        assert!(worker.contains("tf-worker-0") && worker.contains("node-1"), "{worker}");
        // The restarted replica's first attempt is archived: open it from the Attempts table.
        let script = "const b = document.querySelector('#attempts button[data-replica=\"worker-0\"][data-attempt=\"0\"]'); \
                      if (b) b.click(); return !!b;";
        until(&client, "the archived attempt", script, |v| v == &Value::Bool(true)).await;
        until(
            &client,
            "the archived log",
            "return document.getElementById('log').innerText;",
            |v| v.as_str().is_some_and(|t| t.contains("crashed")),
        )
        .await;
        let first = until(&client, "the loss chart", &chart_points("loss"), |v| {
            v.as_i64().is_some_and(|n| n >= 3)
        })
        .await;
        cluster.log("tf-worker-0", &["Step: 4, Loss: 0.6", "Step: 5, Loss: 0.5"]);
        let grown = until(&client, "the chart to grow", &chart_points("loss"), |v| {
            v.as_i64().is_some_and(|n| n > first.as_i64().unwrap())
        })
        .await;
        assert_eq!(grown, 5, "points 1 to 5, each once");
        screenshot(&client, "cluster-job.png").await;
        client.close().await.unwrap();
    });
}

#[test]
fn the_cluster_dashboard_says_what_is_wrong_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    write_unreachable_kubeconfig(&config);
    let out = Command::new(env!("CARGO_BIN_EXE_trainctl"))
        .args(["ui", "--kube", "--address", "127.0.0.1:0"])
        .env("KUBECONFIG", &config)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the Kubernetes API server"),
        "{err}"
    );
}

/// A kubeconfig whose server nothing listens on.
fn write_unreachable_kubeconfig(path: &Path) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n\
         clusters: [{{name: gone, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n\
         contexts: [{{name: gone, context: {{cluster: gone, user: me}}}}]\n\
         users: [{{name: me, user: {{}}}}]\n"
    );
    std::fs::write(path, text).unwrap();
}

/// Two trials at a time, three in all, maximizing accuracy with loss reported as well.
const EXPERIMENT: &str =
    "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {name: tune}\nspec:\n  \
    objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}\n  \
    algorithm: {algorithmName: random}\n  parallelTrialCount: 2\n  maxTrialCount: 3\n  \
    parameters: [{name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}]\n  \
    trialTemplate: {spec: {image: train:1, command: [train], replicas: {worker: {count: 1}}}}\n";

/// The rows of an experiment page's trials table.
const TRIAL_ROWS: &str =
    "return [...document.querySelectorAll('#trials tbody tr')].map(r => r.innerText);";
/// How many intermediate values the experiment page's curves draw.
const CURVE_POINTS: &str = "const c = document.querySelector('#curves canvas'); \
     return c && c.dataset.points ? Number(c.dataset.points) : -1;";

#[test]
fn the_dashboard_follows_a_cluster_experiment_from_the_operators_observations() {
    let cluster = Cluster::start();
    let path = cluster.dir.path().join("tune.yaml");
    std::fs::write(&path, EXPERIMENT).unwrap();
    let out = cluster
        .trainctl(&["submit", path.to_str().unwrap(), "--kube"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.pod("tune-0-worker-0", true);
    cluster.pod("tune-1-worker-0", true);
    cluster.log("tune-0-worker-0", &["accuracy=0.5 loss=2 step=1"]);

    let (_ui, base) = cluster.ui();
    let mut live = Events::open(&base, "/api/experiments/tune/live");
    let first = live.experiment_until("trial 0 at step 1", |e| e["trialList"][0]["step"] == 1);
    assert_eq!(first["phase"], "Running", "{first}");
    assert_eq!(first["trials"]["Running"], 2, "{first}");
    let t0 = &first["trialList"][0];
    assert_eq!(
        (
            &t0["job"],
            &t0["state"],
            &t0["objective"],
            &t0["metrics"]["loss"]
        ),
        (
            &json!("tune-0"),
            &json!("Running"),
            &json!(0.5),
            &json!(2.0)
        ),
        "{t0}"
    );
    // The curve grows as the operator records the running trial's new steps.
    cluster.log("tune-0-worker-0", &["accuracy=0.75 loss=1 step=2"]);
    let grown = live.experiment_until("trial 0 at step 2", |e| e["trialList"][0]["step"] == 2);
    assert_eq!(
        grown["trialList"][0]["intermediate"],
        json!([[1, 0.5], [2, 0.75]])
    );

    // The app's page of the running experiment: two trials, trial 0's two values drawn.
    let (_driver, client) = cluster.runtime.block_on(async {
        let (driver, client) = browser().await;
        client
            .goto(&format!("{base}/#/experiments/tune"))
            .await
            .unwrap();
        until(&client, "two running trials", TRIAL_ROWS, |v| {
            v.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
        until(&client, "trial 0's curve", CURVE_POINTS, |v| v == &json!(2)).await;
        (driver, client)
    });

    cluster
        .sim
        .finish_pod("default", "tune-0-worker-0", 0)
        .unwrap();
    cluster.log("tune-1-worker-0", &["accuracy=0.25 loss=3 step=1"]);
    cluster
        .sim
        .finish_pod("default", "tune-1-worker-0", 0)
        .unwrap();
    cluster.pod("tune-2-worker-0", true);
    cluster.log("tune-2-worker-0", &["accuracy=0.6 loss=1.5 step=1"]);
    cluster
        .sim
        .finish_pod("default", "tune-2-worker-0", 0)
        .unwrap();
    let done = live.experiment_until("the experiment to succeed", |e| e["ended"] == true);
    assert_eq!(live.next().map(|e| e.0).as_deref(), Some("end"));
    assert_eq!(
        (&done["phase"], &done["reason"]),
        (&json!("Succeeded"), &json!("ExperimentMaxTrialsReached"))
    );
    assert_eq!(
        (&done["trials"]["total"], &done["trials"]["Succeeded"]),
        (&json!(3), &json!(3))
    );
    assert_eq!(
        (&done["best"]["job"], &done["best"]["value"]),
        (&json!("tune-0"), &json!(0.75))
    );
    let history: Vec<(&Value, &Value)> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (&p["value"], &p["bestSoFar"]))
        .collect();
    assert_eq!(
        history,
        [
            (&json!(0.75), &json!(0.75)),
            (&json!(0.25), &json!(0.75)),
            (&json!(0.6), &json!(0.75))
        ]
    );
    assert_eq!(done["trialList"][2]["metrics"]["loss"], json!(1.5));
    // The page follows: three trials, a point each in the history, four values drawn.
    cluster.runtime.block_on(async {
        until(&client, "three trials", TRIAL_ROWS, |v| {
            v.as_array().is_some_and(|a| a.len() == 3)
        })
        .await;
        until(&client, "every value drawn", CURVE_POINTS, |v| {
            v == &json!(4)
        })
        .await;
        let points = client
            .execute(
                "return document.querySelectorAll('#history .point').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(points, json!(3));
        screenshot(&client, "cluster-experiment.png").await;
        client.close().await.unwrap();
    });

    let (status, list) = get(&base, "/api/experiments");
    assert_eq!(status, 200);
    let item = &list["items"][0];
    assert_eq!(
        (&item["name"], &item["phase"], &item["best"]["job"]),
        (&json!("tune"), &json!("Succeeded"), &json!("tune-0")),
        "{list}"
    );
    assert_not_found(&base, "/api/experiments/nope", "nope");
    // A trial's link leads to its job's page.
    let (status, trial) = get(&base, "/api/jobs/tune-2");
    assert_eq!(status, 200);
    assert_eq!(
        trial["metadata"]["labels"]["trainctl.dev/experiment"],
        "tune"
    );
}

/// `path` answers 404 with an error that names `what`.
fn assert_not_found(base: &str, path: &str, what: &str) {
    let (status, missing) = get(base, path);
    assert_eq!(status, 404, "{path}");
    assert!(
        missing["error"].as_str().unwrap().contains(what),
        "{missing}"
    );
}
