//! Properties of the metrics parsers over generated input (proptest; the libFuzzer targets
//! in fuzz/ go further): printed lines never panic the stdout parser and give only finite,
//! named values; Katib pairs and progress lines read back what was printed; any bytes in an
//! event file never panic the reader; written series read back exactly, also when the file
//! is read while it is being written, and a damaged file gives no point that was not written.

use std::io::Write;

use proptest::prelude::*;
use trainctl_metrics::event_file::EventFileReader;
use trainctl_metrics::series::{Point, Run};
use trainctl_metrics::stdout::StdoutParser;
use trainctl_metrics::writer::EventWriter;

/// Lines a training script might print, and lines that only look like it.
fn printed_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "(?s).{0,80}",
        "([A-Za-z_ ]{0,6}[:=] ?[-+0-9.eE]{0,12}(of [0-9]{1,3})?[a-z%]{0,3}[,; ]{0,2}){0,5}",
        "(Step: [0-9]{1,3}, )?[A-Za-z]{1,5}[:=] ?-?[0-9]{1,3}(\\.[0-9]*)?[eE][0-9]{3}",
    ]
}

/// A metric name as scripts print them.
fn metric_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn values() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        -1e6f64..1e6
    ]
}

/// Steps in increasing order with their values.
fn series() -> impl Strategy<Value = Vec<(i64, f32)>> {
    prop::collection::btree_map(any::<i64>(), any::<f32>(), 0..40)
        .prop_map(|m| m.into_iter().collect())
}

fn write_series(path: &std::path::Path, tag: &str, points: &[(i64, f32)]) {
    let mut w = EventWriter::append(path, 1.0).unwrap();
    for (step, value) in points {
        w.add_scalar(tag, *step, 2.0, *value);
    }
    w.flush().unwrap();
}

fn points_of(run: &Run, tag: &str) -> Vec<(i64, u64)> {
    run.tags
        .get(tag)
        .map(|s| {
            s.points()
                .iter()
                .map(|p: &Point| (p.step, p.value.to_bits()))
                .collect()
        })
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_lines_give_only_finite_named_values(line in printed_line()) {
        let parsed = StdoutParser::for_spec(None).unwrap().parse(&line);
        for (name, value) in &parsed.metrics {
            prop_assert!(!name.is_empty());
            prop_assert!(value.is_finite(), "{name}={value} from {line:?}");
        }
    }

    #[test]
    fn katib_pairs_read_back_what_was_printed(
        pairs in prop::collection::btree_map(metric_name(), values(), 1..5),
    ) {
        let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let parsed = StdoutParser::for_spec(None).unwrap().parse(&line.join(" "));
        let read: std::collections::BTreeMap<String, f64> = parsed.metrics.into_iter().collect();
        prop_assert_eq!(read, pairs);
    }

    #[test]
    fn progress_lines_read_back_step_epoch_batch_and_metrics(
        step in 0i64..i64::MAX, epoch in 0u64..1000, batch in 1u64..1000, of in 1u64..1000,
        loss in values(),
    ) {
        let line = format!("Step: {step}, Epoch: {epoch}, Batch: {batch} of {of}, Loss: {loss}");
        let parsed = StdoutParser::for_spec(None).unwrap().parse(&line);
        prop_assert_eq!(parsed.step, Some(step));
        let progress = parsed.progress.unwrap();
        prop_assert_eq!(progress.epoch, Some(epoch));
        prop_assert_eq!(progress.batch, Some((batch, of)));
        prop_assert_eq!(parsed.metrics, vec![("loss".to_string(), loss)]);
    }

    #[test]
    fn any_bytes_in_an_event_file_never_panic_the_reader(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.out.tfevents.1.x");
        std::fs::write(&path, &bytes).unwrap();
        EventFileReader::new(&path).poll(&mut Run::default()).unwrap();
    }

    #[test]
    fn written_series_read_back_exactly_even_while_being_written(
        points in series(), cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("events.out.tfevents.1.whole");
        write_series(&whole, "loss", &points);
        let bytes = std::fs::read(&whole).unwrap();
        let want: Vec<(i64, u64)> =
            points.iter().map(|(s, v)| (*s, f64::from(*v).to_bits())).collect();

        let growing = dir.path().join("events.out.tfevents.1.growing");
        let at = cut.index(bytes.len() + 1);
        std::fs::write(&growing, &bytes[..at]).unwrap();
        let mut reader = EventFileReader::new(&growing);
        let mut run = Run::default();
        prop_assert!(reader.poll(&mut run).unwrap().is_empty());
        let mut file = std::fs::OpenOptions::new().append(true).open(&growing).unwrap();
        file.write_all(&bytes[at..]).unwrap();
        prop_assert!(reader.poll(&mut run).unwrap().is_empty());
        prop_assert_eq!(points_of(&run, "loss"), want);
    }

    #[test]
    fn a_damaged_event_file_gives_no_point_that_was_not_written(
        points in series(), at in any::<prop::sample::Index>(), flip in 1u8..,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.out.tfevents.1.x");
        write_series(&path, "loss", &points);
        let mut bytes = std::fs::read(&path).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        std::fs::write(&path, &bytes).unwrap();
        let mut run = Run::default();
        EventFileReader::new(&path).poll(&mut run).unwrap();
        let written: Vec<(i64, u64)> =
            points.iter().map(|(s, v)| (*s, f64::from(*v).to_bits())).collect();
        for tag in run.tags.keys() {
            prop_assert_eq!(tag, "loss");
        }
        for p in points_of(&run, "loss") {
            prop_assert!(written.contains(&p), "{p:?} was never written");
        }
    }
}
