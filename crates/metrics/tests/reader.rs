//! The event file reader against files written by tensorboardX and TensorBoard's own writers
//! (generated at test time by tests/py/write_events.py), cut short and corrupted.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use trainctl_metrics::event_file::EventFileReader;
use trainctl_metrics::record::{frame, Frame};
use trainctl_metrics::run_reader::{discover_runs, RunReader};
use trainctl_metrics::series::Run;

/// Writes the runs of write_events.py into a temp dir; returns it and the expected points.
fn written_runs() -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    let expected = common::python_json("write_events.py", &[dir.path()]);
    (dir, expected)
}

/// `[[step, value], ...]` of every tag of a run.
fn as_json(run: &Run) -> Value {
    run.tags
        .iter()
        .map(|(tag, series)| {
            let points: Vec<Value> = series
                .points()
                .iter()
                .map(|p| serde_json::json!([p.step, p.value]))
                .collect();
            (tag.clone(), Value::Array(points))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn read_run(dir: &Path) -> Run {
    let mut reader = RunReader::new(dir);
    let problems = reader.poll().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    reader.run().clone()
}

/// The only event file of a run.
fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// Start offsets of the records of an intact file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while let Frame::Record { consumed, .. } = frame(&bytes[at..]) {
        offsets.push(at);
        at += consumed;
    }
    assert_eq!(at, bytes.len(), "the file is intact");
    offsets
}

#[test]
fn every_scalar_encoding_from_every_writer_reads_back_exactly() {
    let (dir, expected) = written_runs();
    let runs = discover_runs(dir.path(), &mut |_| {}).unwrap();
    let names: Vec<&str> = runs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["restart", "tensorboard", "tensorboardx", "tensors"]);
    for (name, path) in &runs {
        assert_eq!(as_json(&read_run(path)), expected[name], "run {name}");
    }
    // Spelled out, so the test says what matters: non-scalars are left out...
    let tensors = read_run(&dir.path().join("tensors"));
    for skipped in ["vector", "text", "image"] {
        assert!(
            !tensors.tags.contains_key(skipped),
            "{skipped} is no scalar"
        );
    }
    assert_eq!(tensors.tags.len(), 8);
    // ...and after restarts only the run that went on is left.
    let restart = read_run(&dir.path().join("restart"));
    let loss: Vec<(i64, f64)> = restart.tags["loss"]
        .points()
        .iter()
        .map(|p| (p.step, p.value))
        .collect();
    assert_eq!(
        &loss[..],
        &[
            (0, 100.0),
            (1, 101.0),
            (2, 102.0),
            (3, 103.0),
            (4, 104.0),
            (5, 205.0),
            (6, 206.0),
            (7, 207.0),
            (8, -8.0),
            (9, -9.0),
            (10, -10.0),
            (11, -11.0),
            (12, -12.0),
            (13, -13.0),
            (14, -14.0)
        ]
    );
}

#[test]
fn a_file_cut_anywhere_is_read_in_full_once_the_rest_arrives() {
    let (dir, _) = written_runs();
    let source = only_file(&dir.path().join("tensorboard"));
    let bytes = std::fs::read(&source).unwrap();
    let whole = read_run(source.parent().unwrap());
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("events.out.tfevents.1.test");
    for cut in 0..bytes.len() {
        std::fs::write(&copy, &bytes[..cut]).unwrap();
        let mut reader = EventFileReader::new(&copy);
        let mut run = Run::default();
        assert!(reader.poll(&mut run).unwrap().is_empty(), "cut at {cut}");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&copy)
            .unwrap();
        std::io::Write::write_all(&mut file, &bytes[cut..]).unwrap();
        assert!(reader.poll(&mut run).unwrap().is_empty(), "cut at {cut}");
        assert_eq!(run, whole, "cut at {cut}");
    }
}

#[test]
fn corrupt_records_are_reported_and_skipped() {
    let (dir, _) = written_runs();
    let source = only_file(&dir.path().join("tensorboard"));
    let mut bytes = std::fs::read(&source).unwrap();
    let offsets = record_offsets(&bytes);
    // Record 0 is the file version; record n holds step n. Break the data of step 5 and
    // the length of step 8.
    bytes[offsets[5] + 14] ^= 0x40;
    bytes[offsets[8] + 1] ^= 0x01;
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("events.out.tfevents.1.test");
    std::fs::write(&copy, &bytes).unwrap();
    let mut reader = EventFileReader::new(&copy);
    let mut run = Run::default();
    let problems = reader.poll(&mut run).unwrap();
    let reported: Vec<(u64, &str)> = problems
        .iter()
        .map(|p| (p.offset, p.why.as_str()))
        .collect();
    assert_eq!(
        reported,
        [
            (offsets[5] as u64, "data checksum mismatch"),
            (offsets[8] as u64, "length checksum mismatch")
        ]
    );
    assert!(problems[0]
        .to_string()
        .contains("skipped a corrupt record at byte"));
    let steps: Vec<i64> = run.tags["accuracy"]
        .points()
        .iter()
        .map(|p| p.step)
        .collect();
    let mut want: Vec<i64> = (1..=20).collect();
    want.retain(|s| *s != 5 && *s != 8);
    assert_eq!(steps, want);
}
