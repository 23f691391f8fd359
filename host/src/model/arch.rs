//! [`Arch`]: the shape of the CNN, recorded with saved weights.

use serde::{Deserialize, Serialize};

/// Trainable layer groups, input to output: the three convolutions, the hidden layer, the
/// classifier. "Train the last k layers" (Ekya's knob) trains the last k of these.
pub const LAYER_GROUPS: [&str; 5] = ["conv1", "conv2", "conv3", "fc1", "fc2"];

/// The CNN's shape. Resolution is not part of it: any input of at least 4×4 works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    /// Input channels (1 for grey, 3 for colour).
    pub in_channels: usize,
    /// Output channels of the three convolutions.
    pub channels: [usize; 3],
    /// Width of the hidden fully connected layer.
    pub hidden: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Arch {
    /// The default network for `in_channels` and `classes`, with a hidden layer of `hidden`.
    pub fn new(in_channels: usize, classes: usize, hidden: usize) -> Self {
        Self {
            in_channels,
            channels: [32, 64, 96],
            hidden,
            classes,
        }
    }

    /// (fan-in, fan-out) of each layer group's weight matrix.
    pub fn weight_shapes(&self) -> [(usize, usize); 5] {
        let [c1, c2, c3] = self.channels;
        [
            (9 * self.in_channels, c1),
            (9 * c1, c2),
            (9 * c2, c3),
            (c3, self.hidden),
            (self.hidden, self.classes),
        ]
    }

    /// Number of trainable parameters.
    pub fn parameters(&self) -> usize {
        self.weight_shapes().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Multiply-adds ×2 of one forward pass at `h`×`w` (the useful FLOPs).
    pub fn forward_flops(&self, h: usize, w: usize) -> f64 {
        let sizes = [(h, w), (h / 2, w / 2), (h / 4, w / 4)];
        let shapes = self.weight_shapes();
        let conv: f64 = (0..3)
            .map(|i| (sizes[i].0 * sizes[i].1 * shapes[i].0 * shapes[i].1) as f64 * 2.0)
            .sum();
        let fc: f64 = shapes[3..].iter().map(|(i, o)| (i * o) as f64 * 2.0).sum();
        conv + fc
    }

    /// FLOPs of one training step per sample (forward, backward to the first trainable
    /// group, weight gradients), training the last `trained` groups.
    pub fn train_flops(&self, h: usize, w: usize, trained: usize) -> f64 {
        let sizes = [(h, w), (h / 2, w / 2), (h / 4, w / 4), (1, 1), (1, 1)];
        let shapes = self.weight_shapes();
        let first = LAYER_GROUPS.len() - trained.min(LAYER_GROUPS.len());
        let mut flops = self.forward_flops(h, w);
        for g in first..5 {
            let per = (sizes[g].0 * sizes[g].1 * shapes[g].0 * shapes[g].1) as f64 * 2.0;
            // Weight gradient always; input gradient unless this is the first group trained.
            flops += per;
            if g > first {
                flops += per;
            }
        }
        flops
    }
}
