//! `/metrics` in Prometheus text format: per-stream accuracy and shares of every run this
//! server drives (live and comparison arenas), policy-call latency and plugin failures.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;
use crate::engine::WindowReport;

#[derive(Default, Clone, Copy)]
struct StreamGauges {
    accuracy: f64,
    infer_share: f64,
    retrain_share: f64,
}

#[derive(Default, Clone, Copy)]
struct CallStats {
    calls: u64,
    micros_sum: u64,
    failures: u64,
}

#[derive(Default)]
struct Inner {
    /// (run, policy, stream) → the last window's gauges.
    streams: BTreeMap<(String, String, String), StreamGauges>,
    /// plugin → policy call counters.
    calls: BTreeMap<String, CallStats>,
    /// (run, policy) → windows done.
    windows: BTreeMap<(String, String), u64>,
}

/// Counters and gauges, updated by the engine threads after every window.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Take in one finished window of run `run` under `policy`.
    pub fn observe(&self, run: &str, policy: &str, w: &WindowReport) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for s in &w.streams {
            m.streams.insert(
                (run.to_string(), policy.to_string(), s.stream.clone()),
                StreamGauges {
                    accuracy: s.accuracy,
                    infer_share: s.infer_share,
                    retrain_share: s.retrain.as_ref().map_or(0.0, |j| j.allocated_share),
                },
            );
        }
        for c in &w.policy_calls {
            let e = m.calls.entry(c.plugin.clone()).or_default();
            e.calls += 1;
            e.micros_sum += c.micros;
            e.failures += u64::from(c.error.is_some());
        }
        *m.windows
            .entry((run.to_string(), policy.to_string()))
            .or_default() += 1;
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, f: &dyn Fn(&StreamGauges) -> f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for ((run, policy, stream), g) in &m.streams {
                let _ = writeln!(
                    out,
                    "{name}{{run=\"{}\",policy=\"{}\",stream=\"{}\"}} {}",
                    label(run),
                    label(policy),
                    label(stream),
                    f(g)
                );
            }
        };
        gauge(
            "tandem_stream_accuracy",
            "Time-averaged served accuracy of the stream in its last window.",
            &|g| g.accuracy,
        );
        gauge(
            "tandem_stream_infer_share",
            "Time-averaged inference GPU share of the stream in its last window.",
            &|g| g.infer_share,
        );
        gauge(
            "tandem_stream_retrain_share",
            "Allocated retraining GPU share of the stream's last job (0 without one).",
            &|g| g.retrain_share,
        );
        let _ = writeln!(
            out,
            "# HELP tandem_windows_total Windows finished.\n# TYPE tandem_windows_total counter"
        );
        for ((run, policy), n) in &m.windows {
            let _ = writeln!(
                out,
                "tandem_windows_total{{run=\"{}\",policy=\"{}\"}} {n}",
                label(run),
                label(policy)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tandem_policy_call_seconds Time spent in policy plugin calls.\n# TYPE tandem_policy_call_seconds summary"
        );
        for (plugin, c) in &m.calls {
            let p = label(plugin);
            let _ = writeln!(
                out,
                "tandem_policy_call_seconds_sum{{plugin=\"{p}\"}} {}\ntandem_policy_call_seconds_count{{plugin=\"{p}\"}} {}",
                c.micros_sum as f64 / 1e6,
                c.calls
            );
        }
        let _ = writeln!(
            out,
            "# HELP tandem_plugin_failures_total Policy calls whose output was not used (the fallback decided).\n# TYPE tandem_plugin_failures_total counter"
        );
        for (plugin, c) in &m.calls {
            let _ = writeln!(
                out,
                "tandem_plugin_failures_total{{plugin=\"{}\"}} {}",
                label(plugin),
                c.failures
            );
        }
        out
    }
}

/// A label value escaped as the text format requires.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
