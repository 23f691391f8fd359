//! The one place that runs `bindgen!`: host bindings for every world of the WIT packages this
//! host accepts, and the conversions between their generated types and the domain types of
//! [`super::types`]. Nothing outside `plugin/` sees generated code.
//!
//! - [`v2`]: `tandem:plugin@0.2.0` (`wit/`), the current package: worlds `policy`,
//!   `config-space`, `estimator`, `selector`, `lifecycle`.
//! - [`v1`]: `tandem:plugin@0.1.0` (`wit/0.1.0/`), released and frozen: worlds
//!   `policy`, `config-space`, `estimator`. Its plugins see the domain types without what
//!   0.2.0 added: no zoo starts (configurations starting from the zoo are not offered to
//!   them), no accuracy errors, and a job in progress offered alone, as 0.1.0 promised.
//!
//! Each world gets its own module; the shared `types` interface is generated once per world,
//! so its conversions are written once per version as a macro and expanded in each module.

use super::types as d;

/// The WIT package versions this host accepts, newest first.
pub const WIT_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// Conversions of the `types` interface every version shares unchanged.
macro_rules! common_conversions {
    () => {
        use self::tandem::plugin::types as w;
        use super::d;

        pub(crate) fn params(ps: &[d::Param]) -> Vec<w::Param> {
            ps.iter()
                .map(|p| w::Param {
                    name: p.name.clone(),
                    value: match &p.value {
                        d::ParamValue::Number(x) => w::ParamValue::Number(*x),
                        d::ParamValue::Text(x) => w::ParamValue::Text(x.clone()),
                        d::ParamValue::Flag(x) => w::ParamValue::Flag(*x),
                    },
                })
                .collect()
        }

        fn param_value(v: w::ParamValue) -> d::ParamValue {
            match v {
                w::ParamValue::Number(x) => d::ParamValue::Number(x),
                w::ParamValue::Text(x) => d::ParamValue::Text(x),
                w::ParamValue::Flag(x) => d::ParamValue::Flag(x),
            }
        }

        pub(crate) fn description(x: w::Description) -> d::Description {
            d::Description {
                name: x.name,
                version: x.version,
                kind: kind(x.kind),
                summary: x.summary,
                params: x
                    .params
                    .into_iter()
                    .map(|p| d::ParamSpec {
                        name: p.name,
                        doc: p.doc,
                        default: param_value(p.default),
                    })
                    .collect(),
            }
        }

        pub(crate) fn error(x: w::PluginError) -> d::GuestError {
            match x {
                w::PluginError::InvalidInput(m) => d::GuestError::InvalidInput(m),
                w::PluginError::InvalidParam(m) => d::GuestError::InvalidParam(m),
                w::PluginError::Infeasible(m) => d::GuestError::Infeasible(m),
                w::PluginError::Internal(m) => d::GuestError::Internal(m),
            }
        }

        #[allow(dead_code)]
        pub(crate) fn state(x: &d::StreamState) -> w::StreamState {
            w::StreamState {
                id: x.id.clone(),
                window: x.window,
                accuracy: x.accuracy,
                class_mix: x.class_mix.clone(),
                samples: x.samples,
            }
        }

        #[allow(dead_code)]
        fn infer_profile(p: &d::InferProfile) -> w::InferProfile {
            w::InferProfile {
                config: w::InferConfig {
                    name: p.config.name.clone(),
                    frame_sampling: p.config.frame_sampling,
                    resolution: p.config.resolution,
                },
                accuracy_factor: p.accuracy_factor,
                gpu_cost: p.gpu_cost,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn schedule(x: w::Schedule) -> d::Schedule {
            d::Schedule {
                streams: x
                    .streams
                    .into_iter()
                    .map(|s| d::StreamSchedule {
                        stream_id: s.stream_id,
                        infer_share: s.infer_share,
                        retrain_share: s.retrain_share,
                        infer_config: s.infer_config,
                        retrain_config: s.retrain_config,
                    })
                    .collect(),
                estimated_accuracy: x.estimated_accuracy,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn infer_configs(xs: Vec<w::InferConfig>) -> Vec<d::InferConfig> {
            xs.into_iter()
                .map(|i| d::InferConfig {
                    name: i.name,
                    frame_sampling: i.frame_sampling,
                    resolution: i.resolution,
                })
                .collect()
        }
    };
}

/// `tandem:plugin@0.2.0`'s `types` conversions.
macro_rules! v2_conversions {
    () => {
        common_conversions!();

        fn kind(k: w::PluginKind) -> d::PluginKind {
            match k {
                w::PluginKind::Policy => d::PluginKind::Policy,
                w::PluginKind::ConfigSpace => d::PluginKind::ConfigSpace,
                w::PluginKind::Estimator => d::PluginKind::Estimator,
                w::PluginKind::Selector => d::PluginKind::Selector,
                w::PluginKind::Lifecycle => d::PluginKind::Lifecycle,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn retrain_config(x: &d::RetrainConfig) -> w::RetrainConfig {
            w::RetrainConfig {
                name: x.name.clone(),
                epochs: x.epochs,
                layers_trained: x.layers_trained,
                data_fraction: x.data_fraction,
                width: x.width,
                batch_size: x.batch_size,
                learning_rate: x.learning_rate,
                start_from: x.start_from.clone(),
            }
        }

        #[allow(dead_code)]
        pub(crate) fn retrain_config_back(x: w::RetrainConfig) -> d::RetrainConfig {
            d::RetrainConfig {
                name: x.name,
                epochs: x.epochs,
                layers_trained: x.layers_trained,
                data_fraction: x.data_fraction,
                width: x.width,
                batch_size: x.batch_size,
                learning_rate: x.learning_rate,
                start_from: x.start_from,
            }
        }
    };
}

/// `tandem:plugin@0.1.0`'s `types` conversions: what 0.2.0 added is left out going in and
/// filled with "none" coming back.
macro_rules! v1_conversions {
    () => {
        common_conversions!();

        fn kind(k: w::PluginKind) -> d::PluginKind {
            match k {
                w::PluginKind::Policy => d::PluginKind::Policy,
                w::PluginKind::ConfigSpace => d::PluginKind::ConfigSpace,
                w::PluginKind::Estimator => d::PluginKind::Estimator,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn retrain_config(x: &d::RetrainConfig) -> w::RetrainConfig {
            w::RetrainConfig {
                name: x.name.clone(),
                epochs: x.epochs,
                layers_trained: x.layers_trained,
                data_fraction: x.data_fraction,
                width: x.width,
                batch_size: x.batch_size,
                learning_rate: x.learning_rate,
            }
        }

        #[allow(dead_code)]
        pub(crate) fn retrain_config_back(x: w::RetrainConfig) -> d::RetrainConfig {
            d::RetrainConfig {
                name: x.name,
                epochs: x.epochs,
                layers_trained: x.layers_trained,
                data_fraction: x.data_fraction,
                width: x.width,
                batch_size: x.batch_size,
                learning_rate: x.learning_rate,
                start_from: None,
            }
        }
    };
}

/// `tandem:plugin@0.2.0`.
pub(crate) mod v2 {
    use super::d;

    /// World `policy`.
    pub(crate) mod policy {
        wasmtime::component::bindgen!({ world: "policy", path: "../wit" });
        v2_conversions!();

        use self::exports::tandem::plugin::scheduler as s;

        pub(crate) fn input(x: &d::PolicyInput) -> s::PolicyInput {
            s::PolicyInput {
                streams: x
                    .streams
                    .iter()
                    .map(|st| w::StreamInput {
                        state: state(&st.state),
                        retrain: st
                            .retrain
                            .iter()
                            .map(|r| w::RetrainProfile {
                                config: retrain_config(&r.config),
                                accuracy_after: r.accuracy_after,
                                gpu_seconds: r.gpu_seconds,
                                accuracy_error: r.accuracy_error,
                                progress: r.progress,
                            })
                            .collect(),
                        infer: st.infer.iter().map(infer_profile).collect(),
                        running: st.running.clone(),
                    })
                    .collect(),
                gpus: x.gpus,
                window_seconds: x.window_seconds,
                elapsed_seconds: x.elapsed_seconds,
            }
        }
    }

    /// World `config-space`.
    pub(crate) mod config_space {
        wasmtime::component::bindgen!({ world: "config-space", path: "../wit" });
        v2_conversions!();

        use self::exports::tandem::plugin::configurations as c;

        pub(crate) fn config_set(x: c::ConfigSet) -> d::ConfigSet {
            d::ConfigSet {
                retrain: x.retrain.into_iter().map(retrain_config_back).collect(),
                infer: infer_configs(x.infer),
            }
        }
    }

    /// World `estimator`.
    pub(crate) mod estimator {
        wasmtime::component::bindgen!({ world: "estimator", path: "../wit" });
        v2_conversions!();

        use self::exports::tandem::plugin::estimate as e;

        pub(crate) fn request(x: &d::EstimateRequest) -> e::EstimateRequest {
            e::EstimateRequest {
                config: retrain_config(&x.config),
                start_accuracy: x.start_accuracy,
                observations: x
                    .observations
                    .iter()
                    .map(|o| e::Observation {
                        epochs: o.epochs,
                        accuracy: o.accuracy,
                        gpu_seconds: o.gpu_seconds,
                    })
                    .collect(),
                profiled_data_fraction: x.profiled_data_fraction,
                epochs_at: x.epochs_at.clone(),
                shares: x.shares.clone(),
                throughput: x
                    .throughput
                    .iter()
                    .map(|t| e::ThroughputPoint {
                        share: t.share,
                        speed: t.speed,
                    })
                    .collect(),
            }
        }

        pub(crate) fn prediction(x: e::Prediction) -> d::Prediction {
            d::Prediction {
                accuracy: x.accuracy,
                accuracy_error: x.accuracy_error,
                gpu_seconds: x.gpu_seconds,
                seconds_at: x.seconds_at,
            }
        }
    }

    /// World `selector`.
    pub(crate) mod selector {
        wasmtime::component::bindgen!({ world: "selector", path: "../wit" });
        v2_conversions!();

        use self::exports::tandem::plugin::select as z;

        pub(crate) fn request(x: &d::SelectionRequest) -> z::SelectionRequest {
            z::SelectionRequest {
                stream_id: x.stream_id.clone(),
                window: x.window,
                signature: x.signature.clone(),
                entries: x
                    .entries
                    .iter()
                    .map(|e| z::ZooEntry {
                        id: e.id.clone(),
                        origin_stream: e.origin_stream.clone(),
                        origin_window: e.origin_window,
                        signature: e.signature.clone(),
                        accuracy: e.accuracy,
                        uses: e.uses,
                        last_used_window: e.last_used_window,
                    })
                    .collect(),
                max_candidates: x.max_candidates,
            }
        }
    }

    /// World `lifecycle`.
    pub(crate) mod lifecycle {
        wasmtime::component::bindgen!({ world: "lifecycle", path: "../wit" });
        v2_conversions!();

        use self::exports::tandem::plugin::scaling as l;

        pub(crate) fn input(x: &d::LifecycleInput) -> l::LifecycleInput {
            l::LifecycleInput {
                now_seconds: x.now_seconds,
                streams: x
                    .streams
                    .iter()
                    .map(|a| l::StreamActivity {
                        id: a.id.clone(),
                        phase: match a.phase {
                            d::StreamPhase::Active => l::StreamPhase::Active,
                            d::StreamPhase::WarmIdle => l::StreamPhase::WarmIdle,
                            d::StreamPhase::Cold => l::StreamPhase::Cold,
                            d::StreamPhase::Starting => l::StreamPhase::Starting,
                        },
                        idle_seconds: a.idle_seconds,
                        idle_history: a.idle_history.clone(),
                        resident_bytes: a.resident_bytes,
                        cold_start_seconds: a.cold_start_seconds,
                        accuracy: a.accuracy,
                    })
                    .collect(),
                memory_budget_bytes: x.memory_budget_bytes,
            }
        }

        pub(crate) fn decisions(xs: Vec<l::LifecycleDecision>) -> Vec<d::LifecycleDecision> {
            xs.into_iter()
                .map(|x| d::LifecycleDecision {
                    stream_id: x.stream_id,
                    keep_alive_seconds: x.keep_alive_seconds,
                    prewarm_after_seconds: x.prewarm_after_seconds,
                })
                .collect()
        }
    }
}

/// `tandem:plugin@0.1.0`, frozen.
pub(crate) mod v1 {
    use super::d;

    /// World `policy`.
    pub(crate) mod policy {
        wasmtime::component::bindgen!({ world: "policy", path: "../wit/0.1.0" });
        v1_conversions!();

        use self::exports::tandem::plugin::scheduler as s;

        /// A 0.1.0 policy is offered a job in progress alone (with what it has left), and no
        /// configuration that starts from the zoo.
        pub(crate) fn input(x: &d::PolicyInput) -> s::PolicyInput {
            s::PolicyInput {
                streams: x
                    .streams
                    .iter()
                    .map(|st| w::StreamInput {
                        state: state(&st.state),
                        retrain: st
                            .retrain
                            .iter()
                            .filter(|r| {
                                r.config.start_from.is_none()
                                    && st.running.as_ref().is_none_or(|n| *n == r.config.name)
                            })
                            .map(|r| w::RetrainProfile {
                                config: retrain_config(&r.config),
                                accuracy_after: r.accuracy_after,
                                gpu_seconds: r.gpu_seconds,
                            })
                            .collect(),
                        infer: st.infer.iter().map(infer_profile).collect(),
                    })
                    .collect(),
                gpus: x.gpus,
                window_seconds: x.window_seconds,
                elapsed_seconds: x.elapsed_seconds,
            }
        }
    }

    /// World `config-space`.
    pub(crate) mod config_space {
        wasmtime::component::bindgen!({ world: "config-space", path: "../wit/0.1.0" });
        v1_conversions!();

        use self::exports::tandem::plugin::configurations as c;

        pub(crate) fn config_set(x: c::ConfigSet) -> d::ConfigSet {
            d::ConfigSet {
                retrain: x.retrain.into_iter().map(retrain_config_back).collect(),
                infer: infer_configs(x.infer),
            }
        }
    }

    /// World `estimator`.
    pub(crate) mod estimator {
        wasmtime::component::bindgen!({ world: "estimator", path: "../wit/0.1.0" });
        v1_conversions!();

        use self::exports::tandem::plugin::estimate as e;

        pub(crate) fn request(x: &d::EstimateRequest) -> e::EstimateRequest {
            e::EstimateRequest {
                config: retrain_config(&x.config),
                start_accuracy: x.start_accuracy,
                observations: x
                    .observations
                    .iter()
                    .map(|o| e::Observation {
                        epochs: o.epochs,
                        accuracy: o.accuracy,
                        gpu_seconds: o.gpu_seconds,
                    })
                    .collect(),
                profiled_data_fraction: x.profiled_data_fraction,
                epochs_at: x.epochs_at.clone(),
                shares: x.shares.clone(),
                throughput: x
                    .throughput
                    .iter()
                    .map(|t| e::ThroughputPoint {
                        share: t.share,
                        speed: t.speed,
                    })
                    .collect(),
            }
        }

        pub(crate) fn prediction(x: e::Prediction) -> d::Prediction {
            d::Prediction {
                accuracy: x.accuracy,
                accuracy_error: Vec::new(),
                gpu_seconds: x.gpu_seconds,
                seconds_at: x.seconds_at,
            }
        }
    }
}
