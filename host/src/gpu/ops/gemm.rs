//! GEMM, `c = op(a)·op(b) + beta·c`, in two formulations chosen by [`GemmVariant`]:
//! `gemm_tiled.wgsl` stages 64×64 tiles in workgroup memory (the default, for GPUs) and
//! `gemm_register.wgsl` reads operands straight from storage into 4×4 register blocks, which
//! suits llvmpipe, where barriers are expensive and there is no faster on-chip memory.
//!
//! Transposition is folded into strides (`op(A)[i, p] = a[i*rsa + p*csa]`), so the kernels
//! have no per-element branches on it.

use bytemuck::{Pod, Zeroable};

use super::{KernelId, u32_of};
use crate::compute::GemmShape;
use crate::gpu::GpuContext;

/// Which GEMM kernel to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmVariant {
    /// Workgroup-memory tiling: the formulation for GPUs.
    Tiled,
    /// Register blocking without workgroup memory or barriers: the faster one on llvmpipe.
    Register,
}

impl GemmVariant {
    /// Rows and columns of `c` one workgroup computes; must match the kernel. Both use
    /// 16×16 invocations with a 4×4 block each (on llvmpipe, 4×8, 8×4 and 8×8-invocation
    /// workgroups measured the same or slower).
    fn tile(self) -> (usize, usize) {
        match self {
            GemmVariant::Tiled | GemmVariant::Register => (64, 64),
        }
    }

    /// The variant that suits an adapter: [`GemmVariant::Register`] on software adapters.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            GemmVariant::Register
        } else {
            GemmVariant::Tiled
        }
    }
}

/// Matches `struct Params` in both GEMM kernels.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    /// Strides of `op(A)`: element `(i, p)` is at `i*rsa + p*csa`.
    rsa: u32,
    csa: u32,
    /// Strides of `op(B)`: element `(p, j)` is at `p*rsb + j*csb`.
    rsb: u32,
    csb: u32,
    beta: f32,
}

/// Records `c = op(a)·op(b) + beta·c` (row-major; see [`GemmShape`]).
pub(crate) fn gemm(
    ctx: &GpuContext,
    variant: GemmVariant,
    s: GemmShape,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    beta: f32,
) {
    if s.m == 0 || s.n == 0 {
        return;
    }
    let (m, n, k) = (u32_of(s.m), u32_of(s.n), u32_of(s.k));
    let (rsa, csa) = if s.trans_a { (1, m) } else { (k, 1) };
    let (rsb, csb) = if s.trans_b { (1, k) } else { (n, 1) };
    let params = GemmParams {
        m,
        n,
        k,
        rsa,
        csa,
        rsb,
        csb,
        beta,
    };
    let (tm, tn) = variant.tile();
    let groups = [u32_of(s.n.div_ceil(tn)), u32_of(s.m.div_ceil(tm)), 1];
    assert!(
        groups[0] <= 65_535 && groups[1] <= 65_535,
        "gemm {}x{}: too many tiles for one dispatch",
        s.m,
        s.n
    );
    ctx.dispatch(
        KernelId::Gemm(variant),
        bytemuck::bytes_of(&params),
        &[a, b, c],
        groups,
    );
}
