//! Reading replica logs: the last lines of an attempt, and following every replica of a job
//! live (across restarts) with a `[worker-1]` prefix per line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use trainctl_core::ReplicaId;

use crate::store::{Store, StoreError};

/// Which logs to show.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this replica (all when None).
    pub replica: Option<ReplicaId>,
    /// Only this attempt (the latest of each replica when None; while following, every new
    /// attempt in turn).
    pub attempt: Option<u32>,
    /// Start with only the last N lines of each attempt.
    pub tail: Option<usize>,
    /// Prefix each line with `[replica]`.
    pub prefix: bool,
}

/// The byte offset where the last `n` lines of `path` begin.
pub fn tail_offset(path: &Path, n: usize) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 64 * 1024];
    // A final newline ends the last line; it does not start a new one.
    let mut skip_last = true;
    while pos > 0 {
        let chunk = (pos as usize).min(buf.len());
        pos -= chunk as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..chunk])?;
        for i in (0..chunk).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 == len - 1 {
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
        skip_last = false;
    }
    Ok(0)
}

/// One log file being read incrementally.
struct Reader {
    label: String,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    staged: Vec<u8>,
}

impl Reader {
    /// Copies complete new lines to `out`; with `finish`, also a last unterminated line.
    fn pump(&mut self, out: &mut dyn Write, buf: &mut [u8], finish: bool) -> io::Result<bool> {
        let mut progressed = false;
        if let Ok(mut f) = File::open(&self.path) {
            f.seek(SeekFrom::Start(self.offset))?;
            loop {
                let n = f.read(buf)?;
                if n == 0 {
                    break;
                }
                progressed = true;
                self.offset += n as u64;
                self.emit(out, &buf[..n])?;
            }
        }
        if finish {
            self.finish(out)?;
        }
        Ok(progressed)
    }

    /// Writes the complete lines of `data` (after any partial line kept from before), each
    /// with the label, in one write; keeps the unterminated tail for later.
    fn emit(&mut self, out: &mut dyn Write, data: &[u8]) -> io::Result<()> {
        let Some(last) = memchr::memrchr(b'\n', data) else {
            self.partial.extend_from_slice(data);
            return Ok(());
        };
        let (complete, rest) = data.split_at(last + 1);
        if self.label.is_empty() {
            out.write_all(&self.partial)?;
            out.write_all(complete)?;
        } else {
            let label = self.label.as_bytes();
            self.staged.clear();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', complete) {
                self.staged.extend_from_slice(label);
                if start == 0 {
                    self.staged.extend_from_slice(&self.partial);
                }
                self.staged.extend_from_slice(&complete[start..=end]);
                start = end + 1;
            }
            out.write_all(&self.staged)?;
        }
        self.partial.clear();
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Writes what is left of an unterminated last line, with a newline.
    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            out.write_all(self.label.as_bytes())?;
            out.write_all(&self.partial)?;
            self.partial.clear();
        }
        Ok(())
    }
}

/// Prints the selected logs of `job` to `out`. With `follow`, keeps printing new output,
/// moving on to each new attempt, until `finished()` says the job is over and everything
/// written has been printed. While idle it polls every 20 ms; unparking the thread makes it
/// look again at once.
pub fn copy_logs(
    store: &Store,
    job: &str,
    sel: &Selection,
    out: &mut dyn Write,
    follow: bool,
    finished: &mut dyn FnMut(&Store) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut readers: BTreeMap<ReplicaId, (u32, Reader)> = BTreeMap::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        // Decide before reading, so output written before the job ended is never missed.
        let done = !follow || finished(store)?;
        let mut latest: BTreeMap<ReplicaId, (u32, PathBuf)> = BTreeMap::new();
        for a in store.attempts(job)? {
            if sel.replica.is_some_and(|r| r != a.replica) {
                continue;
            }
            if sel.attempt.is_some_and(|n| n != a.attempt) {
                continue;
            }
            latest.insert(a.replica, (a.attempt, a.log));
        }
        let mut progressed = false;
        for (id, (attempt, path)) in latest {
            let fresh = |offset| Reader {
                label: if sel.prefix {
                    format!("[{id}] ")
                } else {
                    String::new()
                },
                path: path.clone(),
                offset,
                partial: Vec::new(),
                staged: Vec::new(),
            };
            match readers.get_mut(&id) {
                Some((current, reader)) if *current == attempt => {
                    progressed |= reader.pump(out, &mut buf, false)?;
                }
                Some((current, reader)) => {
                    // A new attempt: finish the old file, then start the new one from the top.
                    reader.pump(out, &mut buf, true)?;
                    *current = attempt;
                    *reader = fresh(0);
                    progressed = true;
                }
                None => {
                    let start = match sel.tail {
                        Some(n) => tail_offset(&path, n).unwrap_or(0),
                        None => 0,
                    };
                    let mut reader = fresh(start);
                    progressed |= reader.pump(out, &mut buf, false)?;
                    readers.insert(id, (attempt, reader));
                }
            }
        }
        if done {
            for (_, reader) in readers.values_mut() {
                reader.pump(out, &mut buf, true)?;
            }
            out.flush()?;
            return Ok(());
        }
        out.flush()?;
        if !progressed {
            // Woken early by `Thread::unpark` when the caller knows the job has ended.
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }
}
