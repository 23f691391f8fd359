//! Fashion-MNIST (60,000 training and 10,000 test images, 28×28 grey, 10 classes), read
//! from the IDX files of Debian's `dataset-fashion-mnist` package.

use std::path::{Path, PathBuf};

use super::{DataError, Dataset, idx};

/// Where Debian installs the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The class names, by label.
pub const CLASSES: [&str; 10] = [
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
];

/// The data directory: `TANDEM_FASHION_MNIST_DIR` if set, else Debian's.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TANDEM_FASHION_MNIST_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

/// Whether the files are there.
pub fn is_installed() -> bool {
    data_dir().join("t10k-labels-idx1-ubyte.gz").exists()
}

/// Which half of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Load one split from [`data_dir`].
pub fn load(split: Split) -> Result<Dataset, DataError> {
    load_from(&data_dir(), split)
}

/// Load one split from `dir`.
pub fn load_from(dir: &Path, split: Split) -> Result<Dataset, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    if !images_path.exists() {
        return Err(DataError::NotInstalled {
            dir: dir.to_owned(),
        });
    }
    let images = idx::read(&images_path, 3)?;
    let labels = idx::read(&labels_path, 1)?;
    if images.dims[1..] != [28, 28] {
        return Err(DataError::Dimensions {
            path: images_path,
            what: format!(
                "images are {}x{}, expected 28x28",
                images.dims[1], images.dims[2]
            ),
        });
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::CountMismatch {
            images: images_path,
            labels: labels_path,
            n_images: images.dims[0],
            n_labels: labels.dims[0],
        });
    }
    if let Some((index, &label)) = labels.data.iter().enumerate().find(|&(_, &l)| l >= 10) {
        return Err(DataError::BadLabel {
            path: labels_path,
            label,
            index,
            classes: 10,
        });
    }
    Ok(Dataset {
        h: 28,
        w: 28,
        c: 1,
        classes: 10,
        images: images.data.iter().map(|&b| b as f32 / 255.0).collect(),
        labels: labels.data,
    })
}
