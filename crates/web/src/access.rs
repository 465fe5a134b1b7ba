//! Who may use the dashboard. It listens on loopback unless told otherwise, and an address
//! other machines can reach needs a token. With a token every request must carry it: as
//! `Authorization: Bearer T`, as the `trainctl_token` cookie, or as `?token=T` (which sets the
//! cookie, so a link with the token opens the app and its live streams).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::Dashboard;

/// The cookie that carries the token after the first visit.
pub const COOKIE: &str = "trainctl_token";

/// Refuses a non-loopback address without a token, and an empty token.
pub fn check_address(address: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    match token {
        Some("") => Err("--token must not be empty".into()),
        None if !address.ip().is_loopback() => Err(format!(
            "{address} is reachable from other machines, so the dashboard needs a token: \
             add --token SECRET (or listen on 127.0.0.1)"
        )),
        _ => Ok(()),
    }
}

/// The token a request carries, from the header, the cookie or the query, in that order.
fn presented<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
    };
    let from_query = || {
        query?
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
    };
    bearer.or_else(cookie).or_else(from_query)
}

/// Whether `given` is the token, compared in constant time.
fn matches(token: &str, given: &str) -> bool {
    token.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Middleware: lets a request through when the dashboard has no token or the request
/// carries it; answers 401 otherwise.
pub async fn require_token(
    State(dashboard): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = dashboard.token.as_deref() else {
        return next.run(request).await;
    };
    let given = presented(request.headers(), request.uri().query());
    if !given.is_some_and(|g| matches(token, g)) {
        return (
            StatusCode::UNAUTHORIZED,
            "this trainctl dashboard needs its token: open it as http://HOST:PORT/?token=TOKEN\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_needs_no_token_and_other_addresses_do() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(check_address(&local, None).is_ok());
        assert!(check_address(&v6, None).is_ok());
        assert!(check_address(&any, None).unwrap_err().contains("--token"));
        assert!(check_address(&any, Some("s3cret")).is_ok());
        assert!(check_address(&local, Some("")).is_err());
    }

    #[test]
    fn finds_the_token_in_header_cookie_or_query() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h, Some("a=1&token=q")), Some("q"));
        h.insert(header::COOKIE, "x=1; trainctl_token=c".parse().unwrap());
        assert_eq!(presented(&h, Some("token=q")), Some("c"));
        h.insert(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(presented(&h, None), Some("b"));
        assert!(matches("abc", "abc") && !matches("abc", "abd") && !matches("abc", "ab"));
    }
}
