//! [`WgpuBackend`]: the [`Backend`] trait on a [`GpuContext`], with [`GpuBuf`] device
//! buffers; [`gemm_gflops`] times the GEMM kernels for the benchmark.
//!
//! The trait's methods cannot fail, so a device error there (lost device, failed map) is a
//! panic with the wgpu message; [`WgpuBackend::try_read`] is the fallible read.

use std::time::Instant;

use wgpu::util::DeviceExt;

use super::ops::{self, gemm::GemmVariant};
use super::{GpuContext, GpuError};
use crate::compute::{Backend, BackendKind, ConvShape, GemmShape, PoolShape, SgdStep};

/// Bytes per element: every buffer is `f32`.
const F32: u64 = 4;

/// An `f32` buffer on the device.
pub struct GpuBuf {
    buffer: wgpu::Buffer,
    len: usize,
}

impl GpuBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bytes(&self) -> u64 {
        self.len as u64 * F32
    }
}

/// The wgpu backend: every op a WGSL kernel, dispatches batched by the context.
pub struct WgpuBackend {
    ctx: GpuContext,
    gemm: GemmVariant,
}

const BUF_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl WgpuBackend {
    /// Opens the best adapter (see [`GpuContext::new`] for `allow_software`) and picks the
    /// GEMM kernel that suits it.
    pub fn new(allow_software: bool) -> Result<Self, GpuError> {
        let ctx = GpuContext::new(allow_software)?;
        let gemm = GemmVariant::for_adapter(ctx.adapter_info());
        Ok(Self { ctx, gemm })
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub fn gemm_variant(&self) -> GemmVariant {
        self.gemm
    }

    /// Overrides the GEMM kernel chosen for the adapter (for benchmarks and tests).
    pub fn set_gemm_variant(&mut self, variant: GemmVariant) {
        self.gemm = variant;
    }

    /// Reads `buf` back after all queued work, reporting device errors.
    pub fn try_read(&self, buf: &GpuBuf) -> Result<Vec<f32>, GpuError> {
        let bytes = self.ctx.read_bytes(&buf.buffer, buf.bytes())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// `c = op(a)·op(b) + beta·c` with an explicit kernel choice.
    pub fn gemm_with(
        &self,
        variant: GemmVariant,
        s: GemmShape,
        a: &GpuBuf,
        b: &GpuBuf,
        c: &mut GpuBuf,
        beta: f32,
    ) {
        assert!(
            a.len >= s.m * s.k && b.len >= s.k * s.n && c.len >= s.m * s.n,
            "gemm {s:?}: buffer too small"
        );
        ops::gemm::gemm(&self.ctx, variant, s, &a.buffer, &b.buffer, &c.buffer, beta);
    }

    fn buffer(&self, len: usize, label: &str) -> wgpu::Buffer {
        // wgpu cannot bind a zero-sized buffer; an empty GpuBuf still owns one element.
        self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: len.max(1) as u64 * F32,
            usage: BUF_USAGE,
            mapped_at_creation: false,
        })
    }
}

/// Times `reps` square `n×n×n` GEMMs with `variant` after one warm-up run (which also
/// compiles the kernel), waiting for the device; returns GFLOP/s (`2·n³` flops per GEMM).
pub fn gemm_gflops(
    backend: &WgpuBackend,
    variant: GemmVariant,
    n: usize,
    reps: usize,
) -> Result<f64, GpuError> {
    // Values in [-1, 1) from a fixed LCG: the timing does not depend on them.
    let mut state = 0x2545_f491u32;
    let mut next = || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    };
    let data: Vec<f32> = (0..n * n).map(|_| next()).collect();
    let a = backend.upload(&data);
    let b = backend.upload(&data);
    let mut c = backend.zeros(n * n);
    let s = GemmShape {
        m: n,
        n,
        k: n,
        trans_a: false,
        trans_b: false,
    };
    backend.gemm_with(variant, s, &a, &b, &mut c, 0.0);
    backend.ctx.sync()?;
    let start = Instant::now();
    for _ in 0..reps {
        backend.gemm_with(variant, s, &a, &b, &mut c, 0.0);
    }
    backend.ctx.sync()?;
    let secs = start.elapsed().as_secs_f64();
    Ok(2.0 * (n as f64).powi(3) * reps as f64 / secs / 1e9)
}

impl Backend for WgpuBackend {
    type Buf = GpuBuf;

    fn describe(&self) -> String {
        format!("wgpu {} (gemm {:?})", self.ctx.describe(), self.gemm)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn zeros(&self, len: usize) -> GpuBuf {
        // wgpu zero-initializes new buffers.
        GpuBuf {
            buffer: self.buffer(len, "tandem zeros"),
            len,
        }
    }

    fn upload(&self, data: &[f32]) -> GpuBuf {
        if data.is_empty() {
            return self.zeros(0);
        }
        let buffer = self
            .ctx
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tandem upload"),
                contents: bytemuck::cast_slice(data),
                usage: BUF_USAGE,
            });
        GpuBuf {
            buffer,
            len: data.len(),
        }
    }

    fn write(&self, buf: &mut GpuBuf, data: &[f32]) {
        assert_eq!(buf.len, data.len(), "write: length mismatch");
        if !data.is_empty() {
            self.ctx.write(&buf.buffer, bytemuck::cast_slice(data));
        }
    }

    fn read(&self, buf: &GpuBuf) -> Vec<f32> {
        self.try_read(buf)
            .unwrap_or_else(|e| panic!("wgpu backend: {e}"))
    }

    fn copy(&self, src: &GpuBuf, dst: &mut GpuBuf) {
        assert_eq!(src.len, dst.len, "copy: length mismatch");
        if src.len > 0 {
            self.ctx.copy(&src.buffer, &dst.buffer, src.bytes());
        }
    }

    fn len(&self, buf: &GpuBuf) -> usize {
        buf.len
    }

    fn sync(&self) {
        self.ctx
            .sync()
            .unwrap_or_else(|e| panic!("wgpu backend: {e}"));
    }

    fn gemm(&self, s: GemmShape, a: &GpuBuf, b: &GpuBuf, c: &mut GpuBuf, beta: f32) {
        self.gemm_with(self.gemm, s, a, b, c, beta);
    }

    fn bias_add(&self, x: &mut GpuBuf, bias: &GpuBuf, rows: usize, cols: usize) {
        assert!(
            x.len >= rows * cols && bias.len >= cols,
            "bias_add: buffer too small"
        );
        ops::bias::bias_add(&self.ctx, &x.buffer, &bias.buffer, rows, cols);
    }

    fn bias_grad(&self, dy: &GpuBuf, db: &mut GpuBuf, rows: usize, cols: usize) {
        assert!(
            dy.len >= rows * cols && db.len >= cols,
            "bias_grad: buffer too small"
        );
        ops::bias::bias_grad(&self.ctx, &dy.buffer, &db.buffer, rows, cols);
    }

    fn relu(&self, x: &mut GpuBuf) {
        ops::relu::relu(&self.ctx, &x.buffer, x.len);
    }

    fn relu_backward(&self, y: &GpuBuf, dy: &mut GpuBuf) {
        assert!(y.len >= dy.len, "relu_backward: y shorter than dy");
        ops::relu::relu_backward(&self.ctx, &y.buffer, &dy.buffer, dy.len);
    }

    fn im2col(&self, s: ConvShape, x: &GpuBuf, cols: &mut GpuBuf) {
        assert!(
            x.len >= s.input_len() && cols.len >= s.rows() * s.patch(),
            "im2col {s:?}: buffer too small"
        );
        ops::conv::im2col(&self.ctx, s, &x.buffer, &cols.buffer);
    }

    fn col2im(&self, s: ConvShape, dcols: &GpuBuf, dx: &mut GpuBuf) {
        assert!(
            dcols.len >= s.rows() * s.patch() && dx.len >= s.input_len(),
            "col2im {s:?}: buffer too small"
        );
        ops::conv::col2im(&self.ctx, s, &dcols.buffer, &dx.buffer);
    }

    fn max_pool(&self, s: PoolShape, x: &GpuBuf, y: &mut GpuBuf) {
        assert!(
            x.len >= s.input_len() && y.len >= s.output_len(),
            "max_pool {s:?}: buffer too small"
        );
        ops::pool::max_pool(&self.ctx, s, &x.buffer, &y.buffer);
    }

    fn max_pool_backward(
        &self,
        s: PoolShape,
        x: &GpuBuf,
        y: &GpuBuf,
        dy: &GpuBuf,
        dx: &mut GpuBuf,
    ) {
        assert!(
            x.len >= s.input_len()
                && dx.len >= s.input_len()
                && y.len >= s.output_len()
                && dy.len >= s.output_len(),
            "max_pool_backward {s:?}: buffer too small"
        );
        ops::pool::max_pool_backward(&self.ctx, s, &x.buffer, &y.buffer, &dy.buffer, &dx.buffer);
    }

    fn avg_pool(&self, s: PoolShape, x: &GpuBuf, y: &mut GpuBuf) {
        assert!(
            x.len >= s.input_len() && y.len >= s.output_len(),
            "avg_pool {s:?}: buffer too small"
        );
        ops::pool::avg_pool(&self.ctx, s, &x.buffer, &y.buffer);
    }

    fn avg_pool_backward(&self, s: PoolShape, dy: &GpuBuf, dx: &mut GpuBuf) {
        assert!(
            dy.len >= s.output_len() && dx.len >= s.input_len(),
            "avg_pool_backward {s:?}: buffer too small"
        );
        ops::pool::avg_pool_backward(&self.ctx, s, &dy.buffer, &dx.buffer);
    }

    fn global_avg_pool(&self, n: usize, hw: usize, c: usize, x: &GpuBuf, y: &mut GpuBuf) {
        assert!(
            x.len >= n * hw * c && y.len >= n * c,
            "global_avg_pool: buffer too small"
        );
        ops::pool::global_avg_pool(&self.ctx, (n, hw, c), &x.buffer, &y.buffer);
    }

    fn global_avg_pool_backward(
        &self,
        n: usize,
        hw: usize,
        c: usize,
        dy: &GpuBuf,
        dx: &mut GpuBuf,
    ) {
        assert!(
            dy.len >= n * c && dx.len >= n * hw * c,
            "global_avg_pool_backward: buffer too small"
        );
        ops::pool::global_avg_pool_backward(&self.ctx, (n, hw, c), &dy.buffer, &dx.buffer);
    }

    fn softmax_xent(
        &self,
        n: usize,
        classes: usize,
        logits: &GpuBuf,
        labels: &GpuBuf,
        grad: &mut GpuBuf,
        loss: &mut GpuBuf,
    ) {
        assert!(
            logits.len >= n * classes
                && grad.len >= n * classes
                && labels.len >= n
                && loss.len >= n,
            "softmax_xent: buffer too small"
        );
        ops::softmax_xent::softmax_xent(
            &self.ctx,
            (n, classes),
            &logits.buffer,
            &labels.buffer,
            &grad.buffer,
            &loss.buffer,
        );
    }

    fn sgd(&self, w: &mut GpuBuf, g: &GpuBuf, v: &mut GpuBuf, step: SgdStep) {
        assert!(
            g.len >= w.len && v.len >= w.len,
            "sgd: gradient or velocity shorter than the weights"
        );
        ops::sgd::sgd(&self.ctx, &w.buffer, &g.buffer, &v.buffer, w.len, step);
    }
}
