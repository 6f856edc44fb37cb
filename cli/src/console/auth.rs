//! Who may use the console: whoever opened the one-time link it printed.
//!
//! The first request carrying the token gets a session cookie (HttpOnly,
//! SameSite=Strict) and is redirected to the same page without the token;
//! the token is then spent. Every other request needs the cookie, and every
//! POST a CSRF token tied to the session. Every response carries headers that
//! keep the page from loading anything from elsewhere or being framed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use super::ConsoleState;

/// The session cookie's name.
const COOKIE: &str = "tessera_console";

/// One browser's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// Carried by every POST form of this session.
    pub csrf: String,
}

/// The one-time token and the sessions it opened.
#[derive(Debug)]
pub struct Sessions {
    token: Mutex<Option<String>>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// `n` random bytes from the OS, as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Equal without an early exit on the first different byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// A fresh one-time token and no session.
    pub fn new() -> Self {
        Self {
            token: Mutex::new(Some(random_hex(24))),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The token to print (none once spent).
    pub fn token(&self) -> Option<String> {
        self.token.lock().ok().and_then(|t| t.clone())
    }

    /// Spends the token if `given` is it, opening a session.
    fn redeem(&self, given: &str) -> Option<Session> {
        let mut token = self.token.lock().ok()?;
        if !token.as_deref().is_some_and(|t| same(t, given)) {
            return None;
        }
        *token = None;
        let session = Session {
            id: random_hex(32),
            csrf: random_hex(32),
        };
        self.sessions
            .lock()
            .ok()?
            .insert(session.id.clone(), session.clone());
        Some(session)
    }

    fn find(&self, id: &str) -> Option<Session> {
        self.sessions.lock().ok()?.get(id).cloned()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

/// The session cookie's value in a request, if any.
fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_owned())
        })
}

/// The `token` query parameter of a request, if any.
fn query_token(req: &Request) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| v.to_owned())
    })
}

/// The page a request without a session gets.
fn refused() -> Response {
    let body = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not signed in · Tessera console</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;color:#1b1f24">
<h1>Not signed in</h1>
<p>This console only answers the browser that opened the link <code>tessera console</code> printed when it started.
That link works once. Start <code>tessera console</code> again for a new link.</p></body></html>"#;
    (StatusCode::UNAUTHORIZED, axum::response::Html(body)).into_response()
}

/// Headers on every response: nothing from elsewhere, no framing, no caching,
/// no referrer (the first URL holds the token).
fn harden(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The gate in front of every route.
pub async fn guard(
    State(state): State<Arc<ConsoleState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let mut response = if let Some(session) = cookie(&req).and_then(|id| state.sessions.find(&id)) {
        req.extensions_mut().insert(session);
        next.run(req).await
    } else if let Some(session) = query_token(&req).and_then(|t| state.sessions.redeem(&t)) {
        let path = req.uri().path().to_owned();
        let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, path)]).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            session.id
        )) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    } else {
        refused()
    };
    harden(&mut response);
    response
}

/// Refuses a POST whose CSRF token is not its session's.
pub fn check_csrf(session: &Session, given: &str) -> Result<(), super::PageError> {
    if same(&session.csrf, given) {
        Ok(())
    } else {
        Err(super::PageError::Forbidden)
    }
}
