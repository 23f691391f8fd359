//! The History pages: runs and comparisons from SQLite, filtered by policy, scenario and date;
//! a run's windows and accuracy chart (and its serverless figures, when its streams come and
//! go); a window's streams, policy calls (input, output, time) and allocation timeline, its zoo
//! checks and uses, and its streams' lives; CSV and JSON exports; and the `/api/runs` and
//! `/api/comparisons` JSON endpoints.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::charts::{self, Series};
use super::lifecycle::{WindowLifecycle, short_line, summary_line};
use super::zoo::{StreamZoo, stream_rows};
use super::{AppError, AppState, Nav, Visitor, f3, pct};
use crate::engine::report::{Allocation, LifecycleReport, PredictionRecord, ZooReport};
use crate::history::{
    AllocationRow, ComparisonRow, JobRow, PolicyCallRow, RunFilter, RunRow, StreamWindowRow,
    WindowRow,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/history", get(list))
        .route("/history/export.csv", get(export_runs_csv))
        .route("/history/export.json", get(export_runs_json))
        .route("/history/runs/{id}", get(run_page))
        .route("/history/runs/{id}/export.csv", get(export_run_csv))
        .route("/history/runs/{id}/export.json", get(export_run_json))
        .route("/history/runs/{id}/windows/{window}", get(window_page))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .route("/api/runs/{id}/windows", get(api_windows))
        .route("/api/runs/{id}/windows/{window}", get(api_window))
        .route("/api/comparisons", get(api_comparisons))
}

#[derive(Template, WebTemplate)]
#[template(path = "history.html")]
struct HistoryPage {
    nav: Nav,
    filter: RunFilter,
    comparison: String,
    query: String,
    runs: Vec<RunRow>,
    comparisons: Vec<ComparisonRow>,
    /// The serverless runs' figures in a line, by run id.
    lifecycles: BTreeMap<i64, String>,
}

impl HistoryPage {
    fn acc(&self, r: &RunRow) -> String {
        r.mean_accuracy.map(f3).unwrap_or_else(|| "-".into())
    }

    fn lifecycle(&self, r: &RunRow) -> Option<&String> {
        self.lifecycles.get(&r.id)
    }
}

/// The filter as a query string for export links (values percent-encoded).
fn query_of(f: &RunFilter) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("policy", &f.policy),
        ("scenario", &f.scenario),
        ("from", &f.from),
        ("to", &f.to),
    ] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)));
        }
    }
    if let Some(c) = f.comparison {
        parts.push(format!("comparison={c}"));
    }
    parts.join("&")
}

/// What a query value keeps as it is: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

async fn list(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(filter): Query<RunFilter>,
) -> Result<HistoryPage, AppError> {
    let runs = state.history.runs_filtered(&filter).await?;
    let comparisons = state.history.comparisons().await?;
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let lifecycles = state
        .history
        .lifecycle_summaries(&ids)
        .await?
        .iter()
        .map(|(id, l)| (*id, short_line(l)))
        .collect();
    Ok(HistoryPage {
        nav: visitor.nav("history"),
        comparison: filter.comparison.map(|c| c.to_string()).unwrap_or_default(),
        query: query_of(&filter),
        filter,
        runs,
        comparisons,
        lifecycles,
    })
}

/// One window's row on the run page.
struct WindowLine {
    window: i64,
    mean_accuracy: String,
    gpu_use: String,
    profiler: String,
    streams: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
struct RunPage {
    nav: Nav,
    run: RunRow,
    mean: String,
    windows: Vec<WindowLine>,
    stream_names: Vec<String>,
    chart: String,
    /// The run's serverless figures (`None`: its streams never came and went).
    lifecycle: Option<String>,
}

async fn find_run(state: &AppState, id: i64) -> Result<RunRow, AppError> {
    state
        .history
        .run(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("run {id}")))
}

async fn run_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<i64>,
) -> Result<RunPage, AppError> {
    let run = find_run(&state, id).await?;
    let windows = state.history.windows(id).await?;
    let streams = state.history.stream_windows(id, None).await?;
    let lifecycle = state.history.lifecycle_summaries(&[id]).await?;
    let mut names: Vec<String> = streams.iter().map(|s| s.stream.clone()).collect();
    names.sort();
    names.dedup();
    let series = names
        .iter()
        .map(|n| Series {
            name: n.clone(),
            points: streams
                .iter()
                .filter(|s| &s.stream == n)
                .map(|s| (s.window as f64, s.accuracy))
                .collect(),
        })
        .collect::<Vec<_>>();
    let lines = windows
        .iter()
        .map(|w| WindowLine {
            window: w.window,
            mean_accuracy: f3(w.mean_accuracy),
            gpu_use: pct(w.gpu_utilization),
            profiler: format!("{:.1} s", w.profiler_gpu_seconds),
            streams: names
                .iter()
                .map(|n| {
                    let a = streams
                        .iter()
                        .find(|s| s.window == w.window && &s.stream == n)
                        .map_or("-".into(), |s| f3(s.accuracy));
                    (n.clone(), a)
                })
                .collect(),
        })
        .collect();
    Ok(RunPage {
        nav: visitor.nav("history"),
        mean: run.mean_accuracy.map(f3).unwrap_or_else(|| "-".into()),
        run,
        windows: lines,
        stream_names: names,
        chart: charts::accuracy_lines(&series, "window"),
        lifecycle: lifecycle.get(&id).map(summary_line),
    })
}

/// A policy call shown: JSON pretty-printed for reading.
struct CallView {
    at: String,
    plugin: String,
    micros: i64,
    input: String,
    output: String,
    error: String,
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_string())
}

#[derive(Template, WebTemplate)]
#[template(path = "window.html")]
struct WindowPage {
    nav: Nav,
    run: RunRow,
    window: i64,
    streams: Vec<StreamWindowRow>,
    calls: Vec<CallView>,
    allocations: Vec<Allocation>,
    jobs: Vec<JobRow>,
    predictions: Vec<PredictionRecord>,
    chart: String,
    /// The window's zoo checks and uses by stream, and what the zoo gained and lost (`None`:
    /// the run had no zoo).
    zoo: Option<WindowZooView>,
    /// The streams' lives (`None`: the window's cameras were always on).
    lifecycle: Option<WindowLifecycle>,
}

/// A window's zoo part on its page.
struct WindowZooView {
    streams: Vec<StreamZoo>,
    added: String,
    evicted: String,
    size: String,
    check_gpu: String,
    errors: Vec<String>,
    /// Scene changes the detector saw inside the window, one line each.
    detections: Vec<String>,
}

impl From<&ZooReport> for WindowZooView {
    fn from(z: &ZooReport) -> Self {
        WindowZooView {
            streams: stream_rows(z),
            added: z.added.join(", "),
            evicted: z.evicted.join(", "),
            size: format!("{} models, {:.1} KiB", z.models, z.bytes as f64 / 1024.0),
            check_gpu: format!("{:.2} s", z.check_gpu_seconds),
            errors: z.errors.clone(),
            detections: z
                .detections
                .iter()
                .map(|d| {
                    let seen = match d.changed_at {
                        Some(c) => {
                            format!("the scene changed at {c:.0} s, {:.0} s before", d.at - c)
                        }
                        None => "a false alarm: the scene had not changed".to_string(),
                    };
                    let swap = match (&d.swapped_to, d.swapped_at) {
                        (Some(m), Some(t)) => format!("{m} swapped in at {t:.0} s"),
                        (Some(m), None) => format!("{m} swapped in"),
                        _ => "no zoo model fitted".to_string(),
                    };
                    format!("{} at {:.0} s ({seen}; {swap})", d.stream, d.at)
                })
                .collect(),
        }
    }
}

/// Everything history holds about one window: its page and its API both show all of it.
struct WindowDetail {
    streams: Vec<StreamWindowRow>,
    calls: Vec<PolicyCallRow>,
    allocations: Vec<AllocationRow>,
    jobs: Vec<JobRow>,
    predictions: Vec<PredictionRecord>,
    zoo: Option<ZooReport>,
    lifecycle: Option<LifecycleReport>,
}

async fn window_detail(state: &AppState, id: i64, window: i64) -> Result<WindowDetail, AppError> {
    let h = &state.history;
    let streams = h.stream_windows(id, Some(window)).await?;
    if streams.is_empty() {
        return Err(AppError::NotFound(format!("window {window} of run {id}")));
    }
    Ok(WindowDetail {
        streams,
        calls: h.policy_calls(id, window).await?,
        allocations: h.allocations(id, window).await?,
        jobs: h.jobs(id, window).await?,
        predictions: h.predictions(id, window).await?,
        zoo: h.zoo_report(id, window).await?,
        lifecycle: h.lifecycle_report(id, window).await?,
    })
}

async fn window_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((id, window)): Path<(i64, i64)>,
) -> Result<WindowPage, AppError> {
    let run = find_run(&state, id).await?;
    let detail = window_detail(&state, id, window).await?;
    let scenario = state.history.scenario_json(id).await?.unwrap_or_default();
    let setting = |key: &str| scenario.get(key).and_then(serde_json::Value::as_f64);
    let horizon = setting("window_seconds").unwrap_or(200.0);
    let gpus = setting("gpus").unwrap_or(1.0);
    let names: Vec<String> = detail.streams.iter().map(|s| s.stream.clone()).collect();
    let allocations: Vec<Allocation> = detail
        .allocations
        .into_iter()
        .map(|a| a.allocation)
        .collect();
    Ok(WindowPage {
        nav: visitor.nav("history"),
        run,
        window,
        chart: charts::allocation_stack(&allocations, &names, horizon, gpus),
        streams: detail.streams,
        calls: detail
            .calls
            .into_iter()
            .map(|c| CallView {
                at: format!("{:.1} s", c.at),
                plugin: c.plugin,
                micros: c.micros,
                input: pretty(&c.input),
                output: c
                    .output
                    .as_deref()
                    .map(pretty)
                    .unwrap_or_else(|| "(none)".into()),
                error: c.error.unwrap_or_default(),
            })
            .collect(),
        allocations,
        jobs: detail.jobs,
        predictions: detail.predictions,
        zoo: detail.zoo.as_ref().map(WindowZooView::from),
        lifecycle: detail
            .lifecycle
            .as_ref()
            .map(|l| WindowLifecycle::new(l, horizon)),
    })
}

/// CSV text: `header`, then `rows`, each field quoted where it must be.
fn csv_text<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Result<String, AppError> {
    let fail = |e: &dyn std::fmt::Display| AppError::Internal(format!("writing CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header).map_err(|e| fail(&e))?;
    for row in rows {
        out.write_record(row).map_err(|e| fail(&e))?;
    }
    let bytes = out.into_inner().map_err(|e| fail(&e))?;
    String::from_utf8(bytes).map_err(|e| fail(&e))
}

fn download(body: String, content_type: &str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn export_runs_csv(
    State(state): State<AppState>,
    Query(filter): Query<RunFilter>,
) -> Result<Response, AppError> {
    let runs = state.history.runs_filtered(&filter).await?;
    let out = csv_text(
        [
            "id",
            "comparison_id",
            "scenario",
            "policy",
            "status",
            "windows_planned",
            "windows_done",
            "mean_accuracy",
            "started_at",
        ],
        runs.into_iter().map(|r| {
            [
                r.id.to_string(),
                r.comparison_id.map(|c| c.to_string()).unwrap_or_default(),
                r.scenario,
                r.policy,
                r.status,
                r.windows_planned.to_string(),
                r.windows_done.to_string(),
                r.mean_accuracy.map(|a| a.to_string()).unwrap_or_default(),
                r.started_at,
            ]
        }),
    )?;
    Ok(download(out, "text/csv; charset=utf-8", "tandem-runs.csv"))
}

async fn export_runs_json(
    State(state): State<AppState>,
    Query(filter): Query<RunFilter>,
) -> Result<Response, AppError> {
    let runs = state.history.runs_filtered(&filter).await?;
    let mut out = Vec::new();
    for r in runs {
        let windows = state.history.windows(r.id).await?;
        let streams = state.history.stream_windows(r.id, None).await?;
        out.push(json!({ "run": r, "windows": windows, "streams": streams }));
    }
    let body = serde_json::to_string_pretty(&out).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(download(body, "application/json", "tandem-runs.json"))
}

async fn export_run_csv(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let run = find_run(&state, id).await?;
    let streams = state.history.stream_windows(id, None).await?;
    let out = csv_text(
        [
            "run",
            "policy",
            "window",
            "stream",
            "accuracy",
            "start_accuracy",
            "end_accuracy",
            "infer_config",
            "infer_share",
            "frames",
            "frames_processed",
        ],
        streams.into_iter().map(|s| {
            [
                id.to_string(),
                run.policy.clone(),
                s.window.to_string(),
                s.stream,
                s.accuracy.to_string(),
                s.start_accuracy.to_string(),
                s.end_accuracy.to_string(),
                s.infer_config,
                s.infer_share.to_string(),
                s.frames.to_string(),
                s.frames_processed.to_string(),
            ]
        }),
    )?;
    Ok(download(
        out,
        "text/csv; charset=utf-8",
        &format!("tandem-run-{id}.csv"),
    ))
}

async fn run_json(state: &AppState, id: i64) -> Result<serde_json::Value, AppError> {
    let run = find_run(state, id).await?;
    let windows: Vec<WindowRow> = state.history.windows(id).await?;
    let streams = state.history.stream_windows(id, None).await?;
    let lifecycle = state.history.lifecycle_summaries(&[id]).await?.remove(&id);
    Ok(json!({ "run": run, "windows": windows, "streams": streams, "lifecycle": lifecycle }))
}

async fn export_run_json(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let v = run_json(&state, id).await?;
    let body = serde_json::to_string_pretty(&v).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(download(
        body,
        "application/json",
        &format!("tandem-run-{id}.json"),
    ))
}

async fn api_runs(
    State(state): State<AppState>,
    Query(filter): Query<RunFilter>,
) -> Result<Json<Vec<RunRow>>, AppError> {
    Ok(Json(state.history.runs_filtered(&filter).await?))
}

async fn api_run(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(run_json(&state, id).await?))
}

async fn api_windows(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<WindowRow>>, AppError> {
    find_run(&state, id).await?;
    Ok(Json(state.history.windows(id).await?))
}

async fn api_window(
    State(state): State<AppState>,
    Path((id, window)): Path<(i64, i64)>,
) -> Result<Json<serde_json::Value>, AppError> {
    find_run(&state, id).await?;
    let d = window_detail(&state, id, window).await?;
    let calls: Vec<serde_json::Value> = d.calls.into_iter()
        .map(|c| {
            json!({
                "at": c.at, "plugin": c.plugin, "digest": c.digest, "micros": c.micros, "error": c.error,
                "input": serde_json::from_str::<serde_json::Value>(&c.input).unwrap_or(serde_json::Value::Null),
                "output": c.output.as_deref().and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok()),
            })
        })
        .collect();
    Ok(Json(
        json!({ "run": id, "window": window, "streams": d.streams, "policy_calls": calls, "allocations": d.allocations,
                "jobs": d.jobs, "predictions": d.predictions, "zoo": d.zoo, "lifecycle": d.lifecycle }),
    ))
}

async fn api_comparisons(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, AppError> {
    let stored = state.history.comparisons().await?;
    let out: Vec<serde_json::Value> = stored
        .into_iter()
        .map(|c| {
            let live = state.arenas.get(c.id).map(|a| {
                let s = a.snapshot();
                json!({ "done": s.done, "status": s.status, "lanes": s.lanes.iter().map(|l| json!({
                    "policy": l.policy, "status": l.status, "windows": l.windows.len(), "run_id": l.run_id,
                })).collect::<Vec<_>>() })
            });
            json!({ "id": c.id, "scenario": c.scenario, "policies": c.policies, "created_at": c.created_at, "live": live })
        })
        .collect();
    Ok(Json(json!(out)))
}
