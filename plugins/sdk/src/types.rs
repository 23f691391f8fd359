//! The plain domain types that cross the plugin boundary, mirroring `wit/` (package
//! `tandem:plugin@0.2.0`) one to one; a 0.1.0 plugin sees them without what 0.2.0 added.
//!
//! Guests convert the generated WIT types into these at the boundary (see [`crate::glue`]); the
//! host re-exports them as its scheduling domain types, so the engine, the native benchmark and
//! every guest share one definition.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// The value of one plugin parameter.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum ParamValue {
    Number(f64),
    Text(String),
    Flag(bool),
}

/// One parameter passed to a call.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
}

/// A parameter a plugin accepts, with its default.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ParamSpec {
    pub name: String,
    pub doc: String,
    pub default: ParamValue,
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum PluginKind {
    Policy,
    ConfigSpace,
    Estimator,
    Selector,
    Lifecycle,
}

impl PluginKind {
    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Policy => "policy",
            PluginKind::ConfigSpace => "config-space",
            PluginKind::Estimator => "estimator",
            PluginKind::Selector => "selector",
            PluginKind::Lifecycle => "lifecycle",
        }
    }
}

/// Whether a number is zero (what new fields that default to 0 leave out of JSON records, so
/// records of earlier versions read and compare the same).
#[cfg(feature = "serde")]
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// A plugin's self-description.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Description {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub summary: String,
    pub params: Vec<ParamSpec>,
}

/// An expected failure a plugin returns.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum PluginError {
    InvalidInput(String),
    InvalidParam(String),
    Infeasible(String),
    Internal(String),
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            PluginError::InvalidParam(m) => write!(f, "invalid parameter: {m}"),
            PluginError::Infeasible(m) => write!(f, "infeasible: {m}"),
            PluginError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

/// What is known about one stream at a decision point.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct StreamState {
    pub id: String,
    pub window: u32,
    /// Measured accuracy of the serving model, in [0, 1].
    pub accuracy: f64,
    /// Fraction per class of the window's labelled data.
    pub class_mix: Vec<f64>,
    /// Labelled samples available for retraining.
    pub samples: u32,
}

/// A retraining configuration γ.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RetrainConfig {
    pub name: String,
    pub epochs: u32,
    pub layers_trained: u32,
    pub data_fraction: f64,
    pub width: u32,
    pub batch_size: u32,
    pub learning_rate: f64,
    /// The zoo model it starts from (none: the serving model); with 0 epochs, deployed as is.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub start_from: Option<String>,
}

/// An inference configuration λ.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct InferConfig {
    pub name: String,
    pub frame_sampling: u32,
    pub resolution: u32,
}

/// A retraining job's profile: accuracy it reaches and GPU-seconds at a full GPU.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RetrainProfile {
    pub config: RetrainConfig,
    pub accuracy_after: f64,
    /// At a full GPU; for the job in progress, what it has left.
    pub gpu_seconds: f64,
    /// Standard error of `accuracy_after` (0: measured, or not known).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
    pub accuracy_error: f64,
    /// Fraction already done: above 0 only for the job in progress.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
    pub progress: f64,
}

/// An inference configuration's profile: accuracy factor and the GPU share it needs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct InferProfile {
    pub config: InferConfig,
    pub accuracy_factor: f64,
    pub gpu_cost: f64,
}

/// One stream with its candidate jobs (its retraining and inference job profiles).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct StreamInput {
    pub state: StreamState,
    pub retrain: Vec<RetrainProfile>,
    pub infer: Vec<InferProfile>,
    /// The retraining job in progress, one of `retrain` (the others are what it could
    /// switch to).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub running: Option<String>,
}

/// The input to one scheduling decision.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct PolicyInput {
    pub streams: Vec<StreamInput>,
    pub gpus: u32,
    pub window_seconds: f64,
    pub elapsed_seconds: f64,
}

/// The decision for one stream.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct StreamSchedule {
    pub stream_id: String,
    pub infer_share: f64,
    pub retrain_share: f64,
    pub infer_config: String,
    pub retrain_config: Option<String>,
}

/// A full decision: one entry per stream.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Schedule {
    pub streams: Vec<StreamSchedule>,
    pub estimated_accuracy: Option<f64>,
}

/// Candidate configurations for one stream (world `config-space`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ConfigSet {
    pub retrain: Vec<RetrainConfig>,
    pub infer: Vec<InferConfig>,
}

/// One micro-profile point.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Observation {
    pub epochs: u32,
    pub accuracy: f64,
    pub gpu_seconds: f64,
}

/// Relative throughput at a GPU share.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ThroughputPoint {
    pub share: f64,
    pub speed: f64,
}

/// What to predict for one configuration (world `estimator`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct EstimateRequest {
    pub config: RetrainConfig,
    pub start_accuracy: f64,
    pub observations: Vec<Observation>,
    pub profiled_data_fraction: f64,
    pub epochs_at: Vec<u32>,
    pub shares: Vec<f64>,
    pub throughput: Vec<ThroughputPoint>,
}

/// An estimator's prediction.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Prediction {
    pub accuracy: Vec<f64>,
    /// The estimator's standard error of each accuracy (empty: none given).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub accuracy_error: Vec<f64>,
    pub gpu_seconds: f64,
    pub seconds_at: Vec<f64>,
}

/// A model of the zoo as a selector sees it (world `selector`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ZooEntry {
    pub id: String,
    pub origin_stream: String,
    pub origin_window: u32,
    pub signature: Vec<f64>,
    pub accuracy: f64,
    pub uses: u32,
    pub last_used_window: u32,
}

/// What a selector chooses candidates for.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct SelectionRequest {
    pub stream_id: String,
    pub window: u32,
    pub signature: Vec<f64>,
    pub entries: Vec<ZooEntry>,
    pub max_candidates: u32,
}

/// Where a stream is in its serverless life (world `lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "kebab-case")
)]
pub enum StreamPhase {
    Active,
    WarmIdle,
    Cold,
    Starting,
}

/// One stream's activity, for a lifecycle policy.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct StreamActivity {
    pub id: String,
    pub phase: StreamPhase,
    pub idle_seconds: f64,
    pub idle_history: Vec<f64>,
    pub resident_bytes: u64,
    pub cold_start_seconds: f64,
    pub accuracy: f64,
}

/// The input to a lifecycle decision.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct LifecycleInput {
    pub now_seconds: f64,
    pub streams: Vec<StreamActivity>,
    pub memory_budget_bytes: Option<u64>,
}

/// A lifecycle decision for one stream.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct LifecycleDecision {
    pub stream_id: String,
    pub keep_alive_seconds: f64,
    pub prewarm_after_seconds: Option<f64>,
}
