//! Training and evaluation loops over a [`Dataset`], with the retraining knobs Ekya varies.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{LAYER_GROUPS, Model};
use crate::compute::Backend;
use crate::data::Dataset;

/// How to (re)train a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Train only the last k layer groups (1 = classifier only, 5 = everything).
    pub trained_layers: usize,
    /// Fraction of the given data used (a seeded random subset).
    pub data_fraction: f32,
    pub batch_size: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    /// Seeds the subset and the shuffling.
    pub seed: u64,
    /// Decay the learning rate by a half-cosine over the run (training from scratch); off,
    /// the rate is constant, so a short profiling run follows the same curve as the first
    /// epochs of a long retraining run (what the micro-profiler relies on).
    pub cosine: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            trained_layers: LAYER_GROUPS.len(),
            data_fraction: 1.0,
            batch_size: 64,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            seed: 0,
            cosine: true,
        }
    }
}

/// What one epoch did.
#[derive(Clone, Debug, Serialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub mean_loss: f32,
    pub samples: usize,
}

/// Train `model` on `data` as `cfg` says. `on_batch(samples_done, samples_total)` is called
/// after every step (for progress bars). The learning rate decays by a half-cosine over the
/// run, which gives a few more points than a constant rate for the same epochs.
pub fn train<B: Backend>(
    backend: &B,
    model: &mut Model<B>,
    data: &Dataset,
    cfg: &TrainConfig,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Vec<EpochStats> {
    train_observed(backend, model, data, cfg, on_batch, &mut |_, _| {})
}

/// [`train`], calling `after_epoch(model, epoch)` after each epoch (the micro-profiler
/// measures accuracy there).
pub fn train_observed<B: Backend>(
    backend: &B,
    model: &mut Model<B>,
    data: &Dataset,
    cfg: &TrainConfig,
    on_batch: &mut dyn FnMut(usize, usize),
    after_epoch: &mut dyn FnMut(&mut Model<B>, usize),
) -> Vec<EpochStats> {
    let mut rng = Pcg64Mcg::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut rng);
    let used = ((data.len() as f32 * cfg.data_fraction.clamp(0.0, 1.0)).round() as usize)
        .clamp(1, data.len().max(1));
    order.truncate(used);
    if data.is_empty() || cfg.epochs == 0 {
        return Vec::new();
    }
    // Drop the ragged tail batch so every step has the same shape (one workspace).
    let batch = cfg.batch_size.min(used).max(1);
    let steps_per_epoch = used / batch;
    let total_steps = steps_per_epoch * cfg.epochs;
    let (h, w, c) = (data.h, data.w, data.c);
    let mut x = vec![0.0f32; batch * h * w * c];
    let mut y = vec![0.0f32; batch];
    let mut stats = Vec::with_capacity(cfg.epochs);
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for chunk in order.chunks_exact(batch) {
            data.gather(chunk, &mut x, &mut y);
            let progress = step as f32 / total_steps.max(1) as f32;
            let lr = if cfg.cosine {
                (cfg.lr * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos())).max(cfg.lr * 0.02)
            } else {
                cfg.lr
            };
            loss_sum += model.train_step(
                backend,
                &x,
                &y,
                (batch, h, w),
                cfg.trained_layers,
                lr,
                cfg.momentum,
                cfg.weight_decay,
            );
            step += 1;
            on_batch(step * batch, total_steps * batch);
        }
        stats.push(EpochStats {
            epoch: epoch + 1,
            mean_loss: loss_sum / steps_per_epoch.max(1) as f32,
            samples: steps_per_epoch * batch,
        });
        after_epoch(model, epoch + 1);
    }
    stats
}

/// Top-1 accuracy of `model` on `data` (0 on an empty set).
pub fn evaluate<B: Backend>(
    backend: &B,
    model: &mut Model<B>,
    data: &Dataset,
    batch: usize,
) -> f32 {
    predict_all(backend, model, data, batch)
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| p == l)
        .count() as f32
        / data.len().max(1) as f32
}

/// Predicted class of every sample of `data`, in order.
pub fn predict_all<B: Backend>(
    backend: &B,
    model: &mut Model<B>,
    data: &Dataset,
    batch: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for chunk in idx.chunks(batch.max(1)) {
        x.resize(chunk.len() * data.sample_len(), 0.0);
        y.resize(chunk.len(), 0.0);
        data.gather(chunk, &mut x, &mut y);
        out.extend(model.predict(backend, &x, chunk.len(), data.h, data.w));
    }
    out
}
