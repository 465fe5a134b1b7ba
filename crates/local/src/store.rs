//! Job, replica, attempt and event records in SQLite (WAL, so CLI processes read while
//! supervisors write). Every multi-row change runs in one transaction, so an interrupted
//! command never leaves half a job behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde::Serialize;
use trainctl_core::queue::ESTIMATE_RUNS;
use trainctl_core::state_machine::{JobPhase, Outcome};
use trainctl_core::ReplicaId;
use trainctl_spec::TrainingJob;

mod experiments;
mod job_row;
mod replica_status;
mod schema;

pub use experiments::{ExperimentRow, ObservedMetric, TrialRow};
use job_row::json_list;
pub use job_row::{JobRow, UnreadableJob};
pub use replica_status::ReplicaStatus;
pub use schema::SCHEMA_VERSION;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no. The cause is shown here once (it is not a `source`), with the path.
    #[error("state database {}: {error}", path.display())]
    Sql {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        error: rusqlite::Error,
    },
    /// A job could not be written as JSON.
    #[error("cannot store the job spec: {0}")]
    Spec(#[from] serde_json::Error),
    /// A job of that name exists.
    #[error(
        "job {0:?} already exists; delete it first (trainctl delete {0}) or pick another name"
    )]
    AlreadyExists(String),
    /// A job's record does not read.
    #[error("job {name} cannot be read: {problem}; `trainctl delete {name}` removes it")]
    Unreadable {
        /// The job.
        name: String,
        /// What does not read.
        problem: String,
    },
    /// The database was written by a newer trainctl.
    #[error(
        "state database {} has schema version {found}, but this trainctl knows versions up to \
         {supported}: a newer trainctl wrote it. Use that one (or newer), or set \
         TRAINCTL_HOME to another directory",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The latest version this trainctl knows.
        supported: i64,
    },
    /// Could not create the state directory (or, when admitting a job, pick a port).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// True when SQLite could not write for lack of space (or could not grow its files).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sql { error, .. } => matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
            ),
            StoreError::Io(e) => crate::disk::is_full(e),
            _ => false,
        }
    }
}

/// Adds the database path to SQLite's errors.
trait At<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> At<T> for rusqlite::Result<T> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|error| StoreError::Sql {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// A replica as stored: its latest attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaRow {
    /// Which replica.
    pub replica: ReplicaId,
    /// Local port.
    pub port: u16,
    /// GPUs it sees.
    pub gpus: Vec<u32>,
    /// The state of its latest attempt.
    pub state: ReplicaStatus,
    /// Latest attempt number, -1 before the first.
    pub attempt: i64,
    /// Exit code of the latest attempt.
    pub exit_code: Option<i32>,
    /// pid (and process group) of the latest attempt.
    pub pid: i32,
    /// Its start time.
    pub pid_start: u64,
}

/// One run of one replica.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRow {
    /// Which replica.
    pub replica: ReplicaId,
    /// 0, 1, ...
    pub attempt: u32,
    /// Its pid.
    pub pid: i32,
    /// Start time.
    pub started: f64,
    /// End time.
    pub finished: Option<f64>,
    /// Exit code (128+N for signal N).
    pub exit_code: Option<i32>,
    /// Its output.
    pub log: PathBuf,
}

/// Something that happened to a job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    /// When.
    pub time: f64,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub kind: String,
    /// CamelCase reason.
    pub reason: String,
    /// What happened.
    pub message: String,
}

/// A connection to the state database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    read_only: bool,
}

fn parse_replica(s: String) -> rusqlite::Result<ReplicaId> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// [`SCHEMA_VERSION`]. A database from a newer trainctl is refused, untouched. When the
    /// disk is full (SQLite cannot even grow its shared-memory index), an existing database
    /// is opened read-only instead, so the jobs can still be seen and deleted.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        match Self::open_read_write(path) {
            Err(e) if e.is_disk_full() && path.exists() => {
                Self::open_read_only(path).map_err(|_| e)
            }
            opened => opened,
        }
    }

    fn open_read_write(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path).at(path)?;
        conn.busy_timeout(Duration::from_secs(30)).at(path)?;
        // Before anything that could write: a newer trainctl's database stays as it is.
        schema::refuse_unknown(schema::version(&conn).at(path)?, path)?;
        conn.pragma_update(None, "journal_mode", "WAL").at(path)?;
        conn.pragma_update(None, "synchronous", "NORMAL").at(path)?;
        // Short-lived CLI processes would otherwise checkpoint (and fsync) the WAL on every
        // exit; SQLite still checkpoints automatically as the WAL grows.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .at(path)?;
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            read_only: false,
        })
    }

    /// Read-only, with the WAL index in this process's memory (`readonly_shm`), so nothing
    /// on disk has to grow.
    fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let mut uri = String::from("file:");
        for c in path.to_string_lossy().chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                c => uri.push(c),
            }
        }
        uri.push_str("?mode=ro&readonly_shm=1");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri, flags).at(path)?;
        conn.busy_timeout(Duration::from_secs(30)).at(path)?;
        let version = schema::version(&conn).at(path)?;
        schema::refuse_unknown(version, path)?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "state database {} needs an upgrade, which needs free space",
                path.display()
            ))));
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            read_only: true,
        })
    }

    /// Opens the database again (read-write when the disk has room now). The old connection
    /// is closed first: SQLite shares a file's WAL index between the connections of a
    /// process, and a read-only one would make the new one read-only too.
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.conn = Connection::open_in_memory().at(&path)?;
        *self = Store::open(&path)?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the disk was full at open: every write fails.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Records a new job with its replicas, Pending, supervised for now by the process
    /// `supervisor` (pid, start time) that creates it. Fails if the name is taken.
    pub fn insert_job(
        &mut self,
        job: &TrainingJob,
        workdir: &Path,
        now: f64,
        supervisor: (i32, u64),
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM jobs WHERE name = ?1", [job.name()], |_| {
                Ok(true)
            })
            .optional()
            .at(path)?
            .unwrap_or(false);
        if exists {
            return Err(StoreError::AlreadyExists(job.name().to_string()));
        }
        let seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs", [], |r| {
                r.get(0)
            })
            .at(path)?;
        tx.execute(
            "INSERT INTO jobs (name, seq, spec, workdir, phase, reason, message, created, gpus_needed,
                               supervisor_pid, supervisor_start)
             VALUES (?1, ?2, ?3, ?4, 'Pending', 'Created', 'job accepted', ?5, ?6, ?7, ?8)",
            params![
                job.name(),
                seq,
                serde_json::to_string(job)?,
                workdir.to_string_lossy(),
                now,
                job.total_gpus(),
                supervisor.0,
                supervisor.1 as i64
            ],
        )
        .at(path)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO replicas (job, replica, ord) VALUES (?1, ?2, ?3)")
                .at(path)?;
            for (ord, id) in ReplicaId::all_of(job).into_iter().enumerate() {
                insert
                    .execute(params![job.name(), id.to_string(), ord as i64])
                    .at(path)?;
            }
        }
        tx.execute(
            "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, 'Normal', 'Created', ?3)",
            params![job.name(), now, format!("job created with {} replicas", job.spec.replicas.total())],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// One job; an error names it when its record does not read.
    pub fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        let row = self
            .conn
            .query_row("SELECT * FROM jobs WHERE name = ?1", [name], job_row::read)
            .optional()
            .at(&self.path)?;
        match row {
            None => Ok(None),
            Some(Ok(job)) => Ok(Some(job)),
            Some(Err(bad)) => Err(StoreError::Unreadable {
                name: bad.name,
                problem: bad.problem,
            }),
        }
    }

    /// Every job that reads, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        Ok(self.listing()?.0)
    }

    /// Every job, oldest first: those that read, and those that do not.
    pub fn listing(&self) -> Result<(Vec<JobRow>, Vec<UnreadableJob>), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM jobs ORDER BY seq")
            .at(&self.path)?;
        let rows = stmt.query_map([], job_row::read).at(&self.path)?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for row in rows {
            match row.at(&self.path)? {
                Ok(job) => good.push(job),
                Err(unreadable) => bad.push(unreadable),
            }
        }
        Ok((good, bad))
    }

    /// The supervising process (pid, start time) of a job, read without the rest of its
    /// record (which may not read); None when the job is gone.
    pub fn supervisor(&self, job: &str) -> Result<Option<(i32, u64)>, StoreError> {
        self.conn
            .query_row(
                "SELECT supervisor_pid, supervisor_start FROM jobs WHERE name = ?1",
                [job],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .at(&self.path)
    }

    /// The replicas of a job, in TF_CONFIG order.
    pub fn replicas(&self, job: &str) -> Result<Vec<ReplicaRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT replica, port, gpus, state, attempt, exit_code, pid, pid_start
                 FROM replicas WHERE job = ?1 ORDER BY ord",
            )
            .at(&self.path)?;
        let rows = stmt
            .query_map([job], |r| {
                Ok(ReplicaRow {
                    replica: parse_replica(r.get(0)?)?,
                    port: r.get(1)?,
                    gpus: json_list(r.get(2)?),
                    state: r.get(3)?,
                    attempt: r.get(4)?,
                    exit_code: r.get(5)?,
                    pid: r.get(6)?,
                    pid_start: r.get::<_, i64>(7)? as u64,
                })
            })
            .at(&self.path)?;
        rows.collect::<Result<_, _>>().at(&self.path)
    }

    /// Every attempt of a job, by replica then attempt.
    pub fn attempts(&self, job: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a.replica, a.attempt, a.pid, a.started, a.finished, a.exit_code, a.log
                 FROM attempts a JOIN replicas r ON r.job = a.job AND r.replica = a.replica
                 WHERE a.job = ?1 ORDER BY r.ord, a.attempt",
            )
            .at(&self.path)?;
        let rows = stmt
            .query_map([job], |r| {
                Ok(AttemptRow {
                    replica: parse_replica(r.get(0)?)?,
                    attempt: r.get(1)?,
                    pid: r.get(2)?,
                    started: r.get(3)?,
                    finished: r.get(4)?,
                    exit_code: r.get(5)?,
                    log: PathBuf::from(r.get::<_, String>(6)?),
                })
            })
            .at(&self.path)?;
        rows.collect::<Result<_, _>>().at(&self.path)
    }

    /// The events of a job, oldest first.
    pub fn events(&self, job: &str) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT time, type, reason, message FROM events WHERE job = ?1 ORDER BY id")
            .at(&self.path)?;
        let rows = stmt
            .query_map([job], |r| {
                Ok(EventRow {
                    time: r.get(0)?,
                    kind: r.get(1)?,
                    reason: r.get(2)?,
                    message: r.get(3)?,
                })
            })
            .at(&self.path)?;
        rows.collect::<Result<_, _>>().at(&self.path)
    }

    /// Every job's events with `reason` from `since` on, oldest first, with the job's name.
    pub fn events_since(
        &self,
        reason: &str,
        since: f64,
    ) -> Result<Vec<(String, EventRow)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT job, time, type, reason, message FROM events
                 WHERE reason = ?1 AND time >= ?2 ORDER BY id",
            )
            .at(&self.path)?;
        let rows = stmt
            .query_map(params![reason, since], |r| {
                Ok((
                    r.get(0)?,
                    EventRow {
                        time: r.get(1)?,
                        kind: r.get(2)?,
                        reason: r.get(3)?,
                        message: r.get(4)?,
                    },
                ))
            })
            .at(&self.path)?;
        rows.collect::<Result<_, _>>().at(&self.path)
    }

    /// Appends an event.
    pub fn add_event(
        &self,
        job: &str,
        now: f64,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    job,
                    now,
                    if warning { "Warning" } else { "Normal" },
                    reason,
                    message
                ],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Records the job's phase; the end time is set when it becomes terminal, and a
    /// successful run's duration is kept for the queue's estimates of its name.
    pub fn set_phase(
        &self,
        job: &str,
        phase: JobPhase,
        reason: &str,
        message: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE jobs SET phase = ?2, reason = ?3, message = ?4,
                     finished = CASE WHEN ?5 THEN COALESCE(finished, ?6) ELSE finished END
                 WHERE name = ?1",
                params![
                    job,
                    phase.as_str(),
                    reason,
                    message,
                    phase.is_terminal(),
                    now
                ],
            )
            .at(&self.path)?;
        if phase == JobPhase::Succeeded {
            self.conn
                .execute(
                    "INSERT OR IGNORE INTO runs (name, seq, ran_s, finished)
                     SELECT name, seq, finished - started, finished FROM jobs
                     WHERE name = ?1 AND started IS NOT NULL AND finished IS NOT NULL",
                    [job],
                )
                .at(&self.path)?;
        }
        Ok(())
    }

    /// Ends a job that has not ended with its lost supervisor's outcome (Failed, or
    /// Suspended and resumable), with an event, and closes what the supervisor left open:
    /// every attempt without an end ends at `now` (exit code unknown) and every Running
    /// replica becomes Stopped; a suspended job gives back its place and is no longer
    /// supervised. Returns false (and changes nothing) when the job had ended meanwhile.
    /// Atomic, so a supervisor that records success and exits between a reader's two looks
    /// is never overruled.
    pub fn lose_unless_ended(
        &mut self,
        job: &str,
        outcome: &Outcome,
        now: f64,
    ) -> Result<bool, StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        let terminal = outcome.phase.is_terminal();
        let changed = tx
            .execute(
                "UPDATE jobs SET phase = ?2, reason = ?3, message = ?4,
                     finished = CASE WHEN ?6 THEN ?5 ELSE finished END
                 WHERE name = ?1 AND phase NOT IN ('Succeeded', 'Failed')
                     AND (?6 OR supervisor_pid != 0)",
                params![
                    job,
                    outcome.phase.as_str(),
                    outcome.reason,
                    outcome.message,
                    now,
                    terminal
                ],
            )
            .at(path)?;
        if changed > 0 {
            tx.execute(
                "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, 'Warning', ?3, ?4)",
                params![job, now, outcome.reason, outcome.message],
            )
            .at(path)?;
            close_left_open(&tx, job, now).at(path)?;
            if !terminal {
                park(&tx, job).at(path)?;
            }
        }
        tx.commit().at(path)?;
        Ok(changed > 0)
    }

    /// Records that a suspended job's supervisor is done: its GPUs and ports are given
    /// back, it leaves the queue (a resume queues it again) and nobody supervises it.
    pub fn park(&mut self, job: &str) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        park(&tx, job).at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Records that a preempted job's replicas have stopped: its GPUs, ports and admission
    /// are given back and it waits in the queue again, under the same supervisor.
    pub fn requeue(&mut self, job: &str) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        give_back(&tx, job).at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Sets the job's `runPolicy.suspend`, which its supervisor acts on.
    pub fn suspend(&self, job: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE jobs SET spec = json_set(spec, '$.spec.runPolicy.suspend', json('true'))
                 WHERE name = ?1",
                [job],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Resumes a suspended job that nobody supervises: clears its `runPolicy.suspend` and
    /// makes it Pending (reason `Resumed`), with an event. Returns false (and changes
    /// nothing) unless it was such a job, so two resumes never start two supervisors.
    pub fn resume(&mut self, job: &str, message: &str, now: f64) -> Result<bool, StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        let changed = tx
            .execute(
                "UPDATE jobs SET spec = json_set(spec, '$.spec.runPolicy.suspend', json('false')),
                     phase = 'Pending', reason = 'Resumed', message = ?2
                 WHERE name = ?1 AND phase = 'Suspended' AND supervisor_pid = 0",
                params![job, message],
            )
            .at(path)?;
        if changed > 0 {
            tx.execute(
                "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, 'Normal', 'Resumed', ?3)",
                params![job, now, message],
            )
            .at(path)?;
        }
        tx.commit().at(path)?;
        Ok(changed > 0)
    }

    /// What a supervisor is asked on each look: whether `delete` was asked for, and the
    /// job's `runPolicy.suspend`; None when the job is gone.
    pub fn requests(&self, job: &str) -> Result<Option<(bool, bool)>, StoreError> {
        self.conn
            .query_row(
                "SELECT deleting, COALESCE(json_extract(spec, '$.spec.runPolicy.suspend'), 0)
                 FROM jobs WHERE name = ?1",
                [job],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .at(&self.path)
    }

    /// Whether a job holds anything a supervisor closes before it exits: a Running
    /// replica, an attempt without an end, a port or a GPU.
    pub fn holds_anything(&self, job: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM replicas WHERE job = ?1 AND state = ?2)
                     OR EXISTS (SELECT 1 FROM attempts WHERE job = ?1 AND finished IS NULL)
                     OR EXISTS (SELECT 1 FROM ports WHERE job = ?1)
                     OR EXISTS (SELECT 1 FROM jobs WHERE name = ?1 AND gpus != '[]')",
                params![job, ReplicaStatus::Running],
                |r| r.get(0),
            )
            .at(&self.path)
    }

    /// Closes what the lost supervisor of an ended job left open (it died while stopping
    /// the replicas still running), with an event; the job's outcome stays.
    pub fn close_after_loss(
        &mut self,
        job: &str,
        message: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        close_left_open(&tx, job, now).at(path)?;
        tx.execute(
            "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, 'Warning', 'SupervisorLost', ?3)",
            params![job, now, message],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Records which process supervises the job.
    pub fn set_supervisor(&self, job: &str, pid: i32, start: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE jobs SET supervisor_pid = ?2, supervisor_start = ?3 WHERE name = ?1",
                params![job, pid, start as i64],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Records that process `pid` (started at `start`) is done supervising the job, unless
    /// another supervisor has taken it over meanwhile.
    pub fn let_go(&self, job: &str, pid: i32, start: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE jobs SET supervisor_pid = 0, supervisor_start = 0
                 WHERE name = ?1 AND supervisor_pid = ?2 AND supervisor_start = ?3",
                params![job, pid, start as i64],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Marks the job as being deleted.
    pub fn set_deleting(&self, job: &str) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE jobs SET deleting = 1 WHERE name = ?1", [job])
            .at(&self.path)?;
        Ok(())
    }

    /// Starts handing out resources: one write transaction, so no two jobs are granted the
    /// same GPU or port. Dropping it without [`Allocation::grant`] changes nothing.
    pub fn allocation(&mut self) -> Result<Allocation<'_>, StoreError> {
        Ok(Allocation {
            tx: self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .at(&self.path)?,
            path: &self.path,
        })
    }

    /// Records the start of an attempt, before its process is started (so its log is known
    /// even if the supervisor dies before it records the process): the replica is Running
    /// with no pid until [`Store::set_attempt_pid`].
    pub fn start_attempt(
        &mut self,
        job: &str,
        replica: ReplicaId,
        attempt: u32,
        log: &Path,
        now: f64,
        is_restart: bool,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        tx.execute(
            "UPDATE replicas SET state = ?4, attempt = ?3, exit_code = NULL, pid = 0, pid_start = 0
             WHERE job = ?1 AND replica = ?2",
            params![job, replica.to_string(), attempt, ReplicaStatus::Running],
        )
        .at(path)?;
        tx.execute(
            "INSERT OR REPLACE INTO attempts (job, replica, attempt, pid, started, log)
             VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            params![
                job,
                replica.to_string(),
                attempt,
                now,
                log.to_string_lossy()
            ],
        )
        .at(path)?;
        tx.execute(
            "UPDATE jobs SET started = COALESCE(started, ?2), restarts = restarts + ?3 WHERE name = ?1",
            params![job, now, is_restart as i64],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Records the process of a started attempt.
    pub fn set_attempt_pid(
        &mut self,
        job: &str,
        replica: ReplicaId,
        attempt: u32,
        pid: i32,
        pid_start: u64,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        tx.execute(
            "UPDATE replicas SET pid = ?4, pid_start = ?5 WHERE job = ?1 AND replica = ?2 AND attempt = ?3",
            params![job, replica.to_string(), attempt, pid, pid_start as i64],
        )
        .at(path)?;
        tx.execute(
            "UPDATE attempts SET pid = ?4 WHERE job = ?1 AND replica = ?2 AND attempt = ?3",
            params![job, replica.to_string(), attempt, pid],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Records the end of an attempt.
    pub fn end_attempt(
        &mut self,
        job: &str,
        replica: ReplicaId,
        attempt: u32,
        state: ReplicaStatus,
        exit_code: i32,
        now: f64,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        tx.execute(
            "UPDATE replicas SET state = ?3, exit_code = ?4 WHERE job = ?1 AND replica = ?2",
            params![job, replica.to_string(), state, exit_code],
        )
        .at(path)?;
        tx.execute(
            "UPDATE attempts SET finished = ?4, exit_code = ?5 WHERE job = ?1 AND replica = ?2 AND attempt = ?3",
            params![job, replica.to_string(), attempt, now, exit_code],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Gives back the job's ports and GPUs.
    pub fn release(&self, job: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM ports WHERE job = ?1", [job])
            .at(&self.path)?;
        self.conn
            .execute("UPDATE jobs SET gpus = '[]' WHERE name = ?1", [job])
            .at(&self.path)?;
        Ok(())
    }

    /// Removes every record of the job.
    pub fn remove_job(&mut self, job: &str) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.conn.transaction().at(path)?;
        for table in [
            "jobs WHERE name",
            "replicas WHERE job",
            "attempts WHERE job",
            "events WHERE job",
            "ports WHERE job",
        ] {
            tx.execute(&format!("DELETE FROM {table} = ?1"), [job])
                .at(path)?;
        }
        tx.commit().at(path)?;
        Ok(())
    }
}

/// Ends, at `now`, every attempt of `job` without an end (exit code unknown), and makes
/// every Running replica Stopped.
fn close_left_open(tx: &Transaction, job: &str, now: f64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE attempts SET finished = ?2 WHERE job = ?1 AND finished IS NULL",
        params![job, now],
    )?;
    tx.execute(
        "UPDATE replicas SET state = ?2 WHERE job = ?1 AND state = ?3",
        params![job, ReplicaStatus::Stopped, ReplicaStatus::Running],
    )?;
    Ok(())
}

/// Gives back a suspended job's GPUs, ports and admission, and forgets its supervisor.
fn park(tx: &Transaction, job: &str) -> rusqlite::Result<()> {
    give_back(tx, job)?;
    tx.execute(
        "UPDATE jobs SET supervisor_pid = 0, supervisor_start = 0 WHERE name = ?1",
        [job],
    )?;
    Ok(())
}

/// Gives back a job's GPUs, ports and admission: it waits in the queue again.
fn give_back(tx: &Transaction, job: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM ports WHERE job = ?1", [job])?;
    tx.execute(
        "UPDATE jobs SET gpus = '[]', admitted = 0 WHERE name = ?1",
        [job],
    )?;
    Ok(())
}

/// GPUs and ports as every job that has not ended holds or waits for them, read and granted
/// in one write transaction (see [`Store::allocation`]).
pub struct Allocation<'a> {
    tx: Transaction<'a>,
    path: &'a Path,
}

/// What the jobs that have not ended hold, and every job that needs GPUs.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// GPUs held by admitted jobs.
    pub held_gpus: Vec<u32>,
    /// Jobs that need GPUs, ended ones included (their use counts for fair share).
    pub gpu_jobs: Vec<GpuJob>,
}

/// A job that needs GPUs, as the queue sees it.
#[derive(Debug, Clone)]
pub struct GpuJob {
    /// Its name.
    pub name: String,
    /// Arrival order.
    pub seq: u64,
    /// GPUs it needs at once.
    pub gpus: u32,
    /// Whether it holds its GPUs now.
    pub holding: bool,
    /// Whether it waits to be admitted (Pending, never admitted).
    pub waiting: bool,
    /// Whether it has ended.
    pub ended: bool,
    /// When it was created, started and finished.
    pub created: f64,
    /// When its first replica started.
    pub started: Option<f64>,
    /// When it ended.
    pub finished: Option<f64>,
    /// Its job file (None if the stored spec no longer parses).
    pub spec: Option<TrainingJob>,
    /// How long earlier successful runs of its name took, latest first (at most
    /// [`ESTIMATE_RUNS`]).
    pub earlier_runs_s: Vec<f64>,
    /// When each of its replicas' attempts started and ended (None: still running): the
    /// GPU time it has received, across suspensions.
    pub attempt_spans: Vec<(f64, Option<f64>)>,
}

/// What one replica is granted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaGrant {
    /// Which replica.
    pub replica: ReplicaId,
    /// Its local port.
    pub port: u16,
    /// The GPUs it sees.
    pub gpus: Vec<u32>,
}

impl Allocation<'_> {
    /// What the jobs that are not being deleted hold, and those that need GPUs.
    pub fn claims(&self) -> Result<Claims, StoreError> {
        let read = || -> rusqlite::Result<Claims> {
            let mut claims = Claims::default();
            let mut stmt = self.tx.prepare(
                "SELECT name, gpus_needed, admitted, gpus, seq, spec, phase, created, started,
                        finished, supervisor_pid, supervisor_start FROM jobs WHERE deleting = 0",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let gpus: u32 = r.get(1)?;
                let admitted: bool = r.get(2)?;
                let phase: String = r.get(6)?;
                let ended = matches!(phase.as_str(), "Succeeded" | "Failed");
                // An ended job holds its GPUs until its supervisor lets them go (it drops
                // their machine-wide leases, then releases them here) or dies.
                let supervised = crate::process::is_same_process(
                    r.get::<_, i64>(10)? as i32,
                    r.get::<_, i64>(11)? as u64,
                );
                let held = if admitted && (!ended || supervised) {
                    json_list(r.get(3)?)
                } else {
                    Vec::new()
                };
                if gpus > 0 {
                    claims.gpu_jobs.push(GpuJob {
                        name: r.get(0)?,
                        seq: r.get::<_, i64>(4)? as u64,
                        gpus,
                        holding: !held.is_empty(),
                        waiting: !admitted && phase == "Pending",
                        ended,
                        created: r.get(7)?,
                        started: r.get(8)?,
                        finished: r.get(9)?,
                        spec: serde_json::from_str(&r.get::<_, String>(5)?).ok(),
                        earlier_runs_s: Vec::new(),
                        attempt_spans: Vec::new(),
                    });
                }
                claims.held_gpus.extend(held);
            }
            let mut runs = self.tx.prepare(
                "SELECT ran_s FROM runs WHERE name = ?1 ORDER BY finished DESC LIMIT ?2",
            )?;
            let mut spans = self
                .tx
                .prepare("SELECT started, finished FROM attempts WHERE job = ?1")?;
            for j in claims.gpu_jobs.iter_mut().filter(|j| !j.ended) {
                j.earlier_runs_s = runs
                    .query_map(params![j.name, ESTIMATE_RUNS as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                j.attempt_spans = spans
                    .query_map([&j.name], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
            }
            Ok(claims)
        };
        read().at(self.path)
    }

    /// Whether a job holds `port`.
    pub fn port_in_use(&self, port: u16) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .query_row("SELECT 1 FROM ports WHERE port = ?1", [port], |_| Ok(true))
            .optional()
            .at(self.path)?
            .unwrap_or(false))
    }

    /// Records the job as admitted with these ports and GPUs, and commits.
    pub fn grant(self, job: &str, replicas: &[ReplicaGrant]) -> Result<(), StoreError> {
        let path = self.path;
        let mut all: Vec<u32> = Vec::new();
        {
            let mut replica = self
                .tx
                .prepare("UPDATE replicas SET port = ?3, gpus = ?4 WHERE job = ?1 AND replica = ?2")
                .at(path)?;
            let mut port = self
                .tx
                .prepare("INSERT INTO ports (port, job) VALUES (?1, ?2)")
                .at(path)?;
            for r in replicas {
                replica
                    .execute(params![
                        job,
                        r.replica.to_string(),
                        r.port,
                        serde_json::to_string(&r.gpus)?
                    ])
                    .at(path)?;
                port.execute(params![r.port, job]).at(path)?;
                all.extend(&r.gpus);
            }
        }
        all.sort_unstable();
        self.tx
            .execute(
                "UPDATE jobs SET admitted = 1, gpus = ?2 WHERE name = ?1",
                params![job, serde_json::to_string(&all)?],
            )
            .at(path)?;
        self.tx.commit().at(path)?;
        Ok(())
    }
}
