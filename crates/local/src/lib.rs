//! The embedded local engine: every replica is a child process in its own process group,
//! with a free port, its wiring env, its working directory and, for GPU replicas,
//! `CUDA_VISIBLE_DEVICES` from this machine's GPUs. Jobs, replicas, attempts and events live
//! in SQLite under `$TRAINCTL_HOME`; every attempt's output is kept in its own log file.
//!
//! A job is driven by a supervisor ([`supervisor::supervise`]) that feeds what it observes to
//! the pure state machine of `trainctl-core` and carries out its decisions. `run` supervises
//! in the foreground; `submit` starts a detached supervisor process and returns.

pub mod admission;
pub mod disk;
pub mod engine;
pub mod gpus;
pub mod home;
pub mod logs;
pub mod process;
pub mod store;
pub mod supervisor;
pub mod trash;

pub use engine::{EngineError, JobDetail, LocalEngine};
pub use home::Home;

/// Seconds since the Unix epoch, the clock of the local engine.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
