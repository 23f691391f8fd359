//! Pooling over NHWC: windowed max and average pooling (`max_pool.wgsl`, `avg_pool.wgsl`)
//! and global average pooling (`global_avg_pool.wgsl`), each with its backward kernel.
//!
//! Forward kernels run one invocation per output element. The windowed backward kernels run
//! one per input element and gather from the windows that cover it, so overlapping windows
//! (stride < k) need no float atomics.

use bytemuck::{Pod, Zeroable};

use super::{KernelId, grid, u32_of};
use crate::compute::PoolShape;
use crate::gpu::GpuContext;

/// Matches `struct Params` in the four windowed pooling kernels.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct PoolParams {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    stride: u32,
    oh: u32,
    ow: u32,
    /// Invocations that do work: output length forward, input length backward.
    total: u32,
    _pad: [u32; 3],
}

fn params(s: PoolShape, total: usize) -> PoolParams {
    u32_params!(PoolParams {
        n = s.n, h = s.h, w = s.w, c = s.c, k = s.k, stride = s.stride, oh = s.oh(), ow = s.ow(),
        total = total; _pad: [0; 3]
    })
}

/// Matches `struct Params` in `global_avg_pool.wgsl` and `global_avg_pool_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct GlobalParams {
    n: u32,
    hw: u32,
    c: u32,
    /// Invocations that do work: `n*c` forward, `n*hw*c` backward.
    total: u32,
}

fn global_params(n: usize, hw: usize, c: usize, total: usize) -> GlobalParams {
    GlobalParams {
        n: u32_of(n),
        hw: u32_of(hw),
        c: u32_of(c),
        total: u32_of(total),
    }
}

fn run(ctx: &GpuContext, id: KernelId, p: PoolParams, buffers: &[&wgpu::Buffer]) {
    if p.total > 0 {
        ctx.dispatch(id, bytemuck::bytes_of(&p), buffers, grid(p.total as usize));
    }
}

pub(crate) fn max_pool(ctx: &GpuContext, s: PoolShape, x: &wgpu::Buffer, y: &wgpu::Buffer) {
    run(ctx, KernelId::MaxPool, params(s, s.output_len()), &[x, y]);
}

/// Each output's gradient goes to the first input of its window (row-major) equal to it.
pub(crate) fn max_pool_backward(
    ctx: &GpuContext,
    s: PoolShape,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    dy: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) {
    let p = params(s, s.input_len());
    run(ctx, KernelId::MaxPoolBackward, p, &[x, y, dy, dx]);
}

pub(crate) fn avg_pool(ctx: &GpuContext, s: PoolShape, x: &wgpu::Buffer, y: &wgpu::Buffer) {
    run(ctx, KernelId::AvgPool, params(s, s.output_len()), &[x, y]);
}

pub(crate) fn avg_pool_backward(
    ctx: &GpuContext,
    s: PoolShape,
    dy: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) {
    let p = params(s, s.input_len());
    run(ctx, KernelId::AvgPoolBackward, p, &[dy, dx]);
}

/// `[n, hw, c] -> [n, c]`, one invocation per output.
pub(crate) fn global_avg_pool(
    ctx: &GpuContext,
    (n, hw, c): (usize, usize, usize),
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) {
    if n * c == 0 {
        return;
    }
    let p = global_params(n, hw, c, n * c);
    ctx.dispatch(
        KernelId::GlobalAvgPool,
        bytemuck::bytes_of(&p),
        &[x, y],
        grid(n * c),
    );
}

pub(crate) fn global_avg_pool_backward(
    ctx: &GpuContext,
    (n, hw, c): (usize, usize, usize),
    dy: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) {
    let total = n * hw * c;
    if total == 0 {
        return;
    }
    let p = global_params(n, hw, c, total);
    ctx.dispatch(
        KernelId::GlobalAvgPoolBackward,
        bytemuck::bytes_of(&p),
        &[dy, dx],
        grid(total),
    );
}
