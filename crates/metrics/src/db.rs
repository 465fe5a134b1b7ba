//! The points trainctl collected from a job's output, in a SQLite file in the job's directory
//! (`metrics.db`), with how far each attempt log has been read.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use crate::series::Point;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    tag TEXT NOT NULL,
    step INTEGER NOT NULL,
    wall_time REAL NOT NULL,
    value REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    log TEXT PRIMARY KEY,
    byte_offset INTEGER NOT NULL,
    step INTEGER,
    seq INTEGER NOT NULL,
    event_file TEXT NOT NULL
);
";

/// How far one attempt log has been read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    /// Bytes consumed (always at a line end).
    pub offset: u64,
    /// The last step a line gave, if any.
    pub step: Option<i64>,
    /// Lines with metrics but no step so far: their step when the replica never gives one.
    pub seq: i64,
    /// The event file the attempt's points are copied to (empty until the first point).
    pub event_file: String,
}

/// A collected point and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedPoint {
    /// The run (`stdout/<replica>`).
    pub run: String,
    /// The metric.
    pub tag: String,
    /// Step, time and value.
    pub point: Point,
}

/// A point as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    /// Row id: increases with every point stored.
    pub id: i64,
    /// The point.
    pub tagged: TaggedPoint,
}

fn insert_points(tx: &rusqlite::Transaction, points: &[TaggedPoint]) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO points (run, tag, step, wall_time, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for TaggedPoint { run, tag, point: p } in points {
        insert.execute(params![run, tag, p.step, p.wall_time, p.value])?;
    }
    Ok(())
}

/// The metrics database of one job.
pub struct MetricsDb {
    conn: Connection,
}

impl MetricsDb {
    /// Opens (creating if needed) the database at `path`. Openers that race to create the
    /// file (a job's collector and resource sampler, an experiment's objective reader) can
    /// find it locked in a way SQLite's busy timeout does not wait out (turning the new file
    /// into WAL); they try again for up to 10 s.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_open(path) {
                Err(e)
                    if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                opened => return opened,
            }
        }
    }

    fn try_open(path: &Path) -> rusqlite::Result<Self> {
        let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        if new {
            // Turning a new file into a WAL database and creating the tables costs six fsyncs
            // (rollback journal, directory, WAL header), which a trial that ends at once
            // waits for; an empty database has nothing to lose, so they are skipped. A power
            // loss before the first checkpoint loses what was written since (as
            // `synchronous=NORMAL` does anyway) and may leave the new file unreadable; a
            // process crash loses nothing (the page cache holds it).
            conn.pragma_update(None, "synchronous", "OFF")?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Like the job store: no checkpoint (and fsync) on every short-lived process's exit.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(MetricsDb { conn })
    }

    /// The cursor of an attempt log (`None` before it was first read).
    pub fn cursor(&self, log: &str) -> rusqlite::Result<Option<Cursor>> {
        self.conn
            .query_row(
                "SELECT byte_offset, step, seq, event_file FROM cursors WHERE log = ?1",
                [log],
                |r| {
                    Ok(Cursor {
                        offset: r.get::<_, i64>(0)? as u64,
                        step: r.get(1)?,
                        seq: r.get(2)?,
                        event_file: r.get(3)?,
                    })
                },
            )
            .optional()
    }

    /// Stores new points of an attempt log and its new cursor, all or nothing.
    pub fn save(
        &mut self,
        log: &str,
        cursor: &Cursor,
        points: &[TaggedPoint],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            insert_points(&tx, points)?;
            tx.execute(
                "INSERT INTO cursors (log, byte_offset, step, seq, event_file)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(log) DO UPDATE SET byte_offset = ?2, step = ?3, seq = ?4,
                     event_file = ?5",
                params![
                    log,
                    cursor.offset as i64,
                    cursor.step,
                    cursor.seq,
                    cursor.event_file
                ],
            )?;
        }
        tx.commit()
    }

    /// Stores points that come from no log (the resource samples), all or nothing.
    pub fn add(&mut self, points: &[TaggedPoint]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        insert_points(&tx, points)?;
        tx.commit()
    }

    /// The points stored after row `id`, in the order they were stored.
    pub fn points_after(&self, id: i64) -> rusqlite::Result<Vec<StoredPoint>> {
        let mut q = self.conn.prepare_cached(
            "SELECT id, run, tag, step, wall_time, value FROM points WHERE id > ?1 ORDER BY id",
        )?;
        let rows = q.query_map([id], |r| {
            Ok(StoredPoint {
                id: r.get(0)?,
                tagged: TaggedPoint {
                    run: r.get(1)?,
                    tag: r.get(2)?,
                    point: Point {
                        step: r.get(3)?,
                        wall_time: r.get(4)?,
                        value: r.get(5)?,
                    },
                },
            })
        })?;
        rows.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers_racing_to_create_a_new_database_all_get_it() {
        for _ in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("metrics.db");
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                let openers: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            MetricsDb::open(&path).and_then(|db| db.cursor("log"))
                        })
                    })
                    .collect();
                for o in openers {
                    assert_eq!(o.join().unwrap(), Ok(None));
                }
            });
        }
    }
}
