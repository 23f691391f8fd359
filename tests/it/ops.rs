//! Every WGSL kernel against the CPU backend, on shapes that span several workgroups and
//! have odd sizes, plus the buffer ops (upload, write, copy, read) and their ordering.

use tandem::compute::cpu::CpuBackend;
use tandem::compute::{Backend, ConvShape, GemmShape, PoolShape, SgdStep};
use tandem::gpu::GemmVariant;

use crate::support::{Rng, assert_close, gpu};

const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-4;

fn cpu() -> CpuBackend {
    CpuBackend::new(1)
}

#[test]
fn gemm_matches_cpu_for_all_transposes_betas_and_variants() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(1);
    // 67×130 spans 2×3 output tiles of 64 and k = 45 three 16-deep slices, none of them full.
    let (m, n, k) = (67, 130, 45);
    let a = rng.vec(m * k);
    let b = rng.vec(k * n);
    let c0 = rng.vec(m * n);
    let (ga, gb) = (g.upload(&a), g.upload(&b));
    for variant in [GemmVariant::Tiled, GemmVariant::Register] {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            for beta in [0.0, 1.0] {
                let s = GemmShape {
                    m,
                    n,
                    k,
                    trans_a,
                    trans_b,
                };
                let mut want = c0.clone();
                c.gemm(s, &a, &b, &mut want, beta);
                // With beta 0 the kernel must not read c: start from NaN to prove it.
                let start = if beta == 0.0 {
                    vec![f32::NAN; m * n]
                } else {
                    c0.clone()
                };
                let mut gc = g.upload(&start);
                g.gemm_with(variant, s, &ga, &gb, &mut gc, beta);
                let what = format!("gemm {variant:?} ta={trans_a} tb={trans_b} beta={beta}");
                assert_close(&what, &g.read(&gc), &want, RTOL, ATOL);
            }
        }
    }
}

#[test]
fn gemm_handles_tiny_and_degenerate_shapes() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(2);
    for (m, n, k) in [(1, 1, 1), (1, 70, 3), (65, 1, 17), (3, 5, 0)] {
        let s = GemmShape {
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
        };
        let (a, b) = (rng.vec(m * k), rng.vec(k * n));
        let mut want = vec![0.0; m * n];
        c.gemm(s, &a, &b, &mut want, 0.0);
        for variant in [GemmVariant::Tiled, GemmVariant::Register] {
            let mut gc = g.upload(&vec![1.0; m * n]);
            g.gemm_with(variant, s, &g.upload(&a), &g.upload(&b), &mut gc, 0.0);
            assert_close(
                &format!("gemm {variant:?} {m}x{n}x{k}"),
                &g.read(&gc),
                &want,
                RTOL,
                ATOL,
            );
        }
    }
}

#[test]
fn bias_add_and_bias_grad_match_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(3);
    // 300 rows: bias_grad's 256 invocations per column each sum more than one row.
    let (rows, cols) = (300, 37);
    let x = rng.vec(rows * cols);
    let bias = rng.vec(cols);
    let mut want = x.clone();
    c.bias_add(&mut want, &bias, rows, cols);
    let mut gx = g.upload(&x);
    g.bias_add(&mut gx, &g.upload(&bias), rows, cols);
    assert_close("bias_add", &g.read(&gx), &want, RTOL, ATOL);

    let mut want = vec![0.0; cols];
    c.bias_grad(&x, &mut want, rows, cols);
    let mut gdb = g.upload(&vec![f32::NAN; cols]);
    g.bias_grad(&g.upload(&x), &mut gdb, rows, cols);
    assert_close("bias_grad", &g.read(&gdb), &want, RTOL, ATOL);
}

#[test]
fn relu_and_relu_backward_match_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(4);
    let x = rng.vec(1000);
    let mut y = x.clone();
    c.relu(&mut y);
    let mut gy = g.upload(&x);
    g.relu(&mut gy);
    assert_close("relu", &g.read(&gy), &y, 0.0, 0.0);

    let dy = rng.vec(1000);
    let mut want = dy.clone();
    c.relu_backward(&y, &mut want);
    let mut gdy = g.upload(&dy);
    g.relu_backward(&gy, &mut gdy);
    assert_close("relu_backward", &g.read(&gdy), &want, 0.0, 0.0);
}

#[test]
fn elementwise_kernels_cover_grids_past_the_workgroup_limit() {
    let Some(g) = gpu() else { return };
    // More than 65,535 workgroups of 256: the grid wraps into a second dimension.
    let len = 65_535 * 256 + 1000;
    let x: Vec<f32> = (0..len)
        .map(|i| if i % 3 == 0 { -1.0 } else { i as f32 })
        .collect();
    let mut gx = g.upload(&x);
    g.relu(&mut gx);
    let got = g.read(&gx);
    let bad = (0..len).find(|&i| got[i] != x[i].max(0.0));
    assert_eq!(bad, None, "relu over {len} elements");
}

fn conv_shapes() -> Vec<ConvShape> {
    let s = |n, h, w, c, kh, kw, stride, pad| ConvShape {
        n,
        h,
        w,
        c,
        kh,
        kw,
        stride,
        pad,
    };
    vec![
        s(2, 7, 9, 3, 3, 3, 1, 1),
        s(2, 9, 7, 5, 3, 3, 2, 0),
        s(1, 8, 8, 4, 2, 2, 2, 0),
        s(3, 11, 5, 2, 3, 2, 2, 1),
        s(1, 6, 6, 1, 5, 5, 1, 2),
    ]
}

#[test]
fn im2col_and_col2im_match_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(5);
    for s in conv_shapes() {
        let x = rng.vec(s.input_len());
        let mut want = vec![0.0; s.rows() * s.patch()];
        c.im2col(s, &x, &mut want);
        let mut gcols = g.upload(&vec![f32::NAN; want.len()]);
        g.im2col(s, &g.upload(&x), &mut gcols);
        assert_close(&format!("im2col {s:?}"), &g.read(&gcols), &want, 0.0, 0.0);

        let dcols = rng.vec(s.rows() * s.patch());
        let mut want = vec![0.0; s.input_len()];
        c.col2im(s, &dcols, &mut want);
        let mut gdx = g.upload(&vec![f32::NAN; want.len()]);
        g.col2im(s, &g.upload(&dcols), &mut gdx);
        assert_close(&format!("col2im {s:?}"), &g.read(&gdx), &want, RTOL, ATOL);
    }
}

fn pool_shapes() -> Vec<PoolShape> {
    let s = |n, h, w, c, k, stride| PoolShape {
        n,
        h,
        w,
        c,
        k,
        stride,
    };
    vec![
        s(2, 8, 8, 3, 2, 2),
        s(2, 7, 9, 3, 2, 2),
        s(1, 7, 6, 4, 3, 1),
        s(3, 9, 11, 2, 3, 2),
    ]
}

#[test]
fn max_pool_and_backward_match_cpu_including_ties() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(6);
    for s in pool_shapes() {
        // Values from {0, 1, 2}: many ties, so the first-in-window rule is exercised.
        for ties in [false, true] {
            let x: Vec<f32> = if ties {
                (0..s.input_len()).map(|_| rng.below(3) as f32).collect()
            } else {
                rng.vec(s.input_len())
            };
            let mut y = vec![0.0; s.output_len()];
            c.max_pool(s, &x, &mut y);
            let gxb = g.upload(&x);
            let mut gy = g.zeros(s.output_len());
            g.max_pool(s, &gxb, &mut gy);
            assert_close(&format!("max_pool {s:?}"), &g.read(&gy), &y, 0.0, 0.0);

            let dy = rng.vec(s.output_len());
            let mut want = vec![0.0; s.input_len()];
            c.max_pool_backward(s, &x, &y, &dy, &mut want);
            let mut gdx = g.upload(&vec![f32::NAN; s.input_len()]);
            g.max_pool_backward(s, &gxb, &gy, &g.upload(&dy), &mut gdx);
            let what = format!("max_pool_backward ties={ties} {s:?}");
            assert_close(&what, &g.read(&gdx), &want, RTOL, ATOL);
        }
    }
}

#[test]
fn avg_pool_and_backward_match_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(7);
    for s in pool_shapes() {
        let x = rng.vec(s.input_len());
        let mut want = vec![0.0; s.output_len()];
        c.avg_pool(s, &x, &mut want);
        let mut gy = g.zeros(s.output_len());
        g.avg_pool(s, &g.upload(&x), &mut gy);
        assert_close(&format!("avg_pool {s:?}"), &g.read(&gy), &want, RTOL, ATOL);

        let dy = rng.vec(s.output_len());
        let mut want = vec![0.0; s.input_len()];
        c.avg_pool_backward(s, &dy, &mut want);
        let mut gdx = g.upload(&vec![f32::NAN; s.input_len()]);
        g.avg_pool_backward(s, &g.upload(&dy), &mut gdx);
        assert_close(
            &format!("avg_pool_backward {s:?}"),
            &g.read(&gdx),
            &want,
            RTOL,
            ATOL,
        );
    }
}

#[test]
fn global_avg_pool_and_backward_match_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(8);
    let (n, hw, ch) = (3, 49, 90);
    let x = rng.vec(n * hw * ch);
    let mut want = vec![0.0; n * ch];
    c.global_avg_pool(n, hw, ch, &x, &mut want);
    let mut gy = g.zeros(n * ch);
    g.global_avg_pool(n, hw, ch, &g.upload(&x), &mut gy);
    assert_close("global_avg_pool", &g.read(&gy), &want, RTOL, ATOL);

    let dy = rng.vec(n * ch);
    let mut want = vec![0.0; n * hw * ch];
    c.global_avg_pool_backward(n, hw, ch, &dy, &mut want);
    let mut gdx = g.zeros(n * hw * ch);
    g.global_avg_pool_backward(n, hw, ch, &g.upload(&dy), &mut gdx);
    assert_close("global_avg_pool_backward", &g.read(&gdx), &want, RTOL, ATOL);
}

#[test]
fn softmax_xent_matches_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(9);
    // 300 samples: two workgroups, the second partly idle.
    let (n, classes) = (300, 10);
    let logits: Vec<f32> = (0..n * classes).map(|_| rng.uniform(-8.0, 8.0)).collect();
    let labels: Vec<f32> = (0..n).map(|_| rng.below(classes) as f32).collect();
    let (mut grad, mut loss) = (vec![0.0; n * classes], vec![0.0; n]);
    c.softmax_xent(n, classes, &logits, &labels, &mut grad, &mut loss);
    let (mut ggrad, mut gloss) = (g.zeros(n * classes), g.zeros(n));
    g.softmax_xent(
        n,
        classes,
        &g.upload(&logits),
        &g.upload(&labels),
        &mut ggrad,
        &mut gloss,
    );
    assert_close("softmax_xent grad", &g.read(&ggrad), &grad, 1e-3, 1e-6);
    assert_close("softmax_xent loss", &g.read(&gloss), &loss, RTOL, ATOL);
}

#[test]
fn sgd_matches_cpu() {
    let Some(g) = gpu() else { return };
    let c = cpu();
    let mut rng = Rng::new(10);
    let len = 1000;
    let (w0, grad, v0) = (rng.vec(len), rng.vec(len), rng.vec(len));
    let (mut w, mut v) = (w0.clone(), v0.clone());
    let (mut gw, gg, mut gv) = (g.upload(&w0), g.upload(&grad), g.upload(&v0));
    // Two steps: the second reads the velocity the first wrote.
    for _ in 0..2 {
        let step = SgdStep {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
        };
        c.sgd(&mut w, &grad, &mut v, step);
        g.sgd(&mut gw, &gg, &mut gv, step);
    }
    assert_close("sgd w", &g.read(&gw), &w, RTOL, ATOL);
    assert_close("sgd v", &g.read(&gv), &v, RTOL, ATOL);
}

#[test]
fn buffer_ops_round_trip_and_keep_program_order() {
    let Some(g) = gpu() else { return };
    let data: Vec<f32> = (0..777).map(|i| i as f32 - 300.0).collect();
    let mut x = g.upload(&data);
    assert_eq!(g.len(&x), 777);
    assert_eq!(g.read(&x), data);
    assert_eq!(g.read(&g.zeros(5)), vec![0.0; 5]);
    assert_eq!(g.read(&g.zeros(0)), Vec::<f32>::new());

    // A write recorded after a queued kernel must land after it, not before.
    g.relu(&mut x);
    let fresh: Vec<f32> = (0..777).map(|i| -(i as f32)).collect();
    g.write(&mut x, &fresh);
    assert_eq!(g.read(&x), fresh);

    // A copy sees the source as of its place in the queue.
    let mut y = g.zeros(777);
    g.copy(&x, &mut y);
    g.relu(&mut x);
    assert_eq!(g.read(&y), fresh);
    assert_eq!(g.read(&x), vec![0.0; 777]);
    g.sync();
}

/// Prints 1024³ GEMM GFLOP/s for each kernel variant on this adapter. Slow on lavapipe
/// (seconds per GEMM): `cargo test --test it gemm_gflops -- --ignored --nocapture`.
#[test]
#[ignore]
fn gemm_gflops_per_variant() {
    let Some(g) = gpu() else { return };
    let n = 1024;
    for variant in [GemmVariant::Tiled, GemmVariant::Register] {
        let gflops = tandem::gpu::gemm_gflops(g, variant, n, 2).expect("gemm benchmark");
        eprintln!(
            "{}: gemm {variant:?} {n}x{n}x{n} f32: {gflops:.2} GFLOP/s",
            g.describe()
        );
    }
}
