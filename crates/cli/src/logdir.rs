//! `trainctl metrics --logdir PATH`: the runs of any TensorBoard event files, found by a walk
//! that skips what it cannot read (a warning names each), says where it is when it takes a
//! while (on stderr), and names the path in every error.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use trainctl_backend::run::warn;
use trainctl_metrics::event_file::EventFileReader;
use trainctl_metrics::run_reader::{discover_runs, RunReader, Walked};
use trainctl_metrics::series::Run;

/// A walk shorter than this shows no progress.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// Then it says where it is this often.
const EVERY: Duration = Duration::from_secs(1);

/// The runs of an event file, or of every directory under `path` that holds event files.
pub fn read_logdir(path: &Path) -> Result<Vec<(String, Run)>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        let mut run = Run::default();
        warn(&EventFileReader::new(path).poll(&mut run)?);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        return Ok(vec![(name.into_owned(), run)]);
    }
    let stderr = io::stderr();
    let tty = stderr.is_terminal();
    let mut progress = WalkProgress::new(stderr.lock(), tty, QUIET_FOR, EVERY);
    let found = discover_runs(path, &mut |walked| progress.observe(walked))?;
    progress.finish(path);
    let mut runs = Vec::new();
    for (name, dir) in found {
        let mut reader = RunReader::new(dir);
        match reader.poll() {
            Ok(problems) => warn(&problems),
            Err(e) => {
                eprintln!("warning: skipped run {name}: {e}");
                continue;
            }
        }
        runs.push((name, reader.run().clone()));
    }
    Ok(runs)
}

/// Reports a walk on `out`: each skipped entry at once, and after `quiet_for`, every `every`,
/// how far it got (one line each, or one line rewritten in place on a terminal).
struct WalkProgress<W: Write> {
    out: W,
    tty: bool,
    started: Instant,
    quiet_for: Duration,
    every: Duration,
    last: Option<Instant>,
    dirs: usize,
    runs: usize,
}

impl<W: Write> WalkProgress<W> {
    fn new(out: W, tty: bool, quiet_for: Duration, every: Duration) -> Self {
        WalkProgress {
            out,
            tty,
            started: Instant::now(),
            quiet_for,
            every,
            last: None,
            dirs: 0,
            runs: 0,
        }
    }

    /// Takes in one step of the walk. Progress is best effort: a failed write is ignored.
    fn observe(&mut self, walked: Walked<'_>) {
        match walked {
            Walked::Skipped { error, .. } => {
                self.end_line();
                let _ = writeln!(self.out, "warning: skipped {error}");
            }
            Walked::Dir { path, dirs, runs } => {
                (self.dirs, self.runs) = (dirs, runs);
                let now = Instant::now();
                let due = match self.last {
                    None => now.duration_since(self.started) >= self.quiet_for,
                    Some(last) => now.duration_since(last) >= self.every,
                };
                if due {
                    self.last = Some(now);
                    let line = format!(
                        "looking for event files: {dirs} directories, {runs} runs so far, in {}",
                        path.display()
                    );
                    let _ = if self.tty {
                        write!(self.out, "\r\x1b[2K{line}")
                    } else {
                        writeln!(self.out, "{line}")
                    };
                }
            }
        }
    }

    /// Ends an in-place progress line, so that what follows starts on its own.
    fn end_line(&mut self) {
        if self.tty && self.last.is_some() {
            let _ = write!(self.out, "\r\x1b[2K");
        }
    }

    /// After a walk that showed progress, says how it ended.
    fn finish(&mut self, root: &Path) {
        if self.last.is_some() {
            self.end_line();
            let _ = writeln!(
                self.out,
                "looked through {} directories under {}: {} runs",
                self.dirs,
                root.display(),
                self.runs
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &Path, dirs: usize, runs: usize) -> Walked<'_> {
        Walked::Dir { path, dirs, runs }
    }

    #[test]
    fn a_long_walk_says_where_it_is_and_how_it_ended() {
        let mut p = WalkProgress::new(Vec::new(), false, Duration::ZERO, Duration::ZERO);
        p.observe(dir(Path::new("/data/a"), 1, 0));
        p.observe(Walked::Skipped {
            error: io::Error::other("/data/locked: Permission denied"),
        });
        p.observe(dir(Path::new("/data/b"), 2, 1));
        p.finish(Path::new("/data"));
        let text = String::from_utf8(p.out).unwrap();
        assert_eq!(
            text,
            "looking for event files: 1 directories, 0 runs so far, in /data/a\n\
             warning: skipped /data/locked: Permission denied\n\
             looking for event files: 2 directories, 1 runs so far, in /data/b\n\
             looked through 2 directories under /data: 1 runs\n"
        );
    }

    #[test]
    fn a_short_walk_is_quiet_but_still_warns() {
        let mut p = WalkProgress::new(Vec::new(), true, Duration::from_secs(60), EVERY);
        p.observe(dir(Path::new("/data"), 1, 1));
        p.observe(Walked::Skipped {
            error: io::Error::other("/data/x: Permission denied"),
        });
        p.finish(Path::new("/data"));
        assert_eq!(
            String::from_utf8(p.out).unwrap(),
            "warning: skipped /data/x: Permission denied\n"
        );
    }
}
