//! Delays before a failed reconcile is tried again: per job, doubling with each failure in
//! a row from the configured base up to [`MAX_RETRY`], back to the base after a success, so
//! an API server in trouble is not hammered while a single lost race retries at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The longest wait between retries of one job.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// Consecutive failed reconciles per job (`namespace/name`).
#[derive(Debug, Default)]
pub struct RetryBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl RetryBackoff {
    /// Notes a failure of `job`'s reconcile; returns how long to wait before the next try.
    pub fn failed(&self, job: &str, base: Duration) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(job.to_string()).or_default();
        let delay = base.saturating_mul(1 << (*n).min(16)).min(MAX_RETRY);
        *n = n.saturating_add(1);
        delay
    }

    /// Notes a successful reconcile of `job`: its next failure waits the base again.
    pub fn succeeded(&self, job: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_job_up_to_the_cap_and_reset_on_success() {
        let retry = RetryBackoff::default();
        let base = Duration::from_millis(100);
        let delays: Vec<u128> = (0..3)
            .map(|_| retry.failed("ns/a", base).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400]);
        assert_eq!(
            retry.failed("ns/b", base),
            base,
            "other jobs are not slowed"
        );
        for _ in 0..40 {
            retry.failed("ns/a", base);
        }
        assert_eq!(retry.failed("ns/a", base), MAX_RETRY);
        retry.succeeded("ns/a");
        assert_eq!(retry.failed("ns/a", base), base);
    }
}
