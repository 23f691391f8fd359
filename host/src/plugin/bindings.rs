//! The one place that runs `bindgen!`: host bindings for the three worlds of
//! `tandem:plugin@0.1.0` (`wit/`), and the conversions between their generated types and the
//! domain types of [`super::types`]. Nothing outside `plugin/` sees generated code.
//!
//! Each world gets its own module; the shared `types` interface is generated once per world,
//! so the conversions for it are written once as a macro and expanded in each module.

use super::types as d;

/// The WIT package version this host accepts.
pub const WIT_VERSION: &str = "0.1.0";

/// Both conversions of a record whose generated and domain types have the same fields:
/// `$to` from a borrowed domain value, `$back` from a generated one.
macro_rules! same_fields {
    ($to:ident, $back:ident, $t:ident { $($f:ident),* $(,)? }) => {
        #[allow(dead_code)]
        pub(crate) fn $to(x: &d::$t) -> w::$t {
            let x = x.clone();
            w::$t { $($f: x.$f),* }
        }

        #[allow(dead_code)]
        pub(crate) fn $back(x: w::$t) -> d::$t {
            d::$t { $($f: x.$f),* }
        }
    };
}

macro_rules! shared_conversions {
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

        pub(crate) fn description(x: w::Description) -> d::Description {
            d::Description {
                name: x.name,
                version: x.version,
                kind: match x.kind {
                    w::PluginKind::Policy => d::PluginKind::Policy,
                    w::PluginKind::ConfigSpace => d::PluginKind::ConfigSpace,
                    w::PluginKind::Estimator => d::PluginKind::Estimator,
                },
                summary: x.summary,
                params: x
                    .params
                    .into_iter()
                    .map(|p| d::ParamSpec {
                        name: p.name,
                        doc: p.doc,
                        default: match p.default {
                            w::ParamValue::Number(x) => d::ParamValue::Number(x),
                            w::ParamValue::Text(x) => d::ParamValue::Text(x),
                            w::ParamValue::Flag(x) => d::ParamValue::Flag(x),
                        },
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

        same_fields!(
            retrain_config,
            retrain_config_back,
            RetrainConfig {
                name,
                epochs,
                layers_trained,
                data_fraction,
                width,
                batch_size,
                learning_rate,
            }
        );
    };
}

/// World `policy`.
pub(crate) mod policy {
    wasmtime::component::bindgen!({ world: "policy", path: "../wit" });
    shared_conversions!();

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
                        })
                        .collect(),
                    infer: st
                        .infer
                        .iter()
                        .map(|p| w::InferProfile {
                            config: w::InferConfig {
                                name: p.config.name.clone(),
                                frame_sampling: p.config.frame_sampling,
                                resolution: p.config.resolution,
                            },
                            accuracy_factor: p.accuracy_factor,
                            gpu_cost: p.gpu_cost,
                        })
                        .collect(),
                })
                .collect(),
            gpus: x.gpus,
            window_seconds: x.window_seconds,
            elapsed_seconds: x.elapsed_seconds,
        }
    }

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
}

/// World `config-space`.
pub(crate) mod config_space {
    wasmtime::component::bindgen!({ world: "config-space", path: "../wit" });
    shared_conversions!();

    use self::exports::tandem::plugin::configurations as c;

    pub(crate) fn config_set(x: c::ConfigSet) -> d::ConfigSet {
        d::ConfigSet {
            retrain: x.retrain.into_iter().map(retrain_config_back).collect(),
            infer: x
                .infer
                .into_iter()
                .map(|i| d::InferConfig {
                    name: i.name,
                    frame_sampling: i.frame_sampling,
                    resolution: i.resolution,
                })
                .collect(),
        }
    }
}

/// World `estimator`.
pub(crate) mod estimator {
    wasmtime::component::bindgen!({ world: "estimator", path: "../wit" });
    shared_conversions!();

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
            gpu_seconds: x.gpu_seconds,
            seconds_at: x.seconds_at,
        }
    }
}
