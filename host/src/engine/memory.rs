//! [`ExemplarMemory`]: a bounded, class-balanced memory of past windows' labelled samples,
//! in the spirit of iCaRL's exemplar sets. Retraining mixes it with the window's data so a
//! model adapting to today's scene keeps what it knew of earlier ones.
//!
//! Selection is a seeded random subset per class (iCaRL's herding needs feature means; a
//! random subset is the usual, nearly as good baseline and costs nothing on the GPU).
//!
//! Each exemplar keeps its [`Origin`] (the window that delivered it and its place in what was
//! absorbed), so a stream scaled to zero with nothing prepared can rebuild its memory by
//! running the data path again (`engine::lifecycle`).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;

#[derive(Debug, Clone)]
pub struct ExemplarMemory {
    capacity: usize,
    data: Dataset,
    /// Where each sample of `data` came from, in the same order.
    origins: Vec<Origin>,
}

/// Where an exemplar came from: sample `index` of the batch absorbed for window `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub window: u32,
    pub index: u32,
}

impl ExemplarMemory {
    pub fn new(capacity: usize, like: &Dataset) -> Self {
        Self {
            capacity,
            data: like.empty_like(),
            origins: Vec::new(),
        }
    }

    /// A memory as it was: its samples and where each came from (`None` when they disagree
    /// in length or `data` holds more than `capacity`).
    pub fn restore(capacity: usize, data: Dataset, origins: Vec<Origin>) -> Option<Self> {
        (data.len() == origins.len() && data.len() <= capacity).then_some(Self {
            capacity,
            data,
            origins,
        })
    }

    pub fn samples(&self) -> &Dataset {
        &self.data
    }

    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Fold window `window`'s labelled samples in: every class seen so far gets an equal
    /// quota (unused quota of rare classes goes to the others), new and old samples compete
    /// equally for it.
    pub fn absorb(&mut self, batch: &Dataset, window: u32, seed: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut pool = self.data.clone();
        pool.extend(batch);
        let mut origins = self.origins.clone();
        origins.extend((0..batch.len() as u32).map(|index| Origin { window, index }));
        let classes = pool.classes;
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
        for (i, &l) in pool.labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xE7E7);
        for idx in &mut by_class {
            idx.shuffle(&mut rng);
        }
        // Water-filling: raise a common quota until the capacity is used or classes run out.
        let mut quota = vec![0usize; classes];
        let mut left = self.capacity.min(pool.len());
        while left > 0 {
            let open: Vec<usize> = (0..classes)
                .filter(|&k| quota[k] < by_class[k].len())
                .collect();
            if open.is_empty() {
                break;
            }
            let share = (left / open.len()).max(1);
            for k in open {
                let add = share.min(by_class[k].len() - quota[k]).min(left);
                quota[k] += add;
                left -= add;
                if left == 0 {
                    break;
                }
            }
        }
        let mut keep: Vec<usize> = (0..classes)
            .flat_map(|k| by_class[k][..quota[k]].iter().copied())
            .collect();
        keep.sort_unstable();
        self.data = pool.select(&keep);
        self.origins = keep.iter().map(|&i| origins[i]).collect();
    }
}
