//! The rules of a training job, written once as pure code with no I/O and driven by every
//! engine (local processes today, Kubernetes pods in the operator):
//!
//! - [`wiring`]: the environment each replica gets (TF_CONFIG, PyTorch, `TRAINCTL_*`);
//! - [`state_machine`]: from the spec and the observed replicas, the job phase and what to
//!   start, restart or stop;
//! - [`plan`]: the bookkeeping around a decision (attempt numbers, restarts, start time,
//!   restarts that are due, when to look again, TTL expiry);
//! - [`backoff`]: restart delays and the setting that changes them;
//! - [`queue`]: the GPU queue policies (FIFO, backfilling, least attained service with
//!   preemption, fair share, the oracles): which jobs start, whom to preempt, reservations.

pub mod backoff;
pub mod plan;
pub mod queue;
pub mod replica;
pub mod state_machine;
pub mod wiring;

pub use replica::ReplicaId;
