//! Bias of a `[rows × cols]` matrix: `bias_add.wgsl` adds it to every row, `bias_grad.wgsl`
//! sums the output gradient's rows (one workgroup per column with a tree reduction, since
//! `rows` is batch × positions and can be tens of thousands).

use bytemuck::{Pod, Zeroable};

use super::{KernelId, grid, groups_2d, u32_of};
use crate::gpu::GpuContext;

/// Matches `struct Params` in `bias_add.wgsl` and `bias_grad.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct BiasParams {
    rows: u32,
    cols: u32,
    _pad: [u32; 2],
}

fn params(rows: usize, cols: usize) -> BiasParams {
    BiasParams {
        rows: u32_of(rows),
        cols: u32_of(cols),
        _pad: [0; 2],
    }
}

/// `x[r, j] += bias[j]`.
pub(crate) fn bias_add(
    ctx: &GpuContext,
    x: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    rows: usize,
    cols: usize,
) {
    if rows * cols == 0 {
        return;
    }
    let p = params(rows, cols);
    ctx.dispatch(
        KernelId::BiasAdd,
        bytemuck::bytes_of(&p),
        &[x, bias],
        grid(rows * cols),
    );
}

/// `db[j] = Σ_r dy[r, j]`.
pub(crate) fn bias_grad(
    ctx: &GpuContext,
    dy: &wgpu::Buffer,
    db: &wgpu::Buffer,
    rows: usize,
    cols: usize,
) {
    if cols == 0 {
        return;
    }
    let p = params(rows, cols);
    ctx.dispatch(
        KernelId::BiasGrad,
        bytemuck::bytes_of(&p),
        &[dy, db],
        groups_2d(cols),
    );
}
