//! The Rust side of `bench/metrics_reader.py`.
//!
//! `bench_events write FILE POINTS TAGS`: writes POINTS scalars spread over TAGS tags to one
//! event file, one value per event in `simple_value` form, as tensorboardX and torch write them.
//! `bench_events read FILE`: reads it with trainctl's reader and prints
//! `{"points": N, "tags": T, "problems": P}`.

use std::process::ExitCode;

use prost::Message;
use trainctl_metrics::event_file::EventFileReader;
use trainctl_metrics::proto::{event::What, summary_value::Value, Event, Summary, SummaryValue};
use trainctl_metrics::record::write_record;
use trainctl_metrics::series::Run;

fn write(path: &str, points: usize, tags: usize) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(points * 48);
    let version = Event {
        wall_time: 1.7e9,
        step: 0,
        what: Some(What::FileVersion("brain.Event:2".into())),
    };
    write_record(&mut out, &version.encode_to_vec());
    for i in 0..points {
        let step = (i / tags) as i64;
        let value = SummaryValue {
            tag: format!("tag{}", i % tags),
            metadata: None,
            value: Some(Value::SimpleValue((step as f32).sin())),
        };
        let event = Event {
            wall_time: 1.7e9 + step as f64 * 0.01,
            step,
            what: Some(What::Summary(Summary { value: vec![value] })),
        };
        write_record(&mut out, &event.encode_to_vec());
    }
    std::fs::write(path, out)
}

fn read(path: &str) -> std::io::Result<()> {
    let mut run = Run::default();
    let problems = EventFileReader::new(path).poll(&mut run)?;
    let points: usize = run.tags.values().map(|s| s.points().len()).sum();
    println!(
        "{{\"points\": {points}, \"tags\": {}, \"problems\": {}}}",
        run.tags.len(),
        problems.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |s: &String| s.parse::<usize>().ok();
    let result = match args.as_slice() {
        [cmd, path, n, t] if cmd == "write" => match (number(n), number(t)) {
            (Some(n), Some(t)) if t > 0 => write(path, n, t),
            _ => {
                eprintln!("POINTS and TAGS must be positive integers");
                return ExitCode::from(2);
            }
        },
        [cmd, path] if cmd == "read" => read(path),
        _ => {
            eprintln!("usage: bench_events write FILE POINTS TAGS | bench_events read FILE");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
