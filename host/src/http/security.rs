//! Who may change state, and what a browser may do with the pages.
//!
//! - The admin token comes from the config or is generated at first start and kept in
//!   `<data-dir>/admin-token` (created mode 0600). Scripts send it as
//!   `Authorization: Bearer <token>`; people sign in once through a form, which opens a
//!   session ([`Sessions`]): the HttpOnly, SameSite=Strict cookie holds a random session value,
//!   never the token, and signing out ends the session on the server.
//! - CSRF: double-submit. [`csrf_cookie`] gives every browser a random `tandem_csrf` cookie
//!   and hands its value to the templates, which put it in a hidden field of every form; a
//!   state change by cookie must echo it. A bearer token is not sent by browsers on their
//!   own, so requests carrying one need no CSRF field.
//! - [`guard`]: every answer carries a Content-Security-Policy (scripts, styles and
//!   connections from this origin only, no framing), X-Frame-Options and
//!   X-Content-Type-Options; a request whose Host header is not on the [`Hosts`] allow-list
//!   is refused (a DNS-rebinding page cannot read the dashboard).
//! - After signing in, `next` only ever leads to a path on this site ([`local_path`]).
//!
//! Cookies are parsed by the `cookie` crate.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::{AppError, AppState};

pub const CSRF_COOKIE: &str = "tandem_csrf";
pub const SESSION_COOKIE: &str = "tandem_session";

/// What the pages may load: everything from this origin only (the one script and style
/// sheet are files, the charts are inline SVG), no plugins, no framing, forms to this site.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Signed-in browsers kept at once; the oldest session ends when a new one would exceed it.
const MAX_SESSIONS: usize = 256;

/// The open sign-in sessions: random values, each standing for the admin token.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<VecDeque<String>>,
}

impl Sessions {
    /// Open a session; returns its value for the cookie.
    pub fn open(&self) -> String {
        let value = random_token();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= MAX_SESSIONS {
            open.pop_front();
        }
        open.push_back(value.clone());
        value
    }

    /// Whether `value` is an open session (compared in constant time).
    pub fn is_open(&self, value: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter().fold(false, |found, s| found | same(s, value))
    }

    /// End a session (signing out).
    pub fn close(&self, value: &str) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|s| !same(s, value));
    }
}

/// Which Host headers the dashboard answers: `localhost`, the loopback addresses, the address
/// it is bound to (any address when bound to all of them), and the names configured.
#[derive(Debug, Clone)]
pub struct Hosts {
    bound: Option<IpAddr>,
    names: Vec<String>,
}

impl Default for Hosts {
    /// Loopback only.
    fn default() -> Self {
        Hosts {
            bound: None,
            names: Vec::new(),
        }
    }
}

impl Hosts {
    /// The allow-list for a server bound to `bound`, plus `names` (host names, lower case).
    pub fn new(bound: IpAddr, names: &[String]) -> Self {
        Hosts {
            bound: Some(bound),
            names: names
                .iter()
                .map(|n| n.trim().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with this Host header value may be answered.
    pub fn allows(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        let name = authority.host().to_ascii_lowercase();
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if name == "localhost" || self.names.iter().any(|n| n == name) {
            return true;
        }
        // An address is never a rebinding name; it must be one this server listens on.
        let Ok(ip) = name.parse::<IpAddr>() else {
            return false;
        };
        ip.is_loopback() || self.bound.is_some_and(|b| b.is_unspecified() || b == ip)
    }
}

/// Middleware: refuse a Host that is not allowed, and put the security headers on every
/// answer. A request without a Host header (not from a browser) is answered.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().map(str::to_string));
    let mut resp = match host {
        Some(Ok(h)) if !state.hosts.allows(&h) => (
            StatusCode::MISDIRECTED_REQUEST,
            format!("this dashboard does not answer for host `{h}` (see allowed_hosts in the serve config)"),
        )
            .into_response(),
        Some(Err(_)) => (StatusCode::BAD_REQUEST, "unreadable Host header").into_response(),
        _ => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// This browser's CSRF value, for hidden form fields.
#[derive(Clone, Debug)]
pub struct Csrf(pub String);

/// 128 random bits as hex.
pub fn random_token() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The admin token: `configured` if given, else the one stored under `data_dir`, else a new
/// one stored there. The flag says whether it was just generated (so it is printed once).
pub fn admin_token(data_dir: &Path, configured: Option<String>) -> std::io::Result<(String, bool)> {
    if let Some(t) = configured.filter(|t| !t.trim().is_empty()) {
        return Ok((t.trim().to_string(), false));
    }
    let path = data_dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok((t.trim().to_string(), false));
    }
    std::fs::create_dir_all(data_dir)?;
    let token = random_token();
    // Created with mode 0600: the token is never readable by others, not even briefly.
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        file.mode(0o600);
    }
    std::io::Write::write_all(&mut file.open(&path)?, token.as_bytes())?;
    #[cfg(unix)]
    {
        // A file left by an older version may have wider permissions.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((token, true))
}

/// A cookie's value from the request headers (the first one of that name).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Equality whose time does not depend on where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Middleware: make sure the browser has a CSRF cookie and pass its value on.
pub async fn csrf_cookie(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let fresh = existing.is_none();
    let token = existing.unwrap_or_else(random_token);
    req.extensions_mut().insert(Csrf(token.clone()));
    let mut resp = next.run(req).await;
    if fresh && let Ok(v) = format!("{CSRF_COOKIE}={token}; Path=/; SameSite=Strict").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Whether the browser's session cookie names an open session.
fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    cookie(headers, SESSION_COOKIE).is_some_and(|v| state.sessions.is_open(&v))
}

/// Whether this request carries the admin token (bearer) or a signed-in session.
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|t| same(t, &state.token)) || signed_in(state, headers)
}

/// Allow a state change: a bearer token, or the admin cookie plus the matching CSRF field.
pub fn require_admin(
    state: &AppState,
    headers: &HeaderMap,
    csrf_field: Option<&str>,
) -> Result<(), AppError> {
    if bearer(headers).is_some_and(|t| same(t, &state.token)) {
        return Ok(());
    }
    if !signed_in(state, headers) {
        return Err(AppError::Forbidden(
            "this needs the admin token: sign in (top right) or send `Authorization: Bearer <token>`".into(),
        ));
    }
    let expected = cookie(headers, CSRF_COOKIE).unwrap_or_default();
    match csrf_field {
        Some(f) if !expected.is_empty() && same(f, &expected) => Ok(()),
        _ => Err(AppError::Forbidden(
            "the form's CSRF token does not match this browser's: reload the page and try again"
                .into(),
        )),
    }
}

/// A path on this site to go back to after signing in: one `/`, then no second `/` or `\`
/// (which browsers read as another host), no control characters or spaces (which browsers
/// strip, making `/\t/evil` into `//evil`), and only URL characters; anything else is `/live`.
pub fn local_path(next: &str) -> &str {
    let mut chars = next.chars();
    let safe = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    if safe { next } else { "/live" }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
}

#[derive(Deserialize)]
struct Login {
    token: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(state): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    Form(f): Form<Login>,
) -> Result<Response, AppError> {
    // Signing in is a state change too (login CSRF): the field must match the cookie.
    if !same(&f.csrf, &csrf.0) {
        return Err(AppError::Forbidden(
            "the form's CSRF token does not match this browser's: reload the page and try again"
                .into(),
        ));
    }
    if f.next.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "`next` holds a control character".into(),
        ));
    }
    if !same(f.token.trim(), &state.token) {
        return Err(AppError::Forbidden("wrong admin token".into()));
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        state.sessions.open()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(local_path(&f.next)),
    )
        .into_response())
}

#[derive(Deserialize)]
struct Logout {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    Form(f): Form<Logout>,
) -> Result<Response, AppError> {
    if !same(&f.csrf, &csrf.0) {
        return Err(AppError::Forbidden("CSRF token mismatch".into()));
    }
    if let Some(v) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.close(&v);
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/live")).into_response())
}
