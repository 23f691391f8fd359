//! The Compare page: pick a scenario (the examples and the embedded demo) and several policies
//! (built-in or uploaded); each runs in its own arena on identical streams (see
//! [`super::runner::start_comparison`]). The comparison's page shows the arenas side by side
//! as they go, pushed by SSE: accuracy per window per policy on one chart, a summary table,
//! and the configurations each chose, with a differences-only toggle.

use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::charts::{self, Series};
use super::runner::{self, Comparison};
use super::security::require_admin;
use super::{AppError, AppState, Nav, Visitor, f3, pct};
use crate::engine::parse_policy;
use crate::plugin::registry;
use crate::plugin::types::PluginKind;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/compare", get(page).post(start))
        .route("/compare/{id}", get(view))
        .route("/compare/{id}/events", get(events))
        .route("/compare/{id}/stop", post(stop))
        .route("/api/comparisons/{id}", get(api_comparison))
}

struct ScenarioOption {
    key: String,
    summary: String,
}

/// A policy offered on the form: the plugin that name runs (the latest enabled one added),
/// shown with its own description and digest.
struct PolicyOption {
    name: String,
    version: String,
    summary: String,
    digest: String,
}

struct Started {
    id: i64,
    scenario: String,
    policies: String,
    status: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "compare.html")]
struct ComparePage {
    nav: Nav,
    scenarios: Vec<ScenarioOption>,
    policies: Vec<PolicyOption>,
    started: Vec<Started>,
}

async fn page(State(state): State<AppState>, visitor: Visitor) -> Result<ComparePage, AppError> {
    let entries = state.catalog.registry.list()?;
    let mut names: Vec<&str> = entries
        .iter()
        .filter(|e| e.description.kind == PluginKind::Policy && !e.disabled)
        .map(|e| e.description.name.as_str())
        .collect();
    names.dedup();
    // Several versions of one name: the form offers the name once, described by the plugin
    // a run under that name uses.
    let policies = names
        .into_iter()
        .filter_map(|name| registry::pick(&entries, name))
        .map(|e| PolicyOption {
            name: e.description.name.clone(),
            version: e.description.version.clone(),
            summary: e.description.summary.clone(),
            digest: e.digest.chars().take(12).collect(),
        })
        .collect();
    Ok(ComparePage {
        nav: visitor.nav("compare"),
        scenarios: state
            .scenarios
            .iter()
            .map(|c| ScenarioOption {
                key: c.key.clone(),
                summary: {
                    let mut s = format!(
                        "{} cameras, {} GPU(s), {} windows of {} s",
                        c.scenario.cameras.len(),
                        c.scenario.gpus,
                        c.scenario.windows,
                        c.scenario.window_seconds
                    );
                    if !c.scenario.compare.is_empty() {
                        s.push_str(&format!(
                            "; with no policy picked it compares {}",
                            c.scenario.compare.join(", ")
                        ));
                    }
                    s
                },
            })
            .collect(),
        policies,
        started: state
            .arenas
            .list()
            .iter()
            .map(|c| {
                let s = c.snapshot();
                Started {
                    id: c.id,
                    scenario: c.key.clone(),
                    policies: s
                        .lanes
                        .iter()
                        .map(|l| l.policy.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    status: if s.done { "done".into() } else { s.status },
                }
            })
            .collect(),
    })
}

/// The start form: `csrf`, `scenario`, `windows` (optional), and `policy` repeated (or a
/// comma-separated `policies` field for scripts; each may carry `:key=value` parameters).
async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    require_admin(&state, &headers, get("csrf"))?;
    let key = get("scenario").unwrap_or("demo");
    let choice = state
        .scenario(key)
        .ok_or_else(|| AppError::BadRequest(format!("no scenario `{key}`")))?
        .clone();
    let mut specs: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| n == "policy")
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(list) = get("policies") {
        specs.extend(list.split(','));
    }
    // Nothing picked: the scenario's own comparison, if it names one.
    if specs.iter().all(|s| s.trim().is_empty()) {
        specs.extend(choice.scenario.compare.iter().map(String::as_str));
    }
    let policies = specs
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| parse_policy(s).map_err(AppError::BadRequest))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = policies.iter().find(|p| p.name.ends_with(".wasm")) {
        return Err(AppError::BadRequest(format!(
            "`{}`: upload a plugin on the Plugins page and pick it by name",
            p.name
        )));
    }
    let windows = match get("windows").map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => match w.parse::<u32>() {
            Ok(n @ 1..=runner::MAX_WINDOWS) => Some(n),
            _ => {
                return Err(AppError::BadRequest(format!(
                    "windows: `{w}` is not a number from 1 to {}",
                    runner::MAX_WINDOWS
                )));
            }
        },
        None => None,
    };
    let cmp = runner::start_comparison(&state, &choice, policies, windows).await?;
    Ok(Redirect::to(&format!("/compare/{}", cmp.id)).into_response())
}

struct LaneView {
    policy: String,
    status: String,
    windows: String,
    mean_accuracy: String,
    gpu_use: String,
    decisions: usize,
    fallbacks: usize,
    run_id: Option<i64>,
}

struct ConfigRow {
    window: u32,
    stream: String,
    cells: Vec<String>,
    same: bool,
}

#[derive(Template)]
#[template(path = "compare_body.html")]
struct CompareBody {
    id: i64,
    status: String,
    done: bool,
    lanes: Vec<LaneView>,
    chart: String,
    configs: Vec<ConfigRow>,
    version: u64,
}

fn render_body(c: &Comparison) -> String {
    let s = c.snapshot();
    let planned = c.scenario.windows;
    let lanes = s
        .lanes
        .iter()
        .map(|l| {
            let n = l.windows.len().max(1) as f64;
            let calls = l.windows.iter().flat_map(|w| &w.policy_calls);
            LaneView {
                policy: l.policy.clone(),
                status: l.status.clone(),
                windows: format!("{}/{planned}", l.windows.len()),
                mean_accuracy: if l.windows.is_empty() {
                    "-".into()
                } else {
                    f3(l.windows.iter().map(|w| w.mean_accuracy).sum::<f64>() / n)
                },
                gpu_use: if l.windows.is_empty() {
                    "-".into()
                } else {
                    pct(l.windows.iter().map(|w| w.gpu_utilization).sum::<f64>() / n)
                },
                decisions: calls.clone().count(),
                fallbacks: calls.filter(|c| c.error.is_some()).count(),
                run_id: l.run_id,
            }
        })
        .collect();
    let series: Vec<Series> = s
        .lanes
        .iter()
        .map(|l| Series {
            name: l.policy.clone(),
            points: l
                .windows
                .iter()
                .map(|w| (w.window as f64, w.mean_accuracy))
                .collect(),
        })
        .collect();
    // The configurations each policy chose: per window and stream, inference config plus
    // the retraining config of its job (if any).
    let mut configs = Vec::new();
    let done_everywhere = s.lanes.iter().map(|l| l.windows.len()).min().unwrap_or(0);
    for w in 0..done_everywhere {
        let streams = &s.lanes[0].windows[w].streams;
        for (k, st) in streams.iter().enumerate() {
            let cells: Vec<String> = s
                .lanes
                .iter()
                .map(|l| {
                    let r = &l.windows[w].streams[k];
                    match &r.retrain {
                        Some(j) => format!("{} + retrain {}", r.infer_config, j.config),
                        None => r.infer_config.clone(),
                    }
                })
                .collect();
            let same = cells.windows(2).all(|p| p[0] == p[1]);
            configs.push(ConfigRow {
                window: s.lanes[0].windows[w].window,
                stream: st.stream.clone(),
                cells,
                same,
            });
        }
    }
    CompareBody {
        id: c.id,
        status: s.status,
        done: s.done,
        lanes,
        chart: charts::accuracy_lines(&series, "window"),
        configs,
        version: s.version,
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=error>rendering failed: {e}</p>"))
}

#[derive(Template, WebTemplate)]
#[template(path = "comparison.html")]
struct ComparisonPage {
    nav: Nav,
    id: i64,
    scenario: String,
    policies: Vec<String>,
    body: String,
    live: bool,
}

async fn view(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i64>,
) -> Result<ComparisonPage, AppError> {
    let nav = visitor.nav("compare");
    if let Some(c) = state.arenas.get(id) {
        let policies = c
            .snapshot()
            .lanes
            .iter()
            .map(|l| l.policy.clone())
            .collect();
        return Ok(ComparisonPage {
            nav,
            id,
            scenario: c.scenario.name.clone(),
            policies,
            body: render_body(&c),
            live: true,
        });
    }
    // Started by an earlier server or the CLI: only its history is left.
    let stored = state
        .history
        .comparisons()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| AppError::NotFound(format!("comparison {id}")))?;
    Ok(ComparisonPage {
        nav,
        id,
        scenario: stored.scenario,
        policies: stored.policies,
        body: String::new(),
        live: false,
    })
}

async fn events(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let c = state
        .arenas
        .get(id)
        .ok_or_else(|| AppError::NotFound(format!("comparison {id} on this server")))?;
    // The stream ends when the server shuts down, so shutdown never waits for a browser.
    let shutdown = state.shutdown.clone();
    let stream = compare_stream(c).take_until(async move { shutdown.wait().await });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn compare_stream(c: Arc<Comparison>) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = c.subscribe();
    futures_util::stream::unfold((c, rx, true), |(c, mut rx, first)| async move {
        if !first {
            match rx.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
        let ev = Event::default().event("window").data(render_body(&c));
        Some((Ok(ev), (c, rx, false)))
    })
}

#[derive(serde::Deserialize)]
struct StopForm {
    #[serde(default)]
    csrf: String,
}

async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<StopForm>,
) -> Result<Response, AppError> {
    require_admin(&state, &headers, Some(&f.csrf))?;
    let c = state
        .arenas
        .get(id)
        .ok_or_else(|| AppError::NotFound(format!("comparison {id} on this server")))?;
    c.stop();
    Ok(Redirect::to(&format!("/compare/{id}")).into_response())
}

async fn api_comparison(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let runs = state
        .history
        .runs_filtered(&crate::history::RunFilter {
            comparison: Some(id),
            ..Default::default()
        })
        .await?;
    let live = state.arenas.get(id).map(|c| {
        let s = c.snapshot();
        json!({
            "done": s.done,
            "status": s.status,
            "lanes": s.lanes.iter().map(|l| json!({
                "policy": l.policy,
                "status": l.status,
                "run_id": l.run_id,
                "windows": l.windows.iter().map(|w| json!({
                    "window": w.window, "mean_accuracy": w.mean_accuracy, "gpu_utilization": w.gpu_utilization,
                    "policy_calls": w.policy_calls.len(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    if live.is_none() && runs.is_empty() {
        return Err(AppError::NotFound(format!("comparison {id}")));
    }
    Ok(Json(json!({ "id": id, "runs": runs, "live": live })))
}
