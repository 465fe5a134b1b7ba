//! The dashboard's API at scale: 1,000 jobs and one run of 1,000,000 points. Pages and
//! charts stay small (the sizes are checked), and a live chart gets only the new points
//! after its first snapshot; the times and sizes are printed for the issue note (run with
//! `--nocapture`), not asserted.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use trainctl_local::{Home, LocalEngine};
use trainctl_metrics::db::{Cursor, MetricsDb, TaggedPoint};
use trainctl_metrics::series::Point;
use trainctl_web::access::Access;
use trainctl_web::hosts::Hosts;
use trainctl_web::{router, Dashboard};

fn job(name: &str) -> trainctl_spec::TrainingJob {
    let yaml = format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\n\
         spec:\n  command: [\"true\"]\n  replicas: {{worker: {{count: 2}}}}\n"
    );
    trainctl_spec::parse_job_str("job.yaml", &yaml).expect("valid job")
}

/// GETs `path` and returns the body, its size and how long it took.
fn get(base: &str, path: &str) -> (Value, usize, Duration) {
    let start = Instant::now();
    let text = ureq::get(&format!("{base}{path}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let took = start.elapsed();
    (serde_json::from_str(&text).unwrap(), text.len(), took)
}

#[test]
fn a_thousand_jobs_and_a_million_points_are_served_in_small_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    let mut engine = LocalEngine::open(home.clone()).unwrap();
    for i in 0..1000 {
        engine
            .create(&job(&format!("job-{i:04}")), dir.path())
            .unwrap();
    }
    let big = "job-0500";
    let points: Vec<TaggedPoint> = (0..1_000_000)
        .map(|step| {
            let value = if step == 777_777 {
                -5.0
            } else {
                1.0 / (1.0 + step as f64)
            };
            loss_point(step, value)
        })
        .collect();
    std::fs::create_dir_all(home.job_dir(big)).unwrap();
    let mut db = MetricsDb::open(&home.job_dir(big).join("metrics.db")).unwrap();
    db.save("worker-0/attempt-0", &Cursor::default(), &points)
        .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let bound = listener.local_addr().unwrap();
    let base = format!("http://{bound}");
    let access = Access::new(None, Hosts::new(bound, &[]));
    let app = router(Arc::new(Dashboard::new(home, access)));
    runtime.spawn(async move { axum::serve(listener, app).await });

    let (page, size, took) = get(&base, "/api/jobs");
    assert_eq!(page["total"], 1000);
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
    assert_eq!(
        page["items"][0]["metadata"]["name"], "job-0999",
        "newest first"
    );
    println!("job list, first page of 50 of 1000 jobs: {size} bytes in {took:?}");
    let (page, size, took) = get(&base, "/api/jobs?offset=950&limit=100&q=job-00");
    assert_eq!(page["total"], 100);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        0,
        "past the end of 100 matches"
    );
    println!("job list, filtered by name: {size} bytes in {took:?}");
    let (_, size, took) = get(&base, "/api/jobs?limit=500");
    println!("job list, largest page (500 jobs): {size} bytes in {took:?}");

    let (m, size, took) = get(&base, &format!("/api/jobs/{big}/metrics"));
    let series = &m["runs"][0]["tags"]["loss"];
    assert_eq!(series["total"], 1_000_000);
    let shown = series["points"].as_array().unwrap();
    assert!(shown.len() <= 1001, "{} points", shown.len());
    assert_eq!(
        shown.last().unwrap(),
        &json!([999_999, 1.0 / 1_000_000.0]),
        "the last point is kept"
    );
    assert!(
        shown.contains(&json!([777_777, -5.0])),
        "the extremes are kept"
    );
    println!("metrics, 1,000,000 points, first request (reads them all): {size} bytes in {took:?}");
    let (_, size, took) = get(&base, &format!("/api/jobs/{big}/metrics"));
    println!("metrics, 1,000,000 points, again (cached, incremental): {size} bytes in {took:?}");
    let (m, size, took) = get(&base, &format!("/api/jobs/{big}/metrics?points=5000"));
    assert!(
        m["runs"][0]["tags"]["loss"]["points"]
            .as_array()
            .unwrap()
            .len()
            <= 5001
    );
    println!("metrics, 1,000,000 points shown as 5,000: {size} bytes in {took:?}");

    // The live stream: the downsampled series once, then only the points written since.
    let response = ureq::get(&format!("{base}/api/jobs/{big}/metrics/live"))
        .call()
        .unwrap();
    let mut events = BufReader::new(response.into_body().into_reader());
    let (event, first) = next_event(&mut events);
    assert_eq!(event, "metrics");
    let more: Vec<TaggedPoint> = (1_000_000..1_000_010)
        .map(|step| loss_point(step, 0.5))
        .collect();
    db.save("worker-0/attempt-0", &Cursor::default(), &more)
        .unwrap();
    let (event, added) = next_event(&mut events);
    assert_eq!(event, "append");
    let added: Value = serde_json::from_str(&added).unwrap();
    let series = &added["runs"][0]["tags"]["loss"];
    assert_eq!(series["total"], 1_000_010);
    assert_eq!(series["points"].as_array().unwrap().len(), 10);
    println!(
        "live metrics, 1,000,000 points: first event {} bytes, then 10 new points in {} bytes",
        first.len(),
        added.to_string().len()
    );
}

/// The next event of an SSE stream other than a keep-alive: its name and data.
fn next_event(events: &mut impl BufRead) -> (String, String) {
    let (mut event, mut data) = (String::new(), String::new());
    loop {
        let mut line = String::new();
        assert!(events.read_line(&mut line).unwrap() > 0, "the stream ended");
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            data += d;
        } else if line.is_empty() && !event.is_empty() {
            return (event, data);
        }
    }
}

/// A `loss` point of worker-0's stdout run.
fn loss_point(step: i64, value: f64) -> TaggedPoint {
    TaggedPoint {
        run: "stdout/worker-0".into(),
        tag: "loss".into(),
        point: Point {
            step,
            wall_time: 0.0,
            value,
        },
    }
}
