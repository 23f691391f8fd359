//! Training and evaluation loops over a [`Dataset`], with the retraining knobs Ekya varies.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{LAYER_GROUPS, Model};
use crate::compute::{Backend, SgdStep};
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
    let mut trainer = Trainer::new(data, cfg);
    let mut stats = Vec::with_capacity(cfg.epochs);
    while !trainer.done() {
        let finished = trainer.step(backend, model, data);
        on_batch(trainer.samples_done(), trainer.samples_total());
        if let Some(e) = finished {
            after_epoch(model, e.epoch);
            stats.push(e);
        }
    }
    stats
}

/// Training one step at a time, so a scheduler can interleave jobs batch by batch (the real
/// clock's time slicer). [`train`] is this run to the end. The data is passed to every step
/// rather than held, so a job can own its data beside its trainer.
#[derive(Debug, Clone)]
pub struct Trainer {
    cfg: TrainConfig,
    rng: Pcg64Mcg,
    order: Vec<usize>,
    batch: usize,
    steps_per_epoch: usize,
    step: usize,
    loss_sum: f32,
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Trainer {
    /// A trainer for `data` as `cfg` says (a seeded subset of `data_fraction`, shuffled every
    /// epoch; the ragged tail batch is dropped so every step has one shape).
    pub fn new(data: &Dataset, cfg: &TrainConfig) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(cfg.seed);
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng);
        let used = ((data.len() as f32 * cfg.data_fraction.clamp(0.0, 1.0)).round() as usize)
            .clamp(1, data.len().max(1));
        order.truncate(used);
        let batch = cfg.batch_size.min(used).max(1);
        let steps_per_epoch = if data.is_empty() { 0 } else { used / batch };
        Self {
            cfg: cfg.clone(),
            rng,
            order,
            batch,
            steps_per_epoch,
            step: 0,
            loss_sum: 0.0,
            x: vec![0.0; batch * data.sample_len()],
            y: vec![0.0; batch],
        }
    }

    fn total_steps(&self) -> usize {
        self.steps_per_epoch * self.cfg.epochs
    }

    /// Whether every step has run.
    pub fn done(&self) -> bool {
        self.step >= self.total_steps()
    }

    pub fn samples_done(&self) -> usize {
        self.step * self.batch
    }

    pub fn samples_total(&self) -> usize {
        self.total_steps() * self.batch
    }

    /// Run the next SGD step on `data` (the same data every call); returns the epoch's stats
    /// when this step ended one.
    pub fn step<B: Backend>(
        &mut self,
        backend: &B,
        model: &mut Model<B>,
        data: &Dataset,
    ) -> Option<EpochStats> {
        if self.done() {
            return None;
        }
        let in_epoch = self.step % self.steps_per_epoch;
        if in_epoch == 0 {
            self.order.shuffle(&mut self.rng);
            self.loss_sum = 0.0;
        }
        let chunk = &self.order[in_epoch * self.batch..(in_epoch + 1) * self.batch];
        data.gather(chunk, &mut self.x, &mut self.y);
        let progress = self.step as f32 / self.total_steps().max(1) as f32;
        let cfg = &self.cfg;
        let lr = if cfg.cosine {
            (cfg.lr * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos())).max(cfg.lr * 0.02)
        } else {
            cfg.lr
        };
        self.loss_sum += model.train_step(
            backend,
            &self.x,
            &self.y,
            (self.batch, data.h, data.w),
            cfg.trained_layers,
            SgdStep {
                lr,
                momentum: cfg.momentum,
                weight_decay: cfg.weight_decay,
            },
        );
        self.step += 1;
        self.step
            .is_multiple_of(self.steps_per_epoch)
            .then(|| EpochStats {
                epoch: self.step / self.steps_per_epoch,
                mean_loss: self.loss_sum / self.steps_per_epoch as f32,
                samples: self.steps_per_epoch * self.batch,
            })
    }
}

/// Top-1 accuracy of `model` on `data` (0 on an empty set).
pub fn evaluate<B: Backend>(
    backend: &B,
    model: &mut Model<B>,
    data: &Dataset,
    batch: usize,
) -> f32 {
    hit_rate(&predict_all(backend, model, data, batch), &data.labels)
}

/// Fraction of `predicted` equal to `labels`, position by position (0 when empty).
pub fn hit_rate(predicted: &[u8], labels: &[u8]) -> f32 {
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count() as f32
        / predicted.len().max(1) as f32
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
        out.extend(model.predict(backend, &x, (chunk.len(), data.h, data.w)));
    }
    out
}
