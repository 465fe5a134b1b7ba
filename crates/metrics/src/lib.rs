//! Training metrics: TensorBoard event files (a reader that follows files still being written,
//! understands every scalar encoding in use and skips corrupt records; a writer in TF2's form),
//! metrics parsed from what replicas print, their storage per job, and PNG charts.
//!
//! - [`run_reader::RunReader`] / [`event_file::EventFileReader`] read event files into
//!   [`series::Run`]s; [`writer::EventWriter`] writes them.
//! - [`stdout::StdoutParser`] reads metrics from output lines; [`collect::Collector`] feeds a
//!   job's attempt logs through it into the job's metrics database and event files.
//! - [`job::JobMetrics`] is every series of a job, polled incrementally.
//! - [`plot::plot_png`] draws series.

pub mod collect;
pub mod db;
pub mod error;
pub mod event_file;
pub mod event_lines;
pub mod job;
pub mod plot;
pub mod proto;
pub mod record;
pub mod run_reader;
pub mod scalar;
pub mod series;
pub mod stdout;
pub mod writer;

pub use error::MetricsError;

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
