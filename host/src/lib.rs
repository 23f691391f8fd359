//! tandem: continuous learning of video-analytics models on edge GPUs.
//!
//! Layers, bottom up (each uses only those listed before it; see ARCHITECTURE.md for one
//! window's data flow):
//! - [`compute`]: the tensor ops behind one `Backend` trait, with the native CPU backend;
//!   [`gpu`] holds the wgpu backend and its WGSL kernels.
//! - [`data`]: image sources (Fashion-MNIST IDX files, the synthetic generator) and drift.
//! - [`model`]: the CNN, its training and inference, weights on disk.
//! - [`plugin`]: the sandboxed WebAssembly plugin host, its registry and the scheduling domain types.
//! - [`engine`]: scenarios, streams, the profiler, the window loop and replay.
//! - [`history`]: every run in SQLite, and the run-and-record loop that drives an engine.
//! - [`http`]: the web dashboard (axum, askama templates in `web/`).
//! - [`cli`]: the `tandem` command's subcommands.
//!
//! Beside them, [`text`]: labels cut to fit a table column or a chart legend.

// Checks written `!(x >= 0.0)` reject NaN as well; that is why they are negated.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod cli;
pub mod compute;
pub mod data;
pub mod engine;
pub mod gpu;
pub mod history;
pub mod http;
pub mod model;
pub mod plugin;
pub mod text;
