//! `softmax_xent.wgsl`: softmax cross-entropy over `[n × classes]` logits with `f32` class
//! labels, one invocation per sample (class counts are small), writing each sample's loss
//! and the mean-loss gradient.

use bytemuck::{Pod, Zeroable};

use super::{KernelId, grid, u32_of};
use crate::gpu::GpuContext;

/// Matches `struct Params` in `softmax_xent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct XentParams {
    n: u32,
    classes: u32,
    _pad: [u32; 2],
}

pub(crate) fn softmax_xent(
    ctx: &GpuContext,
    (n, classes): (usize, usize),
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    grad: &wgpu::Buffer,
    loss: &wgpu::Buffer,
) {
    if n == 0 || classes == 0 {
        return;
    }
    let p = XentParams {
        n: u32_of(n),
        classes: u32_of(classes),
        _pad: [0; 2],
    };
    ctx.dispatch(
        KernelId::SoftmaxXent,
        bytemuck::bytes_of(&p),
        &[logits, labels, grad, loss],
        grid(n),
    );
}
