//! What stands between any web page and the helper. Every page a user visits can send requests to 127.0.0.1, so:
//! the Host header must name the helper itself (no DNS rebinding), a browser's Origin must be one the user allowed
//! (`--allow-origin`), and every request but a CORS preflight carries the pairing token printed at start.

use super::error;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub struct Guard {
    pub port: u16,
    pub origins: Vec<String>,
    pub token: String,
}

/// 32 random bytes as hex, from the operating system.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the pairing token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Guard {
    fn host_ok(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
        [format!("127.0.0.1:{}", self.port), format!("localhost:{}", self.port)].iter().any(|h| h == host)
    }

    fn token_ok(&self, headers: &HeaderMap) -> bool {
        let given = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        given.and_then(|g| g.strip_prefix("Bearer ")).is_some_and(|t| same(t.trim().as_bytes(), self.token.as_bytes()))
    }
}

/// The middleware: checks in the order above, answers preflights, and adds CORS headers for allowed origins.
pub async fn check(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    if !g.host_ok(headers) {
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this helper answers only as 127.0.0.1:{0} or localhost:{0}", g.port),
        );
    }
    // An Origin that is not text is an Origin all the same (a page sent it): refused, never read as absent.
    let origin = match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => None,
        Some(Ok(o)) => Some(o.to_string()),
        Some(Err(_)) => return error(StatusCode::FORBIDDEN, "an Origin header that is not text is not allowed"),
    };
    // Requests without an Origin come from programs (curl, the load test), not from web pages.
    if let Some(o) = &origin
        && !g.origins.iter().any(|a| a == o)
    {
        let mut refused = error(
            StatusCode::FORBIDDEN,
            format!("origin {o} is not allowed: start the helper with --allow-origin {o} to let that page use it"),
        );
        // The refusal itself may be read by that page (it says nothing but how to allow it), so the lab can tell
        // the learner what to do; no other answer is.
        if let Ok(v) = HeaderValue::from_str(o) {
            refused.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        return refused;
    }
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else if !g.token_ok(headers) {
        let why = if headers.contains_key(header::AUTHORIZATION) { "wrong" } else { "missing" };
        error(
            StatusCode::UNAUTHORIZED,
            format!("{why} pairing token: send \"Authorization: Bearer TOKEN\" with the token the helper printed"),
        )
    } else {
        next.run(req).await
    };
    if let Some(o) = origin
        && let Ok(o) = HeaderValue::from_str(&o)
    {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        // Chrome's Private Network Access: a page served from the internet may reach 127.0.0.1 only if allowed.
        h.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
    }
    resp
}
