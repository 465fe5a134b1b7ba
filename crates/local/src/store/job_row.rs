//! Reading job records: a row that does not read (a spec written by another version, a
//! damaged value) becomes an [`UnreadableJob`] with its name, so one bad row never hides the
//! other jobs.

use std::path::PathBuf;

use rusqlite::Row;
use serde::Serialize;
use trainctl_core::state_machine::JobPhase;
use trainctl_spec::TrainingJob;

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

/// A job whose record cannot be read: shown by name, and `delete` removes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadableJob {
    /// Its name.
    pub name: String,
    /// Submission time, when that much reads.
    pub created: Option<f64>,
    /// What does not read.
    pub problem: String,
}

/// The job in `row` (a `SELECT * FROM jobs` row), or what keeps it from being read. Only a
/// row without a textual name is an error.
pub(super) fn read(row: &Row) -> rusqlite::Result<Result<JobRow, UnreadableJob>> {
    let name: String = row.get("name")?;
    Ok(fields(row, &name).map_err(|problem| UnreadableJob {
        created: row.get("created").ok(),
        name,
        problem,
    }))
}

fn fields(row: &Row, name: &str) -> Result<JobRow, String> {
    fn col<T: rusqlite::types::FromSql>(row: &Row, column: &str) -> Result<T, String> {
        row.get(column)
            .map_err(|e| format!("its {column} column does not read: {e}"))
    }
    let spec: String = col(row, "spec")?;
    let spec: TrainingJob = serde_json::from_str(&spec)
        .map_err(|e| format!("its stored spec is not a job this trainctl reads: {e}"))?;
    let phase: String = col(row, "phase")?;
    Ok(JobRow {
        name: name.to_string(),
        seq: col(row, "seq")?,
        spec,
        workdir: PathBuf::from(col::<String>(row, "workdir")?),
        phase: JobPhase::parse(&phase).ok_or_else(|| format!("unknown phase {phase:?}"))?,
        reason: col(row, "reason")?,
        message: col(row, "message")?,
        created: col(row, "created")?,
        started: col(row, "started")?,
        finished: col(row, "finished")?,
        restarts: col(row, "restarts")?,
        admitted: col(row, "admitted")?,
        gpus: json_list(col(row, "gpus")?),
        supervisor_pid: col(row, "supervisor_pid")?,
        supervisor_start: col::<i64>(row, "supervisor_start")? as u64,
        deleting: col(row, "deleting")?,
    })
}

/// A JSON list of numbers (GPUs), empty when it does not parse.
pub(super) fn json_list(s: String) -> Vec<u32> {
    serde_json::from_str(&s).unwrap_or_default()
}
