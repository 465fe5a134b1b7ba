//! The state database across trainctl versions. `fixtures/schema-v1` is a state directory as
//! trainctl left it before the schema had a version (see its README); every test works on a
//! copy of it, so the fixture itself never changes.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;
use trainctl_core::state_machine::JobPhase;
use trainctl_local::store::{ReplicaStatus, Store, StoreError, SCHEMA_VERSION};
use trainctl_local::{Home, LocalEngine};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v1");

/// Where the fixture was written: its stored log paths start here.
const FIXTURE_HOME: &str = "/tmp/trainctl-fixture-v1/home";

/// Rows of the fixture: 5 jobs, 6 replicas, 7 attempts, 32 events (its ports were released).
const FIXTURE_ROWS: usize = 5 + 6 + 7 + 32;

/// A copy of the fixture's state directory.
fn copy_of_fixture() -> (TempDir, Home) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    copy(Path::new(FIXTURE), home.root());
    (dir, home)
}

/// Every row of every table, as text, in storage order.
fn dump(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut rows = Vec::new();
    for table in ["jobs", "replicas", "attempts", "events", "ports"] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let columns = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows
}

fn user_version(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// A replica as the fixture has it: name, state, exit code, latest attempt.
type Replica = (&'static str, ReplicaStatus, Option<i32>, i64);

/// A job as the fixture has it.
struct Expected {
    name: &'static str,
    phase: JobPhase,
    reason: &'static str,
    restarts: u32,
    replicas: &'static [Replica],
    attempts: usize,
    events: usize,
}

/// The jobs of the fixture, oldest first.
const JOBS: [Expected; 5] = [
    Expected {
        name: "succeeded",
        phase: JobPhase::Succeeded,
        reason: "Succeeded",
        restarts: 0,
        replicas: &[("worker-0", ReplicaStatus::Succeeded, Some(0), 0)],
        attempts: 1,
        events: 6,
    },
    Expected {
        name: "failed",
        phase: JobPhase::Failed,
        reason: "ReplicaFailed",
        restarts: 0,
        replicas: &[("worker-0", ReplicaStatus::Failed, Some(3), 0)],
        attempts: 1,
        events: 5,
    },
    Expected {
        name: "restarted",
        phase: JobPhase::Succeeded,
        reason: "Succeeded",
        restarts: 1,
        replicas: &[("worker-0", ReplicaStatus::Succeeded, Some(0), 1)],
        attempts: 2,
        events: 8,
    },
    Expected {
        name: "gpu",
        phase: JobPhase::Succeeded,
        reason: "Succeeded",
        restarts: 0,
        replicas: &[("worker-0", ReplicaStatus::Succeeded, Some(0), 0)],
        attempts: 1,
        events: 5,
    },
    Expected {
        name: "ps-stopped",
        phase: JobPhase::Succeeded,
        reason: "Succeeded",
        restarts: 0,
        replicas: &[
            ("ps-0", ReplicaStatus::Stopped, Some(143), 0),
            ("worker-0", ReplicaStatus::Succeeded, Some(0), 0),
        ],
        attempts: 2,
        events: 8,
    },
];

/// What each attempt of the fixture wrote: job, replica, attempt, output.
const LOGS: [(&str, &str, u32, &str); 7] = [
    ("succeeded", "worker-0", 0, "trained\n"),
    ("failed", "worker-0", 0, "boom\n"),
    ("restarted", "worker-0", 0, "crash\n"),
    ("restarted", "worker-0", 1, "resumed\n"),
    ("gpu", "worker-0", 0, "gpus=0\n"),
    ("ps-stopped", "ps-0", 0, "serving\n"),
    ("ps-stopped", "worker-0", 0, "trained\n"),
];

#[test]
fn a_database_from_before_schema_versions_keeps_every_record() {
    let (_dir, home) = copy_of_fixture();
    let before = dump(&home.db_path());
    assert_eq!(before.len(), FIXTURE_ROWS);
    assert_eq!(user_version(&home.db_path()), 0);

    let mut engine = LocalEngine::open(home.clone()).unwrap();
    let names: Vec<String> = engine.jobs().unwrap().into_iter().map(|j| j.name).collect();
    assert_eq!(names, JOBS.map(|j| j.name));
    for want in JOBS {
        let name = want.name;
        let d = engine.detail(name).unwrap();
        assert_eq!(
            (d.job.phase, d.job.reason.as_str(), d.job.restarts),
            (want.phase, want.reason, want.restarts),
            "{name}"
        );
        let found: Vec<Replica> = d
            .replicas
            .iter()
            .zip(want.replicas)
            .map(|(r, stored)| (stored.0, r.state, r.exit_code, r.attempt))
            .collect();
        let ids: Vec<String> = d.replicas.iter().map(|r| r.replica.to_string()).collect();
        assert_eq!(ids, want.replicas.iter().map(|r| r.0).collect::<Vec<_>>());
        assert_eq!(found, want.replicas, "{name}");
        assert_eq!(d.attempts.len(), want.attempts, "{name}");
        assert_eq!(d.events.len(), want.events, "{name}");
    }

    assert_eq!(user_version(&home.db_path()), SCHEMA_VERSION);
    assert_eq!(dump(&home.db_path()), before);
}

#[test]
fn every_log_of_an_old_state_directory_is_where_the_new_code_looks() {
    let (_dir, home) = copy_of_fixture();
    let old_home = Home::at(FIXTURE_HOME);
    let store = Store::open(&home.db_path()).unwrap();
    for (job, replica, attempt, output) in LOGS {
        let replica = replica.parse().unwrap();
        let text = std::fs::read_to_string(home.attempt_log(job, replica, attempt)).unwrap();
        assert_eq!(text, output, "{job} {replica} attempt {attempt}");
        let stored: Vec<PathBuf> = store
            .attempts(job)
            .unwrap()
            .into_iter()
            .filter(|a| a.replica == replica && a.attempt == attempt)
            .map(|a| a.log)
            .collect();
        assert_eq!(stored, [old_home.attempt_log(job, replica, attempt)]);
    }
}

#[test]
fn opening_a_database_again_changes_nothing() {
    let (_dir, home) = copy_of_fixture();
    drop(Store::open(&home.db_path()).unwrap());
    let once = dump(&home.db_path());
    drop(Store::open(&home.db_path()).unwrap());
    assert_eq!(dump(&home.db_path()), once);
    assert_eq!(user_version(&home.db_path()), SCHEMA_VERSION);
}

#[test]
fn a_new_state_directory_starts_at_the_latest_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new/state.db");
    let store = Store::open(&db).unwrap();
    assert!(store.jobs().unwrap().is_empty());
    assert_eq!(user_version(&db), SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_trainctl_is_refused_and_left_unchanged() {
    let (_dir, home) = copy_of_fixture();
    let db = home.db_path();
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let bytes = std::fs::read(&db).unwrap();

    let err = Store::open(&db).err().expect("a newer schema is refused");
    assert!(
        matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("a newer trainctl wrote it"),
        "{err}"
    );
    assert!(LocalEngine::open(home.clone()).is_err());

    assert!(std::fs::read(&db).unwrap() == bytes, "the database changed");
    assert!(!home.root().join("state.db-wal").exists());
}

#[test]
fn an_unknown_replica_state_in_the_database_is_an_error() {
    let (_dir, home) = copy_of_fixture();
    let store = Store::open(&home.db_path()).unwrap();
    Connection::open(home.db_path())
        .unwrap()
        .execute(
            "UPDATE replicas SET state = 'Sleeping' WHERE job = 'succeeded'",
            [],
        )
        .unwrap();
    let err = store.replicas("succeeded").unwrap_err();
    assert!(err.to_string().contains("Sleeping"), "{err}");
    assert!(store.replicas("failed").is_ok());
}
