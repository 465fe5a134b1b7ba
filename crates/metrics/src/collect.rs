//! Collects the metrics a job's replicas print: reads each attempt log
//! (`<job dir>/logs/<replica>/attempt-<n>.log`) from where the last pass stopped, stores the
//! points in the job's metrics database and copies them to event files under
//! `<tensorboard dir>/stdout/<replica>/`, so TensorBoard shows them too.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::db::{Cursor, MetricsDb, TaggedPoint};
use crate::error::MetricsError;
use crate::series::Point;
use crate::stdout::StdoutParser;
use crate::writer::{event_file_name, EventWriter};

/// The subdirectory of the TensorBoard dir that holds the points collected from stdout.
pub const STDOUT_RUNS: &str = "stdout";

/// The metrics database of a job directory.
pub fn db_path(job_dir: &Path) -> PathBuf {
    job_dir.join("metrics.db")
}

/// Reads new output of a job's replicas and records its metrics.
pub struct Collector {
    job_dir: PathBuf,
    tensorboard_dir: PathBuf,
    parser: StdoutParser,
    db: MetricsDb,
}

impl Collector {
    /// A collector for the job in `job_dir` whose event files go to `tensorboard_dir`.
    pub fn open(
        job_dir: &Path,
        tensorboard_dir: &Path,
        parser: StdoutParser,
    ) -> Result<Self, MetricsError> {
        std::fs::create_dir_all(job_dir)?;
        Ok(Collector {
            job_dir: job_dir.to_path_buf(),
            tensorboard_dir: tensorboard_dir.to_path_buf(),
            parser,
            db: MetricsDb::open(&db_path(job_dir))?,
        })
    }

    /// Reads what every attempt log gained since the last pass; returns how many points were
    /// added. Only whole lines are read, unless `ended` says no more output will come, in
    /// which case a last line without a newline counts too. Several processes may collect the
    /// same job: a lock file lets one pass run at a time.
    pub fn collect(&mut self, ended: bool) -> Result<usize, MetricsError> {
        if !self.parser.is_enabled() {
            return Ok(0);
        }
        let lock = File::create(self.job_dir.join("metrics.lock"))?;
        lock.lock()?;
        let mut added = 0;
        for (replica, attempts) in attempt_logs(&self.job_dir.join("logs"))? {
            let mut seq = 0;
            for (attempt, path) in attempts {
                let key = format!("{replica}/attempt-{attempt}");
                let cursor = self.db.cursor(&key)?.unwrap_or(Cursor {
                    seq,
                    ..Cursor::default()
                });
                let (cursor, points) = self.read_log(&replica, &path, cursor, ended)?;
                seq = cursor.seq;
                if !points.is_empty() {
                    self.write_events(&replica, &cursor, &points)?;
                    added += points.len();
                }
                self.db.save(&key, &cursor, &points)?;
            }
        }
        Ok(added)
    }

    /// Parses the unread part of one attempt log.
    fn read_log(
        &self,
        replica: &str,
        path: &Path,
        mut cursor: Cursor,
        ended: bool,
    ) -> Result<(Cursor, Vec<TaggedPoint>), MetricsError> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(cursor.offset))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let whole = if ended {
            text.len()
        } else {
            memchr::memrchr(b'\n', &text).map_or(0, |end| end + 1)
        };
        let run = format!("{STDOUT_RUNS}/{replica}");
        let wall_time = crate::now();
        let mut points = Vec::new();
        for line in text[..whole].split(|b| *b == b'\n') {
            let parsed = self.parser.parse(&String::from_utf8_lossy(line));
            if parsed.step.is_some() {
                cursor.step = parsed.step;
            }
            if parsed.metrics.is_empty() {
                continue;
            }
            let step = match cursor.step {
                Some(step) => step,
                None => {
                    cursor.seq += 1;
                    cursor.seq
                }
            };
            for (tag, value) in parsed.metrics {
                let point = Point {
                    step,
                    wall_time,
                    value,
                };
                points.push(TaggedPoint {
                    run: run.clone(),
                    tag,
                    point,
                });
            }
        }
        cursor.offset += whole as u64;
        if !points.is_empty() && cursor.event_file.is_empty() {
            let name = event_file_name(wall_time, &format!("trainctl.{}", attempt_suffix(path)));
            cursor.event_file = name;
        }
        Ok((cursor, points))
    }

    /// Copies points to the attempt's event file.
    fn write_events(
        &self,
        replica: &str,
        cursor: &Cursor,
        points: &[TaggedPoint],
    ) -> Result<(), MetricsError> {
        let path = self
            .tensorboard_dir
            .join(STDOUT_RUNS)
            .join(replica)
            .join(&cursor.event_file);
        let mut writer = EventWriter::append(path, points[0].point.wall_time)?;
        for TaggedPoint { tag, point: p, .. } in points {
            writer.add_scalar(tag, p.step, p.wall_time, p.value as f32);
        }
        writer.flush()?;
        Ok(())
    }
}

/// `attempt-3.log` -> `attempt-0003`, so event files of later attempts sort after.
fn attempt_suffix(path: &Path) -> String {
    let attempt = attempt_number(&path.file_name().unwrap_or_default().to_string_lossy());
    format!("attempt-{:04}", attempt.unwrap_or(0))
}

fn attempt_number(name: &str) -> Option<u32> {
    name.strip_prefix("attempt-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Replica names and their attempt logs in attempt order.
type AttemptLogs = Vec<(String, Vec<(u32, PathBuf)>)>;

/// Every replica directory under `logs` with its attempt logs, in name and attempt order.
fn attempt_logs(logs: &Path) -> Result<AttemptLogs, MetricsError> {
    let mut replicas = Vec::new();
    let entries = match std::fs::read_dir(logs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(replicas),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let mut attempts = Vec::new();
        for log in std::fs::read_dir(entry.path())? {
            let log = log?;
            if let Some(n) = attempt_number(&log.file_name().to_string_lossy()) {
                attempts.push((n, log.path()));
            }
        }
        attempts.sort();
        replicas.push((entry.file_name().to_string_lossy().into_owned(), attempts));
    }
    replicas.sort();
    Ok(replicas)
}
