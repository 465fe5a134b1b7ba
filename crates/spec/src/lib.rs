//! The TrainingJob file: the Rust types that are the single source of truth for the format
//! (and, later, the CRD schema), parsing with errors located at file:line:column, defaults
//! and validation.
//!
//! Parse a job file with [`parse_job`], an experiment file (`kind: Experiment`, a
//! hyperparameter search) with [`parse_experiment`]; the result is validated and ready for the
//! engines.

mod errors;
mod experiment;
mod experiment_validate;
mod locate;
mod metrics_regex;
mod parse;
mod quantity;
pub mod trial;
mod types;
mod validate;

pub use errors::{SpecError, Violation};
pub use experiment::*;
pub use experiment_validate::validate_experiment;
pub use metrics_regex::MetricsRegexError;
pub use parse::{parse_experiment, parse_experiment_str, parse_job, parse_job_str};
pub use quantity::{quantity_amount, Quantity};
pub use types::*;
pub use validate::{hyperparameter_env_name, is_dns1035_label, is_hyperparameter_name, validate};
