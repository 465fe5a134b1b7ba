//! Experiments in `trainctl ui`, end to end: real experiments whose trials are real processes
//! (a python3 script printing `accuracy=... loss=... step=N`), one finished and one running,
//! seen through the JSON API and through headless Chromium. Screenshots go to
//! `target/ui-screenshots/` (docs/img/experiment-page.png is the finished one's).

mod common;
mod ui_support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::Sandbox;
use serde_json::{json, Value};
use ui_support::{browser, chart_points, screenshot, start_ui, until};

/// A trial: accuracy `(1 - (x - 0.3)^2) * step / STEPS` and loss `x + step` at steps
/// 1..=STEPS, PAUSE seconds apart (both from the environment).
const TRIAL: &str = r#"
import os, time
x = float(os.environ["HP_X"])
steps = int(os.environ["STEPS"])
for step in range(1, steps + 1):
    acc = (1 - (x - 0.3) ** 2) * step / steps
    print(f"accuracy={acc} loss={x + step} step={step}", flush=True)
    time.sleep(float(os.environ["PAUSE"]))
"#;

/// A grid over x in {0, 0.25, 0.5, 0.75, 1}, one trial at a time, median stopping from step
/// 2: the first trial has no one to compare with, the better ones go on, the worse ones
/// (x = 0.75, x = 1) are stopped.
const FINISHED: &str = "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {name: grid}\nspec:\n  \
    objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}\n  \
    algorithm: {algorithmName: grid}\n  \
    earlyStopping: {algorithmName: medianstop, algorithmSettings: [{name: min_trials_required, value: \"1\"}, {name: start_step, value: \"2\"}]}\n  \
    parallelTrialCount: 1\n  maxTrialCount: 5\n  parameters:\n    \
    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1, step: 0.25}}\n  \
    trialTemplate:\n    spec:\n      command: [python3, trial.py]\n      \
    env: {STEPS: \"30\", PAUSE: \"0.1\"}\n      replicas: {worker: {}}\n";

/// Random x, two trials at a time, each printing for about a minute.
const RUNNING: &str =
    "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {name: slow}\nspec:\n  \
    objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}\n  \
    algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: \"3\"}]}\n  \
    parallelTrialCount: 2\n  maxTrialCount: 4\n  parameters:\n    \
    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n  \
    trialTemplate:\n    spec:\n      command: [python3, trial.py]\n      \
    env: {STEPS: \"300\", PAUSE: \"0.2\"}\n      replicas: {worker: {}}\n";

/// Runs the finished experiment to its end and submits the running one.
fn experiments(sb: &Sandbox) {
    sb.write("trial.py", TRIAL);
    let finished = sb.write("grid.yaml", FINISHED);
    sb.ok(&["run", finished.to_str().unwrap()]);
    let running = sb.write("slow.yaml", RUNNING);
    sb.ok(&["submit", running.to_str().unwrap()]);
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `GET base+path`: the status and the JSON body.
fn get(base: &str, path: &str) -> (u16, Value) {
    let mut answer = agent().get(&format!("{base}{path}")).call().unwrap();
    let body = answer.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (answer.status().as_u16(), json)
}

/// Asks `path` until `cond` holds on the answer (at most 60 s).
fn get_until(base: &str, path: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = get(base, path);
        if status == 200 && cond(&body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn base_of(url: &str) -> String {
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    format!("http://127.0.0.1:{port}")
}

fn trial<'a>(exp: &'a Value, job: &str) -> &'a Value {
    exp["trialList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["job"] == job)
        .unwrap_or_else(|| panic!("no trial {job} in {exp}"))
}

fn running_steps(exp: &Value) -> Vec<u64> {
    exp["trialList"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "Running")
        .filter_map(|t| t["step"].as_u64())
        .collect()
}

#[test]
fn the_experiments_api_shows_every_trial_of_a_finished_experiment_and_follows_a_running_one() {
    let sb = Sandbox::new();
    experiments(&sb);
    let (_ui, url) = start_ui(sb.command(&["ui", "--address", "127.0.0.1:0"]));
    let base = base_of(&url);

    // The list: newest first, phase, best objective, trials by state.
    let list = get_until(&base, "/api/experiments", "both experiments", |l| {
        l["items"][0]["trials"]["Running"] == 2
    });
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(
        (&items[0]["name"], &items[0]["phase"]),
        (&json!("slow"), &json!("Running"))
    );
    let grid = &items[1];
    assert_eq!(grid["phase"], "Succeeded", "{grid}");
    assert_eq!(grid["reason"], "ExperimentMaxTrialsReached");
    assert_eq!(
        grid["trials"],
        json!({"total": 5, "Running": 0, "Succeeded": 3, "Failed": 0, "EarlyStopped": 2,
               "MetricsUnavailable": 0, "Killed": 0})
    );
    // x = 0.25 is closest to the optimum at 0.3.
    assert_eq!(grid["best"]["job"], "grid-1", "{grid}");
    let best = 1.0 - 0.05f64 * 0.05;
    assert!((grid["best"]["value"].as_f64().unwrap() - best).abs() < 1e-9);
    assert!(grid["ageSeconds"].as_f64().unwrap() > 0.0);

    // One experiment: each trial's parameters, objective, other metrics, step, state, and
    // its intermediate values by step.
    let (status, exp) = get(&base, "/api/experiments/grid");
    assert_eq!(status, 200);
    assert_eq!(exp["ended"], true);
    for (job, x, state) in [
        ("grid-0", 0.0, "Succeeded"),
        ("grid-1", 0.25, "Succeeded"),
        ("grid-2", 0.5, "Succeeded"),
        ("grid-3", 0.75, "EarlyStopped"),
        ("grid-4", 1.0, "EarlyStopped"),
    ] {
        let t = trial(&exp, job);
        assert_eq!(t["state"], state, "{t}");
        assert_eq!(t["parameters"]["x"].as_f64(), Some(x), "{t}");
        let points = t["intermediate"].as_array().unwrap();
        let step = t["step"].as_u64().unwrap();
        assert_eq!(points.len() as u64, step, "one value per step: {t}");
        let at = |i: usize| points[i][1].as_f64().unwrap();
        let full = 1.0 - (x - 0.3) * (x - 0.3);
        assert!((at(0) - full / 30.0).abs() < 1e-9, "{t}");
        assert!(
            (t["objective"].as_f64().unwrap() - full * step as f64 / 30.0).abs() < 1e-9,
            "the best value so far counts: {t}"
        );
        assert_eq!(t["metrics"]["loss"].as_f64(), Some(x + step as f64), "{t}");
        assert!(t["durationSeconds"].as_f64().unwrap() > 0.0, "{t}");
        if state == "Succeeded" {
            assert_eq!(step, 30, "{t}");
        } else {
            assert!((2..30).contains(&step), "stopped mid-way: {t}");
        }
    }
    // The optimization history: every trial, best-so-far over succeeded trials only.
    let best_so_far: Vec<f64> = exp["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bestSoFar"].as_f64().unwrap())
        .collect();
    assert_eq!(best_so_far.len(), 5);
    assert!((best_so_far[0] - 0.91).abs() < 1e-9, "{best_so_far:?}");
    assert!(best_so_far[1..].iter().all(|b| (b - best).abs() < 1e-9));
    assert_eq!(exp["parameters"][0]["name"], "x");

    let (status, missing) = get(&base, "/api/experiments/nope");
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "experiment \"nope\" not found");

    // The running one: its running trials' values as they come, then the live stream sends
    // the experiment again as the trials go on.
    let exp = get_until(
        &base,
        "/api/experiments/slow",
        "two running trials past step 2",
        |e| {
            let steps = running_steps(e);
            steps.len() == 2 && steps.iter().all(|s| *s >= 2)
        },
    );
    assert_eq!(exp["ended"], false);
    let t = trial(&exp, "slow-0");
    assert!(t["objective"].as_f64().is_some(), "{t}");
    assert!(t["finished"].is_null(), "{t}");
    let first: u64 = running_steps(&exp).iter().sum();
    let answer = agent()
        .get(&format!("{base}/api/experiments/slow/live"))
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let mut lines = BufReader::new(answer.into_body().into_reader()).lines();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = lines.next().expect("the stream goes on").unwrap();
        if let Some(data) = line.strip_prefix("data:") {
            let e: Value = serde_json::from_str(data.trim()).unwrap();
            seen.push(running_steps(&e).iter().sum::<u64>());
        }
    }
    assert!(
        seen[2] > first,
        "the trials went on between the events: {first} then {seen:?}"
    );
    let (status, _) = get(&base, "/api/experiments/nope/live");
    assert_eq!(status, 404);
    sb.ok(&["delete", "experiment", "slow", "--grace-period", "1"]);
}

/// The rows of the trials table, as text.
const TRIAL_ROWS: &str =
    "return [...document.querySelectorAll('#trials tbody tr')].map(r => r.innerText);";

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_a_finished_and_a_running_experiment() {
    let sb = Sandbox::new();
    experiments(&sb);
    let (_ui, url) = start_ui(sb.command(&["ui", "--address", "127.0.0.1:0"]));
    let (_driver, client) = browser().await;

    // The list, from the header's link.
    client.goto(&format!("{url}/")).await.unwrap();
    client
        .execute(
            "document.querySelector('header nav a[data-view=experiments]').click();",
            vec![],
        )
        .await
        .unwrap();
    let rows = until(
        &client,
        "two experiments",
        "return [...document.querySelectorAll('#experiments tbody tr')].map(r => r.innerText);",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    )
    .await;
    let rows = rows.as_array().unwrap();
    let (slow, grid) = (rows[0].as_str().unwrap(), rows[1].as_str().unwrap());
    assert!(
        slow.starts_with("slow") && slow.contains("Running"),
        "{slow}"
    );
    assert!(
        grid.starts_with("grid")
            && grid.contains("Succeeded")
            && grid.contains("(grid-1)")
            && grid.contains("5 trials: 2 EarlyStopped, 3 Succeeded"),
        "{grid}"
    );

    // The finished experiment: trials best first, the history with its stopped trials
    // marked, a line per trial across the parameters, every intermediate value drawn.
    client
        .execute(
            "document.querySelector('#experiments a[href=\"#/experiments/grid\"]').click();",
            vec![],
        )
        .await
        .unwrap();
    let rows = until(&client, "five trials", TRIAL_ROWS, |v| {
        v.as_array().is_some_and(|a| a.len() == 5)
    })
    .await;
    let order: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().split('\t').next().unwrap())
        .collect();
    assert_eq!(order[..3], ["grid-1", "grid-2", "grid-0"], "{rows}");
    let history = client
        .execute(
            "return ['#history .point', '#history .point.EarlyStopped', '#history path.best', \
             '#parallel .trial-line', '#parallel .trial-line.EarlyStopped'] \
             .map(s => document.querySelectorAll(s).length);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(history, json!([5, 2, 1, 5, 2]));
    let (_, exp) = get(&base_of(&url), "/api/experiments/grid");
    let values: u64 = exp["trialList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["intermediate"].as_array().unwrap().len() as u64)
        .sum();
    let drawn = client
        .execute(
            "return Number(document.querySelector('#curves canvas').dataset.points);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(drawn, json!(values));
    let greyed = client
        .execute(
            "return [...document.querySelectorAll('#curves .legend span.stopped')].map(s => s.innerText);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        greyed,
        json!(["grid-3 · EarlyStopped", "grid-4 · EarlyStopped"])
    );
    // Tall enough for the whole page in the screenshot kept in the docs.
    client.set_window_size(1280, 1500).await.unwrap();
    screenshot(&client, "experiment-page.png").await;

    // Sorting by objective the other way puts the worst first; the state filter narrows.
    client
        .execute("document.getElementById('sort-objective').click();", vec![])
        .await
        .unwrap();
    until(&client, "worst first", TRIAL_ROWS, |v| {
        v[0].as_str().is_some_and(|r| r.starts_with("grid-4"))
    })
    .await;
    client
        .execute(
            "const s = document.getElementById('trial-state'); s.value = 'EarlyStopped'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
    let stopped = until(&client, "only stopped trials", TRIAL_ROWS, |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert!(
        stopped[0]
            .as_str()
            .unwrap()
            .contains("stopped early at step"),
        "{stopped}"
    );
    // A trial links to its job's page.
    client
        .execute(
            "document.querySelector('#trials a[href=\"#/jobs/grid-3\"]').click();",
            vec![],
        )
        .await
        .unwrap();
    until(
        &client,
        "the trial's job page",
        "return document.querySelector('#job-head h1') && document.querySelector('#job-head h1').innerText;",
        |v| v.as_str().is_some_and(|t| t.starts_with("grid-3")),
    )
    .await;

    // The running experiment: its running trials' curves grow while we watch.
    client
        .goto(&format!("{url}/#/experiments/slow"))
        .await
        .unwrap();
    let points = &chart_points("intermediate");
    let first = until(&client, "the first values", points, |v| {
        v.as_i64().is_some_and(|n| n > 0)
    })
    .await;
    let first = first.as_i64().unwrap();
    until(&client, "the curves to grow", points, |v| {
        v.as_i64().is_some_and(|n| n >= first + 10)
    })
    .await;
    let running = client
        .execute(
            "return document.querySelectorAll('#history .point.Running').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(running, json!(2));
    screenshot(&client, "running-experiment.png").await;

    client.close().await.unwrap();
    sb.ok(&["delete", "experiment", "slow", "--grace-period", "1"]);
}
