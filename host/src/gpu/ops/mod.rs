//! The WGSL kernels: [`KernelId`] names each one, [`KernelSpec`] gives its source and the
//! storage buffers it binds. One Rust module per op family dispatches its kernels; each
//! kernel is one `.wgsl` file beside that module with entry point `main`, the params
//! uniform at binding 0 and the storage buffers at bindings 1.. in spec order.
//!
//! Element-wise kernels use `grid`: workgroups of [`WG`] invocations laid out in 2-D when
//! one dimension would exceed the 65,535-workgroup limit; the kernels rebuild the linear
//! index as `gid.y * num_workgroups.x * WG + gid.x`.

/// A kernel's `#[repr(C)]` params from sizes, each `field = size` converted by [`u32_of`];
/// after the `;`, fields given as they are (padding).
macro_rules! u32_params {
    ($ty:ident { $($f:ident = $size:expr),+ $(,)? ; $($rest:tt)* }) => {
        $ty { $($f: u32_of($size),)+ $($rest)* }
    };
}

pub mod bias;
pub mod conv;
pub mod gemm;
pub mod pool;
pub mod relu;
pub mod sgd;
pub mod softmax_xent;

use gemm::GemmVariant;

/// Invocations per workgroup of the element-wise kernels (the `Limits::default()` maximum).
pub const WG: u32 = 256;

/// Workgroups per grid dimension allowed by `Limits::default()`.
const MAX_GROUPS: u32 = 65_535;

/// How a kernel uses one of its storage buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// What the pipeline cache needs to build a kernel.
#[derive(Clone, Copy, Debug)]
pub struct KernelSpec {
    pub label: &'static str,
    pub source: &'static str,
    /// Storage buffers at bindings 1.., in order.
    pub buffers: &'static [Access],
    /// Size of the Rust params struct, which must equal the WGSL `Params` struct's size
    /// (checked against naga's layout in the shader test).
    pub params_size: usize,
}

/// Every kernel, the key of the pipeline cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelId {
    Gemm(GemmVariant),
    BiasAdd,
    BiasGrad,
    Relu,
    ReluBackward,
    Im2col,
    Col2im,
    MaxPool,
    MaxPoolBackward,
    AvgPool,
    AvgPoolBackward,
    GlobalAvgPool,
    GlobalAvgPoolBackward,
    SoftmaxXent,
    Sgd,
}

impl KernelId {
    pub const ALL: [KernelId; 16] = [
        KernelId::Gemm(GemmVariant::Tiled),
        KernelId::Gemm(GemmVariant::Register),
        KernelId::BiasAdd,
        KernelId::BiasGrad,
        KernelId::Relu,
        KernelId::ReluBackward,
        KernelId::Im2col,
        KernelId::Col2im,
        KernelId::MaxPool,
        KernelId::MaxPoolBackward,
        KernelId::AvgPool,
        KernelId::AvgPoolBackward,
        KernelId::GlobalAvgPool,
        KernelId::GlobalAvgPoolBackward,
        KernelId::SoftmaxXent,
        KernelId::Sgd,
    ];

    pub fn spec(self) -> KernelSpec {
        use Access::{Read, ReadWrite};
        let (label, source, buffers, params_size): (_, _, &'static [Access], _) = match self {
            KernelId::Gemm(GemmVariant::Tiled) => (
                "gemm_tiled",
                include_str!("gemm_tiled.wgsl"),
                &[Read, Read, ReadWrite],
                size_of::<gemm::GemmParams>(),
            ),
            KernelId::Gemm(GemmVariant::Register) => (
                "gemm_register",
                include_str!("gemm_register.wgsl"),
                &[Read, Read, ReadWrite],
                size_of::<gemm::GemmParams>(),
            ),
            KernelId::BiasAdd => (
                "bias_add",
                include_str!("bias_add.wgsl"),
                &[ReadWrite, Read],
                size_of::<bias::BiasParams>(),
            ),
            KernelId::BiasGrad => (
                "bias_grad",
                include_str!("bias_grad.wgsl"),
                &[Read, ReadWrite],
                size_of::<bias::BiasParams>(),
            ),
            KernelId::Relu => (
                "relu",
                include_str!("relu.wgsl"),
                &[ReadWrite],
                size_of::<relu::LenParams>(),
            ),
            KernelId::ReluBackward => (
                "relu_backward",
                include_str!("relu_backward.wgsl"),
                &[Read, ReadWrite],
                size_of::<relu::LenParams>(),
            ),
            KernelId::Im2col => (
                "im2col",
                include_str!("im2col.wgsl"),
                &[Read, ReadWrite],
                size_of::<conv::ConvParams>(),
            ),
            KernelId::Col2im => (
                "col2im",
                include_str!("col2im.wgsl"),
                &[Read, ReadWrite],
                size_of::<conv::ConvParams>(),
            ),
            KernelId::MaxPool => (
                "max_pool",
                include_str!("max_pool.wgsl"),
                &[Read, ReadWrite],
                size_of::<pool::PoolParams>(),
            ),
            KernelId::MaxPoolBackward => (
                "max_pool_backward",
                include_str!("max_pool_backward.wgsl"),
                &[Read, Read, Read, ReadWrite],
                size_of::<pool::PoolParams>(),
            ),
            KernelId::AvgPool => (
                "avg_pool",
                include_str!("avg_pool.wgsl"),
                &[Read, ReadWrite],
                size_of::<pool::PoolParams>(),
            ),
            KernelId::AvgPoolBackward => (
                "avg_pool_backward",
                include_str!("avg_pool_backward.wgsl"),
                &[Read, ReadWrite],
                size_of::<pool::PoolParams>(),
            ),
            KernelId::GlobalAvgPool => (
                "global_avg_pool",
                include_str!("global_avg_pool.wgsl"),
                &[Read, ReadWrite],
                size_of::<pool::GlobalParams>(),
            ),
            KernelId::GlobalAvgPoolBackward => (
                "global_avg_pool_backward",
                include_str!("global_avg_pool_backward.wgsl"),
                &[Read, ReadWrite],
                size_of::<pool::GlobalParams>(),
            ),
            KernelId::SoftmaxXent => (
                "softmax_xent",
                include_str!("softmax_xent.wgsl"),
                &[Read, Read, ReadWrite, ReadWrite],
                size_of::<softmax_xent::XentParams>(),
            ),
            KernelId::Sgd => (
                "sgd",
                include_str!("sgd.wgsl"),
                &[ReadWrite, Read, ReadWrite],
                size_of::<sgd::SgdParams>(),
            ),
        };
        KernelSpec {
            label,
            source,
            buffers,
            params_size,
        }
    }
}

/// A size as the `u32` the kernels index with. Buffers bound as storage are at most
/// 128 MiB under `Limits::default()`, so a size that does not fit is a caller bug.
pub(crate) fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("size {n} exceeds the kernels' u32 indexing"))
}

/// Workgroups for `groups` independent workgroups, wrapped into a second dimension past the
/// per-dimension limit. Kernels must ignore the overshoot (`index >= count`).
pub(crate) fn groups_2d(groups: usize) -> [u32; 3] {
    let groups = u32_of(groups.max(1));
    if groups <= MAX_GROUPS {
        [groups, 1, 1]
    } else {
        let y = groups.div_ceil(MAX_GROUPS);
        [groups.div_ceil(y), y, 1]
    }
}

/// Workgroups of [`WG`] invocations covering `count` elements.
pub(crate) fn grid(count: usize) -> [u32; 3] {
    groups_2d(count.div_ceil(WG as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_stays_within_the_per_dimension_limit_and_covers_everything() {
        for count in [
            0,
            1,
            255,
            256,
            257,
            65_535 * 256,
            65_535 * 256 + 1,
            40_000_000,
        ] {
            let [x, y, _] = grid(count);
            assert!(x <= MAX_GROUPS && y <= MAX_GROUPS, "{count}: {x}x{y}");
            assert!(
                x as usize * y as usize * WG as usize >= count,
                "{count}: {x}x{y}"
            );
        }
    }
}
