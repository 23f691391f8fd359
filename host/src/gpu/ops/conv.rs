//! Convolution lowering: `im2col.wgsl` unfolds NHWC input into the `[rows × patch]` matrix
//! (one invocation per matrix element), `col2im.wgsl` folds a gradient back. col2im gathers
//! (one invocation per input element, summing the patches that cover it) rather than
//! scattering, so overlapping patches need no float atomics.

use bytemuck::{Pod, Zeroable};

use super::{KernelId, grid, u32_of};
use crate::compute::ConvShape;
use crate::gpu::GpuContext;

/// Matches `struct Params` in `im2col.wgsl` and `col2im.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct ConvParams {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
    patch_len: u32,
    /// Invocations that do work: `rows*patch` for im2col, `input_len` for col2im.
    total: u32,
}

fn params(s: ConvShape, total: usize) -> ConvParams {
    u32_params!(ConvParams {
        n = s.n, h = s.h, w = s.w, c = s.c, kh = s.kh, kw = s.kw, stride = s.stride, pad = s.pad,
        oh = s.oh(), ow = s.ow(), patch_len = s.patch(), total = total;
    })
}

/// Unfolds `x` into `cols` (zero padding).
pub(crate) fn im2col(ctx: &GpuContext, s: ConvShape, x: &wgpu::Buffer, cols: &wgpu::Buffer) {
    let total = s.rows() * s.patch();
    if total == 0 {
        return;
    }
    let p = params(s, total);
    ctx.dispatch(
        KernelId::Im2col,
        bytemuck::bytes_of(&p),
        &[x, cols],
        grid(total),
    );
}

/// Folds `dcols` into `dx` (overwriting it), summing overlapping patches.
pub(crate) fn col2im(ctx: &GpuContext, s: ConvShape, dcols: &wgpu::Buffer, dx: &wgpu::Buffer) {
    let total = s.input_len();
    if total == 0 {
        return;
    }
    let p = params(s, total);
    ctx.dispatch(
        KernelId::Col2im,
        bytemuck::bytes_of(&p),
        &[dcols, dx],
        grid(total),
    );
}
