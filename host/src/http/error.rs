//! [`AppError`]: the one error type of the dashboard: every handler's, opening its state, and
//! the runs it starts. 5xx are logged and shown plainly; 4xx carry a message meant for the
//! user (escaped like everything else).

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::engine::EngineError;
use crate::history::{HistoryError, RecordError};
use crate::plugin::PluginError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong admin token, or a failed CSRF check.
    #[error("{0}")]
    Forbidden(String),
    #[error("upload larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A run the dashboard started could not be set up or stopped.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A run stopped while running or being recorded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The data directory (history, plugins, models) could not be made.
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Internal(_)
            | AppError::History(_)
            | AppError::Plugin(_)
            | AppError::Engine(_)
            | AppError::Record(_)
            | AppError::DataDir { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            eprintln!("dashboard: {status}: {self}");
        }
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>{status}</title><link rel=stylesheet href=/static/style.css>\
             <main><h1>{status}</h1><p class=error>{}</p><p><a href=/live>back</a></main>",
            escape(&self.to_string())
        );
        (status, axum::response::Html(body)).into_response()
    }
}

/// HTML-escape text placed outside templates (error pages, SVG).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
