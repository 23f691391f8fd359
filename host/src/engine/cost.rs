//! [`CostModel`]: GPU-seconds of work on the modelled GPU, from the CNN's FLOPs.
//!
//! The virtual clock counts progress in GPU-seconds of a modelled GPU whose capacity (useful
//! GFLOP/s of this CNN's work) is a scenario setting, so a scenario's results do not depend
//! on the machine that runs it. The real device is still measured at start
//! ([`CostModel::calibrate`]) to report how fast it runs that modelled GPU.

use std::time::Instant;

use serde::Serialize;

use crate::compute::{Backend, SgdStep};
use crate::model::{Arch, Model};

#[derive(Debug, Clone, Serialize)]
pub struct CostModel {
    pub arch: Arch,
    /// Useful FLOP/s of one modelled GPU.
    pub gpu_flops: f64,
}

impl CostModel {
    /// GPU-seconds (at a full GPU) to train `samples` samples for one epoch.
    pub fn train_seconds(&self, h: usize, w: usize, layers: usize, samples: usize) -> f64 {
        self.arch.train_flops(h, w, layers) * samples as f64 / self.gpu_flops
    }

    /// GPU-seconds (at a full GPU) to classify `samples` crops.
    pub fn infer_seconds(&self, h: usize, w: usize, samples: usize) -> f64 {
        self.arch.forward_flops(h, w) * samples as f64 / self.gpu_flops
    }

    /// Share of one GPU needed to classify `per_second` crops of `res`×`res` each second.
    pub fn infer_share(&self, res: usize, per_second: f64) -> f64 {
        self.arch.forward_flops(res, res) * per_second / self.gpu_flops
    }

    /// Measure the real device: useful GFLOP/s it sustains training this CNN at batch 64
    /// on `h`×`w` input (a few steps, after one warm-up).
    pub fn calibrate<B: Backend>(be: &B, arch: Arch, h: usize, w: usize) -> f64 {
        const BATCH: usize = 64;
        // Timing only: a zero rate leaves the weights as they are.
        const STILL: SgdStep = SgdStep {
            lr: 0.0,
            momentum: 0.0,
            weight_decay: 0.0,
        };
        let mut m = Model::new(be, arch, 0);
        let x: Vec<f32> = (0..BATCH * h * w * arch.in_channels)
            .map(|i| (i % 17) as f32 / 17.0)
            .collect();
        let y: Vec<f32> = (0..BATCH).map(|i| (i % arch.classes) as f32).collect();
        m.train_step(be, &x, &y, (BATCH, h, w), 5, STILL);
        let steps = 3;
        let t = Instant::now();
        for _ in 0..steps {
            m.train_step(be, &x, &y, (BATCH, h, w), 5, STILL);
        }
        arch.train_flops(h, w, 5) * (BATCH * steps) as f64 / t.elapsed().as_secs_f64() / 1e9
    }
}
