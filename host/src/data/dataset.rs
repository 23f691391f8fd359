//! [`Dataset`]: labelled images held in host memory.

/// Labelled images, NHWC `f32` in `[0, 1]`, all `h`×`w`×`c`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub classes: usize,
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Dataset {
    /// An empty dataset of the given image shape.
    pub fn empty(h: usize, w: usize, c: usize, classes: usize) -> Self {
        Self {
            h,
            w,
            c,
            classes,
            images: Vec::new(),
            labels: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes its tensors hold (f32 pixels, u8 labels).
    pub fn bytes(&self) -> u64 {
        (self.images.len() * 4 + self.labels.len()) as u64
    }

    /// Replace sample `i` with `image` labelled `label`.
    pub fn replace(&mut self, i: usize, image: &[f32], label: u8) {
        let n = self.sample_len();
        self.images[i * n..(i + 1) * n].copy_from_slice(image);
        self.labels[i] = label;
    }

    /// Elements per image.
    pub fn sample_len(&self) -> usize {
        self.h * self.w * self.c
    }

    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.sample_len()..(i + 1) * self.sample_len()]
    }

    pub fn push(&mut self, image: &[f32], label: u8) {
        debug_assert_eq!(image.len(), self.sample_len());
        self.images.extend_from_slice(image);
        self.labels.push(label);
    }

    /// Copy the samples at `idx` into a batch: images into `x`, labels (as `f32`) into `y`.
    pub fn gather(&self, idx: &[usize], x: &mut [f32], y: &mut [f32]) {
        let s = self.sample_len();
        for (j, &i) in idx.iter().enumerate() {
            x[j * s..(j + 1) * s].copy_from_slice(self.image(i));
            y[j] = self.labels[i] as f32;
        }
    }

    /// The samples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut out = Dataset::empty(self.h, self.w, self.c, self.classes);
        out.images.reserve(idx.len() * self.sample_len());
        for &i in idx {
            out.push(self.image(i), self.labels[i]);
        }
        out
    }

    /// The first `n` samples (or all).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.sample_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            ..self.empty_like()
        }
    }

    /// Append all of `other` (same shape).
    pub fn extend(&mut self, other: &Dataset) {
        assert_eq!(
            (self.h, self.w, self.c),
            (other.h, other.w, other.c),
            "dataset shapes differ"
        );
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
    }

    /// An empty dataset with this one's shape.
    pub fn empty_like(&self) -> Dataset {
        Dataset::empty(self.h, self.w, self.c, self.classes)
    }

    /// How many samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
