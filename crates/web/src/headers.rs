//! Security headers on every response: the app's pages load only their own scripts, styles
//! and API (no inline script, no other origin), are never framed, never sniffed as another
//! type, and never leak their URL (which may hold the token) as a referrer.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// What the app's pages may load: its own files and API only. Styles set from script go
/// through the CSSOM (`element.style`), which the policy allows; inline `style` attributes
/// and `<script>` blocks are refused.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Every header sent, with its value.
pub const HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Middleware: adds [`HEADERS`] to the response, whatever it is (401 and 404 included).
pub async fn secure(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    for (name, value) in HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}
