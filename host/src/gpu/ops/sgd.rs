//! `sgd.wgsl`: SGD with momentum and L2 weight decay, in place, one invocation per weight.

use bytemuck::{Pod, Zeroable};

use super::{KernelId, grid, u32_of};
use crate::compute::SgdStep;
use crate::gpu::GpuContext;

/// Matches `struct Params` in `sgd.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct SgdParams {
    len: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

/// `v = momentum·v + g + wd·w; w -= lr·v` over the first `len` elements.
pub(crate) fn sgd(
    ctx: &GpuContext,
    w: &wgpu::Buffer,
    g: &wgpu::Buffer,
    v: &wgpu::Buffer,
    len: usize,
    step: SgdStep,
) {
    if len == 0 {
        return;
    }
    let p = SgdParams {
        len: u32_of(len),
        lr: step.lr,
        momentum: step.momentum,
        weight_decay: step.weight_decay,
    };
    ctx.dispatch(KernelId::Sgd, bytemuck::bytes_of(&p), &[w, g, v], grid(len));
}
