//! Compute backends: the tensor operations the model needs, behind one [`Backend`] trait.
//!
//! Two implementations drive the same model code:
//! - [`cpu::CpuBackend`]: fast native code (GEMM through `matrixmultiply`, threads for the
//!   other loops). It is the default where no real GPU exists, and the reference every GPU
//!   kernel is tested against.
//! - `crate::gpu::WgpuBackend`: WGSL compute kernels on a wgpu adapter (the production path
//!   on a machine with a GPU).
//!
//! Conventions shared by every op, so kernels and the CPU reference agree:
//! - Buffers are flat `f32` arrays; shapes travel as arguments, never inside buffers.
//! - Matrices are row-major. Activations are NHWC: a convolution is im2col followed by one
//!   GEMM whose output `[n*oh*ow, c_out]` already is the next layer's NHWC input.
//! - Class labels are stored as `f32` class indices (exact below 2^24), which keeps every
//!   buffer one element type.
//! - Ops that produce a gradient overwrite their output unless the doc says "accumulates".

pub mod cpu;
mod select;

pub use select::{BackendChoice, BackendKind};

/// Geometry of a 2-D convolution over NHWC input, lowered to im2col + GEMM.
///
/// `cols` has shape `[n*oh*ow, kh*kw*c]`, column index `(ky*kw + kx)*c + ci`; the weight
/// matrix is `[kh*kw*c, c_out]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvShape {
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Rows of the im2col matrix (output positions over the batch).
    pub fn rows(&self) -> usize {
        self.n * self.oh() * self.ow()
    }
    /// Columns of the im2col matrix (the GEMM's reduction dimension).
    pub fn patch(&self) -> usize {
        self.kh * self.kw * self.c
    }
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
}

/// Geometry of a square pooling window over NHWC input (no padding; trailing rows or
/// columns that do not fill a window are dropped, as in the usual floor mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolShape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
}

impl PoolShape {
    pub fn oh(&self) -> usize {
        (self.h - self.k) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w - self.k) / self.stride + 1
    }
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
    pub fn output_len(&self) -> usize {
        self.n * self.oh() * self.ow() * self.c
    }
}

/// GEMM geometry: `C[m×n] = op(A)[m×k] · op(B)[k×n] + beta·C`, all row-major.
/// With `trans_a` the buffer `a` holds `[k×m]`; with `trans_b`, `b` holds `[n×k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// One SGD step's knobs: `v = momentum·v + g + weight_decay·w; w -= lr·v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// The operations a model needs for inference and training. See the module docs for the
/// layout conventions. Implementations may queue work lazily; [`Backend::read`] and
/// [`Backend::sync`] wait for everything queued before them.
pub trait Backend: Send + Sync {
    /// A device buffer of `f32`.
    type Buf: Send + Sync;

    /// What runs the work, e.g. `"cpu (2 threads)"` or the wgpu adapter's name.
    fn describe(&self) -> String;
    /// Which kind of backend this is.
    fn kind(&self) -> BackendKind;

    /// A zero-filled buffer of `len` elements.
    fn zeros(&self, len: usize) -> Self::Buf;
    /// A buffer holding a copy of `data`.
    fn upload(&self, data: &[f32]) -> Self::Buf;
    /// Overwrite `buf` (same length) with `data`.
    fn write(&self, buf: &mut Self::Buf, data: &[f32]);
    /// Copy a buffer back to host memory (waits for queued work).
    fn read(&self, buf: &Self::Buf) -> Vec<f32>;
    /// Copy `src` into `dst` (same length).
    fn copy(&self, src: &Self::Buf, dst: &mut Self::Buf);
    /// Number of elements.
    fn len(&self, buf: &Self::Buf) -> usize;
    /// Wait until all queued work has finished (for timing).
    fn sync(&self);

    /// `c = op(a)·op(b) + beta·c` (beta 0 overwrites, 1 accumulates).
    fn gemm(&self, s: GemmShape, a: &Self::Buf, b: &Self::Buf, c: &mut Self::Buf, beta: f32);
    /// `x[r, j] += bias[j]` for a `[rows × cols]` matrix.
    fn bias_add(&self, x: &mut Self::Buf, bias: &Self::Buf, rows: usize, cols: usize);
    /// `db[j] = Σ_r dy[r, j]`: the bias gradient of a `[rows × cols]` output gradient.
    fn bias_grad(&self, dy: &Self::Buf, db: &mut Self::Buf, rows: usize, cols: usize);
    /// `x = max(x, 0)` in place.
    fn relu(&self, x: &mut Self::Buf);
    /// `dy *= (y > 0)` in place, where `y` is the ReLU's output.
    fn relu_backward(&self, y: &Self::Buf, dy: &mut Self::Buf);
    /// Unfold NHWC `x` into the `[rows × patch]` matrix `cols` (zero padding).
    fn im2col(&self, s: ConvShape, x: &Self::Buf, cols: &mut Self::Buf);
    /// Fold `dcols` back into `dx` (overwrites `dx`), summing overlapping patches:
    /// the adjoint of [`Backend::im2col`].
    fn col2im(&self, s: ConvShape, dcols: &Self::Buf, dx: &mut Self::Buf);
    /// Max pooling, NHWC.
    fn max_pool(&self, s: PoolShape, x: &Self::Buf, y: &mut Self::Buf);
    /// Gradient of max pooling: each output's gradient goes to the first input of its window
    /// (in row-major window order) equal to the output. Overwrites `dx`.
    fn max_pool_backward(
        &self,
        s: PoolShape,
        x: &Self::Buf,
        y: &Self::Buf,
        dy: &Self::Buf,
        dx: &mut Self::Buf,
    );
    /// Average pooling, NHWC.
    fn avg_pool(&self, s: PoolShape, x: &Self::Buf, y: &mut Self::Buf);
    /// Gradient of average pooling. Overwrites `dx`.
    fn avg_pool_backward(&self, s: PoolShape, dy: &Self::Buf, dx: &mut Self::Buf);
    /// Global average pooling `[n, hw, c] -> [n, c]`.
    fn global_avg_pool(&self, n: usize, hw: usize, c: usize, x: &Self::Buf, y: &mut Self::Buf);
    /// Gradient of global average pooling. Overwrites `dx`.
    fn global_avg_pool_backward(
        &self,
        n: usize,
        hw: usize,
        c: usize,
        dy: &Self::Buf,
        dx: &mut Self::Buf,
    );
    /// Softmax cross-entropy over `[n × classes]` logits with `f32` class labels.
    /// Writes the mean-loss gradient `(softmax - onehot) / n` to `grad` and each sample's
    /// loss to `loss` (`n` elements).
    fn softmax_xent(
        &self,
        n: usize,
        classes: usize,
        logits: &Self::Buf,
        labels: &Self::Buf,
        grad: &mut Self::Buf,
        loss: &mut Self::Buf,
    );
    /// SGD with momentum and L2 weight decay, in place (see [`SgdStep`]).
    fn sgd(&self, w: &mut Self::Buf, g: &Self::Buf, v: &mut Self::Buf, step: SgdStep);
}
