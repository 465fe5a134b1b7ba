//! Job, replica, attempt and event records in SQLite (WAL, so CLI processes read while
//! supervisors write). Every multi-row change runs in one transaction, so an interrupted
//! command never leaves half a job behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use trainctl_core::queue::QueuedJob;
use trainctl_core::state_machine::JobPhase;
use trainctl_core::ReplicaId;
use trainctl_spec::TrainingJob;

mod experiments;
mod replica_status;
mod schema;

pub use experiments::{ExperimentRow, TrialRow};
pub use replica_status::ReplicaStatus;
pub use schema::SCHEMA_VERSION;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored spec no longer parses (written by another version).
    #[error("stored job spec is unreadable: {0}")]
    Spec(#[from] serde_json::Error),
    /// A job of that name exists.
    #[error(
        "job {0:?} already exists; delete it first (trainctl delete {0}) or pick another name"
    )]
    AlreadyExists(String),
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

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRow {
    /// Unique name.
    pub name: String,
    /// Submission order.
    pub seq: i64,
    /// The validated spec.
    pub spec: TrainingJob,
    /// Where the replicas run.
    pub workdir: PathBuf,
    /// Current phase.
    pub phase: JobPhase,
    /// Why (CamelCase).
    pub reason: String,
    /// Why, for humans.
    pub message: String,
    /// Submission time (Unix seconds).
    pub created: f64,
    /// When the replicas first started.
    pub started: Option<f64>,
    /// When the job ended.
    pub finished: Option<f64>,
    /// Restarts so far.
    pub restarts: u32,
    /// Resources granted.
    pub admitted: bool,
    /// GPUs held by the job.
    pub gpus: Vec<u32>,
    /// The supervising process.
    pub supervisor_pid: i32,
    /// Its start time, to tell it from a recycled pid.
    pub supervisor_start: u64,
    /// `delete` was asked for.
    pub deleting: bool,
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
}

fn parse_replica(s: String) -> rusqlite::Result<ReplicaId> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn json_list(s: String) -> Vec<u32> {
    serde_json::from_str(&s).unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// [`SCHEMA_VERSION`]. A database from a newer trainctl is refused, untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // Before anything that could write: a newer trainctl's database stays as it is.
        schema::refuse_unknown(schema::version(&conn)?, path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Short-lived CLI processes would otherwise checkpoint (and fsync) the WAL on every
        // exit; SQLite still checkpoints automatically as the WAL grows.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        schema::migrate(&mut conn, path)?;
        Ok(Store { conn })
    }

    /// Records a new job with its replicas, Pending. Fails if the name is taken.
    pub fn insert_job(
        &mut self,
        job: &TrainingJob,
        workdir: &Path,
        now: f64,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM jobs WHERE name = ?1", [job.name()], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(StoreError::AlreadyExists(job.name().to_string()));
        }
        let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs", [], |r| {
            r.get(0)
        })?;
        tx.execute(
            "INSERT INTO jobs (name, seq, spec, workdir, phase, reason, message, created, gpus_needed)
             VALUES (?1, ?2, ?3, ?4, 'Pending', 'Created', 'job accepted', ?5, ?6)",
            params![
                job.name(),
                seq,
                serde_json::to_string(job)?,
                workdir.to_string_lossy(),
                now,
                job.total_gpus()
            ],
        )?;
        for (ord, id) in ReplicaId::all_of(job).into_iter().enumerate() {
            tx.execute(
                "INSERT INTO replicas (job, replica, ord) VALUES (?1, ?2, ?3)",
                params![job.name(), id.to_string(), ord as i64],
            )?;
        }
        tx.execute(
            "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, 'Normal', 'Created', ?3)",
            params![job.name(), now, format!("job created with {} replicas", job.spec.replicas.total())],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn job_from_row(row: &rusqlite::Row) -> rusqlite::Result<(JobRow, String)> {
        let spec_text: String = row.get("spec")?;
        let phase: String = row.get("phase")?;
        Ok((
            JobRow {
                name: row.get("name")?,
                seq: row.get("seq")?,
                spec: serde_json::from_str(&spec_text).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                workdir: PathBuf::from(row.get::<_, String>("workdir")?),
                phase: JobPhase::parse(&phase).unwrap_or(JobPhase::Pending),
                reason: row.get("reason")?,
                message: row.get("message")?,
                created: row.get("created")?,
                started: row.get("started")?,
                finished: row.get("finished")?,
                restarts: row.get("restarts")?,
                admitted: row.get("admitted")?,
                gpus: json_list(row.get("gpus")?),
                supervisor_pid: row.get("supervisor_pid")?,
                supervisor_start: row.get::<_, i64>("supervisor_start")? as u64,
                deleting: row.get("deleting")?,
            },
            phase,
        ))
    }

    /// One job.
    pub fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM jobs WHERE name = ?1",
                [name],
                Self::job_from_row,
            )
            .optional()?
            .map(|(j, _)| j))
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT * FROM jobs ORDER BY seq")?;
        let rows = stmt.query_map([], Self::job_from_row)?;
        Ok(rows.map(|r| r.map(|(j, _)| j)).collect::<Result<_, _>>()?)
    }

    /// The replicas of a job, in TF_CONFIG order.
    pub fn replicas(&self, job: &str) -> Result<Vec<ReplicaRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT replica, port, gpus, state, attempt, exit_code, pid, pid_start
             FROM replicas WHERE job = ?1 ORDER BY ord",
        )?;
        let rows = stmt.query_map([job], |r| {
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
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every attempt of a job, by replica then attempt.
    pub fn attempts(&self, job: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT a.replica, a.attempt, a.pid, a.started, a.finished, a.exit_code, a.log
             FROM attempts a JOIN replicas r ON r.job = a.job AND r.replica = a.replica
             WHERE a.job = ?1 ORDER BY r.ord, a.attempt",
        )?;
        let rows = stmt.query_map([job], |r| {
            Ok(AttemptRow {
                replica: parse_replica(r.get(0)?)?,
                attempt: r.get(1)?,
                pid: r.get(2)?,
                started: r.get(3)?,
                finished: r.get(4)?,
                exit_code: r.get(5)?,
                log: PathBuf::from(r.get::<_, String>(6)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The events of a job, oldest first.
    pub fn events(&self, job: &str) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT time, type, reason, message FROM events WHERE job = ?1 ORDER BY id")?;
        let rows = stmt.query_map([job], |r| {
            Ok(EventRow {
                time: r.get(0)?,
                kind: r.get(1)?,
                reason: r.get(2)?,
                message: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        self.conn.execute(
            "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                job,
                now,
                if warning { "Warning" } else { "Normal" },
                reason,
                message
            ],
        )?;
        Ok(())
    }

    /// Records the job's phase; the end time is set when it becomes terminal.
    pub fn set_phase(
        &self,
        job: &str,
        phase: JobPhase,
        reason: &str,
        message: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
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
        )?;
        Ok(())
    }

    /// Marks a job that has not ended as Failed, with an event; returns false (and changes
    /// nothing) when it had ended meanwhile. Atomic, so a supervisor that records success
    /// and exits between a reader's two looks is never overruled.
    pub fn fail_unless_ended(
        &mut self,
        job: &str,
        reason: &str,
        message: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE jobs SET phase = 'Failed', reason = ?2, message = ?3, finished = ?4
             WHERE name = ?1 AND phase NOT IN ('Succeeded', 'Failed')",
            params![job, reason, message, now],
        )?;
        if changed > 0 {
            tx.execute(
                "INSERT INTO events (job, time, type, reason, message) VALUES (?1, ?2, 'Warning', ?3, ?4)",
                params![job, now, reason, message],
            )?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Records which process supervises the job.
    pub fn set_supervisor(&self, job: &str, pid: i32, start: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET supervisor_pid = ?2, supervisor_start = ?3 WHERE name = ?1",
            params![job, pid, start as i64],
        )?;
        Ok(())
    }

    /// Marks the job as being deleted.
    pub fn set_deleting(&self, job: &str) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE jobs SET deleting = 1 WHERE name = ?1", [job])?;
        Ok(())
    }

    /// Whether `delete` was asked for; None when the job is gone.
    pub fn deleting(&self, job: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT deleting FROM jobs WHERE name = ?1", [job], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Starts handing out resources: one write transaction, so no two jobs are granted the
    /// same GPU or port. Dropping it without [`Allocation::grant`] changes nothing.
    pub fn allocation(&mut self) -> Result<Allocation<'_>, StoreError> {
        Ok(Allocation {
            tx: self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?,
        })
    }

    /// Records the start of an attempt.
    #[allow(clippy::too_many_arguments)]
    pub fn start_attempt(
        &mut self,
        job: &str,
        replica: ReplicaId,
        attempt: u32,
        pid: i32,
        pid_start: u64,
        log: &Path,
        now: f64,
        is_restart: bool,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE replicas SET state = ?6, attempt = ?3, exit_code = NULL, pid = ?4, pid_start = ?5
             WHERE job = ?1 AND replica = ?2",
            params![
                job,
                replica.to_string(),
                attempt,
                pid,
                pid_start as i64,
                ReplicaStatus::Running
            ],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO attempts (job, replica, attempt, pid, started, log)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                job,
                replica.to_string(),
                attempt,
                pid,
                now,
                log.to_string_lossy()
            ],
        )?;
        tx.execute(
            "UPDATE jobs SET started = COALESCE(started, ?2), restarts = restarts + ?3 WHERE name = ?1",
            params![job, now, is_restart as i64],
        )?;
        tx.commit()?;
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
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE replicas SET state = ?3, exit_code = ?4 WHERE job = ?1 AND replica = ?2",
            params![job, replica.to_string(), state, exit_code],
        )?;
        tx.execute(
            "UPDATE attempts SET finished = ?4, exit_code = ?5 WHERE job = ?1 AND replica = ?2 AND attempt = ?3",
            params![job, replica.to_string(), attempt, now, exit_code],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Gives back the job's ports and GPUs.
    pub fn release(&self, job: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM ports WHERE job = ?1", [job])?;
        self.conn
            .execute("UPDATE jobs SET gpus = '[]' WHERE name = ?1", [job])?;
        Ok(())
    }

    /// Removes every record of the job.
    pub fn remove_job(&mut self, job: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for table in [
            "jobs WHERE name",
            "replicas WHERE job",
            "attempts WHERE job",
            "events WHERE job",
            "ports WHERE job",
        ] {
            tx.execute(&format!("DELETE FROM {table} = ?1"), [job])?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// GPUs and ports as every job that has not ended holds or waits for them, read and granted
/// in one write transaction (see [`Store::allocation`]).
pub struct Allocation<'a> {
    tx: Transaction<'a>,
}

/// What the jobs that have not ended hold and wait for.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    /// GPUs held by admitted jobs.
    pub held_gpus: Vec<u32>,
    /// Jobs not admitted yet that need GPUs.
    pub gpu_queue: Vec<QueuedJob<String>>,
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
    /// What the jobs that have not ended (and are not being deleted) hold and wait for.
    pub fn claims(&self) -> Result<Claims, StoreError> {
        let mut claims = Claims::default();
        let mut stmt = self.tx.prepare(
            "SELECT name, gpus_needed, admitted, gpus, seq, spec FROM jobs
             WHERE phase NOT IN ('Succeeded', 'Failed') AND deleting = 0",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let gpus_needed: u32 = r.get(1)?;
            if r.get::<_, bool>(2)? {
                claims.held_gpus.extend(json_list(r.get(3)?));
            } else if gpus_needed > 0 {
                let priority = serde_json::from_str::<TrainingJob>(&r.get::<_, String>(5)?)
                    .map(|j| j.spec.scheduling.priority)
                    .unwrap_or(0);
                claims.gpu_queue.push(QueuedJob {
                    key: r.get(0)?,
                    gpus: gpus_needed,
                    priority,
                    seq: r.get::<_, i64>(4)? as u64,
                });
            }
        }
        Ok(claims)
    }

    /// Whether a job holds `port`.
    pub fn port_in_use(&self, port: u16) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .query_row("SELECT 1 FROM ports WHERE port = ?1", [port], |_| Ok(true))
            .optional()?
            .unwrap_or(false))
    }

    /// Records the job as admitted with these ports and GPUs, and commits.
    pub fn grant(self, job: &str, replicas: &[ReplicaGrant]) -> Result<(), StoreError> {
        let mut all: Vec<u32> = Vec::new();
        for r in replicas {
            self.tx.execute(
                "UPDATE replicas SET port = ?3, gpus = ?4 WHERE job = ?1 AND replica = ?2",
                params![
                    job,
                    r.replica.to_string(),
                    r.port,
                    serde_json::to_string(&r.gpus)?
                ],
            )?;
            self.tx.execute(
                "INSERT INTO ports (port, job) VALUES (?1, ?2)",
                params![r.port, job],
            )?;
            all.extend(&r.gpus);
        }
        all.sort_unstable();
        self.tx.execute(
            "UPDATE jobs SET admitted = 1, gpus = ?2 WHERE name = ?1",
            params![job, serde_json::to_string(&all)?],
        )?;
        self.tx.commit()?;
        Ok(())
    }
}
