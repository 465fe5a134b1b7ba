//! A progress bar for `run` and `logs -f`: when the replicas print progress lines
//! (`Step: 120, Epoch: 2, Batch: 40 of 60, ...`), a bar on stderr shows the epoch out of the
//! job's `epochs` hyperparameter, the step, the step rate and the time left. Log lines pass
//! through unchanged above it. Without a terminal there is no bar: the lines alone.

use std::io::{self, IsTerminal, Write};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trainctl_metrics::stdout::{Progress, StdoutParser};
use trainctl_spec::{HyperValue, TrainingJob};

/// `out` with a progress bar when `live` (the logs are followed) and both stdout and stderr
/// are terminals; else `out` as it is.
pub fn wrap<'a>(out: impl Write + 'a, job: &TrainingJob, live: bool) -> Box<dyn Write + 'a> {
    if live && io::stdout().is_terminal() && io::stderr().is_terminal() {
        Box::new(WithBar {
            out,
            tracker: Tracker::new(job),
            bar: None,
            pending: Vec::new(),
        })
    } else {
        Box::new(out)
    }
}

/// Where training stands, from the progress lines of one replica (the first to print one).
pub struct Tracker {
    parser: StdoutParser,
    epochs: Option<u64>,
    leader: Option<String>,
    latest: Option<Progress>,
    first: Option<(i64, Instant)>,
}

/// What the bar shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// Bar length and position, when the total is known.
    pub bar: Option<(u64, u64)>,
    /// `Epoch 2/5 · step 120 · 14.2 steps/s`.
    pub message: String,
}

impl Tracker {
    /// A tracker for `job`: its `epochs` hyperparameter is the total, when it has one.
    pub fn new(job: &TrainingJob) -> Self {
        let epochs = match job.spec.hyperparameters.get("epochs") {
            Some(HyperValue::Int(n)) if *n > 0 => Some(*n as u64),
            _ => None,
        };
        Tracker {
            parser: StdoutParser::for_spec(None).expect("the built-in formats always work"),
            epochs,
            leader: None,
            latest: None,
            first: None,
        }
    }

    /// Reads one output line (with or without a `[replica] ` prefix); true when it moved
    /// the progress on.
    pub fn observe(&mut self, line: &str) -> bool {
        let (replica, text) = match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
            Some((replica, text)) => (replica, text),
            None => ("", line),
        };
        let Some(progress) = self.parser.parse(text).progress else {
            return false;
        };
        if self.leader.get_or_insert_with(|| replica.to_string()) != replica {
            return false;
        }
        self.first.get_or_insert((progress.step, Instant::now()));
        self.latest = Some(progress);
        true
    }

    /// The bar's figures now.
    pub fn shown(&self) -> Option<Shown> {
        let p = self.latest?;
        let mut parts = Vec::new();
        if let Some(epoch) = p.epoch {
            parts.push(match self.epochs {
                Some(total) => format!("Epoch {epoch}/{total}"),
                None => format!("Epoch {epoch}"),
            });
        }
        parts.push(format!("step {}", p.step));
        if let Some((step, since)) = self.first {
            let secs = since.elapsed().as_secs_f64();
            if p.step > step && secs > 0.0 {
                parts.push(format!("{:.1} steps/s", (p.step - step) as f64 / secs));
            }
        }
        let bar = match (self.epochs, p.epoch, p.batch) {
            (Some(total), Some(epoch), Some((batch, per_epoch))) => Some((
                total * per_epoch,
                (epoch.saturating_sub(1) * per_epoch + batch).min(total * per_epoch),
            )),
            (Some(total), Some(epoch), None) => Some((total, epoch.min(total))),
            _ => None,
        };
        Some(Shown {
            bar,
            message: parts.join(" · "),
        })
    }
}

/// Log lines written above a bar that follows them.
struct WithBar<W: Write> {
    out: W,
    tracker: Tracker,
    bar: Option<ProgressBar>,
    pending: Vec<u8>,
}

impl<W: Write> WithBar<W> {
    fn update(&mut self) {
        let Some(shown) = self.tracker.shown() else {
            return;
        };
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        bar.set_message(shown.message);
        match shown.bar {
            Some((len, pos)) => {
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg} [{wide_bar}] {percent:>3}% · ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_length(len);
                bar.set_position(pos);
            }
            None => bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} · {elapsed}")
                    .expect("valid template"),
            ),
        }
    }
}

impl<W: Write> Write for WithBar<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(buf.len());
        };
        let lines: Vec<u8> = self.pending.drain(..=end).collect();
        let mut moved = false;
        for line in String::from_utf8_lossy(&lines).lines() {
            moved |= self.tracker.observe(line);
        }
        let out = &mut self.out;
        let written = match &self.bar {
            Some(bar) => bar.suspend(|| out.write_all(&lines).and_then(|()| out.flush())),
            None => out.write_all(&lines),
        };
        if moved {
            self.update();
        }
        written.map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Drop for WithBar<W> {
    fn drop(&mut self) {
        let _ = self.out.write_all(&self.pending);
        let _ = self.out.flush();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(hyperparameters: &str) -> TrainingJob {
        let yaml = format!(
            "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: p}}\n\
             spec:\n  command: [x]\n  hyperparameters: {hyperparameters}\n  replicas: {{worker: {{count: 2}}}}\n"
        );
        trainctl_spec::parse_job_str("job.yaml", &yaml).expect("valid job")
    }

    #[test]
    fn follows_the_first_replica_that_reports_and_places_the_bar_by_epoch_and_batch() {
        let mut t = Tracker::new(&job("{epochs: 5}"));
        assert!(!t.observe("[worker-0] loading data"));
        assert_eq!(t.shown(), None);
        assert!(t.observe("[worker-1] Step: 40, Epoch: 2, Batch: 10 of 20, Cost: 0.5"));
        assert!(!t.observe("[worker-0] Step: 90, Epoch: 5, Batch: 10 of 20, Cost: 0.5"));
        let shown = t.shown().unwrap();
        assert_eq!(shown.bar, Some((100, 30)));
        assert!(
            shown.message.starts_with("Epoch 2/5 · step 40"),
            "{}",
            shown.message
        );
    }

    #[test]
    fn without_an_epochs_hyperparameter_there_is_a_count_but_no_bar() {
        let mut t = Tracker::new(&job("{lr: 0.1}"));
        assert!(t.observe("Step: 7, Epoch: 1, Cost: 2"));
        let shown = t.shown().unwrap();
        assert_eq!(shown.bar, None);
        assert_eq!(shown.message, "Epoch 1 · step 7");
    }
}
