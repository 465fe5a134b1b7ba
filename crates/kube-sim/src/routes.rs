//! Parsing Kubernetes API paths into what they address.

use crate::error::{ApiError, ApiResult};
use crate::registry::{Registry, ResourceType};

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    GroupVersion(String, String),
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3,
    /// A resource collection, object or subresource.
    Resource(Box<Target>),
}

/// A resource URL: collection (no name), object, or subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The resource addressed.
    pub rt: ResourceType,
    /// Namespace from the URL (None: cluster-scoped, or all namespaces).
    pub namespace: Option<String>,
    /// Object name, for object URLs.
    pub name: Option<String>,
    /// Subresource (`status`, `log`), for subresource URLs.
    pub subresource: Option<String>,
}

impl Target {
    /// The namespace key objects are stored under ("" for cluster-scoped).
    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

/// Parses `path` against the served resources.
pub fn parse(registry: &Registry, path: &str) -> ApiResult<Route> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::Groups),
        ["apis", group] => return Ok(Route::Group(group.to_string())),
        ["openapi", "v2"] => return Ok(Route::OpenApiV2),
        ["openapi", "v3"] => return Ok(Route::OpenApiV3),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    if rest.is_empty() {
        return Ok(Route::GroupVersion(group.into(), version.into()));
    }
    let find = |plural: &str| registry.find(group, version, plural).cloned();
    let namespaced_plural = match rest {
        ["namespaces", _, plural, ..] => find(plural).filter(|r| r.namespaced),
        _ => None,
    };
    let (rt, namespace, tail) = match (namespaced_plural, rest) {
        (Some(rt), ["namespaces", ns, _, tail @ ..]) => (rt, Some(ns.to_string()), tail),
        (_, [plural, tail @ ..]) => (find(plural).ok_or_else(ApiError::no_route)?, None, tail),
        _ => return Err(ApiError::no_route()),
    };
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(ApiError::no_route()),
    };
    let subresource_served = match subresource.as_deref() {
        None => true,
        Some("status") => rt.status_subresource,
        Some("log") => rt.log_subresource,
        Some(_) => false,
    };
    if !subresource_served {
        return Err(ApiError::no_route());
    }
    Ok(Route::Resource(Box::new(Target {
        rt,
        namespace,
        name,
        subresource,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse(&Registry::default(), path).unwrap() {
            Route::Resource(t) => *t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_name_collections_objects_and_subresources() {
        let t = target("/api/v1/namespaces/default/pods/p1/log");
        assert_eq!(
            (t.rt.plural.as_str(), t.ns(), t.name.as_deref()),
            ("pods", "default", Some("p1"))
        );
        assert_eq!(t.subresource.as_deref(), Some("log"));
        let ns = target("/api/v1/namespaces/default");
        assert_eq!(
            (ns.rt.plural.as_str(), ns.name.as_deref()),
            ("namespaces", Some("default"))
        );
        let all = target("/apis/batch/v1/jobs");
        assert_eq!((all.namespace, all.name), (None, None));
        assert!(parse(
            &Registry::default(),
            "/api/v1/namespaces/default/configmaps/x/status"
        )
        .is_err());
        assert!(parse(&Registry::default(), "/apis/nope.io/v1/things").is_err());
    }
}
