//! Replay: the paper's simulator mode. Scheduling policies (the real plugins) are run on
//! recorded job profiles, with no training and no inference, for fast what-if studies.
//!
//! - [`Profiles`] (`profiles`): what is replayed, window by window: per stream, the
//!   [`StreamInput`] a policy would have seen at the first decision. Read from Ekya's per-city
//!   meta-profile JSON (`ekya`: [`parse_ekya`], [`Profiles::from_ekya`]), from the run reports
//!   `tandem run --report` writes ([`Profiles::from_run_reports`]), or from policy inputs
//!   recorded in history ([`Profiles::from_policy_inputs`]).
//! - [`replay`] (`simulate`): one policy over every window, through the same
//!   [`Scheduler`](super::schedule::Scheduler) the engine uses: decide at the golden-label
//!   delay, progress the retraining jobs as a fluid, re-decide at each completion (falling
//!   back as the window loop does when the policy fails), then score each stream second by
//!   second ([`ReplayWindow`]).
//!
//! Scoring follows Ekya's simulator: a stream serves its start accuracy until its job
//! completes and the job's end accuracy afterwards, times the frame-sampling factor its
//! inference share affords: the job samples 1 frame in `full_rate_cost / share` (at least 1),
//! the factor is read off the stream's sampling curve (linearly between its points), and is 0
//! beyond the curve's last point (Ekya: below 1/20 of the needed rate). The window score is
//! the mean over streams and over 1-second steps (evaluated at the start of each second).

mod ekya;
mod profiles;
mod simulate;

use serde::Serialize;

use crate::plugin::types::StreamInput;

pub use ekya::{ekya_infer_profiles, parse_ekya};
pub use simulate::{replay, sampling_factor};

/// Ekya's frame-sampling curve (keep 1 frame in k → accuracy factor), measured on one stream.
pub const EKYA_SAMPLING: [(u32, f64); 12] = [
    (1, 1.0),
    (2, 0.78),
    (3, 0.64),
    (4, 0.60),
    (5, 0.44),
    (6, 0.42),
    (7, 0.41),
    (8, 0.33),
    (9, 0.28),
    (10, 0.15),
    (15, 0.12),
    (20, 0.04),
];

/// GPU share an inference job needs to keep up with every frame, in Ekya's setting.
pub const EKYA_FULL_RATE_SHARE: f64 = 0.25;

/// Defaults of Ekya's drivers: 200 s windows, 2 s golden-label delay, 1 GPU.
pub const DEFAULT_WINDOW_SECONDS: f64 = 200.0;
pub const DEFAULT_GOLDEN_DELAY: f64 = 2.0;
pub const DEFAULT_GPUS: u32 = 1;

/// A problem with the profiles to replay. Messages name the file and, for content errors,
/// the field (as a JSON path).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read or is not JSON.
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    /// A field holds something the format does not allow.
    #[error("{file}: {field}: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
    /// The profiles as a whole cannot be replayed (no windows, mixed formats, ...).
    #[error("{0}")]
    Input(String),
}

/// One window's recorded profiles.
#[derive(Debug, Clone)]
pub struct WindowProfiles {
    /// Where it came from (Ekya's task id, or tandem's window number).
    pub label: String,
    /// One entry per stream, as a policy sees it at the first decision.
    pub streams: Vec<StreamInput>,
    /// Recorded settings, used unless [`ReplayOptions`] overrides them.
    pub gpus: Option<u32>,
    pub window_seconds: Option<f64>,
    pub decide_at: Option<f64>,
}

/// Everything to replay.
#[derive(Debug, Clone)]
pub struct Profiles {
    /// What was read (files, or `history run N`), for the output.
    pub sources: Vec<String>,
    pub windows: Vec<WindowProfiles>,
}

/// Settings that override what the profiles recorded (Ekya's profiles record none: their
/// defaults are [`DEFAULT_GPUS`], [`DEFAULT_WINDOW_SECONDS`] and [`DEFAULT_GOLDEN_DELAY`]).
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub gpus: Option<u32>,
    pub window_seconds: Option<f64>,
    pub golden_delay: Option<f64>,
}

impl ReplayOptions {
    /// What `window` runs with: (GPUs, window seconds, first decision at), each from these
    /// options, else the window's file, else the default.
    pub fn for_window(&self, window: &WindowProfiles) -> (u32, f64, f64) {
        (
            self.gpus.or(window.gpus).unwrap_or(DEFAULT_GPUS),
            self.window_seconds
                .or(window.window_seconds)
                .unwrap_or(DEFAULT_WINDOW_SECONDS),
            self.golden_delay
                .or(window.decide_at)
                .unwrap_or(DEFAULT_GOLDEN_DELAY),
        )
    }
}

/// One stream of one replayed window.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayStream {
    pub stream: String,
    /// Served accuracy, mean over the window's 1-second steps.
    pub accuracy: f64,
    pub start_accuracy: f64,
    /// Accuracy of the model serving at the window end.
    pub end_accuracy: f64,
    /// Retraining configuration the stream ran last, if any.
    pub retrain_config: Option<String>,
    /// When it finished, seconds into the window (`None`: it did not finish).
    pub finished_at: Option<f64>,
    /// Time-averaged inference share.
    pub infer_share: f64,
}

/// One replayed window.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayWindow {
    pub window: u32,
    pub label: String,
    pub mean_accuracy: f64,
    pub streams: Vec<ReplayStream>,
    pub policy_calls: usize,
    /// Why the policy's answer was not used, per failed call (the fallback decided).
    pub policy_failures: Vec<String>,
}

impl ReplayWindow {
    pub fn jobs_finished(&self) -> usize {
        self.streams
            .iter()
            .filter(|s| s.finished_at.is_some())
            .count()
    }
}

/// Mean of the windows' mean accuracies.
pub fn mean_accuracy(windows: &[ReplayWindow]) -> f64 {
    windows.iter().map(|w| w.mean_accuracy).sum::<f64>() / windows.len().max(1) as f64
}

/// An error in `file` at JSON path `field`.
fn field_err(file: &str, field: impl Into<String>, message: impl Into<String>) -> ReplayError {
    ReplayError::Field {
        file: file.to_string(),
        field: field.into(),
        message: message.into(),
    }
}
