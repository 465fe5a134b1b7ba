//! The cluster side shared by the operator and its clients: the `trainingjobs.trainctl.dev`
//! resource ([`crd`]), the `experiments.trainctl.dev` resource ([`experiment`]) with its status ([`status`]) and the names both sides agree on
//! ([`names`]), and the client of the CLI and the dashboard ([`client`]) with a cluster
//! job's metrics parsed from its logs ([`job_metrics`]), a log follower that survives
//! dropped connections ([`log_follow`]) and a job's logs followed into files
//! ([`log_mirror`]).

pub mod client;
pub mod crd;
pub mod experiment;
pub mod job_metrics;
pub mod log_follow;
pub mod log_mirror;
pub mod names;
pub mod status;
pub mod trial_metrics;

pub use crd::{crd, ResourceSpec, TrainingJobResource};
pub use experiment::{experiment_crd, ExperimentResource, ExperimentStatus, TrialObservation};
pub use status::JobStatus;
