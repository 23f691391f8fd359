//! Who may change state: the admin token and CSRF protection.
//!
//! - The admin token comes from the config or is generated at first start and kept in
//!   `<data-dir>/admin-token` (mode 0600). Scripts send it as `Authorization: Bearer <token>`;
//!   people sign in once through a form, which stores it in an HttpOnly, SameSite=Strict cookie.
//! - CSRF: double-submit. [`csrf_cookie`] gives every browser a random `tandem_csrf` cookie
//!   and hands its value to the templates, which put it in a hidden field of every form; a
//!   state change by cookie must echo it. A bearer token is not sent by browsers on their
//!   own, so requests carrying one need no CSRF field.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::{AppError, AppState};

pub const CSRF_COOKIE: &str = "tandem_csrf";
pub const ADMIN_COOKIE: &str = "tandem_admin";

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
    std::fs::write(&path, &token)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((token, true))
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
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

/// Whether this request carries the admin token (bearer or signed-in cookie).
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|t| same(t, &state.token))
        || cookie(headers, ADMIN_COOKIE).is_some_and(|t| same(&t, &state.token))
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
    if !cookie(headers, ADMIN_COOKIE).is_some_and(|t| same(&t, &state.token)) {
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

/// A same-site path to go back to after signing in (never another host).
pub fn local_path(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/live"
    }
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
    if !same(f.token.trim(), &state.token) {
        return Err(AppError::Forbidden("wrong admin token".into()));
    }
    let cookie = format!(
        "{ADMIN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        state.token
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
    Extension(csrf): Extension<Csrf>,
    Form(f): Form<Logout>,
) -> Result<Response, AppError> {
    if !same(&f.csrf, &csrf.0) {
        return Err(AppError::Forbidden("CSRF token mismatch".into()));
    }
    let cookie = format!("{ADMIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/live")).into_response())
}
