//! The scheduling domain types plugins exchange with the host: [`StreamState`],
//! [`RetrainConfig`], [`InferConfig`], the job profiles [`RetrainProfile`] and
//! [`InferProfile`], [`StreamInput`], [`PolicyInput`], [`StreamSchedule`], [`Schedule`],
//! [`ConfigSet`], [`EstimateRequest`], [`Prediction`], and the plugin metadata
//! ([`Description`], [`Param`], [`PluginKind`]).
//!
//! They are defined once, in `tandem-plugin-sdk` (plain serde structs mirroring
//! `wit/types.wit`), and re-exported here: guests, the host and the native benchmark then share
//! one definition, and the window engine uses them without seeing generated bindings.

pub use tandem_plugin_sdk::types::{
    ConfigSet, Description, EstimateRequest, InferConfig, InferProfile, LifecycleDecision,
    LifecycleInput, Observation, Param, ParamSpec, ParamValue, PluginKind, PolicyInput, Prediction,
    RetrainConfig, RetrainProfile, Schedule, SelectionRequest, StreamActivity, StreamInput,
    StreamPhase, StreamSchedule, StreamState, ThroughputPoint, ZooEntry,
};

/// A plugin's own, expected failure (a WIT `result` error), as the plugin reported it.
pub use tandem_plugin_sdk::types::PluginError as GuestError;
