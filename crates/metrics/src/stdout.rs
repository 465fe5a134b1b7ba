//! Metrics in what replicas print: Katib's `name=value` pairs (`step=N` among them gives the
//! line's step), the progress form
//! `Step: 120, Epoch: 2, Batch: 40 of 60, Cost: 0.53, AvgTime: 3.1ms`, and a regular
//! expression from the job file (`spec.metrics.regex`). Lines that match none are ignored, and
//! so are values that are no finite number.

use std::sync::LazyLock;

use regex::Regex;
use trainctl_spec::{MetricsFormat, MetricsSpec};

/// A decimal number, as printed by Python, C or Rust (no `nan`/`inf`).
const NUMBER: &str = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?";

/// A metric value: a number that is finite (`1e999` overflows, and `nan` or `inf` mean the
/// script printed no number), else `None`.
fn value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `name=value`; [`katib_pairs`] keeps the ones that stand alone.
static KATIB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"([A-Za-z_][\w.\-/]*)\s*=\s*({NUMBER})")).expect("valid regex")
});

/// Characters that may surround a `name=value` pair.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || ",;()[]{}".contains(c)
}

/// The `name=value` pairs of a line that stand alone: not part of `a==b` or `x=3abc`.
fn katib_pairs(line: &str) -> Vec<(String, f64)> {
    KATIB
        .captures_iter(line)
        .filter(|c| {
            let whole = c.get(0).expect("match");
            let before = line[..whole.start()].chars().next_back();
            let after = line[whole.end()..].chars().next();
            before.is_none_or(is_separator) && after.is_none_or(is_separator)
        })
        .filter_map(|c| Some((c[1].to_string(), value(&c[2])?)))
        .collect()
}

/// One `Key: value[unit] [of total]` part of a progress line.
static PROGRESS_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^([A-Za-z][\w\- ]*):\s*({NUMBER})([A-Za-z%]*)(?:\s+of\s+(\d+))?$"
    ))
    .expect("valid regex")
});

/// Where a replica is in its training, from a progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Global step.
    pub step: i64,
    /// Epoch, when the line says.
    pub epoch: Option<u64>,
    /// Batch within the epoch and batches per epoch, when the line says `Batch: 40 of 60`.
    pub batch: Option<(u64, u64)>,
}

/// What one line says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line {
    /// The step the line gives, if any; metrics without one belong to the last step seen.
    pub step: Option<i64>,
    /// Metric names and values.
    pub metrics: Vec<(String, f64)>,
    /// Set for progress lines.
    pub progress: Option<Progress>,
}

/// The job file asks for something that cannot work.
pub use trainctl_spec::MetricsRegexError as ParserError;

/// Parses lines by the formats a job asks for.
#[derive(Debug, Clone)]
pub struct StdoutParser {
    builtin: bool,
    custom: Option<Regex>,
}

impl StdoutParser {
    /// The parser for a job's `spec.metrics` (`None`: the built-in formats).
    pub fn for_spec(spec: Option<&MetricsSpec>) -> Result<Self, ParserError> {
        let default = MetricsSpec::default();
        let spec = spec.unwrap_or(&default);
        let custom = spec.compiled_regex()?;
        let builtin = spec.format == MetricsFormat::Auto;
        Ok(StdoutParser { builtin, custom })
    }

    /// Whether the parser reads anything at all.
    pub fn is_enabled(&self) -> bool {
        self.builtin || self.custom.is_some()
    }

    /// What `line` says. The job's regex goes first; the built-in formats only read lines
    /// it does not match, so no metric is counted twice.
    pub fn parse(&self, line: &str) -> Line {
        if let Some(parsed) = self.custom.as_ref().and_then(|re| by_regex(re, line)) {
            return parsed;
        }
        if !self.builtin {
            return Line::default();
        }
        if let Some(parsed) = progress_line(line) {
            return parsed;
        }
        let mut metrics = katib_pairs(line);
        // `step=N` (a whole number) is the line's step, not a metric.
        let step = metrics
            .iter()
            .position(|(name, v)| name == "step" && v.fract() == 0.0 && v.abs() < 9e15)
            .map(|i| metrics.remove(i).1 as i64);
        Line {
            step,
            metrics,
            ..Line::default()
        }
    }
}

/// A line the job's regex matches: its named groups.
fn by_regex(re: &Regex, line: &str) -> Option<Line> {
    let caps = re.captures(line)?;
    let mut parsed = Line {
        step: caps.name("step").and_then(|s| s.as_str().parse().ok()),
        ..Line::default()
    };
    if let (Some(name), Some(value)) = (caps.name("name"), caps.name("value")) {
        if let Some(v) = self::value(value.as_str()) {
            parsed.metrics.push((name.as_str().to_string(), v));
        }
    }
    for group in re.capture_names().flatten() {
        if matches!(group, "step" | "name" | "value") {
            continue;
        }
        if let Some(v) = caps.name(group).and_then(|m| value(m.as_str())) {
            parsed.metrics.push((group.to_string(), v));
        }
    }
    Some(parsed)
}

/// `Step: 120, Epoch: 2, Batch: 40 of 60, Cost: 0.53, AvgTime: 3.1ms`: the line must start
/// with an integer `Step`; every other numeric part is a metric named by its key in lower
/// case (`Cost` -> `cost`, `AvgTime` -> `avgtime`), except `Epoch` and `Batch`.
fn progress_line(line: &str) -> Option<Line> {
    let mut parts = line.trim().split(',').map(str::trim);
    let first = PROGRESS_PART.captures(parts.next()?)?;
    if !first[1].eq_ignore_ascii_case("step") || !first[3].is_empty() {
        return None;
    }
    let step: i64 = first[2].parse().ok()?;
    let mut progress = Progress {
        step,
        ..Progress::default()
    };
    let mut metrics = Vec::new();
    for part in parts {
        let Some(c) = PROGRESS_PART.captures(part) else {
            continue;
        };
        let key = c[1].trim().to_ascii_lowercase().replace([' ', '-'], "_");
        match (key.as_str(), c.get(4)) {
            ("epoch", _) => progress.epoch = c[2].parse().ok(),
            ("batch", Some(total)) => {
                progress.batch = c[2].parse().ok().zip(total.as_str().parse().ok());
            }
            (_, None) => {
                if let Some(v) = value(&c[2]) {
                    metrics.push((key, v));
                }
            }
            _ => {}
        }
    }
    Some(Line {
        step: Some(step),
        metrics,
        progress: Some(progress),
    })
}
