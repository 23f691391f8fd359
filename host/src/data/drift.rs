//! Scene drift: what changes between a camera's windows. [`Drift`] holds the knobs and
//! applies them to any [`Dataset`]; [`resample_mix`] changes the class mix; [`resize`]
//! changes resolution (an inference knob).

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::{Dataset, normal};

/// Appearance drift. The default is no drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Drift {
    /// Illumination: pixel values are multiplied by this (1 = unchanged, 0.4 = dusk).
    pub brightness: f32,
    /// Contrast around mid-grey (1 = unchanged).
    pub contrast: f32,
    /// Standard deviation of added Gaussian sensor noise ("weather": rain, snow, night).
    pub noise: f32,
    /// Gaussian blur sigma in pixels ("weather": fog, a dirty lens).
    pub blur: f32,
    /// Each image is rotated by a uniform angle in ±this many degrees.
    pub rotation: f32,
    /// Zoom: > 1 objects appear larger (a closer camera), < 1 smaller.
    pub scale: f32,
}

impl Default for Drift {
    fn default() -> Self {
        Self {
            brightness: 1.0,
            contrast: 1.0,
            noise: 0.0,
            blur: 0.0,
            rotation: 0.0,
            scale: 1.0,
        }
    }
}

impl Drift {
    /// Whether this drift changes nothing.
    pub fn is_identity(&self) -> bool {
        *self == Drift::default()
    }

    /// A copy of `data` with this drift applied; `seed` drives the random parts.
    pub fn apply(&self, data: &Dataset, seed: u64) -> Dataset {
        let mut out = data.clone();
        if self.is_identity() {
            return out;
        }
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xD81F7);
        let s = data.sample_len();
        let mut tmp = vec![0.0; s];
        for img in out.images.chunks_exact_mut(s) {
            if self.rotation != 0.0 || self.scale != 1.0 {
                let angle = (rng.random::<f32>() * 2.0 - 1.0) * self.rotation.to_radians();
                warp(img, &mut tmp, data.h, data.w, data.c, angle, self.scale);
                img.copy_from_slice(&tmp);
            }
            if self.blur > 0.0 {
                gaussian_blur(img, &mut tmp, data.h, data.w, data.c, self.blur);
            }
            for v in img.iter_mut() {
                let mut p = (*v - 0.5) * self.contrast + 0.5;
                p *= self.brightness;
                if self.noise > 0.0 {
                    p += self.noise * normal(&mut rng);
                }
                *v = p.clamp(0.0, 1.0);
            }
        }
        out
    }
}

/// `n` samples drawn from `data` (with replacement) so that class `k` appears with
/// probability proportional to `weights[k]`. Classes with weight > 0 but no samples are
/// skipped.
pub fn resample_mix(data: &Dataset, weights: &[f32], n: usize, seed: u64) -> Dataset {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); data.classes];
    for (i, &l) in data.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let w: Vec<f32> = (0..data.classes)
        .map(|k| {
            if by_class[k].is_empty() {
                0.0
            } else {
                weights.get(k).copied().unwrap_or(0.0).max(0.0)
            }
        })
        .collect();
    let total: f32 = w.iter().sum();
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x313C);
    if total <= 0.0 {
        return data.empty_like();
    }
    let idx: Vec<usize> = (0..n)
        .map(|_| {
            let mut pick = rng.random::<f32>() * total;
            let mut k = w.iter().rposition(|&x| x > 0.0).unwrap_or(0);
            for (j, &x) in w.iter().enumerate() {
                if pick < x {
                    k = j;
                    break;
                }
                pick -= x;
            }
            by_class[k][rng.random_range(0..by_class[k].len())]
        })
        .collect();
    data.select(&idx)
}

/// A copy of `data` resampled to `h`×`w` (area averaging when shrinking, bilinear when
/// growing).
pub fn resize(data: &Dataset, h: usize, w: usize) -> Dataset {
    if (h, w) == (data.h, data.w) {
        return data.clone();
    }
    let c = data.c;
    let mut out = Dataset {
        h,
        w,
        images: Vec::with_capacity(data.len() * h * w * c),
        ..data.clone()
    };
    out.images.clear();
    let (sy, sx) = (data.h as f32 / h as f32, data.w as f32 / w as f32);
    for img in data.images.chunks_exact(data.sample_len()) {
        for oy in 0..h {
            for ox in 0..w {
                for k in 0..c {
                    let v = if sy >= 1.0 && sx >= 1.0 {
                        // Average the source pixels this output pixel covers.
                        let (y0, y1) = (
                            (oy as f32 * sy) as usize,
                            (((oy + 1) as f32 * sy).ceil() as usize).min(data.h),
                        );
                        let (x0, x1) = (
                            (ox as f32 * sx) as usize,
                            (((ox + 1) as f32 * sx).ceil() as usize).min(data.w),
                        );
                        let mut sum = 0.0;
                        for y in y0..y1 {
                            for x in x0..x1 {
                                sum += img[(y * data.w + x) * c + k];
                            }
                        }
                        sum / ((y1 - y0) * (x1 - x0)) as f32
                    } else {
                        bilinear(
                            img,
                            data.h,
                            data.w,
                            c,
                            k,
                            (oy as f32 + 0.5) * sy - 0.5,
                            (ox as f32 + 0.5) * sx - 0.5,
                        )
                    };
                    out.images.push(v);
                }
            }
        }
    }
    out
}

fn bilinear(img: &[f32], h: usize, w: usize, c: usize, k: usize, y: f32, x: f32) -> f32 {
    let y = y.clamp(0.0, (h - 1) as f32);
    let x = x.clamp(0.0, (w - 1) as f32);
    let (y0, x0) = (y.floor() as usize, x.floor() as usize);
    let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
    let (fy, fx) = (y - y0 as f32, x - x0 as f32);
    let p = |yy: usize, xx: usize| img[(yy * w + xx) * c + k];
    (p(y0, x0) * (1.0 - fx) + p(y0, x1) * fx) * (1.0 - fy)
        + (p(y1, x0) * (1.0 - fx) + p(y1, x1) * fx) * fy
}

/// Rotate by `angle` and zoom by `scale` about the centre; outside pixels take the
/// image's border mean so no artificial black corners appear.
fn warp(src: &[f32], dst: &mut [f32], h: usize, w: usize, c: usize, angle: f32, scale: f32) {
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let mut border = vec![0.0; c];
    let mut count = 0.0;
    for y in [0, h - 1] {
        for x in 0..w {
            for k in 0..c {
                border[k] += src[(y * w + x) * c + k];
            }
            count += 1.0;
        }
    }
    border.iter_mut().for_each(|b| *b /= count);
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = ((y as f32 - cy) / scale, (x as f32 - cx) / scale);
            let sy = cos * dy - sin * dx + cy;
            let sx = sin * dy + cos * dx + cx;
            for k in 0..c {
                dst[(y * w + x) * c + k] =
                    if sy < 0.0 || sx < 0.0 || sy > (h - 1) as f32 || sx > (w - 1) as f32 {
                        border[k]
                    } else {
                        bilinear(src, h, w, c, k, sy, sx)
                    };
            }
        }
    }
}

/// Separable Gaussian blur in place (`tmp` is scratch of the same size).
fn gaussian_blur(img: &mut [f32], tmp: &mut [f32], h: usize, w: usize, c: usize, sigma: f32) {
    let r = (2.5 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / norm).collect();
    let clamp = |v: isize, hi: usize| v.clamp(0, hi as isize - 1) as usize;
    for y in 0..h {
        for x in 0..w {
            for k in 0..c {
                tmp[(y * w + x) * c + k] = (-r..=r)
                    .map(|i| {
                        kernel[(i + r) as usize] * img[(y * w + clamp(x as isize + i, w)) * c + k]
                    })
                    .sum();
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            for k in 0..c {
                img[(y * w + x) * c + k] = (-r..=r)
                    .map(|i| {
                        kernel[(i + r) as usize] * tmp[(clamp(y as isize + i, h) * w + x) * c + k]
                    })
                    .sum();
            }
        }
    }
}
