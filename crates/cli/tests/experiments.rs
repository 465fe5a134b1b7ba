//! Experiments on this machine, end to end: real trial processes (small python3 scripts
//! that print `accuracy=... step=N`), driven by `trainctl run experiment.yaml`, inspected
//! with `get experiments -o json` and `describe experiment`.

mod common;

use common::Sandbox;
use serde_json::Value;

/// A trial: accuracy `1 - (x - 0.3)^2` reported at steps 1..=STEPS (env), with its start
/// and end times written to `times/<pid>`; `MODE` (env) makes it fail or print no accuracy.
const TRIAL: &str = r#"
import os, sys, time
start = time.time()
x = float(os.environ.get("HP_X", "0"))
mode = os.environ.get("HP_MODE", "ok")
steps = int(os.environ.get("STEPS", "3"))
if mode == "fail":
    print("boom: out of patience", flush=True)
    sys.exit(3)
if mode == "silent":
    print("loss=0.5", flush=True)
    print("training done without accuracy", flush=True)
    sys.exit(0)
for step in range(1, steps + 1):
    acc = (0.9 if mode == "good" else 0.1) if mode in ("good", "bad") else 1 - (x - 0.3) ** 2
    print(f"accuracy={acc} step={step}", flush=True)
    with open(f"progress-{mode}", "w") as f:
        f.write(str(step))
    time.sleep(float(os.environ.get("PAUSE", "0.2")))
os.makedirs("times", exist_ok=True)
with open(f"times/{os.getpid()}", "w") as f:
    f.write(f"{start} {time.time()}")
"#;

fn experiment(name: &str, spec: &str, env: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: Experiment\nmetadata: {{name: {name}}}\nspec:\n{spec}  trialTemplate:\n    spec:\n      command: [python3, trial.py]\n      env: {env}\n      replicas: {{worker: {{}}}}\n"
    )
}

fn run(sb: &Sandbox, name: &str, spec: &str, env: &str) -> (i32, String, Value) {
    sb.write("trial.py", TRIAL);
    let file = sb.write(&format!("{name}.yaml"), &experiment(name, spec, env));
    let out = sb.tc(&["run", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let status: Value =
        serde_json::from_str(&sb.ok(&["get", "experiments", name, "-o", "json"])).unwrap();
    (out.status.code().unwrap_or(-1), stderr, status)
}

fn trials(status: &Value) -> &Vec<Value> {
    status["status"]["trialList"].as_array().unwrap()
}

#[test]
fn an_experiment_runs_every_trial_and_names_the_best_one_without_exceeding_the_parallel_limit() {
    let sb = Sandbox::new();
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: \"5\"}]}\n  parallelTrialCount: 2\n  maxTrialCount: 6\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n";
    let (code, stderr, status) = run(&sb, "tune", spec, "{PAUSE: \"0.3\"}");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ExperimentMaxTrialsReached"), "{stderr}");
    let s = &status["status"];
    assert_eq!(
        (s["trials"].as_u64(), s["trialsSucceeded"].as_u64()),
        (Some(6), Some(6)),
        "{:#}",
        s["trialList"]
    );
    let list = trials(&status);
    let best = list
        .iter()
        .max_by(|a, b| {
            a["value"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["value"].as_f64().unwrap())
        })
        .unwrap();
    let optimal = &s["currentOptimalTrial"];
    assert_eq!(optimal["bestTrialName"], best["job"]);
    let x = best["assignment"][0][1].as_f64().unwrap();
    assert_eq!(optimal["parameterAssignments"][0]["value"], x.to_string());
    let expected = 1.0 - (x - 0.3) * (x - 0.3);
    assert!((best["value"].as_f64().unwrap() - expected).abs() < 1e-9);
    // The CSV export has one row per trial, with its parameter and objective.
    let csv = sb.ok(&["export", "experiment", "tune"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "trial,job,state,x,accuracy,step,started,finished,message"
    );
    assert_eq!(lines.len(), 7, "{csv}");
    let best_line = lines
        .iter()
        .find(|l| l.split(',').nth(1) == best["job"].as_str())
        .unwrap();
    let cells: Vec<&str> = best_line.split(',').collect();
    assert_eq!(cells[2], "Succeeded");
    assert_eq!(cells[3].parse::<f64>().unwrap(), x);
    assert_eq!(
        cells[4].parse::<f64>().unwrap(),
        best["value"].as_f64().unwrap()
    );
    // Trials are ordinary jobs, labelled with their experiment.
    let job = sb.ok(&["get", "tune-0", "-o", "json"]);
    assert!(job.contains("trainctl.dev/experiment"), "{job}");
    // The parallel limit holds: never more than 2 trials between their start and end.
    let at_once = most_at_once(&sb, 6);
    assert!(at_once <= 2, "{at_once} trials ran at once");
}

/// The most trials that ran at once, from the start and end times the `count` trials wrote.
fn most_at_once(sb: &Sandbox, count: usize) -> usize {
    let spans: Vec<(f64, f64)> = std::fs::read_dir(sb.work().join("times"))
        .unwrap()
        .map(|e| {
            let t = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let v: Vec<f64> = t.split(' ').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1])
        })
        .collect();
    assert_eq!(spans.len(), count, "{spans:?}");
    spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && e > start)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn gpu_trials_wait_in_the_gpu_queue_like_jobs() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0".into());
    sb.write("trial.py", TRIAL);
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: random}\n  parallelTrialCount: 2\n  maxTrialCount: 3\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n";
    let yaml = experiment("gpu", spec, "{PAUSE: \"0.2\"}")
        .replace("{worker: {}}", "{worker: {resources: {gpu: 1}}}");
    let file = sb.write("gpu.yaml", &yaml);
    let out = sb.tc(&["run", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let status: Value =
        serde_json::from_str(&sb.ok(&["get", "experiments", "gpu", "-o", "json"])).unwrap();
    assert_eq!(status["status"]["trialsSucceeded"], 3, "{status}");
    // Two trials may run at once, but the machine has one GPU: they took turns.
    assert_eq!(most_at_once(&sb, 3), 1);
    let queued = (0..3).any(|n| {
        sb.ok(&["get", &format!("gpu-{n}"), "-o", "json"])
            .contains("\"Queued\"")
    });
    assert!(queued, "no trial waited in the GPU queue");
}

#[test]
fn reaching_the_goal_ends_the_experiment_early() {
    let sb = Sandbox::new();
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy, goal: 0.5}\n  algorithm: {algorithmName: random}\n  maxTrialCount: 10\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0.2, max: 0.4}}\n";
    let (code, stderr, status) = run(&sb, "goal", spec, "{PAUSE: \"0.01\"}");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("ExperimentGoalReached"), "{stderr}");
    assert_eq!(trials(&status).len(), 1, "{status}");
}

#[test]
fn failed_trials_up_to_max_failed_trial_count_fail_the_experiment() {
    let sb = Sandbox::new();
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: random}\n  maxTrialCount: 6\n  maxFailedTrialCount: 2\n  parameters:\n    - {name: mode, parameterType: categorical, feasibleSpace: {list: [fail]}}\n";
    let (code, stderr, status) = run(&sb, "failing", spec, "{}");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("ExperimentMaxFailedTrialsReached"),
        "{stderr}"
    );
    assert_eq!(status["status"]["trialsFailed"], 2, "{status}");
    assert_eq!(trials(&status).len(), 2);
}

#[test]
fn a_trial_without_the_objective_metric_ends_metrics_unavailable_quoting_its_output() {
    let sb = Sandbox::new();
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: grid}\n  parameters:\n    - {name: mode, parameterType: categorical, feasibleSpace: {list: [silent]}}\n";
    let (code, stderr, status) = run(&sb, "quiet", spec, "{}");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("ExperimentSuggestionEndReached"),
        "{stderr}"
    );
    assert_eq!(status["status"]["trialMetricsUnavailable"], 1, "{status}");
    let describe = sb.ok(&["describe", "experiment", "quiet"]);
    assert!(
        describe.contains("quiet-0 MetricsUnavailable"),
        "{describe}"
    );
    assert!(describe.contains("\"accuracy\""), "{describe}");
    assert!(
        describe.contains("training done without accuracy"),
        "{describe}"
    );
    // The export quotes the multi-line message so that a CSV reader gets one row back.
    let csv = sb.ok(&["export", "experiment", "quiet"]);
    let mut reader = std::process::Command::new("python3")
        .args(["-c", "import csv,sys; r=list(csv.DictReader(sys.stdin)); print(len(r), r[0]['state'], 'training done' in r[0]['message'])"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut reader.stdin.take().unwrap(), csv.as_bytes()).unwrap();
    let parsed = reader.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout),
        "1 MetricsUnavailable True\n",
        "{csv}"
    );
}

#[test]
fn median_stopping_stops_a_worse_trial_mid_way() {
    let sb = Sandbox::new();
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: grid}\n  earlyStopping: {algorithmName: medianstop, algorithmSettings: [{name: min_trials_required, value: \"1\"}, {name: start_step, value: \"2\"}]}\n  parameters:\n    - {name: mode, parameterType: categorical, feasibleSpace: {list: [good, bad]}}\n";
    let (code, stderr, status) = run(&sb, "pruned", spec, "{STEPS: \"40\", PAUSE: \"0.1\"}");
    assert_eq!(code, 0, "{stderr}");
    let list = trials(&status);
    assert_eq!(list[0]["state"], "Succeeded", "{status}");
    assert_eq!(list[1]["state"], "EarlyStopped", "{status}");
    assert_eq!(status["status"]["trialsEarlyStopped"], 1);
    let reached: u64 = std::fs::read_to_string(sb.work().join("progress-bad"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (2..40).contains(&reached),
        "the bad trial got to step {reached}"
    );
}

#[test]
fn delete_experiment_stops_its_trials_and_removes_it() {
    let sb = Sandbox::new();
    sb.write("trial.py", TRIAL);
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: random}\n  parallelTrialCount: 2\n  maxTrialCount: 4\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n";
    let file = sb.write(
        "long.yaml",
        &experiment("long", spec, "{STEPS: \"600\", PAUSE: \"0.1\"}"),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    let start = std::time::Instant::now();
    loop {
        let s: Value =
            serde_json::from_str(&sb.ok(&["get", "experiments", "long", "-o", "json"])).unwrap();
        if s["status"]["trialsRunning"] == 2 {
            break;
        }
        assert!(start.elapsed().as_secs() < 30, "trials never started: {s}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    sb.ok(&["delete", "experiment", "long", "--grace-period", "3"]);
    let list = sb.ok(&["get", "experiments"]);
    assert!(!list.contains("long"), "{list}");
    let jobs = sb.ok(&["get"]);
    assert!(!jobs.contains("long-"), "{jobs}");
    for n in ["long-0", "long-1"] {
        assert!(common::job_processes(&sb.home(), n).is_empty());
    }
}

/// The pid of the detached driver of this sandbox's experiments.
fn driver_pid(sb: &Sandbox) -> Option<i32> {
    let home = format!("TRAINCTL_HOME={}", sb.home().to_string_lossy());
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let has = |hay: &[u8], s: &str| hay.split(|b| *b == 0).any(|w| w == s.as_bytes());
        (has(&cmd, "drive-experiment") && has(&env, &home)).then_some(pid)
    })
}

fn wait_for(sb: &Sandbox, name: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let s: Value =
            serde_json::from_str(&sb.ok(&["get", "experiments", name, "-o", "json"])).unwrap();
        if cond(&s) {
            return s;
        }
        assert!(start.elapsed().as_secs() < 60, "gave up waiting: {s}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn assert_distinct_assignments(status: &Value, count: usize) {
    let list = trials(status);
    assert_eq!(list.len(), count, "{status}");
    let mut seen: Vec<String> = list.iter().map(|t| t["assignment"].to_string()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), count, "an assignment ran twice: {status}");
}

#[test]
fn a_killed_experiment_resumes_without_losing_or_repeating_a_trial_and_grows_its_budget() {
    let sb = Sandbox::new();
    sb.write("trial.py", TRIAL);
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: tpe, algorithmSettings: [{name: random_state, value: \"1\"}, {name: n_startup_trials, value: \"2\"}]}\n  parallelTrialCount: 2\n  maxTrialCount: 5\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n";
    let file = sb.write(
        "res.yaml",
        &experiment("res", spec, "{STEPS: \"8\", PAUSE: \"0.1\"}"),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    wait_for(&sb, "res", |s| s["status"]["trials"].as_u64() >= Some(2));
    let pid = driver_pid(&sb).expect("the detached driver runs");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && driver_pid(&sb) == Some(pid)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sb.ok(&["resume", "experiment", "res"]);
    let done = wait_for(&sb, "res", |s| s["status"]["phase"] == "Succeeded");
    assert_distinct_assignments(&done, 5);
    assert_eq!(done["status"]["trialsSucceeded"], 5, "{done}");
    sb.ok(&["resume", "experiment", "res", "--max-trials", "7"]);
    let more = wait_for(&sb, "res", |s| {
        s["status"]["phase"] == "Succeeded" && s["status"]["trials"] == 7
    });
    assert_distinct_assignments(&more, 7);
}

/// A trial whose first attempt of trial 0 hangs after its first value (until stopped);
/// every other attempt reports its attempt number in the objective and ends.
const HANGS_FIRST: &str = r#"
import os, time
job, attempt = os.environ["TRAINCTL_JOB"], int(os.environ["TRAINCTL_ATTEMPT"])
print("accuracy=0.5 step=1", flush=True)
if job.endswith("-0") and attempt == 0:
    open("hanging", "w").close()
    time.sleep(300)
print(f"accuracy={0.6 + attempt / 100} step=2", flush=True)
"#;

/// Submits experiment `name` (one trial at a time, two in all) of [`HANGS_FIRST`] trials and
/// waits until its first trial hangs.
fn submit_hanging(sb: &Sandbox, name: &str) {
    sb.write("hangs.py", HANGS_FIRST);
    let spec = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: random}\n  parallelTrialCount: 1\n  maxTrialCount: 2\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n";
    let yaml = experiment(name, spec, "{}").replace("trial.py", "hangs.py");
    let file = sb.write(&format!("{name}.yaml"), &yaml);
    sb.ok(&["submit", file.to_str().unwrap()]);
    let start = std::time::Instant::now();
    while !sb.work().join("hanging").exists() {
        assert!(start.elapsed().as_secs() < 30, "trial 0 never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Submits a suspended job `name` (it never runs) carrying `labels`.
fn submit_never_run(sb: &Sandbox, name: &str, labels: &str) {
    let yaml = format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}, labels: {labels}}}\nspec:\n  command: [sh, -c, 'echo stale']\n  replicas: {{worker: {{}}}}\n  runPolicy: {{suspend: true}}\n"
    );
    let file = sb.write(&format!("{name}.yaml"), &yaml);
    sb.ok(&["submit", file.to_str().unwrap()]);
}

const TWO_SEQUENTIAL: &str = "  objective: {type: maximize, objectiveMetricName: accuracy}\n  algorithm: {algorithmName: random}\n  parallelTrialCount: 1\n  maxTrialCount: 2\n  parameters:\n    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}\n";

#[test]
fn a_trial_job_its_experiment_created_but_never_recorded_is_created_again() {
    // What a driver that died between creating trial 0's job and recording the trial leaves.
    let sb = Sandbox::new();
    submit_never_run(&sb, "left-0", "{trainctl.dev/experiment: left}");
    let (code, stderr, status) = run(&sb, "left", TWO_SEQUENTIAL, "{STEPS: \"1\"}");
    assert_eq!(code, 0, "{stderr}\n{status:#}");
    assert_eq!(status["status"]["trialsSucceeded"], 2, "{status:#}");
    let job: Value = serde_json::from_str(&sb.ok(&["get", "left-0", "-o", "json"])).unwrap();
    assert_eq!(
        job["status"]["phase"], "Succeeded",
        "the trial ran: {job:#}"
    );
}

#[test]
fn a_job_of_another_owner_named_like_a_trial_is_left_alone() {
    let sb = Sandbox::new();
    submit_never_run(&sb, "mine-0", "{team: ml}");
    let (code, stderr, _) = run(&sb, "mine", TWO_SEQUENTIAL, "{}");
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot create trial mine-0"), "{stderr}");
    let job: Value = serde_json::from_str(&sb.ok(&["get", "mine-0", "-o", "json"])).unwrap();
    assert_eq!(job["status"]["phase"], "Suspended", "{job:#}");
}

#[test]
fn a_trial_running_when_its_experiment_is_killed_is_resumed_with_its_next_attempt() {
    let sb = Sandbox::new();
    submit_hanging(&sb, "crash");
    let pid = driver_pid(&sb).expect("the detached driver runs");
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while driver_pid(&sb) == Some(pid) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sb.ok(&["resume", "experiment", "crash"]);
    let done = wait_for(&sb, "crash", |s| s["status"]["phase"] == "Succeeded");
    assert_distinct_assignments(&done, 2);
    assert_eq!(done["status"]["trialsSucceeded"], 2, "{done}");
    // Trial 0 went on with attempt 1 (its value says so); attempt 0 was stopped.
    assert_eq!(trials(&done)[0]["value"], 0.61, "{done}");
    let job: Value = serde_json::from_str(&sb.ok(&["get", "crash-0", "-o", "json"])).unwrap();
    let events = job["status"]["events"].to_string();
    assert!(
        events.contains("SupervisorLost") && events.contains("trainctl resume experiment crash"),
        "{events}"
    );
    assert!(common::job_processes(&sb.home(), "crash-0").is_empty());
}

#[test]
fn deleting_a_trial_job_ends_that_trial_and_the_experiment_goes_on() {
    let sb = Sandbox::new();
    submit_hanging(&sb, "cut");
    let driver = driver_pid(&sb).expect("the detached driver runs");
    sb.ok(&["delete", "cut-0"]);
    let done = wait_for(&sb, "cut", |s| s["status"]["phase"] == "Succeeded");
    let list = trials(&done);
    assert_eq!(list[0]["state"], "Failed", "{done}");
    assert_eq!(list[1]["state"], "Succeeded", "{done}");
    assert_eq!(list[1]["value"], 0.6, "{done}");
    assert!(
        driver_pid(&sb).is_none_or(|p| p == driver),
        "the experiment was driven by one process"
    );
    assert!(common::job_processes(&sb.home(), "cut-0").is_empty());
}

/// A Katib experiment whose batch Job trial reads its parameter from the argv word the
/// `${trialParameters.xValue}` placeholder stood in.
const KATIB: &str = r#"apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: from-katib, namespace: kubeflow}
spec:
  objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
  algorithm:
    algorithmName: random
    algorithmSettings: [{name: random_state, value: "3"}]
  resumePolicy: Never
  parallelTrialCount: 1
  maxTrialCount: 3
  parameters:
    - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
  trialTemplate:
    primaryContainerName: training-container
    trialParameters:
      - {name: xValue, description: the knob, reference: x}
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            containers:
              - name: training-container
                image: docker.io/example/argv-trial:latest
                command: [python3, argv_trial.py, "--knob=${trialParameters.xValue}", --steps=2]
            restartPolicy: Never
"#;

/// Reads `--knob=` and `--steps=` from argv only; prints accuracy and loss (10 / step) per
/// step.
const ARGV_TRIAL: &str = r#"
import sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
x = float(args["knob"])
for step in range(1, int(args["steps"]) + 1):
    print(f"accuracy={1 - (x - 0.3) ** 2} loss={10 / step} step={step}", flush=True)
"#;

#[test]
fn a_converted_katib_experiment_runs_here_with_flags_from_argv_and_records_additional_metrics() {
    let sb = Sandbox::new();
    sb.write("argv_trial.py", ARGV_TRIAL);
    let katib = sb.write("katib.yaml", KATIB);
    let out = sb.tc(&["convert", katib.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: not converted: spec.resumePolicy (Never)"),
        "{stderr}"
    );
    let converted = sb.write("experiment.yaml", &String::from_utf8_lossy(&out.stdout));
    let run = sb.tc(&["run", converted.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let status: Value =
        serde_json::from_str(&sb.ok(&["get", "experiments", "from-katib", "-o", "json"])).unwrap();
    assert_eq!(status["status"]["trialsSucceeded"].as_u64(), Some(3));
    for trial in trials(&status) {
        assert_eq!(trial["assignment"][0][0], "knob", "{trial}");
        let x = trial["assignment"][0][1].as_f64().unwrap();
        let expected = 1.0 - (x - 0.3) * (x - 0.3);
        assert!(
            (trial["value"].as_f64().unwrap() - expected).abs() < 1e-9,
            "{trial}"
        );
    }
    assert_distinct_assignments(&status, 3);
    // The additional metric is observed per trial (min, max, latest) and shown.
    for trial in trials(&status) {
        assert_eq!(
            trial["metrics"],
            serde_json::json!([{"name": "loss", "min": 5.0, "max": 10.0, "latest": 5.0}]),
            "{trial}"
        );
    }
    let observed = &status["status"]["currentOptimalTrial"]["observation"]["metrics"];
    assert_eq!(observed[1]["name"], "loss", "{observed}");
    let csv = sb.ok(&["export", "experiment", "from-katib"]);
    assert!(
        csv.starts_with("trial,job,state,knob,accuracy,loss,step,"),
        "{csv}"
    );
    let describe = sb.ok(&["describe", "experiment", "from-katib"]);
    assert!(
        describe.contains("ACCURACY") && describe.contains("LOSS"),
        "{describe}"
    );
    assert!(describe.contains("5.000000"), "{describe}");
}
