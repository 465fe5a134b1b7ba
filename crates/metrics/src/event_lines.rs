//! The scalars of a job's own event files as metric lines. The collector beside a cluster
//! job's TensorBoard reads the event files the job writes in its logDir (e.g. Keras'
//! TensorBoard callback, `tf.summary`; not those the collector writes itself under
//! `stdout/`) as they grow, and prints each new scalar on its own log as
//! `[trainctl events <run>] <tag>=<value> step=<step>`. Whoever reads that log through the
//! API (the operator, for a trial's objective) takes the scalars back with [`parse_line`];
//! the prefix keeps them apart from anything else the collector prints. Once the job has
//! ended and its last scalars are printed, the collector prints [`END_LINE`].

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::collect::STDOUT_RUNS;
use crate::event_file::{EventFileReader, Problem};
use crate::run_reader::{discover_runs, event_files, Walked};
use crate::series::Point;

/// How a metric line of an event file's scalar starts; the run and `] ` follow.
pub const LINE_PREFIX: &str = "[trainctl events ";

/// What the collector prints once the job has ended and every scalar of its event files is
/// printed.
pub const END_LINE: &str = "[trainctl events end of job]";

/// One scalar of an event file, as a metric line carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventScalar {
    /// The run: the event file's directory relative to the logDir (`.` for the logDir).
    pub run: String,
    /// The scalar's tag.
    pub tag: String,
    /// The event's step.
    pub step: i64,
    /// The value.
    pub value: f64,
}

/// The metric line of `scalar`.
pub fn format_line(scalar: &EventScalar) -> String {
    let EventScalar {
        run,
        tag,
        step,
        value,
    } = scalar;
    format!("{LINE_PREFIX}{run}] {tag}={value} step={step}")
}

/// The scalar a metric line carries; None for any other line.
pub fn parse_line(line: &str) -> Option<EventScalar> {
    let (run, rest) = line.strip_prefix(LINE_PREFIX)?.split_once("] ")?;
    let (pair, step) = rest.rsplit_once(" step=")?;
    let (tag, value) = pair.rsplit_once('=')?;
    Some(EventScalar {
        run: run.to_string(),
        tag: tag.to_string(),
        step: step.parse().ok()?,
        value: value.parse().ok().filter(|v: &f64| v.is_finite())?,
    })
}

/// Follows every event file under a logDir but the collector's own (`stdout/`).
#[derive(Debug)]
pub struct OwnEventFiles {
    root: PathBuf,
    /// Each file's reader and run, in path order (within a run, creation order).
    files: BTreeMap<PathBuf, (String, EventFileReader)>,
}

impl OwnEventFiles {
    /// Follows the event files under `root`; nothing is read until [`poll`](Self::poll).
    pub fn new(root: &Path) -> Self {
        OwnEventFiles {
            root: root.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    /// The scalars written since the last poll (finite values only), and the records and
    /// directories that had to be skipped, as messages naming them.
    pub fn poll(&mut self) -> io::Result<(Vec<EventScalar>, Vec<String>)> {
        let mut problems = Vec::new();
        let runs = discover_runs(&self.root, &mut |walked| {
            if let Walked::Skipped { error } = walked {
                problems.push(error.to_string());
            }
        })?;
        for (run, dir) in runs {
            if run == STDOUT_RUNS || run.starts_with(&format!("{STDOUT_RUNS}/")) {
                continue;
            }
            for path in event_files(&dir)? {
                self.files
                    .entry(path.clone())
                    .or_insert_with(|| (run.clone(), EventFileReader::new(path)));
            }
        }
        let mut scalars = Vec::new();
        for (run, reader) in self.files.values_mut() {
            let skipped = reader.poll_scalars(&mut |tag, Point { step, value, .. }| {
                if value.is_finite() {
                    scalars.push(EventScalar {
                        run: run.clone(),
                        tag: tag.to_string(),
                        step,
                        value,
                    });
                }
            })?;
            problems.extend(skipped.iter().map(Problem::to_string));
        }
        Ok((scalars, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gives_back_its_scalar_and_other_lines_none() {
        let scalar = EventScalar {
            run: "validation".into(),
            tag: "epoch_accuracy".into(),
            step: 3,
            value: 0.800000011920929,
        };
        let line = format_line(&scalar);
        assert_eq!(
            line,
            "[trainctl events validation] epoch_accuracy=0.800000011920929 step=3"
        );
        assert_eq!(parse_line(&line), Some(scalar));
        assert_eq!(parse_line("accuracy=0.8 step=3"), None);
        assert_eq!(parse_line(END_LINE), None);
        assert_eq!(parse_line("[trainctl events .] loss=nan step=1"), None);
    }
}
