//! The trainctl dashboard: a web app served by axum, with everything it needs embedded in
//! the binary (no CDN, no build step).
//!
//! - [`access`]: who may connect (loopback by default; a token otherwise, checked on every
//!   request), and [`hosts`]: the `Host:` names answered, against DNS rebinding.
//! - [`headers`]: the security headers on every response (content policy, no framing).
//! - [`Source`]: where the jobs come from, this machine or a cluster (`trainctl ui --kube`);
//!   the routes and the app are the same for both.
//! - [`jobs`]: the job list (filters, pages) and one job, as the objects `trainctl get -o json`
//!   prints (`trainctl_backend::view` renders local jobs).
//! - [`cluster`], [`cluster_logs`]: a cluster's jobs, pods and Events, and its live logs.
//! - [`charts`]: every series of a job, downsampled for display, kept in memory per job and
//!   polled incrementally; a live viewer gets only the new points after the first snapshot.
//! - [`live`]: Server-Sent Events for a replica's log and a job's metrics.
//! - [`experiments`]: the experiments list and one experiment (kept live), built by
//!   [`experiment_view`] from rows any source fills; [`trial_metrics`] reads what local
//!   trials reported, [`cluster_experiments`] what the operator recorded of a cluster's.
//! - [`assets`]: the HTML, CSS and JavaScript of the app.

pub mod access;
pub mod assets;
pub mod charts;
pub mod cluster;
pub mod cluster_experiments;
pub mod cluster_logs;
pub mod experiment_view;
pub mod experiments;
pub mod headers;
pub mod hosts;
pub mod jobs;
pub mod live;
mod server;
pub mod trial_metrics;

pub use server::{router, serve, Dashboard, Local, Source};
