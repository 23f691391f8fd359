//! [`Look`]: what a set of images looks like, cheaply: per image and channel, the mean and the
//! spread of its pixels and the mean of each cell of a 4×4 grid (where things are), averaged
//! over the images, with the standard error of each average.
//!
//! Two windows of one scene differ only by sampling noise here; [`Look::same_scene`] tests
//! that component by component in units of those standard errors. Measured on 800-image
//! windows (tests `engine::`): sampling alone moves components by up to 0.03 (the grid cells
//! follow the class mix), which is why a fixed threshold cannot work; brightness 0.9 or a
//! 1.25 zoom move some component by many standard errors, a 10° rotation by about one (it
//! barely changes what the pixels add up to, and passes for the same scene).

use super::Dataset;

/// Grid cells per side.
const GRID: usize = 4;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Look {
    /// Per component: its mean over the images.
    pub mean: Vec<f64>,
    /// Per component: the standard error of that mean.
    pub se: Vec<f64>,
}

impl Look {
    /// The look of `data`'s images.
    pub fn of(data: &Dataset) -> Look {
        Look::of_images(data, 0..data.len())
    }

    /// The look of the images of `data` at `which`.
    pub fn of_images(data: &Dataset, which: impl IntoIterator<Item = usize>) -> Look {
        let (h, w, c) = (data.h, data.w, data.c);
        let per_image = c * (2 + GRID * GRID);
        let mut n = 0usize;
        let (mut sum, mut sq) = (vec![0.0f64; per_image], vec![0.0f64; per_image]);
        let mut f = vec![0.0f64; per_image];
        for i in which {
            n += 1;
            features(data.image(i), (h, w, c), &mut f);
            for (k, v) in f.iter().enumerate() {
                sum[k] += v;
                sq[k] += v * v;
            }
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let se = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| ((q / n - m * m).max(0.0) / n).sqrt())
            .collect();
        Look { mean, se }
    }

    /// Whether `other` may be the same scene: no component differs by more than `z`
    /// standard errors of the difference (a floor of 0.002 keeps a flat component, such as an
    /// always-black corner, from splitting hairs).
    pub fn same_scene(&self, other: &Look, z: f64) -> bool {
        self.mean.len() == other.mean.len()
            && (0..self.mean.len()).all(|k| {
                let se = (self.se[k].powi(2) + other.se[k].powi(2)).sqrt().max(0.002);
                (self.mean[k] - other.mean[k]).abs() <= z * se
            })
    }
}

/// A signature made of looks' means (`Look::mean`) in a few words: brightness and contrast
/// (each channel's pixel mean and spread, averaged over channels) and the range of the grid
/// cells' means (where the light is); any other vector by its length and mean.
pub fn summary(signature: &[f64]) -> String {
    let per_channel = 2 + GRID * GRID;
    let n = signature.len();
    if n == 0 || !n.is_multiple_of(per_channel) {
        let mean = signature.iter().sum::<f64>() / n.max(1) as f64;
        return format!("{n} values, mean {mean:.2}");
    }
    let channels: Vec<&[f64]> = signature.chunks_exact(per_channel).collect();
    let avg = |k: usize| channels.iter().map(|c| c[k]).sum::<f64>() / channels.len() as f64;
    let cells = channels.iter().flat_map(|c| c[2..].iter().copied());
    let (lo, hi) = cells.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    format!(
        "brightness {:.2}, contrast {:.2}, grid {lo:.2}-{hi:.2}",
        avg(0),
        avg(1)
    )
}

/// One image's components into `out`: per channel its pixels' mean and standard deviation,
/// then the mean of each grid cell.
fn features(img: &[f32], (h, w, c): (usize, usize, usize), out: &mut [f64]) {
    let per_channel = 2 + GRID * GRID;
    for ch in 0..c {
        let o = &mut out[ch * per_channel..(ch + 1) * per_channel];
        o.iter_mut().for_each(|v| *v = 0.0);
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for y in 0..h {
            for x in 0..w {
                let v = img[(y * w + x) * c + ch] as f64;
                sum += v;
                sq += v * v;
                o[2 + (y * GRID / h) * GRID + x * GRID / w] += v;
            }
        }
        let pixels = (h * w) as f64;
        let mean = sum / pixels;
        o[0] = mean;
        o[1] = (sq / pixels - mean * mean).max(0.0).sqrt();
        let per_cell = pixels / (GRID * GRID) as f64;
        o[2..].iter_mut().for_each(|v| *v /= per_cell);
    }
}
