//! Hyperparameter search on this machine: an Experiment's trials run as ordinary local jobs
//! (`<experiment>-<n>`, labelled with their experiment), never more than
//! `parallelTrialCount` at once; their objective comes from the metrics trainctl collects for
//! every job. The search itself is `trainctl-search`'s, pure; this module only acts.

pub mod cluster;
mod driver;
pub mod export;
pub mod objective;
pub mod status;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use trainctl_local::store::{ExperimentRow, Store, TrialRow};
use trainctl_local::{now, process, EngineError, Home, LocalEngine};
use trainctl_spec::Experiment;

pub use driver::drive;

/// Records a new experiment that runs its trials in `workdir`.
pub fn create(home: &Home, exp: &Experiment, workdir: &Path) -> Result<()> {
    let store = Store::open(&home.db_path())?;
    if !workdir.is_dir() {
        bail!("working directory {} does not exist", workdir.display());
    }
    store.insert_experiment(exp, workdir, now()).map_err(|e| match e {
        trainctl_local::store::StoreError::AlreadyExists(n) => anyhow::anyhow!(
            "experiment {n:?} already exists; delete it first (trainctl delete experiment {n}) or pick another name"
        ),
        e => e.into(),
    })
}

/// The log of an experiment's detached driver.
pub fn driver_log(home: &Home, name: &str) -> PathBuf {
    home.root().join("experiments").join(format!("{name}.log"))
}

/// Starts a detached driver for `name`: `program args... NAME`.
pub fn start_detached(home: &Home, name: &str, program: &[String]) -> Result<()> {
    let mut argv = program.to_vec();
    argv.push(name.to_string());
    let env = [(
        "TRAINCTL_HOME".to_string(),
        home.root().to_string_lossy().into_owned(),
    )];
    let log = driver_log(home, name);
    std::fs::create_dir_all(log.parent().expect("a log has a directory"))?;
    let pid = process::spawn_detached(&argv, &env, &log)?;
    Store::open(&home.db_path())?.set_experiment_driver(
        name,
        pid,
        process::start_ticks(pid).unwrap_or(0),
    )?;
    Ok(())
}

/// Readies an experiment to be driven again: refused while its driver runs; `max_trials`
/// raises (or sets) its maxTrialCount.
pub fn prepare_resume(home: &Home, name: &str, max_trials: Option<u64>) -> Result<()> {
    let (mut exp, trials) = get(home, name)?;
    if process::is_same_process(exp.driver_pid, exp.driver_start) {
        bail!("experiment {name:?} is running (pid {})", exp.driver_pid);
    }
    if let Some(n) = max_trials {
        if (n as usize) < trials.len() {
            bail!(
                "--max-trials {n} is below the {} trials already run",
                trials.len()
            );
        }
        exp.spec.spec.max_trial_count = Some(trainctl_spec::HyperValue::Int(n as i64));
    }
    let store = Store::open(&home.db_path())?;
    store.set_experiment_spec(name, &exp.spec)?;
    store.set_experiment_phase(name, "Created", "ExperimentResumed", "", None)?;
    Ok(())
}

/// One experiment and its trials.
pub fn get(home: &Home, name: &str) -> Result<(ExperimentRow, Vec<TrialRow>)> {
    let store = Store::open(&home.db_path())?;
    let exp = store.experiment(name)?.with_context(|| {
        format!("experiment {name:?} not found (trainctl get experiments lists them)")
    })?;
    let trials = store.trials(name)?;
    Ok((exp, trials))
}

/// Every experiment with its trials, oldest first.
pub fn list(home: &Home) -> Result<Vec<(ExperimentRow, Vec<TrialRow>)>> {
    let store = Store::open(&home.db_path())?;
    store
        .experiments()?
        .into_iter()
        .map(|e| {
            let trials = store.trials(&e.name)?;
            Ok((e, trials))
        })
        .collect()
}

/// Stops an experiment's driver, which stops the trials it supervises (SIGTERM; SIGKILL
/// when it has not exited `grace` plus 10 s later), deletes the trials' jobs (stopping what
/// is left of them: SIGTERM, SIGKILL after `grace`) and the experiment.
pub fn delete(home: &Home, name: &str, grace: Duration) -> Result<()> {
    let (exp, trials) = get(home, name)?;
    let driver = (exp.driver_pid, exp.driver_start);
    if process::is_same_process(driver.0, driver.1) {
        process::signal_process(driver.0, libc::SIGTERM);
        process::wait_any_exit(&[driver], grace + Duration::from_secs(10));
        if process::is_same_process(driver.0, driver.1) {
            process::signal_process(driver.0, libc::SIGKILL);
        }
    }
    let mut engine = LocalEngine::open(home.clone())?;
    for t in &trials {
        match engine.delete(&t.job, grace) {
            Ok(()) | Err(EngineError::NotFound(_)) => {}
            Err(e) => return Err(e).context(format!("deleting trial {}", t.job)),
        }
    }
    Store::open(&home.db_path())?.remove_experiment(name)?;
    let _ = std::fs::remove_file(driver_log(home, name));
    Ok(())
}
