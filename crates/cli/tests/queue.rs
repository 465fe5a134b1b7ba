//! The GPU queue on this machine: backfilling around a reserved job, where each waiting job
//! stands and why (`get`, `describe`, `trainctl queue`), and `trainctl sim` on a trace.

mod common;

use std::collections::BTreeMap;

use common::{job_yaml, Sandbox};

/// A 1-GPU-per-worker job of `workers` workers that logs when each starts and ends to
/// `events.log` and holds its GPU `hold` seconds, with an optional deadline.
fn gpu_job(sb: &Sandbox, name: &str, workers: u32, hold: &str, deadline: Option<u32>) -> String {
    let policy = match deadline {
        Some(d) => format!("{{activeDeadlineSeconds: {d}, successPolicy: AllWorkers}}"),
        None => "{successPolicy: AllWorkers}".to_string(),
    };
    let spec = format!(
        "  command: [sh, mark.sh]\n  env: {{HOLD: \"{hold}\"}}\n  replicas: {{worker: {{count: {workers}, resources: {{gpu: 1}}}}}}\n  runPolicy: {policy}\n"
    );
    sb.job(&format!("{name}.yaml"), &job_yaml(name, &spec))
        .to_str()
        .unwrap()
        .to_string()
}

/// From `events.log`: per job, its first start and last end (Unix seconds).
fn marks(sb: &Sandbox) -> BTreeMap<String, (f64, f64)> {
    let text = std::fs::read_to_string(sb.work().join("events.log")).unwrap();
    let mut m: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let t: f64 = f[2].parse().unwrap();
        let e = m.entry(f[0].to_string()).or_insert((f64::MAX, 0.0));
        if f[1] == "start" {
            e.0 = e.0.min(t);
        } else {
            e.1 = e.1.max(t);
        }
    }
    m
}

#[test]
fn a_backfilled_job_never_delays_the_reserved_head_job() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    sb.write(
        "mark.sh",
        "echo \"$TRAINCTL_JOB start $(date +%s.%N)\" >> events.log\nsleep \"$HOLD\"\necho \"$TRAINCTL_JOB end $(date +%s.%N)\" >> events.log\n",
    );
    // `first` holds GPU 0 for 6 s and is expected to end within 30 s (its deadline).
    let first = gpu_job(&sb, "first", 1, "6", Some(30));
    sb.ok(&["submit", &first]);
    sb.until("first", "first running", |s| {
        s["status"]["phase"] == "Running"
    });
    // `head` needs both GPUs: first in line, GPUs reserved from first's deadline.
    let head = gpu_job(&sb, "head", 2, "0.5", None);
    sb.ok(&["submit", &head]);
    sb.until("head", "head queued", |s| {
        s["status"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("position 1 of 1 in the GPU queue: first in line; GPUs reserved")
    });
    // `long` has no deadline (unknown means long): it would hold GPU 1 past the reservation.
    let long = gpu_job(&sb, "long", 1, "0.2", None);
    sb.ok(&["submit", &long]);
    let waiting = sb.until("long", "long queued", |s| {
        s["status"]["message"] != "waiting for resources (GPUs) to start every replica at once"
            && s["status"]["reason"] == "Queued"
    });
    assert_eq!(
        waiting["status"]["message"],
        "position 2 of 2 in the GPU queue: would delay head, which has GPUs reserved (no known end before then)"
    );
    let queue = sb.ok(&["queue"]);
    let lines: Vec<&str> = queue.lines().collect();
    assert!(lines[0].starts_with("POSITION"), "{queue}");
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains("head"),
        "{queue}"
    );
    assert!(
        lines[1].contains("first in line; GPUs reserved from about"),
        "{queue}"
    );
    assert!(
        lines[2].starts_with("2 ") && lines[2].contains("long"),
        "{queue}"
    );
    let describe = sb.ok(&["describe", "long"]);
    assert!(describe.contains("would delay head"), "{describe}");
    // `short` ends within 3 s, long before the reservation: it starts at once on GPU 1.
    let short = gpu_job(&sb, "short", 1, "1", Some(3));
    sb.ok(&["submit", &short]);

    for job in ["first", "head", "long", "short"] {
        assert_eq!(sb.wait(job), "Succeeded", "{job}");
    }
    let m = marks(&sb);
    let (first, head, long, short) = (m["first"], m["head"], m["long"], m["short"]);
    assert!(short.0 < first.1, "short was not backfilled: {m:?}");
    assert!(head.0 >= first.1, "{m:?}");
    assert!(
        long.0 >= head.0,
        "long started before the reserved head: {m:?}"
    );
    // The head started as soon as first ended (GPU 1 was free again by then).
    assert!(
        head.0 - first.1 < 3.0,
        "head waited after first ended: {m:?}"
    );
}

#[test]
fn a_job_name_that_ran_before_is_expected_to_run_as_long_and_the_reservation_counts_on_it() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0".into());
    sb.write("mark.sh", "sleep \"$HOLD\"\n");
    // `train` ran once, for about 5 s, and was deleted; the run is remembered.
    let once = gpu_job(&sb, "train", 1, "5", None);
    sb.ok(&["run", &once]);
    sb.ok(&["delete", "train"]);
    // Run again (no deadline): the queue expects it to end about 5 s after it started.
    let again = gpu_job(&sb, "train", 1, "30", None);
    sb.ok(&["submit", &again]);
    sb.until("train", "train running", |s| {
        s["status"]["phase"] == "Running"
    });
    let fresh = gpu_job(&sb, "fresh", 1, "0", None);
    sb.ok(&["submit", &fresh]);
    let q: serde_json::Value = serde_json::from_str(&sb.ok(&["queue", "-o", "json"])).unwrap();
    let head = &q["items"][0];
    assert_eq!(head["name"], "fresh", "{q}");
    assert!(
        head["reservedAt"].is_string(),
        "the reservation counts on train's earlier run: {q}"
    );
    assert_eq!(head["expectedRunSeconds"], serde_json::Value::Null, "{q}");
    let table = sb.ok(&["queue"]);
    assert!(
        table.lines().next().unwrap().contains("EXPECTED RUN"),
        "{table}"
    );
    assert!(
        table.lines().nth(1).unwrap().contains(" unknown "),
        "{table}"
    );
    sb.ok(&["delete", "train", "fresh"]);
    // Submitted again while another job holds the GPU, train waits with its estimate shown.
    let hold = gpu_job(&sb, "hold", 1, "30", None);
    sb.ok(&["submit", &hold]);
    sb.until("hold", "hold running", |s| {
        s["status"]["phase"] == "Running"
    });
    sb.ok(&["submit", &again]);
    let q: serde_json::Value = serde_json::from_str(&sb.ok(&["queue", "-o", "json"])).unwrap();
    let expected = q["items"][0]["expectedRunSeconds"].as_f64().unwrap();
    assert!((4.5..10.0).contains(&expected), "{q}");
    sb.ok(&["delete", "hold", "train"]);
}

#[test]
fn queue_json_lists_waiting_jobs_in_order() {
    let mut sb = Sandbox::new();
    sb.gpus = Some("0".into());
    sb.write("mark.sh", "sleep \"$HOLD\"\n");
    let hold = gpu_job(&sb, "hold", 1, "30", None);
    sb.ok(&["submit", &hold]);
    sb.until("hold", "hold running", |s| {
        s["status"]["phase"] == "Running"
    });
    for name in ["a", "b"] {
        let f = gpu_job(&sb, name, 1, "0", None);
        sb.ok(&["submit", &f]);
    }
    let q: serde_json::Value = serde_json::from_str(&sb.ok(&["queue", "-o", "json"])).unwrap();
    let names: Vec<&str> = q["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(q["items"][0]["position"], 1);
    assert_eq!(q["items"][0]["gpus"], 1);
    // No running job has a known end, so the reservation has no time.
    assert_eq!(q["items"][0]["reservedAt"], serde_json::Value::Null);
    sb.ok(&["delete", "hold", "a", "b"]);
}

#[test]
fn sim_replays_a_trace_and_prints_json_a_script_can_read() {
    let sb = Sandbox::new();
    let trace = sb.write(
        "t.csv",
        "job_id,submit_time_s,duration_s,num_gpus\na,0,100,1\nb,1,100,2\nc,2,10,1\n",
    );
    let out = sb.ok(&[
        "sim",
        "--trace",
        trace.to_str().unwrap(),
        "--gpus",
        "2",
        "--policy",
        "fifo",
        "-o",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["jobs"], 3);
    assert_eq!(r["avg_jct_s"], 169.0);
    assert_eq!(r["max_wait_s"], 198.0);
    assert_eq!(r["makespan_s"], 210.0);
    assert_eq!(r["preemptions"], 0);
    let table = sb.ok(&[
        "sim",
        "--trace",
        trace.to_str().unwrap(),
        "--gpus",
        "2",
        "--policy",
        "sjf",
    ]);
    let avg = table
        .lines()
        .find(|l| l.starts_with("AVG JCT (s) "))
        .unwrap();
    assert_eq!(avg.split_whitespace().last(), Some("103"), "{table}");
}

#[test]
fn sim_names_the_bad_line_of_a_trace() {
    let sb = Sandbox::new();
    let trace = sb.write(
        "bad.csv",
        "submit_time_s,duration_s,num_gpus\n0,10,1\n5,x,1\n",
    );
    let out = sb.tc(&[
        "sim",
        "--trace",
        trace.to_str().unwrap(),
        "--gpus",
        "2",
        "--policy",
        "las",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:3: duration_s: \"x\" is not a number of seconds >= 0"),
        "{err}"
    );
}
