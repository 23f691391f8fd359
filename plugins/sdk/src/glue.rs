//! Guest glue: macros that export a [`Policy`](crate::policy::Policy),
//! [`ConfigSpace`](crate::space::ConfigSpace) or [`Estimator`](crate::optimus::Estimator) as a
//! component, converting the types `wit_bindgen::generate!` produced in the guest crate to and
//! from [`crate::types`] at the boundary.
//!
//! A guest crate is two lines:
//!
//! ```ignore
//! wit_bindgen::generate!({ world: "policy", path: "../../wit" });
//! tandem_plugin_sdk::export_policy!(tandem_plugin_sdk::policy::Thief);
//! ```
//!
//! The macros target the current WIT package (`tandem:plugin@0.2.0`); components built against
//! 0.1.0 with an earlier SDK keep working, since the host converts both.

/// Conversions for the shared `types` interface; expanded inside the guest crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __tandem_types_glue {
    () => {
        #[allow(dead_code)]
        mod tandem_glue {
            use super::tandem::plugin::types as w;
            use $crate::types as s;

            pub fn params(v: Vec<w::Param>) -> Vec<s::Param> {
                v.into_iter()
                    .map(|p| s::Param {
                        name: p.name,
                        value: match p.value {
                            w::ParamValue::Number(x) => s::ParamValue::Number(x),
                            w::ParamValue::Text(x) => s::ParamValue::Text(x),
                            w::ParamValue::Flag(x) => s::ParamValue::Flag(x),
                        },
                    })
                    .collect()
            }

            fn value_out(v: s::ParamValue) -> w::ParamValue {
                match v {
                    s::ParamValue::Number(x) => w::ParamValue::Number(x),
                    s::ParamValue::Text(x) => w::ParamValue::Text(x),
                    s::ParamValue::Flag(x) => w::ParamValue::Flag(x),
                }
            }

            pub fn description(d: s::Description) -> w::Description {
                w::Description {
                    name: d.name,
                    version: d.version,
                    kind: match d.kind {
                        s::PluginKind::Policy => w::PluginKind::Policy,
                        s::PluginKind::ConfigSpace => w::PluginKind::ConfigSpace,
                        s::PluginKind::Estimator => w::PluginKind::Estimator,
                        s::PluginKind::Selector => w::PluginKind::Selector,
                        s::PluginKind::Lifecycle => w::PluginKind::Lifecycle,
                    },
                    summary: d.summary,
                    params: d
                        .params
                        .into_iter()
                        .map(|p| w::ParamSpec {
                            name: p.name,
                            doc: p.doc,
                            default: value_out(p.default),
                        })
                        .collect(),
                }
            }

            pub fn error(e: s::PluginError) -> w::PluginError {
                match e {
                    s::PluginError::InvalidInput(m) => w::PluginError::InvalidInput(m),
                    s::PluginError::InvalidParam(m) => w::PluginError::InvalidParam(m),
                    s::PluginError::Infeasible(m) => w::PluginError::Infeasible(m),
                    s::PluginError::Internal(m) => w::PluginError::Internal(m),
                }
            }

            pub fn state(x: w::StreamState) -> s::StreamState {
                s::StreamState {
                    id: x.id,
                    window: x.window,
                    accuracy: x.accuracy,
                    class_mix: x.class_mix,
                    samples: x.samples,
                }
            }

            pub fn retrain_config(x: w::RetrainConfig) -> s::RetrainConfig {
                s::RetrainConfig {
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

            pub fn retrain_config_out(x: s::RetrainConfig) -> w::RetrainConfig {
                w::RetrainConfig {
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

            pub fn infer_config(x: w::InferConfig) -> s::InferConfig {
                s::InferConfig {
                    name: x.name,
                    frame_sampling: x.frame_sampling,
                    resolution: x.resolution,
                }
            }

            pub fn infer_config_out(x: s::InferConfig) -> w::InferConfig {
                w::InferConfig {
                    name: x.name,
                    frame_sampling: x.frame_sampling,
                    resolution: x.resolution,
                }
            }

            pub fn stream_input(x: w::StreamInput) -> s::StreamInput {
                s::StreamInput {
                    state: state(x.state),
                    retrain: x
                        .retrain
                        .into_iter()
                        .map(|r| s::RetrainProfile {
                            config: retrain_config(r.config),
                            accuracy_after: r.accuracy_after,
                            gpu_seconds: r.gpu_seconds,
                            accuracy_error: r.accuracy_error,
                            progress: r.progress,
                        })
                        .collect(),
                    infer: x
                        .infer
                        .into_iter()
                        .map(|p| s::InferProfile {
                            config: infer_config(p.config),
                            accuracy_factor: p.accuracy_factor,
                            gpu_cost: p.gpu_cost,
                        })
                        .collect(),
                    running: x.running,
                }
            }

            pub fn schedule_out(x: s::Schedule) -> w::Schedule {
                w::Schedule {
                    streams: x
                        .streams
                        .into_iter()
                        .map(|s| w::StreamSchedule {
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
        }
    };
}

/// Export a [`Policy`](crate::policy::Policy) implementation from a crate that ran
/// `wit_bindgen::generate!({ world: "policy", .. })`.
#[macro_export]
macro_rules! export_policy {
    ($imp:ty) => {
        $crate::__tandem_types_glue!();

        struct TandemPolicy;

        impl exports::tandem::plugin::meta::Guest for TandemPolicy {
            fn describe() -> tandem::plugin::types::Description {
                tandem_glue::description(<$imp as $crate::policy::Policy>::describe())
            }
        }

        impl exports::tandem::plugin::scheduler::Guest for TandemPolicy {
            fn decide(
                input: exports::tandem::plugin::scheduler::PolicyInput,
                params: Vec<tandem::plugin::types::Param>,
            ) -> Result<tandem::plugin::types::Schedule, tandem::plugin::types::PluginError> {
                let input = $crate::types::PolicyInput {
                    streams: input
                        .streams
                        .into_iter()
                        .map(tandem_glue::stream_input)
                        .collect(),
                    gpus: input.gpus,
                    window_seconds: input.window_seconds,
                    elapsed_seconds: input.elapsed_seconds,
                };
                <$imp as $crate::policy::Policy>::schedule(&input, &tandem_glue::params(params))
                    .map(tandem_glue::schedule_out)
                    .map_err(tandem_glue::error)
            }
        }

        export!(TandemPolicy);
    };
}

/// Export a [`ConfigSpace`](crate::space::ConfigSpace) implementation from a crate that ran
/// `wit_bindgen::generate!({ world: "config-space", .. })`.
#[macro_export]
macro_rules! export_config_space {
    ($imp:ty) => {
        $crate::__tandem_types_glue!();

        struct TandemConfigSpace;

        impl exports::tandem::plugin::meta::Guest for TandemConfigSpace {
            fn describe() -> tandem::plugin::types::Description {
                tandem_glue::description(<$imp as $crate::space::ConfigSpace>::describe())
            }
        }

        impl exports::tandem::plugin::configurations::Guest for TandemConfigSpace {
            fn configs(
                state: tandem::plugin::types::StreamState,
                params: Vec<tandem::plugin::types::Param>,
            ) -> Result<
                exports::tandem::plugin::configurations::ConfigSet,
                tandem::plugin::types::PluginError,
            > {
                <$imp as $crate::space::ConfigSpace>::configs(
                    &tandem_glue::state(state),
                    &tandem_glue::params(params),
                )
                .map(|set| exports::tandem::plugin::configurations::ConfigSet {
                    retrain: set
                        .retrain
                        .into_iter()
                        .map(tandem_glue::retrain_config_out)
                        .collect(),
                    infer: set
                        .infer
                        .into_iter()
                        .map(tandem_glue::infer_config_out)
                        .collect(),
                })
                .map_err(tandem_glue::error)
            }
        }

        export!(TandemConfigSpace);
    };
}

/// Export an [`Estimator`](crate::optimus::Estimator) implementation from a crate that ran
/// `wit_bindgen::generate!({ world: "estimator", .. })`.
#[macro_export]
macro_rules! export_estimator {
    ($imp:ty) => {
        $crate::__tandem_types_glue!();

        struct TandemEstimator;

        impl exports::tandem::plugin::meta::Guest for TandemEstimator {
            fn describe() -> tandem::plugin::types::Description {
                tandem_glue::description(<$imp as $crate::optimus::Estimator>::describe())
            }
        }

        impl exports::tandem::plugin::estimate::Guest for TandemEstimator {
            fn predict(
                r: exports::tandem::plugin::estimate::EstimateRequest,
                params: Vec<tandem::plugin::types::Param>,
            ) -> Result<
                exports::tandem::plugin::estimate::Prediction,
                tandem::plugin::types::PluginError,
            > {
                let request = $crate::types::EstimateRequest {
                    config: tandem_glue::retrain_config(r.config),
                    start_accuracy: r.start_accuracy,
                    observations: r
                        .observations
                        .into_iter()
                        .map(|o| $crate::types::Observation {
                            epochs: o.epochs,
                            accuracy: o.accuracy,
                            gpu_seconds: o.gpu_seconds,
                        })
                        .collect(),
                    profiled_data_fraction: r.profiled_data_fraction,
                    epochs_at: r.epochs_at,
                    shares: r.shares,
                    throughput: r
                        .throughput
                        .into_iter()
                        .map(|t| $crate::types::ThroughputPoint {
                            share: t.share,
                            speed: t.speed,
                        })
                        .collect(),
                };
                <$imp as $crate::optimus::Estimator>::predict(
                    &request,
                    &tandem_glue::params(params),
                )
                .map(|p| exports::tandem::plugin::estimate::Prediction {
                    accuracy: p.accuracy,
                    accuracy_error: p.accuracy_error,
                    gpu_seconds: p.gpu_seconds,
                    seconds_at: p.seconds_at,
                })
                .map_err(tandem_glue::error)
            }
        }

        export!(TandemEstimator);
    };
}

/// Export a [`Selector`](crate::zoo::Selector) implementation from a crate that ran
/// `wit_bindgen::generate!({ world: "selector", .. })`.
#[macro_export]
macro_rules! export_selector {
    ($imp:ty) => {
        $crate::__tandem_types_glue!();

        struct TandemSelector;

        impl exports::tandem::plugin::meta::Guest for TandemSelector {
            fn describe() -> tandem::plugin::types::Description {
                tandem_glue::description(<$imp as $crate::zoo::Selector>::describe())
            }
        }

        impl exports::tandem::plugin::select::Guest for TandemSelector {
            fn select(
                r: exports::tandem::plugin::select::SelectionRequest,
                params: Vec<tandem::plugin::types::Param>,
            ) -> Result<Vec<String>, tandem::plugin::types::PluginError> {
                let request = $crate::types::SelectionRequest {
                    stream_id: r.stream_id,
                    window: r.window,
                    signature: r.signature,
                    entries: r
                        .entries
                        .into_iter()
                        .map(|e| $crate::types::ZooEntry {
                            id: e.id,
                            origin_stream: e.origin_stream,
                            origin_window: e.origin_window,
                            signature: e.signature,
                            accuracy: e.accuracy,
                            uses: e.uses,
                            last_used_window: e.last_used_window,
                        })
                        .collect(),
                    max_candidates: r.max_candidates,
                };
                <$imp as $crate::zoo::Selector>::select(&request, &tandem_glue::params(params))
                    .map_err(tandem_glue::error)
            }
        }

        export!(TandemSelector);
    };
}

/// Export a [`Lifecycle`](crate::lifecycle::Lifecycle) implementation from a crate that ran
/// `wit_bindgen::generate!({ world: "lifecycle", .. })`.
#[macro_export]
macro_rules! export_lifecycle {
    ($imp:ty) => {
        $crate::__tandem_types_glue!();

        struct TandemLifecycle;

        impl exports::tandem::plugin::meta::Guest for TandemLifecycle {
            fn describe() -> tandem::plugin::types::Description {
                tandem_glue::description(<$imp as $crate::lifecycle::Lifecycle>::describe())
            }
        }

        impl exports::tandem::plugin::scaling::Guest for TandemLifecycle {
            fn plan(
                input: exports::tandem::plugin::scaling::LifecycleInput,
                params: Vec<tandem::plugin::types::Param>,
            ) -> Result<
                Vec<exports::tandem::plugin::scaling::LifecycleDecision>,
                tandem::plugin::types::PluginError,
            > {
                use exports::tandem::plugin::scaling as l;
                let input = $crate::types::LifecycleInput {
                    now_seconds: input.now_seconds,
                    memory_budget_bytes: input.memory_budget_bytes,
                    streams: input
                        .streams
                        .into_iter()
                        .map(|a| $crate::types::StreamActivity {
                            id: a.id,
                            phase: match a.phase {
                                l::StreamPhase::Active => $crate::types::StreamPhase::Active,
                                l::StreamPhase::WarmIdle => $crate::types::StreamPhase::WarmIdle,
                                l::StreamPhase::Cold => $crate::types::StreamPhase::Cold,
                                l::StreamPhase::Starting => $crate::types::StreamPhase::Starting,
                            },
                            idle_seconds: a.idle_seconds,
                            idle_history: a.idle_history,
                            resident_bytes: a.resident_bytes,
                            cold_start_seconds: a.cold_start_seconds,
                            accuracy: a.accuracy,
                        })
                        .collect(),
                };
                <$imp as $crate::lifecycle::Lifecycle>::plan(&input, &tandem_glue::params(params))
                    .map(|ds| {
                        ds.into_iter()
                            .map(|d| l::LifecycleDecision {
                                stream_id: d.stream_id,
                                keep_alive_seconds: d.keep_alive_seconds,
                                prewarm_after_seconds: d.prewarm_after_seconds,
                            })
                            .collect()
                    })
                    .map_err(tandem_glue::error)
            }
        }

        export!(TandemLifecycle);
    };
}
