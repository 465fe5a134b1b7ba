//! A run is a directory of event files, read in name order (their names start with the time
//! they were created), and followed while they grow.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::at;
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
pub(crate) fn event_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let path = entry.path();
        if entry.file_type().map_err(at(&path))?.is_file()
            && is_event_file(&entry.file_name().to_string_lossy())
        {
            files.push(path);
        }
    }
    Ok(files)
}

/// What [`discover_runs`] tells its observer along the way.
#[derive(Debug)]
pub enum Walked<'a> {
    /// A directory was read: `dirs` read so far, `runs` found so far.
    Dir {
        /// The directory.
        path: &'a Path,
        /// Directories read so far, this one included.
        dirs: usize,
        /// Runs found so far.
        runs: usize,
    },
    /// An entry under the root that could not be read, left out of the walk.
    Skipped {
        /// Why it could not be read (the message names the entry).
        error: io::Error,
    },
}

/// Every run under `root`: each directory (`root` included) that holds event files, named by
/// its path relative to `root` (`.` for `root` itself), in name order. A missing `root` has
/// no runs; a `root` that cannot be read is an error naming it. Entries below it that cannot
/// be read are skipped and reported to `observe`, which also hears of each directory read.
/// Symbolic links are not followed.
pub fn discover_runs(
    root: &Path,
    observe: &mut dyn FnMut(Walked<'_>),
) -> io::Result<Vec<(String, PathBuf)>> {
    let mut runs = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    let mut read = 0;
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if dir == root && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if dir == root => return Err(at(root)(e)),
            Err(e) => {
                let error = at(&dir)(e);
                observe(Walked::Skipped { error });
                continue;
            }
        };
        let mut has_events = false;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let error = at(&dir)(e);
                    observe(Walked::Skipped { error });
                    break;
                }
            };
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => dirs.push(path),
                Ok(kind) => {
                    has_events |=
                        kind.is_file() && is_event_file(&entry.file_name().to_string_lossy());
                }
                Err(e) => {
                    let error = at(&path)(e);
                    observe(Walked::Skipped { error });
                }
            }
        }
        if has_events {
            let name = match dir.strip_prefix(root) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
                _ => ".".to_string(),
            };
            runs.push((name, dir.clone()));
        }
        read += 1;
        observe(Walked::Dir {
            path: &dir,
            dirs: read,
            runs: runs.len(),
        });
    }
    runs.sort();
    Ok(runs)
}
