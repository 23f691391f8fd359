//! [`ExemplarMemory`]: a bounded, class-balanced memory of past windows' labelled samples,
//! in the spirit of iCaRL's exemplar sets. Retraining mixes it with the window's data so a
//! model adapting to today's scene keeps what it knew of earlier ones.
//!
//! Selection is a seeded random subset per class (iCaRL's herding needs feature means; a
//! random subset is the usual, nearly as good baseline and costs nothing on the GPU).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;

use crate::data::Dataset;

#[derive(Debug, Clone)]
pub struct ExemplarMemory {
    capacity: usize,
    data: Dataset,
}

impl ExemplarMemory {
    pub fn new(capacity: usize, like: &Dataset) -> Self {
        Self {
            capacity,
            data: like.empty_like(),
        }
    }

    /// A memory holding `data` already (a checkpoint's).
    pub fn with_samples(capacity: usize, data: Dataset) -> Self {
        Self { capacity, data }
    }

    pub fn samples(&self) -> &Dataset {
        &self.data
    }

    /// Fold a window's labelled samples in: every class seen so far gets an equal quota
    /// (unused quota of rare classes goes to the others), new and old samples compete
    /// equally for it.
    pub fn absorb(&mut self, window: &Dataset, seed: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut pool = self.data.clone();
        pool.extend(window);
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
    }
}
