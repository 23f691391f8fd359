//! The serverless streams (issue 14) on the dashboard: what the Live page, a window's page and
//! a run's page show of a window's [`LifecycleReport`] or a run's [`LifecycleSummary`].
//!
//! [`LiveLifecycle`] is the latest window's state per stream, its cold starts and the server's
//! resident memory; [`WindowLifecycle`] adds each stream's phases over the window (a list and
//! [`charts::phase_timeline`]), evictions, memory waits and the measured wake costs;
//! [`summary_line`] and [`short_line`] are a run's figures in one line. Views only: numbers get
//! their units here, names are escaped by the templates (and by the chart, which escapes
//! its own text).

use super::charts;
use crate::engine::phases::Phase;
use crate::engine::report::{ColdStartRecord, LifecycleReport, LifecycleSummary, StreamLife};

const MIB: f64 = (1u64 << 20) as f64;

/// Bytes as MiB, two decimals: a stream holds about a MiB, so fewer would hide differences.
pub fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / MIB)
}

/// Seconds as milliseconds: wake-ups take tens to hundreds of them.
fn ms(seconds: f64) -> String {
    format!("{:.1} ms", 1000.0 * seconds)
}

/// The server's resident memory over one window.
pub struct MemoryView {
    pub mean: String,
    pub peak: String,
    /// `budget 6.00 MiB`, or `no budget`.
    pub budget: String,
}

impl From<&LifecycleReport> for MemoryView {
    fn from(l: &LifecycleReport) -> Self {
        MemoryView {
            mean: mib(l.memory_mean_bytes),
            peak: mib(l.memory_peak_bytes as f64),
            budget: l.memory_budget_bytes.map_or_else(
                || "no budget".into(),
                |b| format!("budget {}", mib(b as f64)),
            ),
        }
    }
}

/// One wake-up: `at` seconds into the window, by `path`, taking `seconds`.
pub struct ColdStartView {
    pub stream: String,
    pub at: String,
    pub path: &'static str,
    pub seconds: String,
}

impl From<&ColdStartRecord> for ColdStartView {
    fn from(c: &ColdStartRecord) -> Self {
        ColdStartView {
            stream: c.stream.clone(),
            at: format!("{:.1} s", c.at),
            path: c.path.name(),
            seconds: ms(c.seconds),
        }
    }
}

/// One stream's state at the end of the latest window.
pub struct LiveStream {
    pub stream: String,
    /// The phase's name, also its badge's class (`phase-NAME`).
    pub state: &'static str,
    /// What it holds now (nothing once scaled to zero), and averaged over the window.
    pub resident: String,
    pub mean_resident: String,
    pub frames_lost: usize,
}

/// Bytes a stream holds at the end of the window: its resident set unless it went cold.
pub fn held_bytes(s: &StreamLife) -> u64 {
    if s.end_phase.resident() {
        s.resident_bytes
    } else {
        0
    }
}

/// The Live page's serverless part: the latest window's streams, cold starts and memory.
pub struct LiveLifecycle {
    pub policy: String,
    pub memory: MemoryView,
    pub streams: Vec<LiveStream>,
    pub cold_starts: Vec<ColdStartView>,
}

impl From<&LifecycleReport> for LiveLifecycle {
    fn from(l: &LifecycleReport) -> Self {
        LiveLifecycle {
            policy: l.policy.clone(),
            memory: l.into(),
            streams: l
                .streams
                .iter()
                .map(|s| LiveStream {
                    stream: s.stream.clone(),
                    state: s.end_phase.name(),
                    resident: mib(held_bytes(s) as f64),
                    mean_resident: mib(s.resident_mean_bytes),
                    frames_lost: s.frames_lost,
                })
                .collect(),
            cold_starts: l.cold_starts.iter().map(ColdStartView::from).collect(),
        }
    }
}

/// One stretch of a stream's window in one phase.
pub struct PhaseSpan {
    pub phase: &'static str,
    pub from: String,
    pub to: String,
}

/// One stream's life over a window, for the window page.
pub struct StreamLifeView {
    pub stream: String,
    pub end_phase: &'static str,
    pub phases: Vec<PhaseSpan>,
    pub frames_lost: usize,
    pub evictions: u32,
    pub memory_wait: String,
    pub resident: String,
    pub mean_resident: String,
}

/// The spans of `phases` (each from its start to the next one's, the last to `horizon`).
fn spans(phases: &[(f64, Phase)], horizon: f64) -> Vec<PhaseSpan> {
    phases
        .iter()
        .enumerate()
        .map(|(k, &(from, phase))| PhaseSpan {
            phase: phase.name(),
            from: format!("{from:.0}"),
            to: format!("{:.0}", phases.get(k + 1).map_or(horizon, |p| p.0)),
        })
        .collect()
}

/// A wake-up path's measured cost and its steps.
pub struct WakePathView {
    pub path: &'static str,
    pub total: String,
    /// (step, milliseconds).
    pub steps: Vec<(String, String)>,
}

/// A window page's serverless part.
pub struct WindowLifecycle {
    pub policy: String,
    pub calls: u32,
    pub errors: Vec<String>,
    pub memory: MemoryView,
    /// The phases as an SVG (escaped where it is built).
    pub chart: String,
    pub streams: Vec<StreamLifeView>,
    pub cold_starts: Vec<ColdStartView>,
    pub wake_costs: Vec<WakePathView>,
}

impl WindowLifecycle {
    /// `l` over a window of `horizon` seconds.
    pub fn new(l: &LifecycleReport, horizon: f64) -> Self {
        let rows: Vec<(&str, &[(f64, Phase)])> = l
            .streams
            .iter()
            .map(|s| (s.stream.as_str(), s.phases.as_slice()))
            .collect();
        let wake_costs = l
            .wake_costs
            .by_path()
            .map(|(kind, seconds, steps)| WakePathView {
                path: kind.name(),
                total: ms(seconds),
                steps: steps
                    .into_iter()
                    .map(|(step, millis)| (step.to_string(), format!("{millis:.1} ms")))
                    .collect(),
            })
            .collect();
        WindowLifecycle {
            policy: l.policy.clone(),
            calls: l.calls,
            errors: l.errors.clone(),
            memory: l.into(),
            chart: charts::phase_timeline(&rows, horizon),
            streams: l
                .streams
                .iter()
                .map(|s| StreamLifeView {
                    stream: s.stream.clone(),
                    end_phase: s.end_phase.name(),
                    phases: spans(&s.phases, horizon),
                    frames_lost: s.frames_lost,
                    evictions: s.evictions,
                    memory_wait: format!("{} s", s.memory_wait_seconds),
                    resident: mib(s.resident_bytes as f64),
                    mean_resident: mib(s.resident_mean_bytes),
                })
                .collect(),
            cold_starts: l.cold_starts.iter().map(ColdStartView::from).collect(),
            wake_costs,
        }
    }
}

/// Frames lost as a percentage of the frames sent.
fn lost_pct(l: &LifecycleSummary) -> String {
    format!(
        "{:.2}%",
        100.0 * l.frames_lost as f64 / l.frames.max(1) as f64
    )
}

/// A run's serverless figures in one line, as `tandem run` prints them.
pub fn summary_line(l: &LifecycleSummary) -> String {
    let budget = l.memory_budget_bytes.map_or_else(
        || "no budget".into(),
        |b| format!("budget {}", mib(b as f64)),
    );
    format!(
        "lifecycle {}: {} cold starts (median {}), {} pre-warmed starts, {} of {} frames lost ({}); resident memory mean {}, peak {} ({budget})",
        l.policy,
        l.cold_starts,
        l.cold_start_p50_seconds.map_or_else(|| "-".into(), ms),
        l.prewarmed_starts,
        l.frames_lost,
        l.frames,
        lost_pct(l),
        mib(l.memory_mean_bytes),
        mib(l.memory_peak_bytes as f64),
    )
}

/// The same, short enough for the runs list.
pub fn short_line(l: &LifecycleSummary) -> String {
    format!(
        "{} cold, {} pre-warmed starts; {} frames lost; memory {} mean, {} peak",
        l.cold_starts,
        l.prewarmed_starts,
        lost_pct(l),
        mib(l.memory_mean_bytes),
        mib(l.memory_peak_bytes as f64),
    )
}
