//! The stdout parser: each line format, and malformed lines ignored.

use trainctl_metrics::stdout::{Line, Progress, StdoutParser};
use trainctl_spec::{MetricsFormat, MetricsSpec};

fn builtin() -> StdoutParser {
    StdoutParser::for_spec(None).unwrap()
}

fn with_regex(format: MetricsFormat, regex: &str) -> StdoutParser {
    StdoutParser::for_spec(Some(&MetricsSpec {
        format,
        regex: Some(regex.into()),
    }))
    .unwrap()
}

fn metrics(line: &Line) -> Vec<(&str, f64)> {
    line.metrics.iter().map(|(n, v)| (n.as_str(), *v)).collect()
}

#[test]
fn katib_name_value_pairs() {
    let p = builtin();
    let line = p.parse("epoch 3: loss=0.25, accuracy = 9.5e-1 lr=-1E-3 top-5/acc=.5");
    assert_eq!(
        metrics(&line),
        [
            ("loss", 0.25),
            ("accuracy", 0.95),
            ("lr", -0.001),
            ("top-5/acc", 0.5)
        ]
    );
    assert_eq!(line.step, None);
    assert_eq!(metrics(&p.parse("accuracy=0.951")), [("accuracy", 0.951)]);
}

#[test]
fn the_progress_form() {
    let line = builtin().parse("Step: 120, Epoch: 2, Batch: 40 of 60, Cost: 0.53, AvgTime: 3.1ms");
    assert_eq!(line.step, Some(120));
    assert_eq!(metrics(&line), [("cost", 0.53), ("avgtime", 3.1)]);
    assert_eq!(
        line.progress,
        Some(Progress {
            step: 120,
            epoch: Some(2),
            batch: Some((40, 60)),
        })
    );
}

#[test]
fn a_regex_from_the_job_file() {
    let p = with_regex(
        MetricsFormat::Auto,
        r"iter (?P<step>\d+) loss (?P<loss>[\d.]+) acc (?P<acc>[\d.]+)",
    );
    let line = p.parse("[12:00] iter 7 loss 0.5 acc 0.75");
    assert_eq!(line.step, Some(7));
    assert_eq!(metrics(&line), [("loss", 0.5), ("acc", 0.75)]);
    // Built-in formats still apply to other lines under `auto`, not under `regex`.
    assert_eq!(metrics(&p.parse("f1=0.5")), [("f1", 0.5)]);
    let only = with_regex(MetricsFormat::Regex, r"(?P<name>\w+) is (?P<value>[\d.]+)");
    assert_eq!(metrics(&only.parse("recall is 0.8")), [("recall", 0.8)]);
    assert!(only.parse("f1=0.5").metrics.is_empty());
}

#[test]
fn malformed_lines_are_ignored() {
    let p = builtin();
    for line in [
        "",
        "accuracy=abc",
        "=0.5",
        "a==3",
        "x=3abc",
        "loss=nan",
        "Step: abc, Cost: 0.5",
        "Step: 1.5, Cost: 0.5",
        "Epoch: 2, Cost: 0.5",
        "Test-Accuracy: 0.951",
        "Traceback (most recent call last):",
        "\u{fffd}\u{fffd} binary junk \0\x01",
    ] {
        assert_eq!(p.parse(line), Line::default(), "{line:?}");
    }
    // A broken part of a progress line loses only that part.
    let line = p.parse("Step: 5, Cost: ?, Batch: 3 of x, AvgTime: 2ms");
    assert_eq!(
        (line.step, metrics(&line)),
        (Some(5), vec![("avgtime", 2.0)])
    );
}

#[test]
fn a_bad_regex_is_a_clear_error() {
    let err = |format, regex: Option<&str>| {
        StdoutParser::for_spec(Some(&MetricsSpec {
            format,
            regex: regex.map(Into::into),
        }))
        .unwrap_err()
        .to_string()
    };
    assert!(err(MetricsFormat::Auto, Some("(unclosed")).contains("unclosed group"));
    assert!(err(MetricsFormat::Auto, Some(r"loss (\d+)")).contains("no named group"));
    assert!(err(MetricsFormat::Regex, None).contains("no regex is given"));
    let none = StdoutParser::for_spec(Some(&MetricsSpec {
        format: MetricsFormat::None,
        regex: None,
    }))
    .unwrap();
    assert!(!none.is_enabled());
    assert!(none.parse("loss=1").metrics.is_empty());
}
