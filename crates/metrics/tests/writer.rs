//! The writer: TensorBoard's own loader reads back exactly the points trainctl wrote.

mod common;

use trainctl_metrics::run_reader::RunReader;
use trainctl_metrics::writer::{event_file_name, EventWriter};

#[test]
fn tensorboard_reads_back_exactly_the_points_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(event_file_name(1_700_000_000.0, "trainctl"));
    let mut written: Vec<(&str, i64, f64, f32)> = Vec::new();
    for step in 0..300i64 {
        written.push((
            "loss",
            step,
            1_700_000_000.0 + step as f64 / 8.0,
            2.5 / (step + 1) as f32,
        ));
        if step % 50 == 0 {
            written.push((
                "eval/accuracy",
                step * 10,
                1_700_000_100.5,
                -0.1 * step as f32,
            ));
        }
    }
    written.push(("big step", i64::from(i32::MAX) * 4, 1_700_000_200.25, 1e30));
    // Two sessions appending to one file, as the collector does between passes.
    let (first, second) = written.split_at(100);
    for part in [first, second] {
        let mut w = EventWriter::append(&path, 1_700_000_000.0).unwrap();
        for (tag, step, wall, value) in part {
            w.add_scalar(tag, *step, *wall, *value);
        }
        w.flush().unwrap();
    }

    let seen = common::python_json("read_events.py", &[dir.path()]);
    assert_eq!(
        seen["scalars_tags"],
        serde_json::json!(["big step", "eval/accuracy", "loss"]),
        "TensorBoard's scalars plugin lists every tag"
    );
    for tag in ["loss", "eval/accuracy", "big step"] {
        let want: Vec<serde_json::Value> = written
            .iter()
            .filter(|w| w.0 == tag)
            .map(|(_, step, wall, value)| serde_json::json!([step, f64::from(*value), wall]))
            .collect();
        assert_eq!(seen["points"][tag], serde_json::Value::Array(want), "{tag}");
    }

    // trainctl's reader agrees.
    let mut reader = RunReader::new(dir.path());
    assert!(reader.poll().unwrap().is_empty());
    let loss = &reader.run().tags["loss"];
    assert_eq!(loss.points().len(), 300);
    assert_eq!(loss.points()[7].value, f64::from(2.5f32 / 8.0));
}
