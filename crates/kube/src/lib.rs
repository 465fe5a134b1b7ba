//! Everything Kubernetes-specific that needs no cluster: turning a TrainingJob into the
//! objects a cluster runs ([`render`]), catching the mistakes that cost hours on GPU clusters
//! ([`lint`]), and reading Kubeflow TFJob / PyTorchJob manifests, batch Jobs and Katib experiments ([`convert`]). The cloud
//! differences live in one table per profile ([`profiles`]).
//!
//! The wiring env of every replica comes from `trainctl-core`, so a pod on a cluster sees
//! exactly the cluster form of what a local replica sees.

pub mod convert;
pub mod lint;
pub mod output;
pub mod profiles;
mod quantity;
pub mod render;

pub use convert::katib::ConvertedExperiment;
pub use convert::{convert, convert_document, convert_job, Conversion, ConvertError, Converted};
pub use lint::{lint_job, lint_local, lint_objects, Finding, Severity};
pub use output::{experiment_document, job_document, to_json_list, to_yaml};
pub use render::{render, RenderError, RenderOptions, Target};
