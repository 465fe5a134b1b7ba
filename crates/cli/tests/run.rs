//! `trainctl run`: logs streamed with a replica prefix, the exit status is the job's, and the
//! quickstart trains to the promised accuracy.

mod common;

use common::{job_yaml, Sandbox};

#[test]
fn run_streams_prefixed_lines_in_order_and_exits_with_the_job_status() {
    let sb = Sandbox::new();
    sb.write(
        "count.sh",
        "i=1; while [ $i -le 200 ]; do echo \"n=$i\"; i=$((i+1)); done\n",
    );
    let ok = sb.job("ok.yaml", &job_yaml("ok", "  command: [sh, count.sh]\n  replicas: {worker: {count: 2}}\n  runPolicy: {successPolicy: AllWorkers}\n"));
    let out = sb.tc(&["run", ok.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for replica in ["worker-0", "worker-1"] {
        let prefix = format!("[{replica}] ");
        let mine: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect();
        let expected: Vec<String> = (1..=200).map(|i| format!("n={i}")).collect();
        assert_eq!(mine, expected, "{replica}: every line, once, in order");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("job ok Succeeded"), "{stderr}");

    let bad = sb.job(
        "bad.yaml",
        &job_yaml(
            "bad",
            "  command: [sh, -c, \"echo dying; exit 7\"]\n  replicas: {worker: {}}\n",
        ),
    );
    let out = sb.tc(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[worker-0] dying\n");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("job bad Failed: ReplicaFailed: worker-0 exited with code 7"));
}

#[test]
fn quickstart_trains_to_90_percent_and_stops_the_ps() {
    let sb = Sandbox::new();
    let job = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart/job.yaml"
    );
    let out = sb.tc(&["run", job]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accuracy: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("[worker-0] Test-Accuracy: "))
        .expect("worker-0 reports the test accuracy")
        .trim()
        .parse()
        .unwrap();
    assert!(accuracy >= 0.90, "accuracy {accuracy}");
    let progress = stdout
        .lines()
        .find(|l| l.starts_with("[worker-0] Step: "))
        .expect("progress lines");
    let parts: Vec<&str> = progress
        .trim_start_matches("[worker-0] ")
        .split(", ")
        .collect();
    assert_eq!(parts.len(), 5, "{progress}");
    assert!(
        parts[0].starts_with("Step: ")
            && parts[1].starts_with("Epoch: ")
            && parts[2].starts_with("Batch: ")
            && parts[2].contains(" of "),
        "{progress}"
    );
    assert!(
        parts[3].starts_with("Cost: ")
            && parts[4].starts_with("AvgTime: ")
            && parts[4].ends_with("ms"),
        "{progress}"
    );

    let s = sb.status("quickstart");
    assert_eq!(s["status"]["phase"], "Succeeded");
    let ps = Sandbox::replica(&s, "ps-0");
    assert_eq!(ps["state"], "Stopped", "the success policy stopped the PS");
}
