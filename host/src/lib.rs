//! tandem: continuous learning of video-analytics models on edge GPUs.
//!
//! Layers, bottom up (see ARCHITECTURE.md for one window's data flow):
//! - [`compute`]: the tensor ops behind one `Backend` trait, with the native CPU backend;
//!   [`gpu`] holds the wgpu backend and its WGSL kernels.
//! - [`model`]: the CNN, its training and inference, weights on disk.
//! - [`data`]: image sources (Fashion-MNIST IDX files, the synthetic generator) and drift.
//! - [`plugin`]: the sandboxed WebAssembly plugin host, its registry and the scheduling domain types.
//! - [`history`]: every run in SQLite, and the run-and-record loop.
//! - [`http`]: the web dashboard (axum, askama templates in `web/`).
//! - [`cli`]: the `tandem` command's subcommands.
//! - [`text`]: labels cut to fit a table column or a chart legend (CLI and dashboard alike).

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
