//! An in-memory Kubernetes API server for tests: real HTTP on 127.0.0.1, discovery,
//! list/watch with resourceVersions, CRDs, garbage collection, schema validation, and a
//! simulated scheduler and kubelet the test drives. kube-rs clients and `kubectl` talk to it
//! through the kubeconfig it writes. It is test support: nothing in the product uses it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = kube_sim::KubeSim::start().await?;
//! sim.add_node(&kube_sim::NodeSpec { gpus: 4, ..kube_sim::NodeSpec::new("gpu-1") })?;
//! sim.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! # Ok(()) }
//! ```
//!
#![doc = include_str!("../FIDELITY.md")]

mod clock;
mod cluster;
mod control;
mod control_http;
mod discovery;
mod error;
mod faults;
mod gc;
mod handlers;
mod metrics_api;
mod owners;
mod patch;
mod quantity;
mod registry;
mod requests;
mod routes;
mod selectors;
mod server;
mod store;
mod validation;
mod wait;
mod watch;
mod writes;

pub use cluster::{PRINT_ANNOTATION, SCRIPT_ANNOTATION};
pub use control::{ControlResult, NodeSpec, NodeTaint};
pub use error::ApiError;
pub use faults::{FaultRule, InjectedError};
pub use requests::{RequestCounts, RequestKind};
pub use server::{KubeSim, ServerConfig};
pub use validation::{find_installed_schemas, SchemaSource, SCHEMA_VERSION};
pub use wait::eventually;
