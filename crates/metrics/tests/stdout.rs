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
fn katib_name_value_pairs_are_metrics_without_a_step() {
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
fn a_step_pair_gives_the_line_its_step_and_is_no_metric() {
    let p = builtin();
    let line = p.parse("accuracy=0.93 loss=0.2 step=120");
    assert_eq!(line.step, Some(120));
    assert_eq!(metrics(&line), [("accuracy", 0.93), ("loss", 0.2)]);
    // A step that is no whole number stays a metric, and the line has no step.
    let odd = p.parse("step=1.5 loss=0.2");
    assert_eq!(odd.step, None);
    assert_eq!(metrics(&odd), [("step", 1.5), ("loss", 0.2)]);
}

#[test]
fn the_progress_form_gives_the_step_its_metrics_and_the_progress() {
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

/// A job file regex with a step and two metrics, under `auto`.
fn iter_loss_acc() -> StdoutParser {
    with_regex(
        MetricsFormat::Auto,
        r"iter (?P<step>\d+) loss (?P<loss>[\d.]+) acc (?P<acc>[\d.]+)",
    )
}

#[test]
fn a_job_file_regex_gives_a_metric_per_named_group_and_the_step() {
    let line = iter_loss_acc().parse("[12:00] iter 7 loss 0.5 acc 0.75");
    assert_eq!(line.step, Some(7));
    assert_eq!(metrics(&line), [("loss", 0.5), ("acc", 0.75)]);
}

#[test]
fn under_auto_the_builtin_formats_still_apply_beside_the_regex() {
    assert_eq!(metrics(&iter_loss_acc().parse("f1=0.5")), [("f1", 0.5)]);
}

#[test]
fn under_regex_only_the_regex_applies_and_name_value_groups_name_the_metric() {
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
}

#[test]
fn a_broken_part_of_a_progress_line_loses_only_that_part() {
    let line = builtin().parse("Step: 5, Cost: ?, Batch: 3 of x, AvgTime: 2ms");
    assert_eq!(
        (line.step, metrics(&line)),
        (Some(5), vec![("avgtime", 2.0)])
    );
}

#[test]
fn a_bad_or_missing_regex_is_a_clear_error() {
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
}

#[test]
fn format_none_parses_nothing() {
    let none = StdoutParser::for_spec(Some(&MetricsSpec {
        format: MetricsFormat::None,
        regex: None,
    }))
    .unwrap();
    assert!(!none.is_enabled());
    assert!(none.parse("loss=1").metrics.is_empty());
}

#[test]
fn a_value_that_is_no_finite_number_is_ignored() {
    // Found by proptest (tests/properties.rs): `1E400` overflows to infinity.
    let p = builtin();
    assert_eq!(metrics(&p.parse("loss=1e999 acc=0.5")), [("acc", 0.5)]);
    assert_eq!(metrics(&p.parse("Step: 0, a:0.1E400, b: 2")), [("b", 2.0)]);
    let r = with_regex(MetricsFormat::Regex, r"loss (?P<loss>\S+)");
    assert_eq!(metrics(&r.parse("loss nan")), []);
    assert_eq!(metrics(&r.parse("loss inf")), []);
    assert_eq!(metrics(&r.parse("loss 1")), [("loss", 1.0)]);
}
