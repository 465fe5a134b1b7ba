//! Collecting a job's metrics from its attempt logs into its database and event files.

use std::io::Write;
use std::path::Path;

use trainctl_metrics::collect::Collector;
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::run_reader::RunReader;
use trainctl_metrics::stdout::StdoutParser;

fn append(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn steps_and_values(m: &JobMetrics, run: &str, tag: &str) -> Vec<(i64, f64)> {
    let runs = m.runs();
    let (_, r) = runs.iter().find(|(n, _)| *n == run).expect("run");
    r.tags[tag]
        .points()
        .iter()
        .map(|p| (p.step, p.value))
        .collect()
}

#[test]
fn output_is_collected_once_across_passes_restarts_and_a_last_line_without_newline() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job");
    let tb = job.join("tensorboard");
    let log0 = job.join("logs/worker-0/attempt-0.log");
    let log1 = job.join("logs/worker-0/attempt-1.log");
    let mut c = Collector::open(&job, &tb, StdoutParser::for_spec(None).unwrap()).unwrap();
    assert_eq!(c.collect(false).unwrap(), 0, "no logs yet");

    append(
        &log0,
        "starting\nStep: 10, Epoch: 1, Cost: 2.0\nStep: 20, Epoch: 1, Cost: 1.5\nStep: 30, Ep",
    );
    assert_eq!(c.collect(false).unwrap(), 2, "the cut line waits");
    append(&log0, "och: 2, Cost: 1.0\nStep: 40, Epoch: 2, Cost: 0.8\n");
    assert_eq!(c.collect(false).unwrap(), 2);
    assert_eq!(c.collect(false).unwrap(), 0, "nothing is read twice");
    // Attempt 1 resumes from the checkpoint at step 20 and reports a final accuracy on a
    // line that has no newline.
    append(
        &log1,
        "Step: 30, Epoch: 2, Cost: 0.9\nStep: 40, Epoch: 2, Cost: 0.7\naccuracy=0.93",
    );
    assert_eq!(c.collect(false).unwrap(), 2);
    assert_eq!(
        c.collect(true).unwrap(),
        1,
        "the job ended: the last line counts"
    );

    let mut m = JobMetrics::new(&job, &tb);
    assert!(m.poll().unwrap().is_empty());
    assert_eq!(
        steps_and_values(&m, "stdout/worker-0", "cost"),
        [(10, 2.0), (20, 1.5), (30, 0.9), (40, 0.7)]
    );
    assert_eq!(
        steps_and_values(&m, "stdout/worker-0", "accuracy"),
        [(40, 0.93)]
    );

    // The same points are in event files, one per attempt, for TensorBoard.
    let stdout_dir = tb.join("stdout/worker-0");
    let files = std::fs::read_dir(&stdout_dir).unwrap().count();
    assert_eq!(files, 2);
    let mut r = RunReader::new(&stdout_dir);
    assert!(r.poll().unwrap().is_empty());
    let from_events: Vec<(i64, f64)> = r.run().tags["cost"]
        .points()
        .iter()
        .map(|p| (p.step, p.value))
        .collect();
    assert_eq!(
        from_events,
        [
            (10, 2.0),
            (20, 1.5),
            (30, f64::from(0.9f32)),
            (40, f64::from(0.7f32))
        ],
        "stored as 32-bit floats"
    );

    // A reader polling again sees only what is new, and a second collector (another
    // process) continues where the first stopped.
    append(&job.join("logs/worker-1/attempt-0.log"), "loss=3\nloss=2\n");
    let mut other = Collector::open(&job, &tb, StdoutParser::for_spec(None).unwrap()).unwrap();
    assert_eq!(other.collect(true).unwrap(), 2);
    assert!(m.poll().unwrap().is_empty());
    assert_eq!(
        steps_and_values(&m, "stdout/worker-1", "loss"),
        [(1, 3.0), (2, 2.0)]
    );
    assert_eq!(steps_and_values(&m, "stdout/worker-0", "cost").len(), 4);
}

#[test]
fn event_files_the_replicas_write_are_part_of_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job");
    let tb = job.join("tensorboard");
    let mut w = trainctl_metrics::writer::EventWriter::append(
        tb.join("train/events.out.tfevents.1.host"),
        1.0,
    )
    .unwrap();
    w.add_scalar("loss", 1, 1.0, 0.5);
    w.flush().unwrap();
    let mut m = JobMetrics::new(&job, &tb);
    m.poll().unwrap();
    assert_eq!(steps_and_values(&m, "train", "loss"), [(1, 0.5)]);
    w.add_scalar("loss", 2, 2.0, 0.25);
    w.flush().unwrap();
    m.poll().unwrap();
    assert_eq!(steps_and_values(&m, "train", "loss"), [(1, 0.5), (2, 0.25)]);
}
