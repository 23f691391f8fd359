//! [`CpuBackend`]: the native backend, and the reference the GPU kernels are tested against.
//!
//! GEMM goes through `matrixmultiply`'s single-threaded sgemm, split into row (or column)
//! blocks over a rayon pool: we own the threading so that the single-threaded sgemm stays
//! available as the benchmark's yardstick in the same process. The other ops are simple
//! loops, parallel over rows where the work is large enough to pay for it.

use rayon::prelude::*;

use super::{Backend, BackendKind, ConvShape, GemmShape, PoolShape, SgdStep};

/// Below this many output elements an op runs on the calling thread.
const PAR_MIN: usize = 1 << 14;

/// Native CPU backend. Buffers are plain `Vec<f32>`.
pub struct CpuBackend {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl CpuBackend {
    /// A backend using `threads` worker threads (0: one per available core).
    pub fn new(threads: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tandem-cpu-{i}"))
            .build()
            .expect("creating the CPU backend's thread pool");
        Self { pool, threads }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new(0)
    }
}

/// Single-threaded `c = op(a)·op(b) + beta·c` with explicit strides, the building block the
/// backend parallelizes. Also used directly as the benchmark's sgemm yardstick.
pub fn sgemm_single(s: GemmShape, a: &[f32], b: &[f32], c: &mut [f32], beta: f32) {
    if s.m == 0 || s.n == 0 {
        return;
    }
    assert!(c.len() >= s.m * s.n, "gemm buffer too small");
    sgemm_rows(s, 0, a, b, &mut c[..s.m * s.n], beta);
}

/// Rows `r0..` of `c = op(a)·op(b) + beta·c`, as many as the block `c` holds (whole rows of
/// C, which is `n` wide): one single-threaded sgemm. A block of op(A)'s rows is a contiguous
/// slice of `a` when A is not transposed, else a column offset.
fn sgemm_rows(s: GemmShape, r0: usize, a: &[f32], b: &[f32], c: &mut [f32], beta: f32) {
    let (m, n, k) = (s.m, s.n, s.k);
    let rows = c.len() / n;
    // Row-major op(A) is m×k: element (i, p) at i*rsa + p*csa.
    let (rsa, csa, a_off) = if s.trans_a {
        (1, m as isize, r0)
    } else {
        (k as isize, 1, r0 * k)
    };
    let (rsb, csb) = if s.trans_b {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    assert!(
        r0 + rows <= m && a.len() >= m * k && b.len() >= k * n,
        "gemm buffer too small"
    );
    // SAFETY: the assert above bounds every index the strides can reach: rows of op(A)
    // below m, all of B, and the block `c` itself for C.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            k,
            n,
            1.0,
            a.as_ptr().add(a_off),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

impl CpuBackend {
    fn par_rows<F>(&self, data: &mut [f32], row_len: usize, f: F)
    where
        F: Fn(usize, &mut [f32]) + Send + Sync,
    {
        if data.len() < PAR_MIN || self.threads == 1 {
            data.chunks_mut(row_len)
                .enumerate()
                .for_each(|(i, r)| f(i, r));
        } else {
            let rows_per = (data.len() / row_len).div_ceil(self.threads * 4).max(1);
            self.pool.install(|| {
                data.par_chunks_mut(row_len * rows_per)
                    .enumerate()
                    .for_each(|(ci, chunk)| {
                        for (j, r) in chunk.chunks_mut(row_len).enumerate() {
                            f(ci * rows_per + j, r);
                        }
                    })
            });
        }
    }
}

impl Backend for CpuBackend {
    type Buf = Vec<f32>;

    fn describe(&self) -> String {
        format!("cpu ({} threads, matrixmultiply sgemm)", self.threads)
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn zeros(&self, len: usize) -> Vec<f32> {
        vec![0.0; len]
    }
    fn upload(&self, data: &[f32]) -> Vec<f32> {
        data.to_vec()
    }
    fn write(&self, buf: &mut Vec<f32>, data: &[f32]) {
        buf.copy_from_slice(data);
    }
    fn read(&self, buf: &Vec<f32>) -> Vec<f32> {
        buf.clone()
    }
    fn copy(&self, src: &Vec<f32>, dst: &mut Vec<f32>) {
        dst.copy_from_slice(src);
    }
    fn len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }
    fn sync(&self) {}

    fn gemm(&self, s: GemmShape, a: &Vec<f32>, b: &Vec<f32>, c: &mut Vec<f32>, beta: f32) {
        let (m, n, k) = (s.m, s.n, s.k);
        let work = m * n * k;
        if self.threads == 1 || work < 1 << 18 {
            return sgemm_single(s, a, b, &mut c[..m * n], beta);
        }
        // Split the output into row blocks, one GEMM each.
        let parts = self.threads.min(m.div_ceil(16)).max(1);
        let rows_per = m.div_ceil(parts);
        self.pool.install(|| {
            c[..m * n]
                .par_chunks_mut(rows_per * n)
                .enumerate()
                .for_each(|(bi, cb)| sgemm_rows(s, bi * rows_per, a, b, cb, beta))
        });
    }

    fn bias_add(&self, x: &mut Vec<f32>, bias: &Vec<f32>, rows: usize, cols: usize) {
        debug_assert_eq!(x.len(), rows * cols);
        self.par_rows(x, cols, |_, r| {
            for (v, b) in r.iter_mut().zip(bias) {
                *v += b;
            }
        });
    }

    fn bias_grad(&self, dy: &Vec<f32>, db: &mut Vec<f32>, rows: usize, cols: usize) {
        db.iter_mut().for_each(|v| *v = 0.0);
        for r in dy[..rows * cols].chunks_exact(cols) {
            for (d, g) in db.iter_mut().zip(r) {
                *d += g;
            }
        }
    }

    fn relu(&self, x: &mut Vec<f32>) {
        self.par_rows(x, 1024, |_, r| r.iter_mut().for_each(|v| *v = v.max(0.0)));
    }

    fn relu_backward(&self, y: &Vec<f32>, dy: &mut Vec<f32>) {
        self.par_rows(dy, 1024, |i, r| {
            let yr = &y[i * 1024..];
            for (d, &o) in r.iter_mut().zip(yr) {
                if o <= 0.0 {
                    *d = 0.0;
                }
            }
        });
    }

    fn im2col(&self, s: ConvShape, x: &Vec<f32>, cols: &mut Vec<f32>) {
        let (oh, ow, patch) = (s.oh(), s.ow(), s.patch());
        self.par_rows(&mut cols[..s.rows() * patch], patch, |row, out| {
            let (b, rem) = (row / (oh * ow), row % (oh * ow));
            let (oy, ox) = (rem / ow, rem % ow);
            for ky in 0..s.kh {
                let iy = (oy * s.stride + ky) as isize - s.pad as isize;
                for kx in 0..s.kw {
                    let ix = (ox * s.stride + kx) as isize - s.pad as isize;
                    let dst = &mut out[(ky * s.kw + kx) * s.c..][..s.c];
                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                        dst.fill(0.0);
                    } else {
                        let src = ((b * s.h + iy as usize) * s.w + ix as usize) * s.c;
                        dst.copy_from_slice(&x[src..src + s.c]);
                    }
                }
            }
        });
    }

    fn col2im(&self, s: ConvShape, dcols: &Vec<f32>, dx: &mut Vec<f32>) {
        let (oh, ow, patch) = (s.oh(), s.ow(), s.patch());
        // Parallel over images: patches of one image only write inside that image.
        let img = s.h * s.w * s.c;
        self.par_rows(&mut dx[..s.input_len()], img, |b, out| {
            out.fill(0.0);
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &dcols[((b * oh + oy) * ow + ox) * patch..][..patch];
                    for ky in 0..s.kh {
                        let iy = (oy * s.stride + ky) as isize - s.pad as isize;
                        if iy < 0 || iy >= s.h as isize {
                            continue;
                        }
                        for kx in 0..s.kw {
                            let ix = (ox * s.stride + kx) as isize - s.pad as isize;
                            if ix < 0 || ix >= s.w as isize {
                                continue;
                            }
                            let dst = &mut out[(iy as usize * s.w + ix as usize) * s.c..][..s.c];
                            let src = &row[(ky * s.kw + kx) * s.c..][..s.c];
                            for (d, v) in dst.iter_mut().zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        });
    }

    fn max_pool(&self, s: PoolShape, x: &Vec<f32>, y: &mut Vec<f32>) {
        let (oh, ow) = (s.oh(), s.ow());
        self.par_rows(&mut y[..s.output_len()], s.c, |pos, out| {
            let (b, rem) = (pos / (oh * ow), pos % (oh * ow));
            let (oy, ox) = (rem / ow, rem % ow);
            out.fill(f32::NEG_INFINITY);
            for ky in 0..s.k {
                for kx in 0..s.k {
                    let src = ((b * s.h + oy * s.stride + ky) * s.w + ox * s.stride + kx) * s.c;
                    for (o, &v) in out.iter_mut().zip(&x[src..src + s.c]) {
                        if v > *o {
                            *o = v;
                        }
                    }
                }
            }
        });
    }

    fn max_pool_backward(
        &self,
        s: PoolShape,
        x: &Vec<f32>,
        y: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) {
        let (oh, ow) = (s.oh(), s.ow());
        let img = s.h * s.w * s.c;
        self.par_rows(&mut dx[..s.input_len()], img, |b, out| {
            out.fill(0.0);
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = ((b * oh + oy) * ow + ox) * s.c;
                    for ch in 0..s.c {
                        let target = y[o + ch];
                        'win: for ky in 0..s.k {
                            for kx in 0..s.k {
                                let i =
                                    ((oy * s.stride + ky) * s.w + ox * s.stride + kx) * s.c + ch;
                                if x[b * img + i] == target {
                                    out[i] += dy[o + ch];
                                    break 'win;
                                }
                            }
                        }
                    }
                }
            }
        });
    }

    fn avg_pool(&self, s: PoolShape, x: &Vec<f32>, y: &mut Vec<f32>) {
        let (oh, ow) = (s.oh(), s.ow());
        let inv = 1.0 / (s.k * s.k) as f32;
        self.par_rows(&mut y[..s.output_len()], s.c, |pos, out| {
            let (b, rem) = (pos / (oh * ow), pos % (oh * ow));
            let (oy, ox) = (rem / ow, rem % ow);
            out.fill(0.0);
            for ky in 0..s.k {
                for kx in 0..s.k {
                    let src = ((b * s.h + oy * s.stride + ky) * s.w + ox * s.stride + kx) * s.c;
                    for (o, &v) in out.iter_mut().zip(&x[src..src + s.c]) {
                        *o += v;
                    }
                }
            }
            out.iter_mut().for_each(|o| *o *= inv);
        });
    }

    fn avg_pool_backward(&self, s: PoolShape, dy: &Vec<f32>, dx: &mut Vec<f32>) {
        let (oh, ow) = (s.oh(), s.ow());
        let inv = 1.0 / (s.k * s.k) as f32;
        let img = s.h * s.w * s.c;
        self.par_rows(&mut dx[..s.input_len()], img, |b, out| {
            out.fill(0.0);
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = &dy[((b * oh + oy) * ow + ox) * s.c..][..s.c];
                    for ky in 0..s.k {
                        for kx in 0..s.k {
                            let i = ((oy * s.stride + ky) * s.w + ox * s.stride + kx) * s.c;
                            for (d, v) in out[i..i + s.c].iter_mut().zip(g) {
                                *d += v * inv;
                            }
                        }
                    }
                }
            }
        });
    }

    fn global_avg_pool(&self, n: usize, hw: usize, c: usize, x: &Vec<f32>, y: &mut Vec<f32>) {
        let inv = 1.0 / hw as f32;
        for b in 0..n {
            let out = &mut y[b * c..(b + 1) * c];
            out.fill(0.0);
            for p in x[b * hw * c..(b + 1) * hw * c].chunks_exact(c) {
                for (o, v) in out.iter_mut().zip(p) {
                    *o += v;
                }
            }
            out.iter_mut().for_each(|o| *o *= inv);
        }
    }

    fn global_avg_pool_backward(
        &self,
        n: usize,
        hw: usize,
        c: usize,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) {
        let inv = 1.0 / hw as f32;
        self.par_rows(&mut dx[..n * hw * c], c, |pos, out| {
            let g = &dy[(pos / hw) * c..][..c];
            for (d, v) in out.iter_mut().zip(g) {
                *d = v * inv;
            }
        });
    }

    fn softmax_xent(
        &self,
        n: usize,
        classes: usize,
        logits: &Vec<f32>,
        labels: &Vec<f32>,
        grad: &mut Vec<f32>,
        loss: &mut Vec<f32>,
    ) {
        let inv_n = 1.0 / n as f32;
        for b in 0..n {
            let z = &logits[b * classes..(b + 1) * classes];
            let g = &mut grad[b * classes..(b + 1) * classes];
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for (gi, &zi) in g.iter_mut().zip(z) {
                *gi = (zi - max).exp();
                sum += *gi;
            }
            let label = labels[b] as usize;
            loss[b] = sum.ln() - (z[label] - max);
            for (j, gi) in g.iter_mut().enumerate() {
                let p = *gi / sum;
                *gi = (p - if j == label { 1.0 } else { 0.0 }) * inv_n;
            }
        }
    }

    fn sgd(&self, w: &mut Vec<f32>, g: &Vec<f32>, v: &mut Vec<f32>, step: SgdStep) {
        let SgdStep {
            lr,
            momentum,
            weight_decay,
        } = step;
        for ((wi, &gi), vi) in w.iter_mut().zip(g).zip(v.iter_mut()) {
            *vi = momentum * *vi + gi + weight_decay * *wi;
            *wi -= lr * *vi;
        }
    }
}
