//! The CNN that every camera stream runs: [`Arch`] describes it, [`Model`] holds its weights
//! on a compute backend and trains or serves it, [`TrainConfig`] holds the retraining knobs
//! (epochs, layers trained, data fraction, batch size, learning rate), and [`weights`] saves
//! and loads it as safetensors with the architecture recorded.
//!
//! Architecture: three 3×3 convolution blocks (ReLU; 2×2 max pooling after the first two),
//! global average pooling, a hidden fully connected layer of configurable width, and the
//! classifier. Global pooling makes the network accept any input resolution of at least
//! 4×4, which is what makes resolution an inference knob.

mod arch;
mod net;
mod train;
pub mod weights;

pub use arch::{Arch, LAYER_GROUPS};
pub use net::{Model, ModelBytes, Shape, argmax};
pub use train::{
    EpochStats, TrainConfig, Trainer, evaluate, hit_rate, predict_all, train, train_observed,
};
