//! Fault injection for reliability tests: per verb/resource error rates (500, 429 with
//! Retry-After, 409), added latency, watch events delivered late (a lagging watch cache),
//! dropping every open watch stream, and cutting followed logs after a number of bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The error an injected fault answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InjectedError {
    /// 500 InternalError.
    ServerError,
    /// 429 TooManyRequests with `Retry-After: seconds`.
    TooManyRequests {
        /// The Retry-After header value.
        seconds: u64,
    },
    /// 409 Conflict.
    Conflict,
    /// 403 Forbidden, as RBAC answers a request it does not allow.
    Forbidden,
}

/// One fault rule: requests matching `verb` and `resource` fail with `error` at `rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`); None matches all.
    #[serde(default)]
    pub verb: Option<String>,
    /// Resource plural (`pods`); None matches all.
    #[serde(default)]
    pub resource: Option<String>,
    /// Probability in 0..=1 that a matching request fails.
    pub rate: f64,
    /// How it fails.
    pub error: InjectedError,
}

/// The faults in force.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Each rule with the only user it applies to (None: everyone).
    rules: Vec<(Option<String>, FaultRule)>,
    latency: Duration,
    /// How late watch events of a resource (plural) are delivered.
    watch_delays: BTreeMap<String, Duration>,
    /// Followed logs (`follow=true`) end after sending this many bytes.
    log_cut: Option<u64>,
}

impl Faults {
    /// Adds a rule (rules are tried in order; the first that fires wins).
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push((None, rule));
    }

    /// Adds a rule that fires only for requests of `user` (the `Impersonate-User` header),
    /// so a test can fail one client's calls and not its own.
    pub fn add_for_user(&mut self, user: &str, rule: FaultRule) {
        self.rules.push((Some(user.into()), rule));
    }

    /// Delivers every live watch event of `resource` (a plural: `pods`) this long after the
    /// change, to watches opened from now on, in order.
    pub fn set_watch_delay(&mut self, resource: &str, delay: Duration) {
        self.watch_delays.insert(resource.into(), delay);
    }

    /// How late watch events of `resource` are delivered.
    pub fn watch_delay(&self, resource: &str) -> Duration {
        self.watch_delays.get(resource).copied().unwrap_or_default()
    }

    /// Ends every followed log (`follow=true`) opened from now on once it has sent `bytes`
    /// bytes, mid-line if that is where the count runs out (None: never).
    pub fn set_log_cut(&mut self, bytes: Option<u64>) {
        self.log_cut = bytes;
    }

    /// After how many bytes a followed log is cut.
    pub fn log_cut(&self) -> Option<u64> {
        self.log_cut
    }

    /// Removes every rule, the added latency, the watch delays and the log cut.
    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    /// Sets the latency added to every resource request.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency = latency;
    }

    /// The latency added to every resource request.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The injected error for a request, if a rule fires.
    pub fn roll(&self, user: &str, verb: &str, resource: &str) -> Option<ApiError> {
        let applies = |(only, rule): &&(Option<String>, FaultRule)| {
            only.as_deref().is_none_or(|u| u == user)
                && rule.verb.as_deref().is_none_or(|v| v == verb)
                && rule.resource.as_deref().is_none_or(|r| r == resource)
        };
        let (_, rule) = self
            .rules
            .iter()
            .filter(applies)
            .find(|(_, rule)| fastrand::f64() < rule.rate)?;
        Some(match rule.error {
            InjectedError::ServerError => ApiError::internal("injected fault"),
            InjectedError::TooManyRequests { seconds } => ApiError::too_many_requests(seconds),
            InjectedError::Conflict => ApiError::conflict(resource, "injected-fault"),
            InjectedError::Forbidden => ApiError::forbidden(verb, resource),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_only_for_their_verb_and_resource() {
        let mut faults = Faults::default();
        faults.add(FaultRule {
            verb: Some("create".into()),
            resource: Some("pods".into()),
            rate: 1.0,
            error: InjectedError::TooManyRequests { seconds: 2 },
        });
        let err = faults.roll("", "create", "pods").unwrap();
        assert_eq!((err.code, err.retry_after), (429, Some(2)));
        assert!(faults.roll("", "get", "pods").is_none());
        assert!(faults.roll("", "create", "services").is_none());
    }

    #[test]
    fn a_rule_for_one_user_spares_everyone_else() {
        let mut faults = Faults::default();
        faults.add_for_user(
            "operator",
            FaultRule {
                verb: None,
                resource: None,
                rate: 1.0,
                error: InjectedError::ServerError,
            },
        );
        assert_eq!(faults.roll("operator", "get", "pods").unwrap().code, 500);
        assert!(faults.roll("", "get", "pods").is_none());
        assert!(faults.roll("someone-else", "get", "pods").is_none());
    }

    #[test]
    fn a_forbidden_rule_answers_403_naming_verb_and_resource() {
        let mut faults = Faults::default();
        faults.add(FaultRule {
            verb: Some("delete".into()),
            resource: None,
            rate: 1.0,
            error: InjectedError::Forbidden,
        });
        let err = faults.roll("", "delete", "trainingjobs").unwrap();
        assert_eq!((err.code, err.reason), (403, "Forbidden"));
        assert!(err
            .message
            .contains("cannot delete resource \"trainingjobs\""));
    }
}
