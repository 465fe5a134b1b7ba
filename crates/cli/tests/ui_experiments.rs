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

/// The finished experiment as the engine recorded it (`get experiments grid -o json`).
fn recorded(sb: &Sandbox) -> Value {
    serde_json::from_str(&sb.ok(&["get", "experiments", "grid", "-o", "json"])).unwrap()
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
    // What the engine recorded (as `get experiments -o json` prints it) is what the list
    // and the page show.
    let recorded = recorded(&sb);
    let r = &recorded["status"];
    let grid = &items[1];
    assert_eq!(grid["phase"], "Succeeded", "{grid}");
    assert_eq!(grid["reason"], "ExperimentMaxTrialsReached");
    for (ours, theirs) in [
        ("total", "trials"),
        ("Running", "trialsRunning"),
        ("Succeeded", "trialsSucceeded"),
        ("Failed", "trialsFailed"),
        ("EarlyStopped", "trialsEarlyStopped"),
        ("MetricsUnavailable", "trialMetricsUnavailable"),
    ] {
        assert_eq!(grid["trials"][ours], r[theirs], "{ours}: {grid} {r}");
    }
    assert_eq!(grid["trials"]["total"], 5);
    assert!(
        grid["trials"]["EarlyStopped"].as_u64() >= Some(1),
        "median stopping stopped a worse trial: {grid}"
    );
    let optimal = &r["currentOptimalTrial"];
    assert_eq!(grid["best"]["job"], optimal["bestTrialName"], "{grid}");
    assert_eq!(
        grid["best"]["value"],
        optimal["observation"]["metrics"][0]["value"]
    );
    assert!(grid["ageSeconds"].as_f64().unwrap() > 0.0);

    // One experiment: each trial's parameters, objective, other metrics, step, state, and
    // its intermediate values by step.
    let (status, exp) = get(&base, "/api/experiments/grid");
    assert_eq!(status, 200);
    assert_eq!(exp["ended"], true);
    let mut best: Option<f64> = None;
    let mut best_so_far = Vec::new();
    for rec in r["trialList"].as_array().unwrap() {
        let t = trial(&exp, rec["job"].as_str().unwrap());
        assert_eq!(t["state"], rec["state"], "{t}");
        let x = rec["assignment"][0][1].as_f64().unwrap();
        assert_eq!(t["parameters"]["x"].as_f64(), Some(x), "{t}");
        let points = t["intermediate"].as_array().unwrap();
        assert!(t["durationSeconds"].as_f64().unwrap() > 0.0, "{t}");
        let Some(step) = t["step"].as_u64() else {
            assert!(points.is_empty() && t["objective"].is_null(), "{t}");
            continue;
        };
        assert_eq!(points.len() as u64, step, "one value per step: {t}");
        let full = 1.0 - (x - 0.3) * (x - 0.3);
        assert!(
            (points[0][1].as_f64().unwrap() - full / 30.0).abs() < 1e-9,
            "{t}"
        );
        let value = t["objective"].as_f64().unwrap();
        assert!(
            (value - full * step as f64 / 30.0).abs() < 1e-9,
            "the best value so far counts: {t}"
        );
        assert_eq!(t["objective"], rec["value"], "{t}");
        assert_eq!(t["metrics"]["loss"].as_f64(), Some(x + step as f64), "{t}");
        match rec["state"].as_str().unwrap() {
            "Succeeded" => {
                assert_eq!(step, 30, "{t}");
                best = Some(best.map_or(value, |b: f64| b.max(value)));
            }
            "EarlyStopped" => assert!((2..30).contains(&step), "stopped mid-way: {t}"),
            _ => {}
        }
        best_so_far.push(best);
    }
    // The optimization history: every trial with a value, best-so-far over succeeded ones.
    let history: Vec<Option<f64>> = exp["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bestSoFar"].as_f64())
        .collect();
    assert_eq!(history, best_so_far);
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
    // What the page must show: the engine's decisions as the API (tested above) serves them.
    let (_, exp) = get(&base_of(&url), "/api/experiments/grid");
    let list: Vec<&Value> = exp["trialList"].as_array().unwrap().iter().collect();
    let jobs_in = |st: &[&str]| -> Vec<String> {
        list.iter()
            .filter(|t| st.contains(&t["state"].as_str().unwrap()))
            .map(|t| t["job"].as_str().unwrap().to_string())
            .collect()
    };
    let early = jobs_in(&["EarlyStopped"]);
    assert!(!early.is_empty(), "median stopping stopped a trial: {exp}");
    // Best objective first, trials without one last.
    let mut ranked = list.clone();
    ranked.sort_by(|a, b| {
        let key = |t: &Value| t["objective"].as_f64().map_or(f64::INFINITY, |v| -v);
        key(a).total_cmp(&key(b))
    });
    let ranked: Vec<&str> = ranked.iter().map(|t| t["job"].as_str().unwrap()).collect();
    let with_value = list.iter().filter(|t| t["objective"].is_number()).count();

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
            && grid.contains(&format!("({})", exp["best"]["job"].as_str().unwrap()))
            && grid.contains(&format!("5 trials: {} EarlyStopped", early.len())),
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
    assert_eq!(order, ranked, "{rows}");
    let history = client
        .execute(
            "return ['#history .point', '#history .point.EarlyStopped', '#history path.best', \
             '#parallel .trial-line', '#parallel .trial-line.EarlyStopped'] \
             .map(s => document.querySelectorAll(s).length);",
            vec![],
        )
        .await
        .unwrap();
    let succeeded = usize::from(!jobs_in(&["Succeeded"]).is_empty());
    assert_eq!(
        history,
        json!([with_value, early.len(), succeeded, 5, early.len()])
    );
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
    let stopped: Vec<String> = list
        .iter()
        .filter(|t| ["EarlyStopped", "Killed"].contains(&t["state"].as_str().unwrap()))
        .map(|t| {
            format!(
                "{} · {}",
                t["job"].as_str().unwrap(),
                t["state"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(greyed, json!(stopped));
    // Tall enough for the whole page in the screenshot kept in the docs.
    client.set_window_size(1280, 1500).await.unwrap();
    screenshot(&client, "experiment-page.png").await;

    // Sorting by objective the other way puts the worst first; the state filter narrows.
    client
        .execute("document.getElementById('sort-objective').click();", vec![])
        .await
        .unwrap();
    let worst = ranked[with_value - 1];
    until(&client, "worst first", TRIAL_ROWS, |v| {
        v[0].as_str()
            .is_some_and(|r| r.starts_with(&format!("{worst}\t")))
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
        v.as_array().is_some_and(|a| a.len() == early.len())
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
            &format!(
                "document.querySelector('#trials a[href=\"#/jobs/{}\"]').click();",
                early[0]
            ),
            vec![],
        )
        .await
        .unwrap();
    until(
        &client,
        "the trial's job page",
        "return document.querySelector('#job-head h1') && document.querySelector('#job-head h1').innerText;",
        |v| v.as_str().is_some_and(|t| t.starts_with(&early[0])),
    )
    .await;
    // ... which links back to the experiment.
    let back = client
        .execute(
            "return document.getElementById('experiment-link').getAttribute('href');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(back, json!("#/experiments/grid"));

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
    // Both running trials are in the history, drawn as running.
    until(
        &client,
        "two running trials in the history",
        "return document.querySelectorAll('#history .point.Running').length;",
        |v| v == &json!(2),
    )
    .await;
    screenshot(&client, "running-experiment.png").await;

    client.close().await.unwrap();
    sb.ok(&["delete", "experiment", "slow", "--grace-period", "1"]);
}
