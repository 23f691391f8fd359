//! The Plugins page: every registered plugin with kind, name, version, digest and
//! self-description; upload of a `.wasm` through a form (validated as `tandem plugin
//! validate` does, stored only if it passes, refused with the reason otherwise); disable,
//! enable and delete. `/api/plugins` lists them as JSON.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;

use super::security::{Csrf, require_admin};
use super::{AppError, AppState, Nav};
use crate::plugin::RegistryEntry;

/// The largest upload accepted, in bytes: 64 MiB. A Python plugin carries CPython and its
/// standard library (componentize-py 0.25: 18.3 MB for the Python `fair`, 3.5× tandem's old
/// 16 MiB cap); the rest leaves room for the pure-Python packages a policy may bundle. The
/// body is held in memory while it is validated, and only the admin may upload.
pub const MAX_UPLOAD: usize = 64 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(page))
        .route(
            "/plugins/upload",
            // The limit is a little above the file cap so the form's other fields fit.
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD + 64 * 1024)),
        )
        .route("/plugins/{digest}/{change}", post(change))
        .route("/api/plugins", get(api_list))
}

/// What the last action did, shown above the list.
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "plugins.html")]
struct PluginsPage {
    nav: Nav,
    plugins: Vec<RegistryEntry>,
    notice: Option<Notice>,
    max_mib: usize,
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &Csrf,
    notice: Option<Notice>,
) -> Result<PluginsPage, AppError> {
    Ok(PluginsPage {
        nav: Nav::new(state, headers, csrf, "plugins", "/plugins"),
        plugins: state.catalog.registry.list()?,
        notice,
        max_mib: MAX_UPLOAD / (1024 * 1024),
    })
}

async fn page(
    State(state): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
) -> Result<PluginsPage, AppError> {
    render(&state, &headers, &csrf, None)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge(MAX_UPLOAD)
    } else {
        AppError::BadRequest(format!("reading the upload: {}", e.body_text()))
    }
}

async fn upload(
    State(state): State<AppState>,
    Extension(csrf): Extension<Csrf>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, AppError> {
    // Refuse before reading the body when the token is missing altogether.
    require_admin(&state, &headers, None).or_else(|e| match e {
        AppError::Forbidden(ref m) if m.contains("CSRF") => Ok(()),
        e => Err(e),
    })?;
    let (mut csrf_field, mut file) = (None, None);
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("csrf") => csrf_field = Some(field.text().await.map_err(multipart_error)?),
            Some("file") => {
                let name = field.file_name().unwrap_or("upload.wasm").to_string();
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if bytes.len() > MAX_UPLOAD {
                    return Err(AppError::TooLarge(MAX_UPLOAD));
                }
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    require_admin(&state, &headers, csrf_field.as_deref())?;
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(AppError::BadRequest("choose a .wasm file to upload".into()));
    };
    // Only the base name is kept, and only as a label: the store is content-addressed.
    let name: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("upload.wasm")
        .chars()
        .take(100)
        .collect();
    let (host, registry) = (state.catalog.host.clone(), state.catalog.registry.clone());
    let label = name.clone();
    // Compiling and sample-running a component is CPU work: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || registry.add_validated(&host, &label, &bytes))
        .await
        .map_err(|e| AppError::Internal(format!("validation task: {e}")))?;
    let (status, notice) = match result {
        Ok((e, sample)) => (
            StatusCode::OK,
            Notice {
                ok: true,
                text: format!(
                    "stored {} {} ({}, sha256 {}): sample run ok, {sample}",
                    e.description.name,
                    e.description.version,
                    e.description.kind.world(),
                    &e.digest[..12]
                ),
            },
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice {
                ok: false,
                text: format!("refused {name}: {e}"),
            },
        ),
    };
    Ok((status, render(&state, &headers, &csrf, Some(notice))?).into_response())
}

#[derive(Deserialize)]
struct Action {
    csrf: String,
}

/// What a plugin's buttons ask for (the last segment of the form's path).
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Change {
    Disable,
    Enable,
    Delete,
}

async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((digest, change)): Path<(String, Change)>,
    Form(a): Form<Action>,
) -> Result<Response, AppError> {
    require_admin(&state, &headers, Some(&a.csrf))?;
    let registry = &state.catalog.registry;
    let done = match change {
        Change::Disable => registry.set_disabled(&digest, true),
        Change::Enable => registry.set_disabled(&digest, false),
        Change::Delete => registry.remove(&digest),
    };
    match done {
        Ok(true) => Ok(Redirect::to("/plugins").into_response()),
        Ok(false) => Err(AppError::NotFound(format!("plugin {digest}"))),
        Err(e) => Err(AppError::BadRequest(e.to_string())),
    }
}

async fn api_list(State(state): State<AppState>) -> Result<Json<Vec<RegistryEntry>>, AppError> {
    Ok(Json(state.catalog.registry.list()?))
}
