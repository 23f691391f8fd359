//! The continuous-learning engine: many cameras, each with its own model, drifting scenes,
//! retraining windows, and a policy plugin that splits the GPUs every window.
//!
//! - [`scenario`]: the TOML scenario file ([`Scenario`]).
//! - [`stream`]: camera streams and what each sees per window ([`Camera`], [`WindowData`]).
//! - [`memory`]: each stream's class-balanced exemplar memory.
//! - [`lifecycle`]: scale to zero and back: what a stream holds resident, its files when
//!   scaled down (load-ready with preprocessing), and its cold starts, timed step by step.
//! - [`profiler`]: the micro-profiler feeding the estimator plugin.
//! - [`cost`]: modelled GPU-seconds from FLOPs (the virtual clock's unit).
//! - [`schedule`]: the window's decide → apply → complete loop, written once ([`schedule::Scheduler`]).
//! - [`executor`]: share accounting (the virtual clock's fluid model).
//! - [`serve`]: frames processed under each allocation, and served accuracy.
//! - [`slicer`]: wall-clock share enforcement for the real clock ([`slicer::TimeSlicer`]).
//! - [`window`]: the window loop ([`Engine`]); its window start and its real-clock window
//!   in submodules.
//! - [`report`]: what a window produces.
//! - [`replay`]: policies on recorded job profiles, without training (the paper's simulator).
//! - [`session`]: what every run of a scenario shares ([`Session`]).
//! - [`zoo`]: models retrained for earlier scenes, offered again when a scene returns;
//!   [`detect`]: scene changes inside a window, seen on the frames, and the zoo model to swap in.
//! - [`checkpoint`]: each committed window's engine state on disk, for `tandem run --resume`.

pub mod activity;
pub mod calibrate;
pub mod checkpoint;
pub mod cost;
pub mod detect;
pub mod executor;
pub mod lifecycle;
pub mod memory;
pub mod phases;
pub mod profiler;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod serve;
pub mod session;
pub mod slicer;
pub mod stream;
pub mod window;
pub mod zoo;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use cost::CostModel;
pub use report::{RunReport, WindowReport};
pub use scenario::{Scenario, ScenarioError, parse_policy, policy_label};
pub use session::{HostOptions, Session, host_options};
pub use stream::{Camera, SourcePool, WindowData};
pub use window::Engine;

use crate::plugin::types::{
    ConfigSet, EstimateRequest, LifecycleDecision, LifecycleInput, Param, ParamValue, PolicyInput,
    Prediction, Schedule, SelectionRequest, StreamState,
};
use crate::plugin::{Plugin, PluginError, PluginHost};

/// What stops a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Lifecycle(#[from] lifecycle::LifecycleError),
    #[error("{0}")]
    Setup(String),
}

/// The plugins a run uses, loaded, with their parameters.
#[derive(Clone)]
pub struct Plugins {
    pub host: Arc<PluginHost>,
    pub policy: Arc<Plugin>,
    pub policy_params: Vec<Param>,
    pub space: Arc<Plugin>,
    pub space_params: Vec<Param>,
    pub estimator: Arc<Plugin>,
    pub estimator_params: Vec<Param>,
    /// The zoo's selector, with its parameters (none: no zoo).
    pub selector: Option<(Arc<Plugin>, Vec<Param>)>,
    /// Zoo models checked per stream and window, at most.
    pub zoo_candidates: u32,
    /// The lifecycle policy, with its parameters (none: streams never come and go).
    pub lifecycle: Option<(Arc<Plugin>, Vec<Param>)>,
    /// The run's seed: every call's WASI random numbers derive from it.
    pub seed: u64,
}

impl Plugins {
    pub fn decide(&self, input: &PolicyInput) -> Result<Schedule, PluginError> {
        self.host
            .decide(&self.policy, input, &self.policy_params, self.seed)
    }

    pub fn configs(&self, state: &StreamState) -> Result<ConfigSet, PluginError> {
        self.host
            .configs(&self.space, state, &self.space_params, self.seed)
    }

    pub fn predict(&self, request: &EstimateRequest) -> Result<Prediction, PluginError> {
        self.host
            .predict(&self.estimator, request, &self.estimator_params, self.seed)
    }

    /// The lifecycle policy's decisions (every stream always warm without one).
    pub fn plan_lifecycle(
        &self,
        input: &LifecycleInput,
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        match &self.lifecycle {
            Some((plugin, params)) => self.host.plan_lifecycle(plugin, input, params),
            None => Ok(input
                .streams
                .iter()
                .map(|s| LifecycleDecision {
                    stream_id: s.id.clone(),
                    keep_alive_seconds: f64::MAX,
                    prewarm_after_seconds: None,
                })
                .collect()),
        }
    }

    /// The lifecycle plugin's name (`always-warm` without one).
    pub fn lifecycle_name(&self) -> String {
        self.lifecycle
            .as_ref()
            .map_or_else(|| "always-warm".into(), |(p, _)| p.name().to_string())
    }

    /// The selector's short list (`None` without a zoo).
    pub fn select(&self, request: &SelectionRequest) -> Option<Result<Vec<String>, PluginError>> {
        let (plugin, params) = self.selector.as_ref()?;
        Some(self.host.select(plugin, request, params))
    }

    pub fn policy_name(&self) -> String {
        format!("{}@{}", self.policy.name(), self.policy.version())
    }

    pub fn policy_digest(&self) -> String {
        self.policy.digest().to_string()
    }
}

/// Plugin parameters as written in a scenario file.
pub fn params_from_toml(table: &BTreeMap<String, toml::Value>) -> Result<Vec<Param>, String> {
    table
        .iter()
        .map(|(name, v)| {
            let value = match v {
                toml::Value::Integer(i) => ParamValue::Number(*i as f64),
                toml::Value::Float(f) => ParamValue::Number(*f),
                toml::Value::Boolean(b) => ParamValue::Flag(*b),
                toml::Value::String(s) => ParamValue::Text(s.clone()),
                other => {
                    return Err(format!(
                        "parameter `{name}`: {} values are not supported",
                        other.type_str()
                    ));
                }
            };
            Ok(Param {
                name: name.clone(),
                value,
            })
        })
        .collect()
}
