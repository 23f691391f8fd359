//! [`sample_run`]: what `tandem plugin validate` and the dashboard's upload both do after a
//! component loads — call it once on a small sample input of its kind — so a plugin is only
//! stored when it really runs.

use super::types::{EstimateRequest, Observation, PluginKind, RetrainConfig, StreamState};
use super::{Plugin, PluginError, PluginHost};

/// Run `plugin` once on a sample input of its kind; returns a one-line account of its answer.
pub fn sample_run(host: &PluginHost, plugin: &Plugin) -> Result<String, PluginError> {
    Ok(match plugin.kind() {
        PluginKind::Policy => {
            let input = tandem_plugin_sdk::sample::policy_input(3, 1, 18, 1);
            let s = host.decide(plugin, &input, &[], 0)?;
            format!(
                "decided 3 streams on 1 GPU (estimated accuracy {:?})",
                s.estimated_accuracy
            )
        }
        PluginKind::ConfigSpace => {
            let state = StreamState {
                id: "cam0".into(),
                window: 0,
                accuracy: 0.6,
                class_mix: vec![0.1; 10],
                samples: 1000,
            };
            let set = host.configs(plugin, &state, &[], 0)?;
            format!(
                "{} retraining and {} inference configurations",
                set.retrain.len(),
                set.infer.len()
            )
        }
        PluginKind::Estimator => {
            let request = EstimateRequest {
                config: RetrainConfig {
                    name: "sample".into(),
                    epochs: 30,
                    layers_trained: 1,
                    data_fraction: 1.0,
                    width: 64,
                    batch_size: 64,
                    learning_rate: 0.001,
                    start_from: None,
                },
                start_accuracy: 0.5,
                observations: (1..=5)
                    .map(|e| Observation {
                        epochs: e,
                        accuracy: 0.5 + 0.04 * f64::from(e),
                        gpu_seconds: f64::from(e),
                    })
                    .collect(),
                profiled_data_fraction: 0.1,
                epochs_at: vec![5, 15, 30],
                shares: vec![0.5, 1.0],
                throughput: vec![],
            };
            let p = host.predict(plugin, &request, &[], 0)?;
            format!("predicted {:?} at 5/15/30 epochs", p.accuracy)
        }
        PluginKind::Selector => {
            let request = tandem_plugin_sdk::sample::selection_request(30, 16, 1);
            let ids = host.select(plugin, &request, &[])?;
            format!("short-listed {} of 30 zoo models: {ids:?}", ids.len())
        }
        PluginKind::Lifecycle => {
            let input = tandem_plugin_sdk::sample::lifecycle_input(8, 1);
            let ds = host.plan_lifecycle(plugin, &input, &[])?;
            format!(
                "decided 8 streams (keep-alive of the first {} s)",
                ds[0].keep_alive_seconds
            )
        }
    })
}
