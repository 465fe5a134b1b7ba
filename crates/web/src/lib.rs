//! The trainctl dashboard: a web app served by axum, with everything it needs embedded in
//! the binary (no CDN, no build step).
//!
//! - [`access`]: who may connect (loopback by default; a token otherwise, checked on every
//!   request).
//! - [`jobs`]: the job list (filters, pages) and one job, as the objects `trainctl get -o json`
//!   prints, rendered by the caller's [`Render`] function.
//! - [`charts`]: every series of a job, downsampled for display, kept in memory per job and
//!   polled incrementally.
//! - [`live`]: Server-Sent Events for a replica's log and a job's metrics.
//! - [`assets`]: the HTML, CSS and JavaScript of the app.

pub mod access;
pub mod assets;
pub mod charts;
pub mod jobs;
pub mod live;
mod server;

pub use server::{router, serve, Dashboard, Render};
