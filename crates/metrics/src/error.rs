//! What can go wrong while collecting or reading metrics.

/// A metrics error.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The metrics database failed.
    #[error("metrics database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The job's `spec.metrics` cannot work.
    #[error("{}: {}", .0.path(), .0)]
    Parser(#[from] crate::stdout::ParserError),
    /// A chart could not be drawn or saved.
    #[error("cannot draw the chart: {0}")]
    Plot(String),
}

/// Adds `path` to an I/O error's message (keeping its kind), so that no error leaves the
/// user guessing which file it was about.
pub fn at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
