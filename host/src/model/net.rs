//! [`Model`]: the CNN's weights and activations on a backend, with forward, backward and
//! SGD steps. Activations are cached per (batch, height, width) and reused across steps.

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use super::arch::{Arch, LAYER_GROUPS};
use crate::compute::{Backend, ConvShape, GemmShape, PoolShape, SgdStep};
use crate::data::normal;

/// One layer group's parameters, their gradients and momentum.
pub(crate) struct Layer<B: Backend> {
    pub(crate) fan_in: usize,
    pub(crate) fan_out: usize,
    pub(crate) w: B::Buf,
    pub(crate) b: B::Buf,
    gw: B::Buf,
    gb: B::Buf,
    vw: B::Buf,
    vb: B::Buf,
}

/// Buffers for one batch shape.
struct Workspace<B: Backend> {
    n: usize,
    h: usize,
    w: usize,
    x: B::Buf,
    labels: B::Buf,
    conv: [ConvShape; 3],
    pool: [PoolShape; 2],
    cols: [B::Buf; 3],
    /// Post-ReLU convolution outputs.
    act: [B::Buf; 3],
    /// Pooled outputs of conv1 and conv2 (the inputs of conv2 and conv3).
    pooled: [B::Buf; 2],
    gap: B::Buf,
    hidden: B::Buf,
    logits: B::Buf,
    dlogits: B::Buf,
    loss: B::Buf,
    dhidden: B::Buf,
    dgap: B::Buf,
    dact: [B::Buf; 3],
    dcols: [B::Buf; 3],
    dpooled: [B::Buf; 2],
}

/// What a [`Model`] holds on its backend, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModelBytes {
    /// Weights and biases.
    pub weights: u64,
    /// Their gradients and momentum (every layer has them, trained or not).
    pub optimizer: u64,
    /// The activations and gradients of the batch shape last run (none before the first).
    pub workspace: u64,
}

/// A batch's shape: `n` NHWC images of `h`×`w`.
pub type Shape = (usize, usize, usize);

/// The CNN on backend `B`.
pub struct Model<B: Backend> {
    arch: Arch,
    pub(crate) layers: Vec<Layer<B>>,
    ws: Option<Workspace<B>>,
}

impl<B: Backend> std::fmt::Debug for Model<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.arch)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Model<B> {
    /// A freshly initialized model (He-normal weights, zero biases) from `seed`.
    pub fn new(backend: &B, arch: Arch, seed: u64) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let layers = arch
            .weight_shapes()
            .iter()
            .map(|&(fan_in, fan_out)| {
                let std = (2.0 / fan_in as f32).sqrt();
                let w: Vec<f32> = (0..fan_in * fan_out)
                    .map(|_| std * normal(&mut rng))
                    .collect();
                Layer::from_host(backend, fan_in, fan_out, &w, &vec![0.0; fan_out])
            })
            .collect();
        Self {
            arch,
            layers,
            ws: None,
        }
    }

    pub(crate) fn from_layers(arch: Arch, layers: Vec<Layer<B>>) -> Self {
        Self {
            arch,
            layers,
            ws: None,
        }
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// A copy of this model on the same backend (weights only; fresh momentum).
    pub fn duplicate(&self, backend: &B) -> Self {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Layer::from_host(
                    backend,
                    l.fan_in,
                    l.fan_out,
                    &backend.read(&l.w),
                    &backend.read(&l.b),
                )
            })
            .collect();
        Self::from_layers(self.arch, layers)
    }

    /// A copy whose head (hidden layer and classifier) is replaced by a fresh one of
    /// `hidden` units (seeded), keeping the convolutions: Ekya's "head only, hidden N"
    /// configurations. With the same width this is [`Model::duplicate`].
    pub fn with_head(&self, backend: &B, hidden: usize, seed: u64) -> Self {
        if hidden == self.arch.hidden {
            return self.duplicate(backend);
        }
        let arch = Arch {
            hidden,
            ..self.arch
        };
        let fresh = Model::new(backend, arch, seed);
        let mut layers = self.duplicate(backend).layers;
        layers.truncate(3);
        layers.extend(fresh.layers.into_iter().skip(3));
        Self::from_layers(arch, layers)
    }

    /// Reset the momentum buffers (a new retraining job starts from rest).
    pub fn reset_momentum(&mut self, backend: &B) {
        for l in &mut self.layers {
            l.vw = backend.zeros(l.fan_in * l.fan_out);
            l.vb = backend.zeros(l.fan_out);
        }
    }

    /// Allocate the workspace for batches of `shape` now rather than at the first pass (a
    /// stream waking up times it apart from its first inference).
    pub fn prepare(&mut self, backend: &B, (n, h, w): Shape) {
        self.workspace(backend, n, h, w);
    }

    /// Bytes this model holds on its backend.
    pub fn bytes(&self, backend: &B) -> ModelBytes {
        let len = |b: &B::Buf| 4 * backend.len(b) as u64;
        let sum = |f: &dyn Fn(&Layer<B>) -> u64| self.layers.iter().map(f).sum::<u64>();
        ModelBytes {
            weights: sum(&|l| len(&l.w) + len(&l.b)),
            optimizer: sum(&|l| len(&l.gw) + len(&l.gb) + len(&l.vw) + len(&l.vb)),
            workspace: self.ws.as_ref().map_or(0, |ws| ws.bytes(backend)),
        }
    }

    fn workspace(&mut self, backend: &B, n: usize, h: usize, w: usize) -> &mut Workspace<B> {
        let fits = matches!(&self.ws, Some(ws) if ws.n == n && ws.h == h && ws.w == w);
        if !fits {
            self.ws = Some(Workspace::new(backend, &self.arch, n, h, w));
        }
        self.ws.as_mut().expect("workspace just created")
    }

    /// Run the forward pass on `n` NHWC images of `h`×`w`; the logits stay on the device.
    // Indexing by layer keeps the conv blocks' parallel arrays (shapes, buffers) in step.
    #[allow(clippy::needless_range_loop)]
    fn forward(&mut self, backend: &B, images: &[f32], n: usize, h: usize, w: usize) {
        assert!(h >= 4 && w >= 4, "input must be at least 4x4, got {h}x{w}");
        let arch = self.arch;
        let layers = &self.layers;
        let fits = matches!(&self.ws, Some(ws) if ws.n == n && ws.h == h && ws.w == w);
        if !fits {
            self.ws = Some(Workspace::new(backend, &arch, n, h, w));
        }
        let ws = self.ws.as_mut().expect("workspace");
        backend.write(&mut ws.x, images);
        for i in 0..3 {
            let s = ws.conv[i];
            let input = if i == 0 { &ws.x } else { &ws.pooled[i - 1] };
            backend.im2col(s, input, &mut ws.cols[i]);
            dense_forward(backend, &layers[i], s.rows(), &ws.cols[i], &mut ws.act[i]);
            backend.relu(&mut ws.act[i]);
            if i < 2 {
                backend.max_pool(ws.pool[i], &ws.act[i], &mut ws.pooled[i]);
            }
        }
        let s3 = ws.conv[2];
        let c3 = arch.channels[2];
        backend.global_avg_pool(n, s3.oh() * s3.ow(), c3, &ws.act[2], &mut ws.gap);
        dense_forward(backend, &layers[3], n, &ws.gap, &mut ws.hidden);
        backend.relu(&mut ws.hidden);
        dense_forward(backend, &layers[4], n, &ws.hidden, &mut ws.logits);
    }

    /// Logits `[n × classes]` for `n` NHWC images of `h`×`w`.
    pub fn logits(&mut self, backend: &B, images: &[f32], (n, h, w): Shape) -> Vec<f32> {
        self.forward(backend, images, n, h, w);
        backend.read(&self.ws.as_ref().expect("workspace").logits)
    }

    /// Predicted class of each of `n` images.
    pub fn predict(&mut self, backend: &B, images: &[f32], shape: Shape) -> Vec<u8> {
        let classes = self.arch.classes;
        self.logits(backend, images, shape)
            .chunks_exact(classes)
            .map(|z| argmax(z) as u8)
            .collect()
    }

    /// One SGD step on a batch, training the last `trained` layer groups. Returns the mean
    /// loss of the batch (before the step).
    pub fn train_step(
        &mut self,
        backend: &B,
        images: &[f32],
        labels: &[f32],
        (n, h, w): Shape,
        trained: usize,
        step: SgdStep,
    ) -> f32 {
        let first = LAYER_GROUPS.len() - trained.clamp(1, LAYER_GROUPS.len());
        self.forward(backend, images, n, h, w);
        let classes = self.arch.classes;
        let c3 = self.arch.channels[2];
        self.workspace(backend, n, h, w);
        let ws = self.ws.as_mut().expect("workspace");
        let layers = &mut self.layers;
        backend.write(&mut ws.labels, labels);
        backend.softmax_xent(
            n,
            classes,
            &ws.logits,
            &ws.labels,
            &mut ws.dlogits,
            &mut ws.loss,
        );

        // Classifier.
        dense_backward(backend, &mut layers[4], n, &ws.hidden, &ws.dlogits);
        if first <= 3 {
            dense_input_grad(backend, &layers[4], n, &ws.dlogits, &mut ws.dhidden);
            backend.relu_backward(&ws.hidden, &mut ws.dhidden);
            dense_backward(backend, &mut layers[3], n, &ws.gap, &ws.dhidden);
        }
        if first <= 2 {
            dense_input_grad(backend, &layers[3], n, &ws.dhidden, &mut ws.dgap);
            let s3 = ws.conv[2];
            backend.global_avg_pool_backward(n, s3.oh() * s3.ow(), c3, &ws.dgap, &mut ws.dact[2]);
        }
        // Convolutions, top down: dact[i] holds the gradient of conv i's post-ReLU output.
        for i in (first..3).rev() {
            let s = ws.conv[i];
            backend.relu_backward(&ws.act[i], &mut ws.dact[i]);
            dense_backward(backend, &mut layers[i], s.rows(), &ws.cols[i], &ws.dact[i]);
            if i > first {
                dense_input_grad(backend, &layers[i], s.rows(), &ws.dact[i], &mut ws.dcols[i]);
                backend.col2im(s, &ws.dcols[i], &mut ws.dpooled[i - 1]);
                backend.max_pool_backward(
                    ws.pool[i - 1],
                    &ws.act[i - 1],
                    &ws.pooled[i - 1],
                    &ws.dpooled[i - 1],
                    &mut ws.dact[i - 1],
                );
            }
        }
        for l in &mut layers[first..] {
            backend.sgd(&mut l.w, &l.gw, &mut l.vw, step);
            // No weight decay on biases.
            let bias_step = SgdStep {
                weight_decay: 0.0,
                ..step
            };
            backend.sgd(&mut l.b, &l.gb, &mut l.vb, bias_step);
        }
        let loss = backend.read(&ws.loss);
        loss.iter().sum::<f32>() / n as f32
    }
}

/// `y = x·W + b` for `rows` rows of input `x` (a convolution's are its im2col columns).
fn dense_forward<B: Backend>(backend: &B, l: &Layer<B>, rows: usize, x: &B::Buf, y: &mut B::Buf) {
    let shape = gemm(rows, l.fan_out, l.fan_in, false, false);
    backend.gemm(shape, x, &l.w, y, 0.0);
    backend.bias_add(y, &l.b, rows, l.fan_out);
}

/// The input gradient of `y = x·W + b` for `rows` rows: `dx = dy·Wᵀ` (a convolution's
/// is over its im2col columns).
fn dense_input_grad<B: Backend>(
    backend: &B,
    l: &Layer<B>,
    rows: usize,
    dy: &B::Buf,
    dx: &mut B::Buf,
) {
    let shape = gemm(rows, l.fan_in, l.fan_out, false, true);
    backend.gemm(shape, dy, &l.w, dx, 0.0);
}

/// Weight and bias gradients of `y = x·W + b` for `rows` rows of input `x`.
fn dense_backward<B: Backend>(backend: &B, l: &mut Layer<B>, rows: usize, x: &B::Buf, dy: &B::Buf) {
    let shape = gemm(l.fan_in, l.fan_out, rows, true, false);
    backend.gemm(shape, x, dy, &mut l.gw, 0.0);
    backend.bias_grad(dy, &mut l.gb, rows, l.fan_out);
}

impl<B: Backend> Layer<B> {
    pub(crate) fn from_host(
        backend: &B,
        fan_in: usize,
        fan_out: usize,
        w: &[f32],
        b: &[f32],
    ) -> Self {
        Self {
            fan_in,
            fan_out,
            w: backend.upload(w),
            b: backend.upload(b),
            gw: backend.zeros(fan_in * fan_out),
            gb: backend.zeros(fan_out),
            vw: backend.zeros(fan_in * fan_out),
            vb: backend.zeros(fan_out),
        }
    }
}

impl<B: Backend> Workspace<B> {
    fn bytes(&self, be: &B) -> u64 {
        let single = [
            &self.x,
            &self.labels,
            &self.gap,
            &self.hidden,
            &self.logits,
            &self.dlogits,
            &self.loss,
            &self.dhidden,
            &self.dgap,
        ];
        let per_layer = [&self.cols, &self.act, &self.dact, &self.dcols];
        let per_pool = [&self.pooled, &self.dpooled];
        let elems: usize = single.iter().map(|b| be.len(b)).sum::<usize>()
            + per_layer
                .iter()
                .flat_map(|a| a.iter())
                .map(|b| be.len(b))
                .sum::<usize>()
            + per_pool
                .iter()
                .flat_map(|a| a.iter())
                .map(|b| be.len(b))
                .sum::<usize>();
        4 * elems as u64
    }

    fn new(backend: &B, arch: &Arch, n: usize, h: usize, w: usize) -> Self {
        let [c1, c2, c3] = arch.channels;
        let conv_at = |h, w, c| ConvShape {
            n,
            h,
            w,
            c,
            kh: 3,
            kw: 3,
            stride: 1,
            pad: 1,
        };
        let pool_at = |h, w, c| PoolShape {
            n,
            h,
            w,
            c,
            k: 2,
            stride: 2,
        };
        let conv0 = conv_at(h, w, arch.in_channels);
        let pool0 = pool_at(h, w, c1);
        let conv1 = conv_at(pool0.oh(), pool0.ow(), c1);
        let pool1 = pool_at(conv1.oh(), conv1.ow(), c2);
        let conv2 = conv_at(pool1.oh(), pool1.ow(), c2);
        let conv = [conv0, conv1, conv2];
        let pool = [pool0, pool1];
        let outs = [c1, c2, c3];
        let z = |len| backend.zeros(len);
        Self {
            n,
            h,
            w,
            x: z(n * h * w * arch.in_channels),
            labels: z(n),
            conv,
            pool,
            cols: conv.map(|s| z(s.rows() * s.patch())),
            act: [0, 1, 2].map(|i| z(conv[i].rows() * outs[i])),
            pooled: pool.map(|p| z(p.output_len())),
            gap: z(n * c3),
            hidden: z(n * arch.hidden),
            logits: z(n * arch.classes),
            dlogits: z(n * arch.classes),
            loss: z(n),
            dhidden: z(n * arch.hidden),
            dgap: z(n * c3),
            dact: [0, 1, 2].map(|i| z(conv[i].rows() * outs[i])),
            dcols: conv.map(|s| z(s.rows() * s.patch())),
            dpooled: pool.map(|p| z(p.output_len())),
        }
    }
}

fn gemm(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> GemmShape {
    GemmShape {
        m,
        n,
        k,
        trans_a,
        trans_b,
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(z: &[f32]) -> usize {
    z.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}
