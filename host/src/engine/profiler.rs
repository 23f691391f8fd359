//! The micro-profiler: at each window start, train copies of the stream's model for a few
//! epochs on a small sample, measure accuracy after each epoch, and hand those
//! observations to the estimator plugin to predict every candidate configuration's
//! accuracy and GPU time (Ekya §4.3).
//!
//! Configurations that differ only in epochs and data fraction share one profile (they
//! train the same layers of the same network), so a window profiles a handful of runs, not
//! one per configuration. Its GPU time is charged to the window by the caller.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;

use super::cost::CostModel;
use crate::compute::Backend;
use crate::data::Dataset;
use crate::model::{self, Model, TrainConfig};
use crate::plugin::types::{Observation, RetrainConfig};

/// The layer groups a configuration really trains: a new head (another width) is always
/// trained whole, so at least the hidden layer and the classifier.
pub fn effective_layers(config: &RetrainConfig, current_hidden: usize) -> usize {
    let l = (config.layers_trained as usize).clamp(1, model::LAYER_GROUPS.len());
    if head_width(config, current_hidden) != current_hidden {
        l.max(2)
    } else {
        l
    }
}

/// The hidden width a configuration trains: its own, or the serving model's when it says 0.
pub fn head_width(config: &RetrainConfig, current_hidden: usize) -> usize {
    if config.width == 0 {
        current_hidden
    } else {
        config.width as usize
    }
}

/// Samples a retraining job trains on: its fraction of the window's `fit` samples (at least
/// one) plus the `memory` exemplars. [`job_data`] builds exactly that many.
pub fn job_size(fit: usize, memory: usize, fraction: f64) -> usize {
    ((fit as f64 * fraction).round() as usize).clamp(1, fit.max(1)) + memory
}

/// The training set of a retraining job: the configured fraction of the window's labelled
/// samples (a seeded subset) plus the whole exemplar memory.
pub fn job_data(fit: &Dataset, memory: &Dataset, fraction: f64, seed: u64) -> Dataset {
    let mut idx: Vec<usize> = (0..fit.len()).collect();
    idx.shuffle(&mut Pcg64Mcg::seed_from_u64(seed));
    idx.truncate(job_size(fit.len(), 0, fraction));
    let mut d = fit.select(&idx);
    d.extend(memory);
    d
}

/// The train config a retraining configuration means.
pub fn train_config(config: &RetrainConfig, layers: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: config.epochs as usize,
        trained_layers: layers,
        data_fraction: 1.0,
        batch_size: config.batch_size.max(1) as usize,
        lr: config.learning_rate as f32,
        momentum: 0.9,
        weight_decay: 5e-4,
        seed,
        cosine: false,
    }
}

/// SGD steps per profiling epoch the batch size is lowered to reach.
const PROFILE_STEPS_PER_EPOCH: usize = 4;

/// Validation samples a profiling run measures after each epoch. Evaluation, not training,
/// dominates a profile's cost (a head-only epoch on a ~40-sample sample costs what
/// classifying 40 crops does), so the slice is kept small; 5 epochs of it average out.
pub const PROFILE_VAL_SAMPLES: usize = 48;

/// The slice of the validation split every profile of a window measures on.
pub fn val_slice(val: &Dataset) -> Dataset {
    val.take(PROFILE_VAL_SAMPLES)
}

/// One profiling run's measurements.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Accuracy on the validation slice and cumulative GPU-seconds after each epoch.
    pub observations: Vec<Observation>,
    /// Accuracy of the profiled copy before training (epoch 0), on the same slice: the
    /// curve's anchor. A replaced head starts near chance.
    pub anchor: f64,
    /// Samples the profiling run trained on.
    pub samples: usize,
    /// GPU-seconds the run cost (training and the per-epoch evaluations).
    pub gpu_seconds: f64,
}

/// Profile one (layers, width, batch, learning rate, data fraction) group: `epochs` epochs
/// on a `sample_fraction` sample of the data its jobs train on, measured on `slice` (see
/// [`val_slice`]) where the serving model scores `serving_on_slice` (measured once per
/// window by the caller).
#[allow(clippy::too_many_arguments)]
pub fn profile<B: Backend>(
    be: &B,
    current: &Model<B>,
    representative: &RetrainConfig,
    fit: &Dataset,
    memory: &Dataset,
    slice: &Dataset,
    serving_on_slice: f64,
    epochs: u32,
    sample_fraction: f64,
    cost: &CostModel,
    seed: u64,
) -> Profile {
    let hidden = current.arch().hidden;
    let layers = effective_layers(representative, hidden);
    // A sample of what the job itself trains on: its fraction of the window's data and the
    // memory, in the job's proportions. Old exemplars dilute the new data, the more so the
    // smaller the fraction; sampling the new data alone predicted 0.9 where a job reached 0.45.
    let job = job_data(fit, memory, representative.data_fraction, seed);
    let sample = job_data(&job, &fit.empty_like(), sample_fraction, seed ^ 5);
    let mut m = current.with_head(be, head_width(representative, hidden), seed ^ 2);
    let base = train_config(representative, layers, seed ^ 3);
    // A sample is a tenth of the data: with the job's batch size an epoch over it would be
    // one or two steps and the curve would say nothing. Smaller batches keep several steps
    // per epoch, as an epoch of the real job has.
    let cfg = TrainConfig {
        epochs: epochs as usize,
        batch_size: base
            .batch_size
            .min((sample.len() / PROFILE_STEPS_PER_EPOCH).max(1)),
        ..base
    };
    let (h, w) = (fit.h, fit.w);
    let per_epoch = cost.train_seconds(h, w, layers, sample.len());
    let eval = cost.infer_seconds(h, w, slice.len());
    // The copy starts as the serving model unless its head is replaced.
    let (anchor, anchor_cost) = if head_width(representative, hidden) == hidden {
        (serving_on_slice, 0.0)
    } else {
        (model::evaluate(be, &mut m, slice, 256) as f64, eval)
    };
    let mut observations = Vec::new();
    model::train_observed(be, &mut m, &sample, &cfg, &mut |_, _| {}, &mut |m, e| {
        observations.push(Observation {
            epochs: e as u32,
            accuracy: model::evaluate(be, m, slice, 256) as f64,
            gpu_seconds: per_epoch * e as f64,
        });
    });
    Profile {
        anchor,
        gpu_seconds: (per_epoch + eval) * epochs as f64 + anchor_cost,
        observations,
        samples: sample.len(),
    }
}
