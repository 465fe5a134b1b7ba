//! A tally of the API requests the server answered, by user, verb, API group and resource
//! (with its subresource, as RBAC rules name it: `pods/log`), for RBAC and write-count checks.

use std::collections::BTreeMap;

use serde::Serialize;

/// What an RBAC rule would have to allow for a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RequestKind {
    /// Who asked: the `Impersonate-User` header (kube-sim has no authentication), else "".
    pub user: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group, "" for the core group.
    pub group: String,
    /// Resource plural, `plural/subresource` for subresources.
    pub resource: String,
}

impl RequestKind {
    /// Whether the verb changes state (everything but get, list and watch).
    pub fn is_write(&self) -> bool {
        !matches!(self.verb.as_str(), "get" | "list" | "watch")
    }
}

/// How many requests of each kind were made.
pub type RequestCounts = BTreeMap<RequestKind, u64>;

/// Counts one request.
pub(crate) fn record(
    counts: &mut RequestCounts,
    user: &str,
    verb: &str,
    group: &str,
    resource: String,
) {
    let kind = RequestKind {
        user: user.into(),
        verb: verb.into(),
        group: group.into(),
        resource,
    };
    *counts.entry(kind).or_default() += 1;
}
