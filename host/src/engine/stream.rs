//! Camera streams: what each camera sees in each window.
//!
//! A [`SourcePool`] holds a source's images, split so that labelled training samples and the
//! crops seen in frames never share an image. A [`Camera`] draws, for window `w`, a
//! [`WindowData`]: the labelled samples the golden model provides (drifted like the scene,
//! optionally with label noise) and the frames, as object tracks: each of the frame's object
//! slots shows one object for a random number of consecutive frames, so a skipped frame's
//! reused result is right while the object stays in view.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::scenario::{CameraSpec, Scenario, SourceKind};
use crate::data::{DataError, Dataset, drift, fashion, synthetic};

/// A source's images: `train` feeds labelled samples, `frames` feeds what cameras see.
#[derive(Debug)]
pub struct SourcePool {
    pub train: Dataset,
    pub frames: Dataset,
}

impl SourcePool {
    /// Load (or generate) the pool for a source kind.
    pub fn load(kind: &SourceKind, seed: u64) -> Result<Arc<SourcePool>, DataError> {
        Ok(Arc::new(match kind {
            SourceKind::FashionMnist => SourcePool {
                train: fashion::load(fashion::Split::Train)?,
                frames: fashion::load(fashion::Split::Test)?,
            },
            SourceKind::Synthetic => SourcePool {
                train: synthetic::generate(6_000, seed.wrapping_add(101)),
                frames: synthetic::generate(3_000, seed.wrapping_add(202)),
            },
            SourceKind::Samplelist => {
                return Err(DataError::Source(
                    "a samplelist source needs its CSV file (SourcePool::for_camera)".into(),
                ));
            }
        }))
    }

    /// The pool for one camera: its samplelist's crops, or the shared source of its kind.
    pub fn for_camera(spec: &CameraSpec, seed: u64) -> Result<Arc<SourcePool>, DataError> {
        match (&spec.source, &spec.samplelist) {
            (SourceKind::Samplelist, Some(csv)) => Self::samplelist(csv),
            (SourceKind::Samplelist, None) => Err(DataError::Source(format!(
                "camera `{}`: a samplelist camera needs `samplelist = \"FILE.csv\"`",
                spec.name
            ))),
            (kind, _) => Self::load(kind, seed),
        }
    }

    /// A samplelist's crops, split by frame so that labelled samples and the crops seen in
    /// frames never come from the same image: every third frame (in file order) feeds the
    /// camera's frames, the others the golden model's labelled samples.
    pub fn samplelist(csv: &std::path::Path) -> Result<Arc<SourcePool>, DataError> {
        let (crops, frame_of) = crate::data::samplelist::load(csv)?;
        let mut order: Vec<&String> = Vec::new();
        for f in &frame_of {
            if !order.contains(&f) {
                order.push(f);
            }
        }
        if order.len() < 3 {
            return Err(DataError::Source(format!(
                "{}: {} frame image(s); a samplelist needs at least 3 (labelled samples and camera frames come from different frames)",
                csv.display(),
                order.len()
            )));
        }
        let to_frames = |f: &String| order.iter().position(|o| *o == f).unwrap_or(0) % 3 == 2;
        let (frames, train): (Vec<usize>, Vec<usize>) =
            (0..crops.len()).partition(|&i| to_frames(&frame_of[i]));
        Ok(Arc::new(SourcePool {
            train: crops.select(&train),
            frames: crops.select(&frames),
        }))
    }
}

/// What a camera sees in one window.
#[derive(Debug, Clone)]
pub struct WindowData {
    /// Samples labelled by the golden model (labels may be noisy).
    pub train: Dataset,
    /// One crop per object track, with its true label.
    pub crops: Dataset,
    pub frames: usize,
    pub slots: usize,
    /// The track in view in each (frame, slot): `track_of[frame * slots + slot]`.
    pub track_of: Vec<u32>,
    /// Fraction per class of the labelled samples.
    pub class_mix: Vec<f64>,
}

/// One camera stream of a scenario.
#[derive(Debug, Clone)]
pub struct Camera {
    pub index: usize,
    pub spec: CameraSpec,
    pub pool: Arc<SourcePool>,
}

impl Camera {
    /// The camera's data for window `w` of `scenario`: deterministic in (seed, camera, window).
    pub fn window(&self, scenario: &Scenario, w: u32) -> WindowData {
        let seed = scenario.seed ^ ((self.index as u64 + 1) << 32) ^ ((w as u64 + 1) << 8);
        let classes = self.pool.train.classes;
        let scene = scenario.scene(self.index, w);
        let uniform = vec![1.0; classes];
        let mix = scene
            .and_then(|s| s.class_mix.as_deref())
            .unwrap_or(&uniform);
        let look = scene.map(|s| s.appearance()).unwrap_or_default();

        let mut train = look.apply(
            &drift::resample_mix(
                &self.pool.train,
                mix,
                self.spec.train_samples as usize,
                seed ^ 1,
            ),
            seed ^ 2,
        );
        let counts = train.class_counts();
        let class_mix = counts
            .iter()
            .map(|&c| c as f64 / train.len().max(1) as f64)
            .collect();
        if scenario.label_noise > 0.0 {
            let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 3);
            for l in &mut train.labels {
                if rng.random::<f64>() < scenario.label_noise {
                    *l = ((*l as usize + rng.random_range(1..classes)) % classes) as u8;
                }
            }
        }

        let frames = (self.spec.frame_rate * scenario.window_seconds)
            .round()
            .max(1.0) as usize;
        let slots = self.spec.objects_per_frame as usize;
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 4);
        let mut track_of = vec![0u32; frames * slots];
        let mut tracks = 0u32;
        // Geometric dwell: an object leaves after each frame with probability 1/dwell.
        let leave = 1.0 / self.spec.object_dwell_frames;
        for s in 0..slots {
            let mut current = tracks;
            tracks += 1;
            for f in 0..frames {
                if f > 0 && rng.random::<f64>() < leave {
                    current = tracks;
                    tracks += 1;
                }
                track_of[f * slots + s] = current;
            }
        }
        let crops = look.apply(
            &drift::resample_mix(&self.pool.frames, mix, tracks as usize, seed ^ 5),
            seed ^ 6,
        );
        // resample_mix draws in order, so track t is crop t.
        WindowData {
            train,
            crops,
            frames,
            slots,
            track_of,
            class_mix,
        }
    }
}
