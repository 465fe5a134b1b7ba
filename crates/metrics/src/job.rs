//! Every series of one job, in one place: the points collected from its output (the metrics
//! database) and the event files its replicas write to the TensorBoard dir. Polling again
//! reads only what is new, so a live view stays cheap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::collect::{db_path, STDOUT_RUNS};
use crate::db::{MetricsDb, TaggedPoint};
use crate::error::MetricsError;
use crate::event_file::Problem;
use crate::run_reader::{discover_runs, RunReader, Walked};
use crate::series::Run;

/// The metrics of one job, by run.
pub struct JobMetrics {
    db_path: PathBuf,
    /// The database, kept open once it exists (a WAL reader sees each new commit).
    db: Option<MetricsDb>,
    tensorboard_dir: PathBuf,
    last_id: i64,
    collected: BTreeMap<String, Run>,
    event_runs: BTreeMap<String, RunReader>,
}

impl JobMetrics {
    /// The metrics of the job in `job_dir` with event files under `tensorboard_dir`; nothing
    /// is read until [`poll`](Self::poll).
    pub fn new(job_dir: &Path, tensorboard_dir: &Path) -> Self {
        JobMetrics {
            db_path: db_path(job_dir),
            db: None,
            tensorboard_dir: tensorboard_dir.to_path_buf(),
            last_id: 0,
            collected: BTreeMap::new(),
            event_runs: BTreeMap::new(),
        }
    }

    /// Reads new points; returns the event-file records that had to be skipped.
    pub fn poll(&mut self) -> Result<Vec<Problem>, MetricsError> {
        if self.db.is_none() && self.db_path.exists() {
            self.db = Some(MetricsDb::open(&self.db_path)?);
        }
        if let Some(db) = &self.db {
            for p in db.points_after(self.last_id)? {
                let TaggedPoint { run, tag, point } = p.tagged;
                self.collected.entry(run).or_default().push(&tag, point);
                self.last_id = p.id;
            }
        }
        let mut problems = Vec::new();
        let mut unreadable = None;
        let runs = discover_runs(&self.tensorboard_dir, &mut |walked| {
            if let Walked::Skipped { error, .. } = walked {
                unreadable.get_or_insert(error);
            }
        })?;
        if let Some(error) = unreadable {
            return Err(error.into());
        }
        for (name, dir) in runs {
            // Those are copies of the collected points, already read from the database.
            if name == STDOUT_RUNS || name.starts_with(&format!("{STDOUT_RUNS}/")) {
                continue;
            }
            let reader = self
                .event_runs
                .entry(name)
                .or_insert_with(|| RunReader::new(dir));
            problems.extend(reader.poll()?);
        }
        Ok(problems)
    }

    /// Every run and its series, in name order.
    pub fn runs(&self) -> Vec<(&str, &Run)> {
        let mut runs: Vec<(&str, &Run)> = self
            .collected
            .iter()
            .map(|(name, run)| (name.as_str(), run))
            .chain(
                self.event_runs
                    .iter()
                    .map(|(name, r)| (name.as_str(), r.run())),
            )
            .collect();
        runs.sort_by(|a, b| a.0.cmp(b.0));
        runs
    }
}
