//! The mistakes that cost hours on GPU clusters, caught before anything runs. Rules on the
//! job file ([`job_rules`]) and on Kubernetes objects ([`object_rules`]: what we render,
//! or any manifest a user brings); each finding names the field and the fix.

mod job_rules;
mod object_rules;
pub(crate) mod pods;

use std::fmt;

use serde_json::Value;
use trainctl_spec::TrainingJob;

/// How bad a finding is: errors stop `render` and `submit`, warnings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The job will not work as meant.
    Error,
    /// The job runs, but probably not as meant.
    Warning,
}

/// One mistake found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Short rule name, such as `gpu-requests`.
    pub rule: &'static str,
    /// Where: a job-file field path, or `kind/name: field path` in a manifest.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub fix: String,
}

impl Finding {
    /// A finding of `rule` at `path`.
    pub fn new(
        severity: Severity,
        rule: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            rule,
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{level}[{}]: {}: {}; fix: {}",
            self.rule, self.path, self.message, self.fix
        )
    }
}

/// Every finding of a job: the job-file rules, then the object rules on its plain render
/// (findings repeated across replicas are reported once).
pub fn lint_job(job: &TrainingJob) -> Vec<Finding> {
    let mut out = job_rules::check(job);
    for finding in lint_objects(&crate::render::render_for_lint(job)) {
        let seen = out
            .iter()
            .any(|f| f.rule == finding.rule && same_field(&f.path, &finding.path));
        if !seen {
            out.push(finding);
        }
    }
    out
}

/// The findings that matter for a job run on this machine (no cluster-only rules).
pub fn lint_local(job: &TrainingJob) -> Vec<Finding> {
    job_rules::check_everywhere(job)
}

/// Every finding of a set of Kubernetes objects.
pub fn lint_objects(objects: &[Value]) -> Vec<Finding> {
    let mut out = Vec::new();
    for site in objects.iter().flat_map(pods::sites) {
        out.extend(object_rules::check(&site));
    }
    out
}

/// Whether two object findings point at the same field of different replicas' objects.
fn same_field(a: &str, b: &str) -> bool {
    let field = |p: &str| {
        p.split_once(": ")
            .map_or(p.to_string(), |(_, f)| f.to_string())
    };
    a.contains(": ") && field(a) == field(b)
}
