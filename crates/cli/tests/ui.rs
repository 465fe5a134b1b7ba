//! `trainctl ui` end to end: the real binary serves jobs that really ran (finished, failed and
//! still running), and headless Chromium (Debian's `chromium` driven through `chromedriver`)
//! looks at them as a user would. Screenshots go to `target/ui-screenshots/`.

mod common;
mod ui_support;

use common::{fake_gpus, job_yaml, Sandbox};
use serde_json::json;
use ui_support::{browser, chart_points, screenshot, start_ui, until};

/// Twelve progress lines with a loss (a little higher on each next replica), then an exit
/// code from argv.
const FINISHED_PY: &str = r#"
import os, sys
extra = 0.3 * int(os.environ["TRAINCTL_REPLICA_INDEX"])
for i in range(1, 13):
    print(f"Step: {i}, Epoch: {(i - 1) // 4 + 1}, Batch: {(i - 1) % 4 + 1} of 4, Loss: {2.0 / i + extra:.4f}", flush=True)
sys.exit(int(sys.argv[1]))
"#;

/// A loss every 0.2 s for a minute.
const LIVE_PY: &str = r#"
import time
for i in range(1, 301):
    print(f"Step: {i}, Loss: {1.0 / i:.5f}", flush=True)
    time.sleep(0.2)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_jobs_logs_and_charts_that_grow() {
    let sb = Sandbox::new();
    sb.write("finished.py", FINISHED_PY);
    sb.write("live.py", LIVE_PY);
    for (name, code) in [("done-job", "0"), ("broken-job", "3")] {
        let spec = format!(
            "  command: [python3, finished.py, \"{code}\"]\n  replicas:\n    worker: {{count: 2}}\n  \
             runPolicy: {{successPolicy: AllWorkers}}\n"
        );
        let file = sb.job(&format!("{name}.yaml"), &job_yaml(name, &spec));
        sb.tc(&["run", file.to_str().unwrap()]);
    }
    assert_eq!(sb.phase("done-job"), "Succeeded");
    assert_eq!(sb.phase("broken-job"), "Failed");
    let spec = "  command: [python3, live.py]\n  replicas:\n    worker: {count: 1}\n";
    let file = sb.job("live-job.yaml", &job_yaml("live-job", spec));
    sb.ok(&["submit", file.to_str().unwrap()]);

    let (_ui, url) = start_ui(sb.command(&["ui", "--address", "127.0.0.1:0"]));
    let (_driver, client) = browser().await;

    // The list: every job, with its phase.
    client.goto(&format!("{url}/")).await.unwrap();
    let rows = until(
        &client,
        "three jobs in the list",
        "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.innerText);",
        |v| v.as_array().is_some_and(|a| a.len() == 3),
    )
    .await;
    let rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        rows[0].starts_with("live-job") && rows[0].contains("Running"),
        "{rows:?}"
    );
    assert!(
        rows[1].starts_with("broken-job") && rows[1].contains("Failed"),
        "{rows:?}"
    );
    assert!(
        rows[2].starts_with("done-job") && rows[2].contains("Succeeded"),
        "{rows:?}"
    );
    assert!(rows[2].contains("0/2"), "replicas column: {rows:?}");
    screenshot(&client, "list.png").await;

    // The phase filter narrows the list.
    client
        .execute(
            "const s = document.getElementById('filter-phase'); s.value = 'Failed'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await
        .unwrap();
    until(
        &client,
        "only the failed job",
        "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.innerText.split('\\t')[0]);",
        |v| v == &json!(["broken-job"]),
    )
    .await;

    // A finished job: replicas with exit codes, its log, and a chart with every point of
    // both replicas' runs overlaid.
    client
        .goto(&format!("{url}/#/jobs/done-job"))
        .await
        .unwrap();
    until(
        &client,
        "24 loss points (12 per replica)",
        &chart_points("loss"),
        |v| v == &json!(24),
    )
    .await;
    let log = until(
        &client,
        "the log",
        "return document.getElementById('log').textContent;",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("[worker-1] Step: 12,"))
        },
    )
    .await;
    assert!(log
        .as_str()
        .unwrap()
        .contains("[worker-0] Step: 1, Epoch: 1"));
    let replicas = client
        .execute(
            "return document.getElementById('replicas').innerText;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        replicas
            .as_str()
            .unwrap()
            .contains("worker-1\tSucceeded\t0\t0"),
        "{replicas}"
    );
    let legend = client
        .execute(
            "return document.querySelector('.chart[data-tag=\"loss\"] .legend').innerText;",
            vec![],
        )
        .await
        .unwrap();
    let legend = legend.as_str().unwrap();
    assert!(
        legend.contains("stdout/worker-0 · 12 points")
            && legend.contains("stdout/worker-1 · 12 points"),
        "{legend}"
    );
    // The legend's colour swatches are styled through the CSSOM, which the page's
    // Content-Security-Policy allows (inline style attributes would be refused).
    let swatch = client
        .execute(
            "return getComputedStyle(document.querySelector('.chart[data-tag=\"loss\"] .legend i')).backgroundColor;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        swatch.as_str().is_some_and(|c| c.starts_with("rgb(")),
        "swatch colour {swatch}"
    );
    screenshot(&client, "finished-job.png").await;

    // One replica's log only.
    client
        .execute(
            "document.querySelector('#log-tabs [data-replica=\"worker-1\"]').click();",
            vec![],
        )
        .await
        .unwrap();
    until(
        &client,
        "worker-1's log alone",
        "return document.getElementById('log').textContent;",
        |v| {
            v.as_str().is_some_and(|t| {
                t.starts_with("Step: 1, Epoch: 1") && t.contains("Step: 12,") && !t.contains('[')
            })
        },
    )
    .await;

    // A running job: its chart grows while we watch, and so does its log.
    client
        .goto(&format!("{url}/#/jobs/live-job"))
        .await
        .unwrap();
    let first = until(
        &client,
        "the live job's first points",
        &chart_points("loss"),
        |v| v.as_i64().is_some_and(|n| n > 0),
    )
    .await;
    let first = first.as_i64().unwrap();
    let grown = until(
        &client,
        "the live chart to grow",
        &chart_points("loss"),
        |v| v.as_i64().is_some_and(|n| n >= first + 5),
    )
    .await;
    until(
        &client,
        "the live log",
        "return document.getElementById('log').textContent;",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains(&format!("Step: {}, Loss", grown.as_i64().unwrap())))
        },
    )
    .await;
    screenshot(&client, "live-job.png").await;

    client.close().await.unwrap();
    sb.ok(&["delete", "live-job", "--grace-period", "1"]);
}

#[test]
fn a_reachable_address_needs_a_token_and_every_request_must_carry_it() {
    let sb = Sandbox::new();
    let out = sb.tc(&["ui", "--address", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs a token") && err.contains("--token"),
        "{err}"
    );

    let out = sb.tc(&["ui", "--address", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects it");

    let (_ui, url) = start_ui(sb.command(&["ui", "--address", "0.0.0.0:0", "--token", "s3cret"]));
    assert!(url.ends_with("/?token=s3cret"), "{url}");
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let status = |path: &str, header: Option<&str>| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(&format!("{base}{path}"));
        if let Some(h) = header {
            req = req.header("Authorization", h);
        }
        req.call().unwrap().status().as_u16()
    };
    assert_eq!(status("/", None), 401);
    assert_eq!(status("/api/jobs", None), 401);
    assert_eq!(status("/assets/app.js", Some("Bearer wrong")), 401);
    assert_eq!(status("/api/jobs", Some("Bearer s3cret")), 200);
    assert_eq!(status("/?token=s3cret", None), 200);
    assert_eq!(status("/api/jobs/nope", Some("Bearer s3cret")), 404);
}

/// `GET /api/jobs` on `port` with `Host: host` and one extra header line; the status.
fn status_as(port: u16, host: &str, extra: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request =
        format!("GET /api/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

fn port_of(url: &str) -> u16 {
    let after = url.rsplit(':').next().unwrap();
    after.split('/').next().unwrap().parse().unwrap()
}

#[test]
fn the_token_comes_from_a_file_or_the_environment_and_never_shows_in_ps() {
    let sb = Sandbox::new();
    let file = sb.write("token.txt", "from-file\n");
    let (ui, url) = start_ui(sb.command(&[
        "ui",
        "--address",
        "127.0.0.1:0",
        "--token-file",
        file.to_str().unwrap(),
    ]));
    assert!(!url.contains("from-file"), "{url}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", ui.0.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("from-file"));
    let port = port_of(&url);
    let host = format!("127.0.0.1:{port}");
    assert_eq!(status_as(port, &host, ""), 401);
    assert_eq!(
        status_as(port, &host, "Authorization: Bearer from-file\r\n"),
        200
    );
    drop(ui);

    let mut command = sb.command(&["ui", "--address", "127.0.0.1:0"]);
    command.env("TRAINCTL_UI_TOKEN", "from-env");
    let (_ui, url) = start_ui(command);
    let port = port_of(&url);
    let host = format!("localhost:{port}");
    assert_eq!(
        status_as(port, &host, "Authorization: Bearer from-file\r\n"),
        401
    );
    assert_eq!(
        status_as(port, &host, "Cookie: trainctl_token=from-env\r\n"),
        200
    );

    let empty = sb.write("empty.txt", "\n");
    let out = sb.tc(&["ui", "--token-file", empty.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("empty.txt is empty"), "{err}");
    let missing = sb.dir.path().join("missing.txt");
    let out = sb.tc(&["ui", "--token-file", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the token file") && err.contains("missing.txt"),
        "{err}"
    );
}

#[test]
fn on_loopback_only_local_names_and_allowed_hosts_are_answered() {
    let sb = Sandbox::new();
    let (_ui, url) = start_ui(sb.command(&[
        "ui",
        "--address",
        "127.0.0.1:0",
        "--allow-host",
        "dash.internal",
    ]));
    let port = port_of(&url);
    assert_eq!(status_as(port, &format!("localhost:{port}"), ""), 200);
    assert_eq!(status_as(port, "dash.internal", ""), 200);
    assert_eq!(
        status_as(port, &format!("attacker.example:{port}"), ""),
        403
    );
}

#[test]
fn the_log_stream_of_an_attempt_that_does_not_exist_says_which_do() {
    let sb = Sandbox::new();
    let file = sb.job(
        "once.yaml",
        &job_yaml(
            "once",
            "  command: [echo, hi]\n  replicas: {worker: {count: 1}}\n",
        ),
    );
    sb.ok(&["run", file.to_str().unwrap()]);
    let (_ui, url) = start_ui(sb.command(&["ui", "--address", "127.0.0.1:0"]));
    let base = format!("http://127.0.0.1:{}", port_of(&url));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent
        .get(&format!("{base}/api/jobs/once/logs/live?attempt=999"))
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    let body = answer.body_mut().read_to_string().unwrap();
    assert!(
        body.contains("job once has no attempt 999; it has attempt 0"),
        "{body}"
    );
    let ok = agent
        .get(&format!("{base}/api/jobs/once/logs/live?attempt=0"))
        .call()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_held_a_gpu_idle_is_marked_in_the_list_and_on_its_page() {
    let mut sb = Sandbox::new();
    // GPU 1 of the fake nvidia-smi is at 0% utilization.
    sb.gpus = Some("1".into());
    let path = fake_gpus::install(sb.dir.path());
    // The idle job runs 3 s: ten times the idle window, room for samples on a loaded machine.
    for (name, gpus, secs) in [("idle-job", 1, 3), ("cpu-job", 0, 1)] {
        let spec = format!(
            "  command: [sleep, '{secs}']\n  replicas: {{worker: {{resources: {{gpu: {gpus}}}}}}}\n"
        );
        let file = sb.job(&format!("{name}.yaml"), &job_yaml(name, &spec));
        sb.ok_with(
            &["run", file.to_str().unwrap()],
            &[
                ("PATH", &path),
                ("TRAINCTL_GPU_SOURCE", "nvidia-smi"),
                ("TRAINCTL_RESOURCE_INTERVAL_SECONDS", "0.1"),
                ("TRAINCTL_GPU_IDLE_MINUTES", "0.005"),
            ],
        );
    }
    let (_ui, url) = start_ui(sb.command(&["ui", "--address", "127.0.0.1:0"]));
    let (_driver, client) = browser().await;
    client.goto(&format!("{url}/")).await.unwrap();
    let rows = until(
        &client,
        "two jobs in the list",
        "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.innerText);",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    )
    .await;
    let marked: Vec<bool> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().contains("GPU idle"))
        .collect();
    // Newest first: the CPU job ran second.
    assert_eq!(marked, [false, true], "{rows}");
    client
        .goto(&format!("{url}/#/jobs/idle-job"))
        .await
        .unwrap();
    let badge = until(
        &client,
        "the idle mark beside the phase",
        "const b = document.querySelector('h1 .gpu-idle'); return b ? b.title : null;",
        |v| v.is_string(),
    )
    .await;
    assert!(
        badge.as_str().unwrap().contains("holds GPU 1"),
        "the mark explains itself: {badge}"
    );
    screenshot(&client, "gpu-idle.png").await;
}
