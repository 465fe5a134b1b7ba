//! A local job run in this process (`trainctl run`, and the detached supervisor of a
//! submitted job): the supervisor, a thread that records the job's metrics every second,
//! one that samples its resource use, and for `run` a thread that streams its logs and says each phase change on stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, Result};
use trainctl_core::state_machine::JobPhase;
use trainctl_local::logs::{copy_logs, Selection};
use trainctl_local::store::Store;
use trainctl_local::supervisor::{supervise, SupervisorConfig};
use trainctl_local::{process, Home, LocalEngine};
use trainctl_metrics::collect::Collector;
use trainctl_metrics::event_file::Problem;
use trainctl_metrics::stdout::StdoutParser;
use trainctl_spec::TrainingJob;

use crate::resource_history::{sample_until, HistoryConfig};

/// Opens the job's metrics collector (with the parser its `spec.metrics` asks for); also
/// says whether the job has ended.
pub fn collector(home: &Home, name: &str) -> Result<(Collector, bool)> {
    let mut engine = LocalEngine::open(home.clone())?;
    let job = engine.job(name)?;
    Ok((open_collector(home, &job.spec)?, job.phase.is_terminal()))
}

/// The metrics collector of `job`, with the parser its `spec.metrics` asks for.
fn open_collector(home: &Home, job: &TrainingJob) -> Result<Collector> {
    let parser = StdoutParser::for_spec(job.spec.metrics.as_ref())?;
    let name = job.name();
    Ok(Collector::open(
        &home.job_dir(name),
        &home.tensorboard_dir(name),
        parser,
    )?)
}

/// Says each problem of an event file on stderr.
pub fn warn(problems: &[Problem]) {
    for p in problems {
        eprintln!("warning: {p}");
    }
}

/// Supervises a created job until it ends (or `stop` is set), recording its metrics and its
/// resource history all along; returns its final phase. Once the last metrics are in, this
/// process lets go of the job, so a reader that waits for its supervisor to be done (`logs
/// -f`, `delete`, an experiment supervising its trials in-process) stops waiting although
/// the process lives on.
pub fn supervise_collecting(home: &Home, name: &str, stop: &AtomicBool) -> Result<JobPhase> {
    let ended = AtomicBool::new(false);
    let history = HistoryConfig::from_env();
    let phase = std::thread::scope(|scope| {
        let collecting = scope.spawn(|| collect_until(home, name, &ended));
        let sampling = scope.spawn(|| sample_until(home, name, &ended, &history));
        let phase = supervise(home, name, &SupervisorConfig::from_env(), stop);
        ended.store(true, Ordering::SeqCst);
        collecting.thread().unpark();
        sampling.thread().unpark();
        phase
    });
    let phase = phase?;
    let me = std::process::id() as i32;
    Store::open(&home.db_path())?.let_go(name, me, process::start_ticks(me).unwrap_or(0))?;
    Ok(phase)
}

/// Collects the job's metrics once a second, and once more after `ended` is set; a warning,
/// and no collecting, when its `spec.metrics` cannot work. Opening the collector happens on
/// this thread, off the path that starts the replicas. The job's record is read straight
/// from the store: its supervisor needs none of the engine's housekeeping over every job.
fn collect_until(home: &Home, name: &str, ended: &AtomicBool) {
    let opened = Store::open(&home.db_path())
        .map_err(anyhow::Error::from)
        .and_then(|s| {
            s.job(name)?
                .ok_or_else(|| anyhow!("job {name:?} not found"))
        })
        .and_then(|job| open_collector(home, &job.spec));
    let mut c = match opened {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: metrics of job {name} are not collected: {e:#}");
            return;
        }
    };
    loop {
        std::thread::park_timeout(Duration::from_secs(1));
        let last = ended.load(Ordering::SeqCst);
        if let Err(e) = c.collect(last) {
            eprintln!("warning: collecting the metrics of job {name}: {e:#}");
            return;
        }
        if last {
            return;
        }
    }
}

/// Runs a created job here until it ends (or `stop` is set): supervises it, records its
/// metrics, and streams its logs (each line prefixed with its replica) into the writer
/// `out` makes on the streaming thread. Returns the job's final phase.
pub fn run_attached(
    home: &Home,
    name: &str,
    out: impl FnOnce() -> Box<dyn Write> + Send,
    stop: &AtomicBool,
) -> Result<JobPhase> {
    let done = AtomicBool::new(false);
    let (result, logs) = std::thread::scope(|scope| {
        let follower = scope.spawn(|| -> Result<()> {
            let store = Store::open(&home.db_path())?;
            let sel = Selection {
                prefix: true,
                ..Selection::default()
            };
            let mut out = out();
            // Phase changes go to stderr as they happen, so a queued or restarting job says so.
            let mut shown = (String::new(), String::new());
            copy_logs(&store, name, &sel, &mut out, true, &mut |store| {
                if let Some(j) = store.job(name)? {
                    let now_showing = (j.phase.as_str().to_string(), j.reason.clone());
                    if now_showing != shown && !j.phase.is_terminal() {
                        eprintln!(
                            "job {name}: {} ({}): {}",
                            now_showing.0, j.reason, j.message
                        );
                    }
                    shown = now_showing;
                }
                Ok(done.load(Ordering::SeqCst))
            })?;
            Ok(())
        });
        let result = supervise_collecting(home, name, stop);
        done.store(true, Ordering::SeqCst);
        follower.thread().unpark();
        (result, follower.join())
    });
    let logs = logs.map_err(|_| anyhow!("log streaming thread panicked"))?;
    let phase = result?;
    if let Err(e) = logs {
        eprintln!("warning: log streaming stopped: {e:#}");
    }
    Ok(phase)
}
