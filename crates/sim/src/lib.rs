//! Trace replay: jobs of a CSV trace (submit time, duration, GPUs) arrive in simulated time
//! at one pool of GPUs and are started, preempted and finished by the queue policy of
//! `trainctl-core` (the very code the local engine runs); the report has job completion
//! times, queueing delays, preemptions, GPU utilization and makespan.
//!
//! - [`trace`]: reading a trace, with errors that name the line;
//! - [`replay`]: the event loop;
//! - [`report`]: the numbers a replay produces.

pub mod replay;
pub mod report;
pub mod trace;

pub use replay::{replay, Estimates, SimConfig};
pub use report::Report;
pub use trace::{parse_trace, read_trace, TraceError, TraceJob};
