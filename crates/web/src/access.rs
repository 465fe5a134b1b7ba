//! Who may use the dashboard. It listens on loopback unless told otherwise, and an address
//! other machines can reach needs a token. Every request must name the dashboard in `Host:`
//! (see [`crate::hosts`]); with a token it must also carry the token: as
//! `Authorization: Bearer T`, as the `trainctl_token` cookie, or as `?token=T` (URL-encoded,
//! which sets the cookie, so a link with the token opens the app and its live streams).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::hosts::Hosts;
use crate::Dashboard;

/// The cookie that carries the token after the first visit.
pub const COOKIE: &str = "trainctl_token";

/// Who may use one dashboard: the `Host:` names it answers and the token, if any.
#[derive(Debug, Clone)]
pub struct Access {
    /// The token every request must carry (none on loopback without `--token`).
    token: Option<String>,
    /// The `Host:` headers answered.
    hosts: Hosts,
}

impl Access {
    /// Requests must name one of `hosts`; with `token`, they must also carry it.
    pub fn new(token: Option<String>, hosts: Hosts) -> Self {
        Access { token, hosts }
    }
}

/// Refuses a token that cannot be typed into a URL bar or a header (empty, or with control
/// characters).
pub fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the token must not be empty".into());
    }
    if token.chars().any(char::is_control) {
        return Err("the token must not contain control characters (newlines, tabs...)".into());
    }
    Ok(())
}

/// Refuses a non-loopback address without a token, and a token [`check_token`] refuses.
pub fn check_address(address: &SocketAddr, token: Option<&str>) -> Result<(), String> {
    match token {
        Some(t) => check_token(t),
        None if !address.ip().is_loopback() => Err(format!(
            "{address} is reachable from other machines, so the dashboard needs a token: \
             add --token-file FILE, --token SECRET or ${} (or listen on 127.0.0.1)",
            TOKEN_ENV
        )),
        None => Ok(()),
    }
}

/// The environment variable `trainctl ui` reads the token from when no flag gives one.
pub const TOKEN_ENV: &str = "TRAINCTL_UI_TOKEN";

/// The token as it goes into a URL or the cookie: `application/x-www-form-urlencoded`, so
/// only letters, digits, `*-._+` and `%XX` (nothing a cookie or a query cannot hold).
pub fn encode_token(token: &str) -> String {
    form_urlencoded::byte_serialize(token.as_bytes()).collect()
}

/// Every token a request carries: the bearer header, each `trainctl_token` cookie and each
/// `token` query parameter (the last two URL-decoded). A stale cookie next to a correct
/// `?token=` does not hide it.
pub fn presented(headers: &HeaderMap, query: Option<&str>) -> Vec<String> {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("Bearer "))
        .map(str::to_string);
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(decode);
    let from_query = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    bearer.chain(cookies).chain(from_query).collect()
}

/// A URL-encoded value, decoded.
fn decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether `given` is the token, compared in constant time.
fn matches(token: &str, given: &str) -> bool {
    token.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Middleware: answers 403 to a request whose `Host:` is not the dashboard's, 401 to one
/// without the token (when there is one); lets the others through, setting the token cookie.
pub async fn guard(
    State(dashboard): State<Arc<Dashboard>>,
    request: Request,
    next: Next,
) -> Response {
    let access = &dashboard.access;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !access.hosts.allows(host) {
        return (StatusCode::FORBIDDEN, access.hosts.refusal(host)).into_response();
    }
    let Some(token) = access.token.as_deref() else {
        return next.run(request).await;
    };
    let given = presented(request.headers(), request.uri().query());
    if !given.iter().any(|g| matches(token, g)) {
        return (
            StatusCode::UNAUTHORIZED,
            "this trainctl dashboard needs its token: open it as http://HOST:PORT/?token=TOKEN\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        encode_token(token)
    );
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
        assert!(check_address(&local, Some("a\nb")).is_err());
    }

    #[test]
    fn every_token_a_request_carries_is_found_decoded() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h, Some("a=1&token=q%3Bx+y")), ["q;x y"]);
        h.insert(header::COOKIE, "x=1; trainctl_token=c%3B".parse().unwrap());
        assert_eq!(presented(&h, Some("token=q")), ["c;", "q"]);
        h.insert(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(presented(&h, None), ["b", "c;"]);
        assert!(matches("abc", "abc") && !matches("abc", "abd") && !matches("abc", "ab"));
    }

    #[test]
    fn an_encoded_token_holds_only_cookie_and_url_safe_characters() {
        let token = "a;b c,d\"e\\f=g%h+ü";
        let encoded = encode_token(token);
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "*-._+%".contains(c)),
            "{encoded}"
        );
        assert_eq!(decode(&encoded), token);
    }
}
