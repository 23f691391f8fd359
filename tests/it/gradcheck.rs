//! The CPU backend's backward ops against central finite differences.
//!
//! Each check builds a scalar `L = Σ r ⊙ f(x)` with a fixed random `r` (accumulated in
//! f64), takes the analytic gradient from the backward op applied to `r`, and compares it
//! with `(L(x + eps) - L(x - eps)) / 2eps` per input element. Inputs keep away from ReLU's
//! kink and from max-pool ties so the function is smooth within `eps`.

use tandem::compute::cpu::CpuBackend;
use tandem::compute::{Backend, ConvShape, GemmShape, PoolShape};

use crate::support::Rng;

const EPS: f32 = 1e-2;

fn cpu() -> CpuBackend {
    CpuBackend::new(1)
}

fn dot(r: &[f32], y: &[f32]) -> f64 {
    r.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Central differences of `f` at `x`, one element at a time.
fn numeric_grad(x: &[f32], eps: f32, f: impl Fn(&[f32]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + eps;
            let up = f(&x);
            x[i] = orig - eps;
            let down = f(&x);
            x[i] = orig;
            // The step actually taken, after f32 rounding of orig ± eps.
            (up - down) / ((orig + eps) as f64 - (orig - eps) as f64)
        })
        .collect()
}

fn assert_grad(what: &str, analytic: &[f32], numeric: &[f64]) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: length");
    for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        let err = (a as f64 - n).abs();
        assert!(
            err <= 2e-3 + 1e-2 * n.abs(),
            "{what}: element {i}: analytic {a}, numeric {n}"
        );
    }
}

#[test]
fn gemm_gradients_for_all_transposes() {
    let c = cpu();
    let mut rng = Rng::new(11);
    let (m, n, k) = (5, 4, 3);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let s = GemmShape {
            m,
            n,
            k,
            trans_a: ta,
            trans_b: tb,
        };
        let (a, b, r) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
        let loss = |a: &[f32], b: &[f32]| {
            let mut y = vec![0.0; m * n];
            c.gemm(s, &a.to_vec(), &b.to_vec(), &mut y, 0.0);
            dot(&r, &y)
        };
        let gemm = |m, n, k, trans_a, trans_b, x: &Vec<f32>, y: &Vec<f32>| {
            let mut out = vec![0.0; m * n];
            let s = GemmShape {
                m,
                n,
                k,
                trans_a,
                trans_b,
            };
            c.gemm(s, x, y, &mut out, 0.0);
            out
        };
        // dop(A) = dC·op(B)ᵀ and dop(B) = op(A)ᵀ·dC, stored transposed where A or B is.
        let da = if ta {
            gemm(k, m, n, tb, true, &b, &r)
        } else {
            gemm(m, k, n, false, !tb, &r, &b)
        };
        let db = if tb {
            gemm(n, k, m, true, ta, &r, &a)
        } else {
            gemm(k, n, m, !ta, false, &a, &r)
        };
        let what = format!("gemm ta={ta} tb={tb}");
        assert_grad(
            &format!("{what} dA"),
            &da,
            &numeric_grad(&a, EPS, |a| loss(a, &b)),
        );
        assert_grad(
            &format!("{what} dB"),
            &db,
            &numeric_grad(&b, EPS, |b| loss(&a, b)),
        );
    }
}

#[test]
fn bias_gradient() {
    let c = cpu();
    let mut rng = Rng::new(12);
    let (rows, cols) = (6, 5);
    let (x, bias, r) = (rng.vec(rows * cols), rng.vec(cols), rng.vec(rows * cols));
    let mut db = vec![0.0; cols];
    c.bias_grad(&r, &mut db, rows, cols);
    let numeric = numeric_grad(&bias, EPS, |bias| {
        let mut y = x.clone();
        c.bias_add(&mut y, &bias.to_vec(), rows, cols);
        dot(&r, &y)
    });
    assert_grad("bias", &db, &numeric);
}

#[test]
fn relu_gradient() {
    let c = cpu();
    let mut rng = Rng::new(13);
    // |x| >= 0.1 > eps: no element crosses the kink when perturbed.
    let x: Vec<f32> = (0..40)
        .map(|_| {
            let v = rng.uniform(0.1, 1.0);
            if rng.below(2) == 0 { v } else { -v }
        })
        .collect();
    let r = rng.vec(x.len());
    let mut y = x.clone();
    c.relu(&mut y);
    let mut dx = r.clone();
    c.relu_backward(&y, &mut dx);
    let numeric = numeric_grad(&x, EPS, |x| {
        let mut y = x.to_vec();
        c.relu(&mut y);
        dot(&r, &y)
    });
    assert_grad("relu", &dx, &numeric);
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let c = cpu();
    let mut rng = Rng::new(14);
    let shapes = [
        (2, 5, 6, 3, 3, 3, 1, 1),
        (1, 7, 5, 2, 3, 3, 2, 0),
        (2, 6, 6, 2, 2, 3, 2, 1),
    ];
    for (n, h, w, ch, kh, kw, stride, pad) in shapes {
        let s = ConvShape {
            n,
            h,
            w,
            c: ch,
            kh,
            kw,
            stride,
            pad,
        };
        let x = rng.vec(s.input_len());
        let r = rng.vec(s.rows() * s.patch());
        let mut cols = vec![0.0; r.len()];
        c.im2col(s, &x, &mut cols);
        let mut dx = vec![0.0; x.len()];
        c.col2im(s, &r, &mut dx);
        // <im2col(x), r> = <x, col2im(r)>, and col2im(r) is the gradient of the left side.
        let (lhs, rhs) = (dot(&r, &cols), dot(&x, &dx));
        assert!(
            (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
            "{s:?}: {lhs} vs {rhs}"
        );
        let numeric = numeric_grad(&x, EPS, |x| {
            let mut cols = vec![0.0; r.len()];
            c.im2col(s, &x.to_vec(), &mut cols);
            dot(&r, &cols)
        });
        assert_grad(&format!("im2col {s:?}"), &dx, &numeric);
    }
}

fn pool_shapes() -> [PoolShape; 3] {
    let s = |n, h, w, c, k, stride| PoolShape {
        n,
        h,
        w,
        c,
        k,
        stride,
    };
    [
        s(1, 5, 7, 2, 2, 2),
        s(2, 5, 5, 2, 3, 1),
        s(1, 7, 6, 3, 3, 2),
    ]
}

#[test]
fn max_pool_gradient() {
    let c = cpu();
    let mut rng = Rng::new(15);
    for s in pool_shapes() {
        // Distinct values 0.05 apart: a ±0.01 step never changes a window's argmax.
        let x = rng.distinct(s.input_len(), 0.05);
        let r = rng.vec(s.output_len());
        let mut y = vec![0.0; s.output_len()];
        c.max_pool(s, &x, &mut y);
        let mut dx = vec![0.0; x.len()];
        c.max_pool_backward(s, &x, &y, &r, &mut dx);
        let numeric = numeric_grad(&x, EPS, |x| {
            let mut y = vec![0.0; s.output_len()];
            c.max_pool(s, &x.to_vec(), &mut y);
            dot(&r, &y)
        });
        assert_grad(&format!("max_pool {s:?}"), &dx, &numeric);
    }
}

#[test]
fn avg_pool_gradient() {
    let c = cpu();
    let mut rng = Rng::new(16);
    for s in pool_shapes() {
        let (x, r) = (rng.vec(s.input_len()), rng.vec(s.output_len()));
        let mut dx = vec![0.0; x.len()];
        c.avg_pool_backward(s, &r, &mut dx);
        let numeric = numeric_grad(&x, EPS, |x| {
            let mut y = vec![0.0; s.output_len()];
            c.avg_pool(s, &x.to_vec(), &mut y);
            dot(&r, &y)
        });
        assert_grad(&format!("avg_pool {s:?}"), &dx, &numeric);
    }
}

#[test]
fn global_avg_pool_gradient() {
    let c = cpu();
    let mut rng = Rng::new(17);
    let (n, hw, ch) = (2, 9, 3);
    let (x, r) = (rng.vec(n * hw * ch), rng.vec(n * ch));
    let mut dx = vec![0.0; x.len()];
    c.global_avg_pool_backward(n, hw, ch, &r, &mut dx);
    let numeric = numeric_grad(&x, EPS, |x| {
        let mut y = vec![0.0; n * ch];
        c.global_avg_pool(n, hw, ch, &x.to_vec(), &mut y);
        dot(&r, &y)
    });
    assert_grad("global_avg_pool", &dx, &numeric);
}

#[test]
fn softmax_xent_gradient_is_that_of_the_mean_loss() {
    let c = cpu();
    let mut rng = Rng::new(18);
    let (n, classes) = (4, 5);
    let logits: Vec<f32> = (0..n * classes).map(|_| rng.uniform(-3.0, 3.0)).collect();
    let labels: Vec<f32> = (0..n).map(|_| rng.below(classes) as f32).collect();
    let (mut grad, mut loss) = (vec![0.0; n * classes], vec![0.0; n]);
    c.softmax_xent(n, classes, &logits, &labels, &mut grad, &mut loss);
    let numeric = numeric_grad(&logits, 1e-3, |z| {
        let (mut g, mut l) = (vec![0.0; n * classes], vec![0.0; n]);
        c.softmax_xent(n, classes, &z.to_vec(), &labels, &mut g, &mut l);
        l.iter().map(|&v| v as f64).sum::<f64>() / n as f64
    });
    assert_grad("softmax_xent", &grad, &numeric);
}
