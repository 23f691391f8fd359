//! `/metrics` in Prometheus text format: per-stream accuracy and shares of every run this
//! server drives (live and comparison arenas), policy-call latency and plugin failures; and,
//! for runs whose streams come and go (serverless), each stream's phase, resident bytes, cold
//! starts and lost frames, and the server's resident memory. A lane is a run and its policy
//! (labels `run`, `policy`), as for every other series here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;
use super::charts::PHASES;
use super::lifecycle::held_bytes;
use crate::engine::WindowReport;
use crate::engine::phases::{Phase, WakeKind};
use crate::engine::report::LifecycleReport;

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

/// One serverless stream: its last window's end, and counts since this server started.
#[derive(Default, Clone, Copy)]
struct StreamLifeGauges {
    state: Phase,
    /// What it holds at the window's end (nothing once cold).
    resident_bytes: u64,
    frames_lost: u64,
    /// Wake-ups by path, in [`WAKE_PATHS`]' order.
    cold_starts: [u64; 3],
}

/// The wake-up paths, each always exported (0 until it happens) so rates start from zero.
const WAKE_PATHS: [WakeKind; 3] = [WakeKind::Cold, WakeKind::Preprocessed, WakeKind::Prewarmed];

/// The server's resident memory in a lane's last window.
#[derive(Default, Clone, Copy)]
struct ServerMemory {
    peak_bytes: u64,
    budget_bytes: Option<u64>,
}

type Lane = (String, String);
type LaneStream = (String, String, String);

#[derive(Default)]
struct Inner {
    /// (run, policy, stream) → the last window's gauges.
    streams: BTreeMap<(String, String, String), StreamGauges>,
    /// plugin → policy call counters.
    calls: BTreeMap<String, CallStats>,
    /// (run, policy) → windows done.
    windows: BTreeMap<(String, String), u64>,
    /// (run, policy, stream) → its serverless life (only streams that come and go).
    lives: BTreeMap<LaneStream, StreamLifeGauges>,
    /// (run, policy) → the server's resident memory (only lanes with serverless streams).
    servers: BTreeMap<Lane, ServerMemory>,
}

impl Inner {
    /// Take in one window's lifecycle report of lane (`run`, `policy`).
    fn observe_lives(&mut self, run: &str, policy: &str, l: &LifecycleReport) {
        let key = |stream: &str| (run.to_string(), policy.to_string(), stream.to_string());
        for s in &l.streams {
            let g = self.lives.entry(key(&s.stream)).or_default();
            g.state = s.end_phase;
            g.resident_bytes = held_bytes(s);
            g.frames_lost += s.frames_lost as u64;
        }
        for c in &l.cold_starts {
            let g = self.lives.entry(key(&c.stream)).or_default();
            if let Some(k) = WAKE_PATHS.iter().position(|p| *p == c.path) {
                g.cold_starts[k] += 1;
            }
        }
        self.servers.insert(
            (run.to_string(), policy.to_string()),
            ServerMemory {
                peak_bytes: l.memory_peak_bytes,
                budget_bytes: l.memory_budget_bytes,
            },
        );
    }

    /// The serverless series; nothing at all while no lane has streams that come and go.
    fn render_lives(&self, out: &mut String) {
        if self.lives.is_empty() {
            return;
        }
        let lane_stream = |(run, policy, stream): &LaneStream| {
            format!(
                "run=\"{}\",policy=\"{}\",stream=\"{}\"",
                label(run),
                label(policy),
                label(stream)
            )
        };
        let lane =
            |(run, policy): &Lane| format!("run=\"{}\",policy=\"{}\"", label(run), label(policy));
        family(
            out,
            "tandem_stream_state",
            "gauge",
            "The stream's lifecycle phase at the end of its last window: 1 for that phase, 0 for the others.",
        );
        for (k, g) in &self.lives {
            for p in PHASES {
                let on = u8::from(p == g.state);
                let _ = writeln!(
                    out,
                    "tandem_stream_state{{{},state=\"{}\"}} {on}",
                    lane_stream(k),
                    p.name()
                );
            }
        }
        family(
            out,
            "tandem_stream_resident_bytes",
            "gauge",
            "Bytes the stream holds in memory at the end of its last window (0 once scaled to zero).",
        );
        for (k, g) in &self.lives {
            let _ = writeln!(
                out,
                "tandem_stream_resident_bytes{{{}}} {}",
                lane_stream(k),
                g.resident_bytes
            );
        }
        family(
            out,
            "tandem_cold_starts_total",
            "counter",
            "Wake-ups of the stream by path (cold, preprocessed, prewarmed).",
        );
        for (k, g) in &self.lives {
            for (path, n) in WAKE_PATHS.iter().zip(g.cold_starts) {
                let _ = writeln!(
                    out,
                    "tandem_cold_starts_total{{{},path=\"{}\"}} {n}",
                    lane_stream(k),
                    path.name()
                );
            }
        }
        family(
            out,
            "tandem_frames_lost_total",
            "counter",
            "Frames the stream lost while starting or waiting for memory (served nothing).",
        );
        for (k, g) in &self.lives {
            let _ = writeln!(
                out,
                "tandem_frames_lost_total{{{}}} {}",
                lane_stream(k),
                g.frames_lost
            );
        }
        family(
            out,
            "tandem_server_resident_bytes",
            "gauge",
            "Peak bytes the resident streams held together during the lane's last window.",
        );
        for (k, m) in &self.servers {
            let _ = writeln!(
                out,
                "tandem_server_resident_bytes{{{}}} {}",
                lane(k),
                m.peak_bytes
            );
        }
        if self.servers.values().any(|m| m.budget_bytes.is_some()) {
            family(
                out,
                "tandem_server_memory_budget_bytes",
                "gauge",
                "The memory budget the lane's resident streams are held under ([lifecycle] memory_budget_mib).",
            );
            for (k, m) in &self.servers {
                if let Some(b) = m.budget_bytes {
                    let _ = writeln!(out, "tandem_server_memory_budget_bytes{{{}}} {b}", lane(k));
                }
            }
        }
    }
}

/// A metric family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
        if let Some(l) = &w.lifecycle {
            m.observe_lives(run, policy, l);
        }
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
        m.render_lives(&mut out);
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
