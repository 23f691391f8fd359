//! The wgpu backend: [`WgpuBackend`] runs every [`crate::compute::Backend`] op as a WGSL
//! compute kernel on a wgpu adapter.
//!
//! - [`GpuContext`] (`context.rs`) owns the adapter choice, the device and queue, the pipeline
//!   cache and the pending command encoder that batches dispatches into few submits.
//! - [`ops`] holds one Rust wrapper per op family, each beside its `.wgsl` kernels, with a
//!   `#[repr(C)]` params struct that matches the kernel's uniform struct field for field.
//! - [`WgpuBackend`] (`backend.rs`) maps the trait onto those wrappers; its buffers
//!   ([`GpuBuf`]) stay on the device and only [`crate::compute::Backend::read`] maps back.
//!
//! Every kernel is tested against [`crate::compute::cpu::CpuBackend`] in `tests/it/ops.rs`.

mod backend;
mod context;
pub mod ops;

pub use backend::{GpuBuf, WgpuBackend, gemm_gflops};
pub use context::{GpuContext, GpuError};
pub use ops::gemm::GemmVariant;
