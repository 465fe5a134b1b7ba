//! A cluster job's logs kept in files as they grow: each live attempt's pod is followed
//! ([`LogFollower`]) into `<dir>/logs/<replica>/attempt-<n>.log`, so every byte comes from
//! the log API once; attempts whose pod was gone before they could be followed are copied
//! from the operator's archive. A mirror started over files of an earlier run goes on
//! after the lines they hold.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tokio::task::JoinHandle;
use trainctl_core::ReplicaId;

use crate::client::{Cluster, LogSource};
use crate::job_metrics::append_new_text;
use crate::log_follow::LogFollower;

/// The followers of one job's live attempts.
pub struct LogMirror {
    dir: PathBuf,
    /// The follower task of each (replica, attempt) being followed.
    running: HashMap<(ReplicaId, u32), JoinHandle<Result<()>>>,
    /// The attempts whose follower has finished.
    followed: HashSet<(ReplicaId, u32)>,
}

impl LogMirror {
    /// A mirror writing under `dir/logs`.
    pub fn new(dir: &Path) -> Self {
        LogMirror {
            dir: dir.to_path_buf(),
            running: HashMap::new(),
            followed: HashSet::new(),
        }
    }

    /// Starts following every live attempt of job `name` not followed yet and copies the
    /// archived attempts no follower has written; returns whether the job had ended before
    /// its attempts were listed (so none is missed).
    pub async fn pass(&mut self, cluster: &Cluster, name: &str) -> Result<bool> {
        let job = cluster.get(name).await?;
        let ended = job.status.as_ref().is_some_and(|s| s.outcome().is_some());
        for attempt in cluster.log_sources(&job, None, None).await? {
            let key = (attempt.replica, attempt.attempt);
            let folder = self.dir.join("logs").join(attempt.replica.to_string());
            let path = folder.join(format!("attempt-{}.log", attempt.attempt));
            match attempt.source {
                LogSource::Live(pod)
                    if !self.running.contains_key(&key) && !self.followed.contains(&key) =>
                {
                    // What the pod printed so far is in the file when this pass returns.
                    let mut follower = cluster.log_follower(&pod);
                    let so_far = follower.so_far().await?;
                    let mut writer = AttemptFile::open(folder, path)?;
                    for line in so_far {
                        writer.append(&line)?;
                    }
                    self.running
                        .insert(key, tokio::spawn(follow_into(follower, writer)));
                }
                LogSource::Live(_) => {}
                // A followed attempt's file has every line; the archive may hold the end of
                // one whose pod went while its connection was down.
                LogSource::Archived(text) if !self.running.contains_key(&key) => {
                    append_new_text(&folder, &path, &text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                LogSource::Archived(_) => {}
            }
        }
        Ok(ended)
    }

    /// Whether no follower is still running; reports the first that failed.
    pub async fn idle(&mut self) -> Result<bool> {
        let finished: Vec<(ReplicaId, u32)> = self
            .running
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(key, _)| *key)
            .collect();
        for key in finished {
            if let Some(task) = self.running.remove(&key) {
                self.followed.insert(key);
                task.await.context("a log follower panicked")??;
            }
        }
        Ok(self.running.is_empty())
    }
}

/// An attempt's log file, written after the lines it already had.
struct AttemptFile {
    folder: PathBuf,
    path: PathBuf,
    /// Lines the file had before this run, still to be skipped.
    skip: usize,
    file: Option<std::fs::File>,
}

impl AttemptFile {
    /// The file at `path` (in `folder`); counts the lines it has.
    fn open(folder: PathBuf, path: PathBuf) -> Result<Self> {
        let skip = match std::fs::read(&path) {
            Ok(bytes) => bytes.iter().filter(|b| **b == b'\n').count(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(AttemptFile {
            folder,
            path,
            skip,
            file: None,
        })
    }

    /// Appends the next line of the attempt (unless the file had it).
    fn append(&mut self, line: &str) -> Result<()> {
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open_append(&self.folder, &self.path)?),
        };
        writeln!(file, "{line}").with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Appends the lines `follower` delivers to `file`.
async fn follow_into(mut follower: LogFollower, mut file: AttemptFile) -> Result<()> {
    while let Some(line) = follower.next_line().await? {
        file.append(&line)?;
    }
    Ok(())
}

fn open_append(folder: &Path, path: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(folder)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        })
        .with_context(|| format!("cannot open {}", path.display()))
}
