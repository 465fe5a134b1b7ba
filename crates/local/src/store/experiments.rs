//! Experiment and trial records: a hyperparameter search's spec, where it stands, and one
//! row per trial (its job, its parameters, its state and objective values).

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use trainctl_spec::{Experiment, HyperValue};

use super::{At, Store, StoreError};

/// An experiment as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentRow {
    /// Unique name.
    pub name: String,
    /// The validated spec.
    pub spec: Experiment,
    /// Where its trials run.
    pub workdir: PathBuf,
    /// Created, Running, Succeeded or Failed.
    pub phase: String,
    /// Why (Katib's condition reasons).
    pub reason: String,
    /// Why, for humans.
    pub message: String,
    /// Submission time (Unix seconds).
    pub created: f64,
    /// When it ended.
    pub finished: Option<f64>,
    /// The process that drives it.
    pub driver_pid: i32,
    /// Its start time, to tell it from a recycled pid.
    pub driver_start: u64,
}

/// One trial of an experiment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialRow {
    /// 0, 1, ...
    pub number: u64,
    /// Its TrainingJob's name.
    pub job: String,
    /// The parameters it runs with, in the space's order.
    pub assignment: Vec<(String, HyperValue)>,
    /// Running, Succeeded, Failed, EarlyStopped or MetricsUnavailable.
    pub state: String,
    /// The objective value that counts.
    pub value: Option<f64>,
    /// The objective's values by step.
    pub intermediate: Vec<(u64, f64)>,
    /// Why it ended so, for humans.
    pub message: String,
    /// When it was started.
    pub started: f64,
    /// When it ended.
    pub finished: Option<f64>,
    /// Its other metrics (`additionalMetricNames`), those it reported.
    pub metrics: Vec<ObservedMetric>,
}

/// What a trial reported of one metric, as in Katib's observation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ObservedMetric {
    /// The metric.
    pub name: String,
    /// Its smallest value.
    pub min: f64,
    /// Its largest value.
    pub max: f64,
    /// Its value at the last step.
    pub latest: f64,
}

fn json<T: serde::de::DeserializeOwned>(i: usize, s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

fn experiment_from_row(r: &Row) -> rusqlite::Result<ExperimentRow> {
    Ok(ExperimentRow {
        name: r.get("name")?,
        spec: json(2, r.get("spec")?)?,
        workdir: PathBuf::from(r.get::<_, String>("workdir")?),
        phase: r.get("phase")?,
        reason: r.get("reason")?,
        message: r.get("message")?,
        created: r.get("created")?,
        finished: r.get("finished")?,
        driver_pid: r.get("driver_pid")?,
        driver_start: r.get::<_, i64>("driver_start")? as u64,
    })
}

fn trial_from_row(r: &Row) -> rusqlite::Result<TrialRow> {
    Ok(TrialRow {
        number: r.get::<_, i64>("number")? as u64,
        job: r.get("job")?,
        assignment: json(3, r.get("assignment")?)?,
        state: r.get("state")?,
        value: r.get("value")?,
        intermediate: json(6, r.get("intermediate")?)?,
        message: r.get("message")?,
        started: r.get("started")?,
        finished: r.get("finished")?,
        metrics: json(10, r.get("metrics")?)?,
    })
}

impl Store {
    /// Records a new experiment, Created. Fails if the name is taken.
    pub fn insert_experiment(
        &self,
        exp: &Experiment,
        workdir: &Path,
        now: f64,
    ) -> Result<(), StoreError> {
        let name = exp.name();
        if self.experiment(name)?.is_some() {
            return Err(StoreError::AlreadyExists(name.to_string()));
        }
        self.conn.execute(
            "INSERT INTO experiments (name, seq, spec, workdir, phase, created)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM experiments), ?2, ?3, 'Created', ?4)",
            params![
                name,
                serde_json::to_string(exp)?,
                workdir.to_string_lossy(),
                now
            ],
        ).at(&self.path)?;
        Ok(())
    }

    /// One experiment.
    pub fn experiment(&self, name: &str) -> Result<Option<ExperimentRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT * FROM experiments WHERE name = ?1",
                [name],
                experiment_from_row,
            )
            .optional()
            .at(&self.path)
    }

    /// Every experiment, oldest first.
    pub fn experiments(&self) -> Result<Vec<ExperimentRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM experiments ORDER BY seq")
            .at(&self.path)?;
        let rows = stmt.query_map([], experiment_from_row).at(&self.path)?;
        rows.collect::<Result<_, _>>().at(&self.path)
    }

    /// Sets an experiment's phase, reason and message (and its end time when `finished`).
    pub fn set_experiment_phase(
        &self,
        name: &str,
        phase: &str,
        reason: &str,
        message: &str,
        finished: Option<f64>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE experiments SET phase = ?2, reason = ?3, message = ?4, finished = ?5
             WHERE name = ?1",
                params![name, phase, reason, message, finished],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Replaces an experiment's spec (a resumed experiment's larger budget).
    pub fn set_experiment_spec(&self, name: &str, exp: &Experiment) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE experiments SET spec = ?2 WHERE name = ?1",
                params![name, serde_json::to_string(exp)?],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Records the process driving an experiment.
    pub fn set_experiment_driver(
        &self,
        name: &str,
        pid: i32,
        start: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE experiments SET driver_pid = ?2, driver_start = ?3 WHERE name = ?1",
                params![name, pid, start as i64],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Whether process `pid` (started at `start`) is recorded as driving an experiment, and
    /// so supervises its trials in-process: a signal to it would reach the whole experiment.
    pub fn drives_experiment(&self, pid: i32, start: u64) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM experiments WHERE driver_pid = ?1 AND driver_start = ?2)",
                params![pid, start as i64],
                |r| r.get(0),
            )
            .at(&self.path)
    }

    /// Removes an experiment and its trial records (not the trials' jobs).
    pub fn remove_experiment(&self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM trials WHERE experiment = ?1", [name])
            .at(&self.path)?;
        self.conn
            .execute("DELETE FROM experiments WHERE name = ?1", [name])
            .at(&self.path)?;
        Ok(())
    }

    /// Records a started trial, Running.
    pub fn insert_trial(&self, experiment: &str, trial: &TrialRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO trials (experiment, number, job, assignment, state, started)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    experiment,
                    trial.number as i64,
                    trial.job,
                    serde_json::to_string(&trial.assignment)?,
                    trial.state,
                    trial.started
                ],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// Records how a trial ended.
    pub fn end_trial(&self, experiment: &str, trial: &TrialRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE trials SET state = ?3, value = ?4, intermediate = ?5, message = ?6,
             finished = ?7, metrics = ?8 WHERE experiment = ?1 AND number = ?2",
                params![
                    experiment,
                    trial.number as i64,
                    trial.state,
                    trial.value,
                    serde_json::to_string(&trial.intermediate)?,
                    trial.message,
                    trial.finished,
                    serde_json::to_string(&trial.metrics)?
                ],
            )
            .at(&self.path)?;
        Ok(())
    }

    /// An experiment's trials, by number.
    pub fn trials(&self, experiment: &str) -> Result<Vec<TrialRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM trials WHERE experiment = ?1 ORDER BY number")
            .at(&self.path)?;
        let rows = stmt
            .query_map([experiment], trial_from_row)
            .at(&self.path)?;
        rows.collect::<Result<_, _>>().at(&self.path)
    }
}
