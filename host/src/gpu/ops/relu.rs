//! ReLU: `relu.wgsl` clamps in place, `relu_backward.wgsl` masks the gradient by the
//! forward output.

use bytemuck::{Pod, Zeroable};

use super::{KernelId, grid, u32_of};
use crate::gpu::GpuContext;

/// Matches `struct Params` in `relu.wgsl` and `relu_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct LenParams {
    len: u32,
    _pad: [u32; 3],
}

/// `x = max(x, 0)` over the first `len` elements.
pub(crate) fn relu(ctx: &GpuContext, x: &wgpu::Buffer, len: usize) {
    if len == 0 {
        return;
    }
    let p = LenParams {
        len: u32_of(len),
        _pad: [0; 3],
    };
    ctx.dispatch(KernelId::Relu, bytemuck::bytes_of(&p), &[x], grid(len));
}

/// `dy *= (y > 0)` over the first `len` elements.
pub(crate) fn relu_backward(ctx: &GpuContext, y: &wgpu::Buffer, dy: &wgpu::Buffer, len: usize) {
    if len == 0 {
        return;
    }
    let p = LenParams {
        len: u32_of(len),
        _pad: [0; 3],
    };
    ctx.dispatch(
        KernelId::ReluBackward,
        bytemuck::bytes_of(&p),
        &[y, dy],
        grid(len),
    );
}
