//! The Live page: the continuously running scenario. The page renders the current state once;
//! `/live/events` then pushes a freshly rendered body after every window (event `window`) and
//! the window's progress every second (event `progress`), so the page never reloads.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::charts::{self, Series};
use super::lifecycle::LiveLifecycle;
use super::runner::{LiveHub, LiveState};
use super::{AppError, AppState, Nav, Visitor, f3, pct};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/live", get(page))
        .route("/live/events", get(events))
        .route("/api/live", get(api_live))
        .route("/api/streams", get(api_streams))
}

/// One stream's row on the Live page.
pub struct StreamRow {
    pub name: String,
    pub accuracy: String,
    pub start_accuracy: String,
    pub end_accuracy: String,
    pub infer_share: String,
    pub retrain_share: String,
    pub infer_config: String,
    pub retrain_config: String,
}

#[derive(Template)]
#[template(path = "live_body.html")]
pub struct LiveBody {
    pub running: bool,
    pub status: String,
    pub scenario: String,
    pub policy: String,
    pub window: u32,
    pub windows_done: usize,
    pub progress_pct: String,
    pub mean_accuracy: String,
    pub gpu_use: String,
    pub streams: Vec<StreamRow>,
    pub accuracy_chart: String,
    pub allocation_chart: String,
    /// The latest window's serverless streams (`None`: its cameras are always on).
    pub lifecycle: Option<LiveLifecycle>,
    pub version: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "live.html")]
struct LivePage {
    nav: Nav,
    body: String,
}

/// Render the body for a state (also what the SSE `window` events carry).
pub fn render_body(s: &LiveState) -> String {
    let last = s.windows.back();
    let streams = last
        .map(|w| {
            w.streams
                .iter()
                .map(|r| {
                    // The configuration chosen for retraining: the last allocation naming one.
                    let retrain_config = w
                        .allocations
                        .iter()
                        .rev()
                        .find(|a| a.stream == r.stream && a.retrain_config.is_some())
                        .and_then(|a| a.retrain_config.clone())
                        .unwrap_or_else(|| "none".into());
                    StreamRow {
                        name: r.stream.clone(),
                        accuracy: f3(r.accuracy),
                        start_accuracy: f3(r.start_accuracy),
                        end_accuracy: f3(r.end_accuracy),
                        infer_share: pct(r.infer_share),
                        retrain_share: pct(r.retrain.as_ref().map_or(0.0, |j| j.allocated_share)),
                        infer_config: r.infer_config.clone(),
                        retrain_config,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = last
        .map(|w| w.streams.iter().map(|r| r.stream.clone()).collect())
        .unwrap_or_default();
    // Accuracy over time: each window's 10 chunks of served accuracy, per stream.
    let series: Vec<Series> = names
        .iter()
        .enumerate()
        .map(|(k, name)| Series {
            name: name.clone(),
            points: s
                .windows
                .iter()
                .filter_map(|w| w.streams.get(k).map(|r| (w.window, r)))
                .flat_map(|(win, r)| {
                    let n = r.chunks.len().max(1) as f64;
                    r.chunks
                        .iter()
                        .enumerate()
                        .map(move |(c, a)| (win as f64 + (c as f64 + 0.5) / n, *a))
                })
                .collect(),
        })
        .collect();
    let (horizon, gpus) = s
        .scenario
        .as_ref()
        .map_or((1.0, 1.0), |sc| (sc.window_seconds, sc.gpus as f64));
    let body = LiveBody {
        running: s.scenario.is_some(),
        status: s.status.clone(),
        scenario: s
            .scenario
            .as_ref()
            .map(|x| x.name.clone())
            .unwrap_or_default(),
        policy: s.policy.clone(),
        window: s.current_window(),
        windows_done: s.windows.len(),
        progress_pct: format!("{:.0}", 100.0 * s.progress()),
        mean_accuracy: last
            .map(|w| f3(w.mean_accuracy))
            .unwrap_or_else(|| "-".into()),
        gpu_use: last
            .map(|w| pct(w.gpu_utilization))
            .unwrap_or_else(|| "-".into()),
        streams,
        accuracy_chart: charts::accuracy_lines(&series, "window"),
        allocation_chart: last.map_or_else(
            || charts::allocation_stack(&[], &[], 1.0, 1.0),
            |w| charts::allocation_stack(&w.allocations, &names, horizon, gpus),
        ),
        lifecycle: last
            .and_then(|w| w.lifecycle.as_ref())
            .map(LiveLifecycle::from),
        version: s.version,
    };
    body.render()
        .unwrap_or_else(|e| format!("<p class=error>rendering failed: {e}</p>"))
}

async fn page(State(state): State<AppState>, visitor: Visitor) -> LivePage {
    LivePage {
        nav: visitor.nav("live"),
        body: render_body(&state.live.snapshot()),
    }
}

fn progress_event(s: &LiveState) -> Event {
    Event::default().event("progress").data(
        json!({
            "window": s.current_window(),
            "progress": s.progress(),
            "status": s.status,
        })
        .to_string(),
    )
}

/// Server-sent events: the body now, then after every change; progress every second.
async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // The stream ends when the server shuts down, so shutdown never waits for a browser.
    let shutdown = state.shutdown.clone();
    let stream = live_stream(state.live.clone()).take_until(async move { shutdown.wait().await });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub fn live_stream(hub: Arc<LiveHub>) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = hub.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    futures_util::stream::unfold(
        (hub, rx, tick, true),
        |(hub, mut rx, mut tick, first)| async move {
            if first {
                let s = hub.snapshot();
                let ev = Event::default().event("window").data(render_body(&s));
                return Some((Ok(ev), (hub, rx, tick, false)));
            }
            let ev = tokio::select! {
                r = rx.recv() => match r {
                    // A lagging client just gets the newest state.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        Event::default().event("window").data(render_body(&hub.snapshot()))
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = tick.tick() => progress_event(&hub.snapshot()),
            };
            Some((Ok(ev), (hub, rx, tick, false)))
        },
    )
}

async fn api_live(State(state): State<AppState>) -> Json<serde_json::Value> {
    let s = state.live.snapshot();
    Json(json!({
        "scenario": s.scenario.as_ref().map(|x| &x.name),
        "policy": s.policy,
        "status": s.status,
        "window": s.current_window(),
        "progress": s.progress(),
        "windows": s.windows.iter().map(|w| json!({
            "window": w.window,
            "mean_accuracy": w.mean_accuracy,
            "gpu_utilization": w.gpu_utilization,
            "streams": w.streams.iter().map(|r| json!({"stream": r.stream, "accuracy": r.accuracy})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}

/// The live run's streams as of its last window, with their serverless lives when they come
/// and go (the key is left out otherwise, so always-on scenarios read as before).
async fn api_streams(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let s = state.live.snapshot();
    let Some(w) = s.windows.back() else {
        return Ok(Json(json!({ "window": null, "streams": [] })));
    };
    let mut out = json!({ "window": w.window, "streams": w.streams });
    if let Some(l) = &w.lifecycle {
        out["lifecycle"] = json!(l);
    }
    Ok(Json(out))
}
