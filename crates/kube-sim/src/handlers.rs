//! The HTTP front: one handler that parses the path and dispatches to the verbs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::patch::{apply_patch, PatchType};
use crate::routes::{self, Route, Target};
use crate::selectors::{Filter, Selector};
use crate::server::Shared;
use crate::store::object_name;
use crate::writes::{Part, Propagation};

/// Query parameters of a request.
pub(crate) type Params = HashMap<String, String>;

/// The router: the test-control API under `/kube-sim/`, the Kubernetes API everywhere else.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    crate::control_http::routes()
        .fallback(api)
        .with_state(shared)
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        headers,
        params,
        body,
    };
    match handle(&shared, uri.path(), request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// The parts of a request the verbs read.
pub(crate) struct Request {
    pub method: Method,
    pub headers: HeaderMap,
    pub params: Params,
    pub body: Bytes,
}

impl Request {
    fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true") | Some("1"))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }

    /// The body as JSON (JSON or YAML on the wire); protobuf is refused with 415.
    fn object(&self) -> ApiResult<Value> {
        let content_type = self.content_type();
        if content_type.contains("protobuf") || content_type.contains("cbor") {
            return Err(ApiError::unsupported_media_type(content_type));
        }
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        if content_type.contains("yaml") {
            serde_yaml_ng::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))
        } else {
            serde_json::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
        }
    }

    fn filter(&self) -> ApiResult<Filter> {
        Ok(Filter {
            labels: Selector::labels(self.param("labelSelector"))?,
            fields: Selector::fields(self.param("fieldSelector"))?,
        })
    }
}

fn ok(value: Value) -> ApiResult<Response> {
    Ok(Json(value).into_response())
}

fn created(value: Value) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

async fn handle(shared: &Arc<Shared>, path: &str, request: Request) -> ApiResult<Response> {
    let route = routes::parse(&shared.store().registry, path)?;
    let registry = || shared.store().registry.clone();
    match route {
        Route::Version => ok(discovery::version()),
        Route::CoreVersions => ok(discovery::core_versions()),
        Route::Groups => ok(discovery::groups(&registry())),
        Route::Group(name) => discovery::group(&registry(), &name)
            .ok_or_else(ApiError::no_route)
            .and_then(ok),
        Route::GroupVersion(group, version) => discovery::resources(&registry(), &group, &version)
            .ok_or_else(ApiError::no_route)
            .and_then(ok),
        // An empty protobuf message is a valid, empty OpenAPI v2 document.
        Route::OpenApiV2 => Ok((
            [(
                header::CONTENT_TYPE,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            )],
            Body::empty(),
        )
            .into_response()),
        Route::OpenApiV3 => ok(discovery::openapi_v3_index()),
        Route::Resource(target) => resource(shared, *target, request).await,
    }
}

/// The API verb of a request on `target`.
fn verb(method: &Method, target: &Target, watch: bool) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

async fn resource(shared: &Arc<Shared>, target: Target, request: Request) -> ApiResult<Response> {
    let verb = verb(&request.method, &target, request.flag("watch"));
    let resource_name = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.rt.plural),
        None => target.rt.plural.clone(),
    };
    let user = request
        .headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    crate::requests::record(
        &mut shared.requests(),
        user,
        verb,
        &target.rt.group,
        resource_name,
    );
    let (latency, fault) = {
        let faults = shared.faults();
        (faults.latency(), faults.roll(user, verb, &target.rt.plural))
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(err) = fault {
        return Err(err);
    }
    let part = match target.subresource.as_deref() {
        Some("status") => Part::Status,
        _ => Part::Main,
    };
    match verb {
        "get" if target.subresource.as_deref() == Some("log") => {
            crate::cluster::serve_logs(shared.clone(), &target, &request.params)
        }
        "get" => ok(shared.store().get(&target.rt, target.ns(), name(&target))?),
        "list" => list(shared, &target, &request),
        "watch" => crate::watch::serve(shared, &target, &request.params, request.filter()?),
        "create" => create(shared, &target, &request),
        "update" => ok(shared.store().update(
            &target.rt,
            target.ns(),
            name(&target),
            request.object()?,
            part,
        )?),
        "patch" => patch(shared, &target, &request, part),
        "delete" => delete(shared, &target, &request),
        "deletecollection" => delete_collection(shared, &target, &request),
        _ => Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {}",
            request.method, target.rt.plural
        ))),
    }
}

fn name(target: &Target) -> &str {
    target.name.as_deref().unwrap_or_default()
}

/// The namespace to list or watch in: None for all namespaces.
pub(crate) fn scope(target: &Target) -> Option<&str> {
    target.namespace.as_deref().filter(|_| target.rt.namespaced)
}

fn list(shared: &Shared, target: &Target, request: &Request) -> ApiResult<Response> {
    let filter = request.filter()?;
    let store = shared.store();
    let items: Vec<Value> = store
        .list_refs(&target.rt, scope(target))
        .filter(|o| filter.matches(o))
        .cloned()
        .collect();
    ok(json!({
        "kind": format!("{}List", target.rt.kind),
        "apiVersion": target.rt.api_version(),
        "metadata": {"resourceVersion": store.resource_version().to_string()},
        "items": items,
    }))
}

fn create(shared: &Shared, target: &Target, request: &Request) -> ApiResult<Response> {
    if target.rt.namespaced && target.namespace.is_none() {
        return Err(ApiError::method_not_allowed(
            "create a namespaced object under /namespaces/<namespace>/",
        ));
    }
    let obj = shared
        .store()
        .create(&target.rt, target.ns(), request.object()?)?;
    shared.wake.notify_one();
    created(obj)
}

fn patch(shared: &Shared, target: &Target, request: &Request, part: Part) -> ApiResult<Response> {
    let kind = PatchType::from_content_type(request.content_type())?;
    let body: Value = if kind == PatchType::Apply {
        serde_yaml_ng::from_slice(&request.body)
            .map_err(|e| ApiError::bad_request(format!("invalid apply body: {e}")))?
    } else {
        serde_json::from_slice(&request.body)
            .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}")))?
    };
    let manager = request.param("fieldManager").unwrap_or_default();
    if kind == PatchType::Apply && manager.is_empty() {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let mut store = shared.store();
    let current = match store.get(&target.rt, target.ns(), name(target)) {
        Err(err) if err.code == 404 && kind == PatchType::Apply && part == Part::Main => {
            let obj = store.create(&target.rt, target.ns(), body)?;
            shared.wake.notify_one();
            return created(obj);
        }
        other => other?,
    };
    let patched = apply_patch(kind, &current, &body)?;
    let obj = store.update(&target.rt, target.ns(), name(target), patched, part)?;
    shared.wake.notify_one();
    ok(obj)
}

/// Propagation policy and resourceVersion precondition from DeleteOptions and the query.
fn delete_options(request: &Request) -> ApiResult<(Propagation, Option<String>)> {
    let options = request.object()?;
    let policy = request
        .param("propagationPolicy")
        .or_else(|| options["propagationPolicy"].as_str());
    let orphan = options["orphanDependents"].as_bool() == Some(true)
        || request.param("orphanDependents") == Some("true");
    let propagation = if orphan && policy.is_none() {
        Propagation::Orphan
    } else {
        Propagation::parse(policy)?
    };
    let precondition = options["preconditions"]["resourceVersion"]
        .as_str()
        .map(String::from);
    Ok((propagation, precondition))
}

fn delete(shared: &Shared, target: &Target, request: &Request) -> ApiResult<Response> {
    let (propagation, precondition) = delete_options(request)?;
    let obj = shared.store().delete(
        &target.rt,
        target.ns(),
        name(target),
        propagation,
        precondition.as_deref(),
    )?;
    ok(obj)
}

fn delete_collection(shared: &Shared, target: &Target, request: &Request) -> ApiResult<Response> {
    let (propagation, _) = delete_options(request)?;
    let filter = request.filter()?;
    let mut store = shared.store();
    let victims: Vec<Value> = store
        .list(&target.rt, scope(target))
        .into_iter()
        .filter(|o| filter.matches(o))
        .collect();
    let mut deleted = Vec::new();
    for victim in victims {
        let (ns, name) = object_name(&victim);
        if let Ok(obj) = store.delete(&target.rt, &ns, &name, propagation, None) {
            deleted.push(obj);
        }
    }
    ok(json!({
        "kind": format!("{}List", target.rt.kind),
        "apiVersion": target.rt.api_version(),
        "metadata": {"resourceVersion": store.resource_version().to_string()},
        "items": deleted,
    }))
}
