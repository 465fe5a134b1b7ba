//! The rule for `spec.metrics`: the regular expression compiles and names a metric, so a
//! bad one is refused with the job file rather than found when the job runs.

use regex::Regex;

use crate::types::{MetricsFormat, MetricsSpec};

/// Why `spec.metrics` cannot be used to read metrics (the message leaves out the field: see
/// [`MetricsRegexError::path`]).
#[derive(Debug, thiserror::Error)]
pub enum MetricsRegexError {
    /// `spec.metrics.regex` does not compile.
    #[error("{0}")]
    Regex(#[from] regex::Error),
    /// It names no metric.
    #[error("no named group to take a metric from; name one, e.g. (?P<loss>[0-9.]+), or use the pair (?P<name>...) and (?P<value>...)")]
    NoGroups,
    /// `format: regex` without a regex.
    #[error("format is regex but no regex is given; set spec.metrics.regex")]
    MissingRegex,
}

impl MetricsRegexError {
    /// The field of the job file the error is about.
    pub fn path(&self) -> &'static str {
        match self {
            MetricsRegexError::MissingRegex => "spec.metrics.format",
            _ => "spec.metrics.regex",
        }
    }
}

impl MetricsSpec {
    /// The compiled `regex`, when one is given and the format uses it.
    pub fn compiled_regex(&self) -> Result<Option<Regex>, MetricsRegexError> {
        let Some(text) = &self.regex else {
            return match self.format {
                MetricsFormat::Regex => Err(MetricsRegexError::MissingRegex),
                _ => Ok(None),
            };
        };
        let re = Regex::new(text)?;
        if !re.capture_names().flatten().any(|n| n != "step") {
            return Err(MetricsRegexError::NoGroups);
        }
        Ok((self.format != MetricsFormat::None).then_some(re))
    }
}
