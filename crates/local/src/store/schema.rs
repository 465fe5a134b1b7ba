//! The state database's schema versions. `PRAGMA user_version` holds a database's version;
//! [`migrate`] brings it to [`SCHEMA_VERSION`] one step at a time, all steps in one
//! transaction. A database from a newer trainctl is refused and never modified.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{At, StoreError};

/// Step `i` brings a database from version `i` to `i + 1`. Append only: users' databases
/// went through every released step as it was.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this trainctl writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: the tables as they were before the schema had a version. `IF NOT EXISTS`, so a
/// database written then (version 0, tables present) is adopted as it is.
const V1: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    spec TEXT NOT NULL,
    workdir TEXT NOT NULL,
    phase TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    restarts INTEGER NOT NULL DEFAULT 0,
    gpus_needed INTEGER NOT NULL DEFAULT 0,
    admitted INTEGER NOT NULL DEFAULT 0,
    gpus TEXT NOT NULL DEFAULT '[]',
    supervisor_pid INTEGER NOT NULL DEFAULT 0,
    supervisor_start INTEGER NOT NULL DEFAULT 0,
    deleting INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS replicas (
    job TEXT NOT NULL,
    replica TEXT NOT NULL,
    ord INTEGER NOT NULL,
    port INTEGER NOT NULL DEFAULT 0,
    gpus TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'NotStarted',
    attempt INTEGER NOT NULL DEFAULT -1,
    exit_code INTEGER,
    pid INTEGER NOT NULL DEFAULT 0,
    pid_start INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, replica)
);
CREATE TABLE IF NOT EXISTS attempts (
    job TEXT NOT NULL,
    replica TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    exit_code INTEGER,
    log TEXT NOT NULL,
    PRIMARY KEY (job, replica, attempt)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ports (
    port INTEGER PRIMARY KEY,
    job TEXT NOT NULL
);
";

/// Version 2: hyperparameter search experiments and their trials (each trial is also a job).
const V2: &str = "
CREATE TABLE experiments (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    spec TEXT NOT NULL,
    workdir TEXT NOT NULL,
    phase TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    finished REAL,
    driver_pid INTEGER NOT NULL DEFAULT 0,
    driver_start INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE trials (
    experiment TEXT NOT NULL,
    number INTEGER NOT NULL,
    job TEXT NOT NULL,
    assignment TEXT NOT NULL,
    state TEXT NOT NULL,
    value REAL,
    intermediate TEXT NOT NULL DEFAULT '[]',
    message TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    finished REAL,
    PRIMARY KEY (experiment, number)
);
";

/// Version 3: how long each successful job ran, kept after the job is deleted, so the queue
/// can expect a job to run about as long as earlier runs of its name did.
const V3: &str = "
CREATE TABLE runs (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ran_s REAL NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (name, seq)
);
";

/// Version 4: each trial's other metrics (the experiment's `additionalMetricNames`), as a
/// JSON list of `{name, min, max, latest}`.
const V4: &str = "
ALTER TABLE trials ADD COLUMN metrics TEXT NOT NULL DEFAULT '[]';
";

/// The schema version of the database on `conn` (0 for a new or unversioned one).
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// An error for a version this trainctl does not know (a newer trainctl's).
pub fn refuse_unknown(found: i64, path: &Path) -> Result<(), StoreError> {
    if (0..=SCHEMA_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        })
    }
}

/// Applies the steps the database lacks, in one write transaction (a concurrent opener
/// waits, then finds nothing left to do).
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    if version(conn).at(path)? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .at(path)?;
    let found = version(&tx).at(path)?;
    refuse_unknown(found, path)?;
    for step in &MIGRATIONS[found as usize..] {
        tx.execute_batch(step).at(path)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .at(path)?;
    tx.commit().at(path)?;
    Ok(())
}
