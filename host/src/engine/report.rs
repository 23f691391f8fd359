//! What a run produces, window by window: the records the CLI prints, history stores and
//! the dashboard shows. Plain serde structs.

use serde::{Deserialize, Serialize};

use super::phases::{Phase, WakeCosts, WakeKind};
use crate::plugin::types::{PolicyInput, Schedule};

/// One window of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowReport {
    pub window: u32,
    /// Mean over streams of the time-averaged served accuracy.
    pub mean_accuracy: f64,
    pub streams: Vec<StreamReport>,
    /// GPU-seconds the micro-profiler used (charged to the window).
    pub profiler_gpu_seconds: f64,
    /// GPU-seconds of the profiles skipped because the last window's predictions were
    /// reused (`[profiler] reuse`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub profiler_saved_gpu_seconds: f64,
    /// When the first decision was made (golden-label delay plus profiling), seconds.
    pub decision_at: f64,
    pub policy_calls: Vec<PolicyCall>,
    /// Every change of allocation, in time order.
    pub allocations: Vec<Allocation>,
    /// Every prediction the profiler made, with the actual outcome where the
    /// configuration really ran.
    pub predictions: Vec<PredictionRecord>,
    /// Modelled GPU-seconds used by inference and retraining, over `gpus × window`.
    pub gpu_utilization: f64,
    /// What the zoo did this window (absent without a zoo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoo: Option<ZooReport>,
    /// Each stream's serverless life this window (absent when no camera has an activity
    /// schedule and no memory budget is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleReport>,
    /// GPUs of the modelled server (absent in reports written before it was recorded).
    #[serde(default)]
    pub gpus: u32,
    /// Window length, seconds.
    #[serde(default)]
    pub window_seconds: f64,
}

/// One stream in one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamReport {
    pub stream: String,
    /// Time-averaged served accuracy over the window.
    pub accuracy: f64,
    /// Served accuracy in 10 chunks over the window.
    pub chunks: Vec<f64>,
    /// Accuracy of the model at the window start, on the window's validation split.
    pub start_accuracy: f64,
    /// Accuracy of the model serving at the window end, on the same split.
    pub end_accuracy: f64,
    pub frames: usize,
    pub frames_processed: usize,
    /// The retraining job, if one ran (or started).
    pub retrain: Option<JobReport>,
    /// Inference configuration at the window end.
    pub infer_config: String,
    /// Time-averaged inference share.
    pub infer_share: f64,
    /// Real clock: the inference job's time-averaged allocation and the share of the device
    /// it used over the window, as the time slicer measured them (below the allocation while
    /// the job waited for frames). `None` on the virtual clock.
    #[serde(default)]
    pub infer_allocated_share: Option<f64>,
    #[serde(default)]
    pub infer_delivered_share: Option<f64>,
}

/// A retraining job's outcome against its prediction and allocation.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct JobReport {
    pub config: String,
    pub predicted_accuracy: f64,
    /// Accuracy of the retrained model on the validation split (None if it did not finish).
    pub actual_accuracy: Option<f64>,
    pub predicted_gpu_seconds: f64,
    pub actual_gpu_seconds: f64,
    pub started_at: f64,
    pub finished_at: Option<f64>,
    /// Time-averaged allocated share while it ran.
    pub allocated_share: f64,
    /// GPU-seconds it received over the time it ran.
    pub delivered_share: f64,
    /// Whether the retrained model went on to serve (see `validate_before_deploy`); reports
    /// written before the gate existed deployed every finished job.
    #[serde(default = "deployed_default")]
    pub deployed: bool,
}

fn deployed_default() -> bool {
    true
}

/// One call to the policy plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyCall {
    pub at: f64,
    pub plugin: String,
    pub digest: String,
    pub input: PolicyInput,
    pub output: Option<Schedule>,
    /// Why the output was not used (and the fallback took over), if so.
    pub error: Option<String>,
    pub micros: u64,
}

/// A stream's shares from `at` on.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Allocation {
    pub at: f64,
    pub stream: String,
    pub infer_share: f64,
    pub retrain_share: f64,
    pub infer_config: String,
    pub retrain_config: Option<String>,
}

/// A profiler prediction for one configuration.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct PredictionRecord {
    pub stream: String,
    pub config: String,
    pub predicted_accuracy: f64,
    pub predicted_gpu_seconds: f64,
    pub actual_accuracy: Option<f64>,
    pub actual_gpu_seconds: Option<f64>,
    /// The estimator plugin's error when it failed (the last profiled point and the cost
    /// model stood in for its prediction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator_error: Option<String>,
}

/// How often the policy failed and why: each distinct reason with its count, most frequent
/// first (ties in order of first appearance).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Fallbacks {
    /// Policy calls made.
    pub calls: usize,
    /// Calls whose answer was not used (the fallback decided instead).
    pub failed: usize,
    pub reasons: Vec<(String, usize)>,
}

impl Fallbacks {
    /// Distinct reasons kept; later new ones are counted together as `other reasons`, so a
    /// long live run's record stays small.
    const MAX_REASONS: usize = 16;

    /// Count `errors`, one per call (`None`: the policy's answer was used).
    pub fn count<'a>(errors: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut f = Fallbacks::default();
        for e in errors {
            f.add(e);
        }
        f
    }

    /// Count one more call.
    pub fn add(&mut self, error: Option<&str>) {
        self.calls += 1;
        let Some(e) = error else { return };
        self.failed += 1;
        let e = if self.reasons.len() >= Self::MAX_REASONS
            && !self.reasons.iter().any(|(r, _)| r == e)
        {
            "other reasons"
        } else {
            e
        };
        match self.reasons.iter_mut().find(|(r, _)| r == e) {
            Some((_, n)) => *n += 1,
            None => self.reasons.push((e.to_string(), 1)),
        }
        // A stable sort keeps first appearance among equal counts.
        self.reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    }

    /// Whether every call failed (and there was at least one).
    pub fn all_failed(&self) -> bool {
        self.calls > 0 && self.failed == self.calls
    }

    /// One line for people: `12 of 12 decisions were the fallback's: <reason> (12)`; empty
    /// when the policy decided every time.
    pub fn describe(&self) -> String {
        if self.failed == 0 {
            return String::new();
        }
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|(r, n)| format!("{r} ({n}x)"))
            .collect();
        format!(
            "{} of {} decisions were the fallback's: {}",
            self.failed,
            self.calls,
            reasons.join("; ")
        )
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// What the zoo did in one window: every model checked and what it measured, every zoo model
/// that went on to serve, the models it gained and lost.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ZooReport {
    pub checks: Vec<ZooCheckRecord>,
    pub uses: Vec<ZooUse>,
    /// Models added (deployed after retraining this window), by id.
    pub added: Vec<String>,
    /// Models evicted to stay within the bounds, by id.
    pub evicted: Vec<String>,
    /// The zoo at the window's end: models and bytes.
    pub models: usize,
    pub bytes: u64,
    /// Modelled GPU-seconds of the checks (charged to the window).
    pub check_gpu_seconds: f64,
    /// Why a selector call failed (the stream went without candidates), per failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Scene changes seen inside the window on the streams' frames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detections: Vec<ZooDetection>,
}

/// A scene change the detector saw on a stream's frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZooDetection {
    pub stream: String,
    /// When it was seen, seconds into the window.
    pub at: f64,
    /// When the scene really changed (`None`: it did not, a false alarm).
    pub changed_at: Option<f64>,
    /// The zoo model swapped in for the new scene, if one fitted, and when (seconds into the
    /// window: at the detection or up to `detect::MATCH_SECONDS` after it).
    pub swapped_to: Option<String>,
    #[serde(default)]
    pub swapped_at: Option<f64>,
}

/// A zoo model checked for a stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZooCheckRecord {
    pub stream: String,
    pub model: String,
    pub accuracy: f64,
}

/// A zoo model that went on to serve a stream: deployed as it is, or retrained from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZooUse {
    pub stream: String,
    pub model: String,
    pub as_is: bool,
}

/// The zoo over a run ([`RunReport::zoo`]). Detections count stream by stream; a change the
/// detector missed does not appear (the scenario's drift points say where changes were).
#[derive(Debug, Clone, Serialize)]
pub struct ZooSummary {
    pub checks: usize,
    pub check_gpu_seconds: f64,
    pub deployed_as_is: usize,
    pub retrained_from: usize,
    /// Stream-windows the zoo ran over (the denominator of a false-alarm rate).
    pub stream_windows: usize,
    /// Mid-window scene changes seen, and alarms where the scene had not changed.
    pub changes_seen: usize,
    pub false_alarms: usize,
    /// Detections that swapped a zoo model in.
    pub swaps: usize,
    /// From a change to its detection, seconds.
    pub detection_delay_mean_seconds: Option<f64>,
    pub detection_delay_max_seconds: Option<f64>,
    /// From a change to its zoo model serving (changes that got one), seconds.
    pub swap_delay_mean_seconds: Option<f64>,
    pub swap_delay_max_seconds: Option<f64>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: String,
    pub policy: String,
    pub windows: Vec<WindowReport>,
}

impl RunReport {
    /// The policy's failures over the run (the fallback's decisions and why).
    pub fn fallbacks(&self) -> Fallbacks {
        Fallbacks::count(
            self.windows
                .iter()
                .flat_map(|w| &w.policy_calls)
                .map(|c| c.error.as_deref()),
        )
    }

    pub fn mean_accuracy(&self) -> f64 {
        self.windows.iter().map(|w| w.mean_accuracy).sum::<f64>() / self.windows.len().max(1) as f64
    }

    /// The micro-profiler's modelled GPU-seconds as a fraction of the GPU-time of the
    /// windows (GPUs × window length), averaged over windows.
    pub fn profiler_cost_fraction(&self) -> Option<f64> {
        let n = self.windows.len();
        (n > 0).then(|| {
            self.windows
                .iter()
                .map(|w| {
                    w.profiler_gpu_seconds / (w.gpus.max(1) as f64 * w.window_seconds.max(1e-9))
                })
                .sum::<f64>()
                / n as f64
        })
    }

    /// The zoo over the run (`None` without one): its checks and what served from it, and
    /// the scene changes its detector saw inside windows, against when they happened.
    pub fn zoo(&self) -> Option<ZooSummary> {
        let zoos: Vec<(&WindowReport, &ZooReport)> = self
            .windows
            .iter()
            .filter_map(|w| Some((w, w.zoo.as_ref()?)))
            .collect();
        if zoos.is_empty() {
            return None;
        }
        let seen: Vec<&ZooDetection> = zoos.iter().flat_map(|(_, z)| &z.detections).collect();
        let delays: Vec<f64> = seen
            .iter()
            .filter_map(|d| Some(d.at - d.changed_at?))
            .collect();
        let swap_delays: Vec<f64> = seen
            .iter()
            .filter_map(|d| Some(d.swapped_at? - d.changed_at?))
            .collect();
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        Some(ZooSummary {
            checks: zoos.iter().map(|(_, z)| z.checks.len()).sum(),
            check_gpu_seconds: zoos.iter().map(|(_, z)| z.check_gpu_seconds).sum(),
            deployed_as_is: zoos
                .iter()
                .flat_map(|(_, z)| &z.uses)
                .filter(|u| u.as_is)
                .count(),
            retrained_from: zoos
                .iter()
                .flat_map(|(_, z)| &z.uses)
                .filter(|u| !u.as_is)
                .count(),
            stream_windows: zoos.iter().map(|(w, _)| w.streams.len()).sum(),
            changes_seen: delays.len(),
            false_alarms: seen.iter().filter(|d| d.changed_at.is_none()).count(),
            swaps: seen.iter().filter(|d| d.swapped_to.is_some()).count(),
            detection_delay_mean_seconds: mean(&delays),
            detection_delay_max_seconds: delays.iter().copied().reduce(f64::max),
            swap_delay_mean_seconds: mean(&swap_delays),
            swap_delay_max_seconds: swap_delays.iter().copied().reduce(f64::max),
        })
    }

    /// The streams' lives over the run, when they come and go.
    pub fn lifecycle(&self) -> Option<LifecycleSummary> {
        let lives: Vec<(&WindowReport, &LifecycleReport)> = self
            .windows
            .iter()
            .filter_map(|w| Some((w, w.lifecycle.as_ref()?)))
            .collect();
        let (_, first) = lives.first()?;
        let n = lives.len() as f64;
        let mut wakes: Vec<f64> = lives
            .iter()
            .flat_map(|(_, l)| &l.cold_starts)
            .filter(|c| c.path != WakeKind::Prewarmed)
            .map(|c| c.seconds)
            .collect();
        wakes.sort_by(f64::total_cmp);
        Some(LifecycleSummary {
            policy: first.policy.clone(),
            cold_starts: wakes.len(),
            prewarmed_starts: lives
                .iter()
                .flat_map(|(_, l)| &l.cold_starts)
                .filter(|c| c.path == WakeKind::Prewarmed)
                .count(),
            cold_start_p50_seconds: wakes.get(wakes.len() / 2).copied(),
            frames_lost: lives.iter().map(|(_, l)| l.frames_lost()).sum(),
            frames: lives
                .iter()
                .flat_map(|(w, _)| &w.streams)
                .map(|s| s.frames)
                .sum(),
            memory_mean_bytes: lives.iter().map(|(_, l)| l.memory_mean_bytes).sum::<f64>() / n,
            memory_peak_bytes: lives
                .iter()
                .map(|(_, l)| l.memory_peak_bytes)
                .max()
                .unwrap_or(0),
            memory_budget_bytes: first.memory_budget_bytes,
            plugin_errors: lives.iter().map(|(_, l)| l.errors.len()).sum(),
        })
    }

    /// Median absolute error of predicted vs actual accuracy over jobs that ran.
    pub fn profiler_median_abs_error(&self) -> Option<f64> {
        let mut errs: Vec<f64> = self
            .windows
            .iter()
            .flat_map(|w| &w.predictions)
            .filter_map(|p| p.actual_accuracy.map(|a| (a - p.predicted_accuracy).abs()))
            .collect();
        if errs.is_empty() {
            return None;
        }
        errs.sort_by(f64::total_cmp);
        Some(errs[errs.len() / 2])
    }
}

/// The streams' lives in one window: phases, cold starts, resident memory (see
/// [`super::phases`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LifecycleReport {
    /// The lifecycle policy.
    pub policy: String,
    pub memory_budget_bytes: Option<u64>,
    /// Bytes the resident streams held, averaged over the window, and at most.
    pub memory_mean_bytes: f64,
    pub memory_peak_bytes: u64,
    /// Every wake-up from cold or pre-warmed, in time order.
    pub cold_starts: Vec<ColdStartRecord>,
    pub streams: Vec<StreamLife>,
    /// Calls to the lifecycle plugin, and the errors of those that failed (the decisions
    /// in force stood).
    pub calls: u32,
    pub errors: Vec<String>,
    /// What a wake-up costs by path, as measured for this run.
    pub wake_costs: WakeCosts,
}

impl LifecycleReport {
    /// Wake-ups from cold (pre-warmed ones left out).
    pub fn cold_start_count(&self) -> usize {
        self.cold_starts
            .iter()
            .filter(|c| c.path != WakeKind::Prewarmed)
            .count()
    }

    pub fn frames_lost(&self) -> usize {
        self.streams.iter().map(|s| s.frames_lost).sum()
    }
}

/// A run's serverless figures ([`RunReport::lifecycle`]).
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleSummary {
    pub policy: String,
    /// Wake-ups from cold, their median length, and wake-ups of pre-warmed streams.
    pub cold_starts: usize,
    pub cold_start_p50_seconds: Option<f64>,
    pub prewarmed_starts: usize,
    /// Frames lost to cold starts and memory waits, of the frames the cameras sent.
    pub frames_lost: usize,
    pub frames: usize,
    /// Resident bytes: the windows' means averaged, and the highest at any second.
    pub memory_mean_bytes: f64,
    pub memory_peak_bytes: u64,
    pub memory_budget_bytes: Option<u64>,
    /// Lifecycle plugin calls that failed (the decisions in force stood).
    pub plugin_errors: usize,
}

/// One wake-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdStartRecord {
    pub stream: String,
    /// Seconds into the window its frames came back.
    pub at: f64,
    pub path: WakeKind,
    /// Until its first inference.
    pub seconds: f64,
}

/// One stream's life in one window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamLife {
    pub stream: String,
    /// (seconds into the window, phase from then on).
    pub phases: Vec<(f64, Phase)>,
    pub end_phase: Phase,
    /// Frames sent while it was starting or waiting for memory, served nothing.
    pub frames_lost: usize,
    /// Bytes it holds while resident, and averaged over the window.
    pub resident_bytes: u64,
    pub resident_mean_bytes: f64,
    /// Times the memory budget released it, and seconds it waited cold for room.
    pub evictions: u32,
    pub memory_wait_seconds: u32,
}
