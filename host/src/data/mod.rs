//! Image sources and scene drift.
//!
//! - [`Dataset`]: labelled NHWC `f32` images in `[0, 1]`, the one format every source yields.
//! - [`idx`]: the IDX file reader (Fashion-MNIST's format), with errors naming the file.
//! - [`fashion`]: loads Fashion-MNIST from the Debian package's files.
//! - [`synthetic`]: a seeded generator of 32×32 colour object crops, the embedded default
//!   wherever the data set is not installed, and a fast source for tests.
//! - [`samplelist`]: Ekya's samplelist format (CSV of object boxes plus frame images).
//! - [`drift`]: the drift knobs (illumination, contrast, noise and blur "weather", rotation
//!   and scale, class mix) applied to any dataset, and resolution changes.

mod dataset;
pub mod drift;
pub mod fashion;
pub mod idx;
pub mod look;
pub mod samplelist;
pub mod synthetic;

pub use dataset::Dataset;
pub use drift::Drift;
pub use look::Look;

use std::path::{Component, Path, PathBuf};

/// Whether `rel` names a file in a folder or below it: relative, with no `..` (checked on the
/// text, so a scenario or samplelist cannot point the host at files elsewhere).
pub fn inside_folder(rel: &Path) -> bool {
    rel.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && rel.components().any(|c| matches!(c, Component::Normal(_)))
}

use rand::RngExt;

/// A standard normal sample (Box–Muller): the noise in synthetic images and drifted scenes,
/// and the models' weight init (which is why it lives below `model`).
pub fn normal(rng: &mut impl RngExt) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// What can go wrong reading image data. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: bad magic number {found:#010x} (expected an IDX file of unsigned bytes with {dims} dimensions, magic {expected:#010x})"
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        dims: u8,
    },
    #[error(
        "{path}: truncated: the header promises {expected} bytes of data, the file holds {found}"
    )]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{path}: wrong dimensions: {what}")]
    Dimensions { path: PathBuf, what: String },
    #[error("{images} and {labels} disagree: {n_images} images but {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        labels: PathBuf,
        n_images: usize,
        n_labels: usize,
    },
    #[error("{path}: label {label} at index {index} is not below the {classes} classes")]
    BadLabel {
        path: PathBuf,
        label: u8,
        index: usize,
        classes: usize,
    },
    #[error(
        "Fashion-MNIST not found in {dir} (install the Debian package dataset-fashion-mnist, run scripts/setup.sh, or set TANDEM_FASHION_MNIST_DIR)"
    )]
    NotInstalled { dir: PathBuf },
    /// A samplelist row that cannot be used.
    #[error("{path}:{line}: {message}")]
    Samplelist {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A frame image that cannot be decoded.
    #[error("{path}: {message}")]
    Image { path: PathBuf, message: String },
    /// A source that needs settings the caller did not give.
    #[error("{0}")]
    Source(String),
}
