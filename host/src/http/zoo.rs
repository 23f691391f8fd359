//! The Zoo page: the model zoo the data dir keeps (saved by `tandem run` and by the live run
//! after every window), each model with its origin, accuracy when made, uses and a signature
//! summary; the latest evictions; and, per window of a run, which zoo models were checked for
//! each stream, what they measured, and which one was deployed or retrained from. `/api/zoo`
//! and `/api/zoo/{id}` give the same as JSON. The window page shows its window's part through
//! [`stream_rows`].

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{AppError, AppState, Nav, Visitor, f3};
use crate::data::look;
use crate::engine::report::ZooReport;
use crate::engine::zoo::{Zoo, ZooModel};
use crate::history::ZooEvent;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/zoo", get(page))
        .route("/api/zoo", get(api_zoo))
        .route("/api/zoo/{id}", get(api_model))
}

/// Evictions the page lists, at most.
const EVICTIONS_SHOWN: i64 = 50;

/// The zoo saved in the data dir, opened without bounds (what is on disk), with the warnings
/// about files skipped.
async fn saved_zoo(state: &AppState) -> Result<(Zoo, Vec<String>), AppError> {
    let dir = state.data_dir.join("zoo");
    tokio::task::spawn_blocking(move || Zoo::open(&dir, usize::MAX, u64::MAX))
        .await
        .map_err(|e| AppError::Internal(format!("reading the zoo: {e}")))
}

/// A zoo model as the page shows it.
struct ModelView {
    id: String,
    origin: String,
    accuracy: String,
    uses: u32,
    last_use: String,
    kib: String,
    signature: String,
}

impl From<&ZooModel> for ModelView {
    fn from(m: &ZooModel) -> Self {
        ModelView {
            id: m.id.clone(),
            origin: format!("{}, window {}", m.origin_stream, m.origin_window),
            accuracy: f3(m.accuracy),
            uses: m.uses,
            last_use: if m.uses == 0 {
                "never".into()
            } else {
                format!("window {}", m.last_used_window)
            },
            kib: format!("{:.1}", m.bytes as f64 / 1024.0),
            signature: look::summary(&m.signature),
        }
    }
}

/// One zoo model checked for a stream: what it measured, and what became of it.
pub struct CheckView {
    pub model: String,
    pub accuracy: String,
    /// `deployed as it is`, `retrained from`, or empty.
    pub outcome: &'static str,
}

/// One stream's part of a window's zoo report.
pub struct StreamZoo {
    pub stream: String,
    pub checks: Vec<CheckView>,
    /// The zoo model that went on to serve the stream, in words (empty: none).
    pub served: String,
}

/// A window's zoo report by stream, streams in the order they appear.
pub fn stream_rows(z: &ZooReport) -> Vec<StreamZoo> {
    fn row<'a>(rows: &'a mut Vec<StreamZoo>, stream: &str) -> &'a mut StreamZoo {
        let i = match rows.iter().position(|r| r.stream == stream) {
            Some(i) => i,
            None => {
                rows.push(StreamZoo {
                    stream: stream.to_string(),
                    checks: Vec::new(),
                    served: String::new(),
                });
                rows.len() - 1
            }
        };
        &mut rows[i]
    }
    let outcome = |as_is: bool| {
        if as_is {
            "deployed as it is"
        } else {
            "retrained from"
        }
    };
    let mut rows = Vec::new();
    for c in &z.checks {
        let used = z
            .uses
            .iter()
            .find(|u| u.stream == c.stream && u.model == c.model);
        row(&mut rows, &c.stream).checks.push(CheckView {
            model: c.model.clone(),
            accuracy: f3(c.accuracy),
            outcome: used.map_or("", |u| outcome(u.as_is)),
        });
    }
    for u in &z.uses {
        row(&mut rows, &u.stream).served = format!("{} {}", outcome(u.as_is), u.model);
    }
    rows
}

/// One window of a run on the Zoo page.
struct WindowZoo {
    window: i64,
    size: String,
    check_gpu: String,
    streams: Vec<StreamZoo>,
    added: String,
    evicted: String,
    errors: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "zoo.html")]
struct ZooPage {
    nav: Nav,
    dir: String,
    size: String,
    models: Vec<ModelView>,
    warnings: Vec<String>,
    evictions: Vec<ZooEvent>,
    run: Option<i64>,
    windows: Vec<WindowZoo>,
}

#[derive(Deserialize)]
struct Which {
    /// The run whose windows to show (default: the latest run that kept its zoo).
    run: Option<i64>,
}

async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(which): Query<Which>,
) -> Result<ZooPage, AppError> {
    let (zoo, warnings) = saved_zoo(&state).await?;
    let h = &state.history;
    let run = match which.run {
        Some(id) => {
            h.run(id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("run {id}")))?;
            Some(id)
        }
        None => h.latest_zoo_run().await?,
    };
    let reports = match run {
        Some(id) => h.zoo_reports(id).await?,
        None => Vec::new(),
    };
    let windows = reports
        .into_iter()
        .map(|(window, z)| WindowZoo {
            window,
            size: format!("{} models, {:.1} KiB", z.models, z.bytes as f64 / 1024.0),
            check_gpu: format!("{:.2} s", z.check_gpu_seconds),
            streams: stream_rows(&z),
            added: z.added.join(", "),
            evicted: z.evicted.join(", "),
            errors: z.errors,
        })
        .collect();
    Ok(ZooPage {
        nav: visitor.nav("zoo"),
        dir: state.data_dir.join("zoo").display().to_string(),
        size: format!(
            "{} models, {:.2} MiB",
            zoo.len(),
            zoo.bytes() as f64 / (1 << 20) as f64
        ),
        models: zoo.models().map(ModelView::from).collect(),
        warnings,
        evictions: h.zoo_evictions(EVICTIONS_SHOWN).await?,
        run,
        windows,
    })
}

/// A model as JSON: its metadata and its signature summarized.
fn model_json(m: &ZooModel) -> serde_json::Value {
    let mut v = json!(m);
    v["signature_summary"] = json!(look::summary(&m.signature));
    v
}

async fn api_zoo(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let (zoo, warnings) = saved_zoo(&state).await?;
    let models: Vec<_> = zoo.models().map(model_json).collect();
    let evictions = state.history.zoo_evictions(EVICTIONS_SHOWN).await?;
    Ok(Json(json!({
        "models": models,
        "bytes": zoo.bytes(),
        "warnings": warnings,
        "evictions": evictions,
    })))
}

async fn api_model(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (zoo, _) = saved_zoo(&state).await?;
    let m = zoo
        .models()
        .find(|m| m.id == id)
        .ok_or_else(|| AppError::NotFound(format!("zoo model `{id}`")))?;
    let history = state.history.zoo_model_story(m).await?;
    Ok(Json(json!({ "model": model_json(m), "history": history })))
}
