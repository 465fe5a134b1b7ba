//! Hyperparameter search without I/O: a parameter space, the history of trials and a seed in,
//! the next trial's assignment (or a stop decision) out. The local engine and the operator
//! call the same functions, so an experiment behaves alike on both and resumes exactly: a
//! suggestion depends only on the seed, the trial's number and the finished (and pruned)
//! trials.
//!
//! Samplers ([`Sampler`]): `random`, `grid`, `sobol`, `tpe` (independent per parameter),
//! `multivariate-tpe` (one joint kernel per observation) and `cmaes`. Early stopping
//! ([`EarlyStopping`]): `medianstop`, `asha`, `hyperband`.

mod algorithms;
mod early_stopping;
mod history;
mod math;
mod rng;
mod settings;
mod space;

pub use algorithms::{Algorithm, CmaesSettings, Sampler, Suggestion, TpeSettings, ALGORITHMS};
pub use early_stopping::{EarlyStopping, EARLY_STOPPING_ALGORITHMS};
pub use history::{Direction, Trial, TrialState};
pub use space::{Assignment, Coord, Domain, Parameter, Space, Value};

/// Why a space, an algorithm or its settings were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    /// A malformed parameter space (the message names the parameter).
    #[error("{0}")]
    Space(String),
    /// An unknown algorithm name (the message lists the known ones).
    #[error("{0}")]
    Algorithm(String),
    /// An unknown or malformed setting (the message lists the known ones).
    #[error("{0}")]
    Setting(String),
}
