//! A run is a directory of event files, read in name order (their names start with the time
//! they were created), and followed while they grow.

use std::io;
use std::path::{Path, PathBuf};

use crate::event_file::{EventFileReader, Problem};
use crate::series::Run;

/// Whether a file name is a TensorBoard event file.
pub fn is_event_file(name: &str) -> bool {
    name.contains("tfevents")
}

/// Follows the event files of one directory (not its subdirectories: those are other runs).
#[derive(Debug)]
pub struct RunReader {
    dir: PathBuf,
    files: Vec<EventFileReader>,
    run: Run,
}

impl RunReader {
    /// A reader of the run in `dir`; nothing is read until [`poll`](Self::poll).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunReader {
            dir: dir.into(),
            files: Vec::new(),
            run: Run::default(),
        }
    }

    /// The series read so far.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// Picks up new files and new records; returns the records that had to be skipped.
    pub fn poll(&mut self) -> io::Result<Vec<Problem>> {
        for path in event_files(&self.dir)? {
            if !self.files.iter().any(|f| f.path() == path) {
                self.files.push(EventFileReader::new(path));
            }
        }
        self.files.sort_by(|a, b| a.path().cmp(b.path()));
        let mut problems = Vec::new();
        for file in &mut self.files {
            problems.extend(file.poll(&mut self.run)?);
        }
        Ok(problems)
    }
}

/// The event files directly in `dir`.
fn event_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && is_event_file(&entry.file_name().to_string_lossy()) {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Every run under `root`: each directory (`root` included) that holds event files, named by
/// its path relative to `root` (`.` for `root` itself), in name order. A missing `root` has
/// no runs.
pub fn discover_runs(root: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut runs = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut has_events = false;
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() && is_event_file(&entry.file_name().to_string_lossy()) {
                has_events = true;
            }
        }
        if has_events {
            let name = match dir.strip_prefix(root) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
                _ => ".".to_string(),
            };
            runs.push((name, dir));
        }
    }
    runs.sort();
    Ok(runs)
}
