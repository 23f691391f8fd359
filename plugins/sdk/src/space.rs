//! Configuration spaces: the [`ConfigSpace`] trait and Ekya's grid adapted to our CNN.

use crate::params::{Params, number};
use crate::types::{
    ConfigSet, Description, InferConfig, Param, ParamSpec, PluginError, PluginKind, RetrainConfig,
    StreamState,
};

/// A configuration space, implemented once and exported as a guest or called natively.
pub trait ConfigSpace {
    /// The self-description.
    fn describe() -> Description;
    /// The candidate configurations for one stream.
    fn configs(stream: &StreamState, params: &[Param]) -> Result<ConfigSet, PluginError>;
}

/// Ekya's grid: {head only, more layers} × data fraction {0.1, 0.5, 1.0} × epochs {5, 15, 30}
/// (18 retraining configurations, the head narrow and the deeper variant wide, as in Ekya's
/// code), and frame sampling 1..10, 15, 20 × two or three resolutions for inference.
pub struct EkyaSpace;

/// Frame-sampling values of Ekya's inference grid.
pub const FRAME_SAMPLING: [u32; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20];

fn specs() -> Vec<ParamSpec> {
    vec![
        number(
            "resolutions",
            "2 (28, 14 px) or 3 (28, 20, 14 px) inference resolutions",
            2.0,
        ),
        number(
            "model-layers",
            "trainable layer groups of the model (tandem's CNN has 5; the `all` configurations train them all)",
            5.0,
        ),
        number(
            "head-layers",
            "layer groups the head-only configurations train (tandem's head: hidden layer + classifier)",
            2.0,
        ),
        number(
            "head-width",
            "hidden width of the head-only configurations (0: keep the serving model's width)",
            0.0,
        ),
        number(
            "wide-width",
            "hidden width of the configurations training more layers (0: keep the serving model's width)",
            256.0,
        ),
        number("batch-size", "mini-batch size", 32.0),
        number(
            "learning-rate",
            "SGD learning rate (Ekya's 0.001 suits fine-tuning a ResNet; tandem's small CNN needs more)",
            0.02,
        ),
    ]
}

fn positive_int(p: &Params<'_>, name: &str) -> Result<u32, PluginError> {
    let v = p.number(name)?;
    if (1.0..=1e6).contains(&v) && v.fract() == 0.0 {
        Ok(v as u32)
    } else {
        Err(PluginError::InvalidParam(format!(
            "`{name}` must be a positive integer, got {v}"
        )))
    }
}

/// A width: a positive integer, or 0 for "keep the serving model's width".
fn width(p: &Params<'_>, name: &str) -> Result<u32, PluginError> {
    if p.number(name)? == 0.0 {
        Ok(0)
    } else {
        positive_int(p, name)
    }
}

impl ConfigSpace for EkyaSpace {
    fn describe() -> Description {
        Description {
            name: "ekya-space".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::ConfigSpace,
            summary: "Ekya's configuration grid adapted to tandem's CNN: 18 retraining configurations (head only or \
                      all layers × data fraction × epochs) and frame sampling × resolution for inference."
                .into(),
            params: specs(),
        }
    }

    fn configs(stream: &StreamState, params: &[Param]) -> Result<ConfigSet, PluginError> {
        let specs = specs();
        let p = Params::new(&specs, params)?;
        let resolutions: &[u32] = match positive_int(&p, "resolutions")? {
            2 => &[28, 14],
            3 => &[28, 20, 14],
            n => {
                return Err(PluginError::InvalidParam(format!(
                    "resolutions must be 2 or 3, got {n}"
                )));
            }
        };
        let layers = positive_int(&p, "model-layers")?;
        let head_layers = positive_int(&p, "head-layers")?.min(layers);
        let (head_w, wide_w, batch) = (
            width(&p, "head-width")?,
            width(&p, "wide-width")?,
            positive_int(&p, "batch-size")?,
        );
        let lr = p.number("learning-rate")?;
        if !(lr > 0.0) {
            return Err(PluginError::InvalidParam(format!(
                "learning-rate must be positive, got {lr}"
            )));
        }
        let mut retrain = Vec::new();
        if stream.samples > 0 {
            for (kind, layers_trained, width) in
                [("head", head_layers, head_w), ("all", layers, wide_w)]
            {
                for fraction in [0.1, 0.5, 1.0] {
                    for epochs in [5, 15, 30] {
                        retrain.push(RetrainConfig {
                            name: format!("{kind}-d{fraction:.1}-e{epochs}"),
                            epochs,
                            layers_trained,
                            data_fraction: fraction,
                            width,
                            batch_size: batch,
                            learning_rate: lr,
                            start_from: None,
                        });
                    }
                }
            }
        }
        let infer = resolutions
            .iter()
            .flat_map(|&r| {
                FRAME_SAMPLING.iter().map(move |&k| InferConfig {
                    name: format!("k{k}-r{r}"),
                    frame_sampling: k,
                    resolution: r,
                })
            })
            .collect();
        Ok(ConfigSet { retrain, infer })
    }
}
