//! Follows one `events.out.tfevents.*` file: each poll reads what was appended since the last
//! one. A record cut short at the end (the writer is still at it) waits for the next poll;
//! corrupt records are reported and skipped.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::at;
use crate::proto::{event::What, Event};
use crate::record::{frame, Frame};
use crate::scalar::scalar_value;
use crate::series::{Point, Run};

/// A record that was skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// Byte offset of the skipped bytes in the file.
    pub offset: u64,
    /// What was wrong.
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: skipped a corrupt record at byte {}: {}",
            self.path.display(),
            self.offset,
            self.why
        )
    }
}

/// Reads one event file incrementally.
#[derive(Debug)]
pub struct EventFileReader {
    path: PathBuf,
    /// File offset of `pending[0]`.
    offset: u64,
    /// Bytes read but not yet consumed (the start of an incomplete record).
    pending: Vec<u8>,
}

impl EventFileReader {
    /// A reader at the start of `path` (nothing is read until [`poll`](Self::poll)).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        EventFileReader {
            path: path.into(),
            offset: 0,
            pending: Vec::new(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the records appended since the last poll and adds their scalars to `run`.
    /// Returns the records that had to be skipped.
    pub fn poll(&mut self, run: &mut Run) -> io::Result<Vec<Problem>> {
        self.poll_scalars(&mut |tag, point| run.push(tag, point))
    }

    /// Reads the records appended since the last poll and hands each scalar (its tag and
    /// point) to `scalar`, in file order. Returns the records that had to be skipped.
    pub fn poll_scalars(
        &mut self,
        scalar: &mut dyn FnMut(&str, Point),
    ) -> io::Result<Vec<Problem>> {
        let mut file = File::open(&self.path).map_err(at(&self.path))?;
        file.seek(SeekFrom::Start(self.offset + self.pending.len() as u64))
            .map_err(at(&self.path))?;
        file.read_to_end(&mut self.pending)
            .map_err(at(&self.path))?;
        let mut problems = Vec::new();
        let mut at = 0;
        loop {
            match frame(&self.pending[at..]) {
                Frame::Incomplete => break,
                Frame::Corrupt { skip, why } => {
                    problems.push(self.problem(at, why.to_string()));
                    at += skip;
                }
                Frame::Record { data, consumed } => {
                    if let Err(e) = scalars(data, scalar) {
                        problems.push(self.problem(at, format!("not an event: {e}")));
                    }
                    at += consumed;
                }
            }
        }
        self.pending.drain(..at);
        self.offset += at as u64;
        Ok(problems)
    }

    fn problem(&self, at: usize, why: String) -> Problem {
        Problem {
            path: self.path.clone(),
            offset: self.offset + at as u64,
            why,
        }
    }
}

/// Decodes one event and hands the scalars of its summary to `scalar`.
fn scalars(data: &[u8], scalar: &mut dyn FnMut(&str, Point)) -> Result<(), prost::DecodeError> {
    let event = Event::decode(data)?;
    if let Some(What::Summary(summary)) = &event.what {
        for value in &summary.value {
            if let Some(v) = scalar_value(value) {
                let point = Point {
                    step: event.step,
                    wall_time: event.wall_time,
                    value: v,
                };
                scalar(&value.tag, point);
            }
        }
    }
    Ok(())
}
