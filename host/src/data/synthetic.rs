//! A deterministic generator of synthetic object crops: 32×32 colour images of eight
//! classes that differ in shape, texture and colour, with per-sample variation (position,
//! size, hue, background clutter) so the task is learnable but not trivial.
//!
//! Same seed, same images: it is the embedded default where Fashion-MNIST is not
//! installed, and a fast source for tests.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::{Dataset, normal};

/// Image side in pixels.
pub const SIZE: usize = 32;

/// The class names, by label.
pub const CLASSES: [&str; 8] = [
    "disc", "square", "triangle", "stripes", "cross", "ring", "diamond", "checker",
];

/// Base colour of each class (RGB); samples jitter around it, and neighbouring classes
/// share hues so colour alone does not separate them.
const BASE_COLOUR: [[f32; 3]; 8] = [
    [0.85, 0.25, 0.20],
    [0.20, 0.35, 0.85],
    [0.25, 0.75, 0.30],
    [0.85, 0.70, 0.20],
    [0.80, 0.30, 0.70],
    [0.85, 0.30, 0.25],
    [0.25, 0.40, 0.80],
    [0.30, 0.70, 0.35],
];

/// Generate `n` samples with labels drawn uniformly, from `seed`.
pub fn generate(n: usize, seed: u64) -> Dataset {
    generate_with_mix(n, seed, &[1.0; 8])
}

/// Generate `n` samples with labels drawn in proportion to `weights` (one per class).
pub fn generate_with_mix(n: usize, seed: u64, weights: &[f32]) -> Dataset {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5EED_CAFE);
    let mut ds = Dataset::empty(SIZE, SIZE, 3, CLASSES.len());
    let total: f32 = weights.iter().sum();
    let mut img = vec![0.0f32; SIZE * SIZE * 3];
    for _ in 0..n {
        let mut pick = rng.random::<f32>() * total;
        let mut label = weights.len() - 1;
        for (i, &w) in weights.iter().enumerate() {
            if pick < w {
                label = i;
                break;
            }
            pick -= w;
        }
        render(&mut rng, label, &mut img);
        ds.push(&img, label as u8);
    }
    ds
}

fn render(rng: &mut Pcg64Mcg, label: usize, img: &mut [f32]) {
    // Background: a random-direction gradient of a random dull colour, plus clutter.
    let bg = [
        rng.random::<f32>() * 0.5,
        rng.random::<f32>() * 0.5,
        rng.random::<f32>() * 0.5,
    ];
    let (gx, gy) = (rng.random::<f32>() - 0.5, rng.random::<f32>() - 0.5);
    let colour: [f32; 3] =
        std::array::from_fn(|k| (BASE_COLOUR[label][k] + 0.15 * normal(rng)).clamp(0.05, 1.0));
    let cx = SIZE as f32 / 2.0 + 4.0 * (rng.random::<f32>() - 0.5) * 2.0;
    let cy = SIZE as f32 / 2.0 + 4.0 * (rng.random::<f32>() - 0.5) * 2.0;
    let r = 7.0 + 5.0 * rng.random::<f32>();
    let phase = rng.random::<f32>() * 4.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let (dx, dy) = ((fx - cx) / r, (fy - cy) / r);
            let inside = match label {
                0 => dx * dx + dy * dy <= 1.0,
                1 => dx.abs() <= 0.8 && dy.abs() <= 0.8,
                2 => dy <= 0.8 && dy >= -0.9 + 2.0 * dx.abs(),
                3 => {
                    dx.abs() <= 0.95
                        && dy.abs() <= 0.95
                        && ((fy + phase) / 3.0).floor() as i32 % 2 == 0
                }
                4 => (dx.abs() <= 0.28 && dy.abs() <= 1.0) || (dy.abs() <= 0.28 && dx.abs() <= 1.0),
                5 => {
                    let d = dx * dx + dy * dy;
                    (0.35..=1.0).contains(&d)
                }
                6 => dx.abs() + dy.abs() <= 1.0,
                _ => {
                    dx.abs() <= 0.9
                        && dy.abs() <= 0.9
                        && (((fx + phase) / 4.0).floor() as i32
                            + ((fy + phase) / 4.0).floor() as i32)
                            % 2
                            == 0
                }
            };
            let shade = 0.5 + gx * (fx / SIZE as f32) + gy * (fy / SIZE as f32);
            for k in 0..3 {
                let base = if inside { colour[k] } else { bg[k] * shade };
                img[(y * SIZE + x) * 3 + k] = (base + 0.06 * normal(rng)).clamp(0.0, 1.0);
            }
        }
    }
}
