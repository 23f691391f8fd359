//! Serving a window's frames: which frames each inference job gets to process under its
//! share and configuration, what it predicts, and the accuracy users actually see.
//!
//! The inference job of a stream processes frames at `min(1/k, share / cost)` of the frame
//! rate, where `k` is the configuration's frame sampling and `cost` the share it needs to
//! keep up at full rate. A frame it does not process reuses, slot by slot, the last result
//! it produced; that result is right only while the same object is still in view. Served
//! accuracy is scored against the true labels and averaged over the window's frames (the
//! brief's definition), and also reported in 10 chunks over time.
//!
//! The policy is offered each inference configuration with its accuracy factor: its
//! resolution's, measured per model on the validation split ([`resolution_factors`]), times its
//! frame sampling's, measured on the stream's object tracks ([`sampling_factor`]).

use std::collections::HashMap;

use super::cost::CostModel;
use super::stream::WindowData;
use crate::compute::Backend;
use crate::data::{Dataset, drift};
use crate::model::{self, Model};
use crate::plugin::types::{InferConfig, InferProfile};

/// A stretch of the window with one inference allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct InferSegment {
    /// Start time, seconds into the window.
    pub start: f64,
    /// GPU share of the inference job.
    pub share: f64,
    /// Frame sampling (process 1 frame in `sampling`).
    pub sampling: u32,
    /// Input resolution (pixels per side).
    pub resolution: u32,
    /// Share needed to keep up with every frame at this resolution.
    pub full_rate_cost: f64,
    /// Which model version serves (index into the window's models).
    pub model: usize,
}

/// Served accuracy of one stream over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// Time-averaged accuracy over the window's frames.
    pub accuracy: f64,
    /// Accuracy in 10 equal chunks of the window.
    pub chunks: Vec<f64>,
    /// Frames the inference job processed.
    pub frames_processed: usize,
    /// Frames in the window.
    pub frames: usize,
}

/// A prediction: (model version, resolution, object track) → class.
pub type Predictions = HashMap<(usize, u32, u32), u8>;

/// What a stream's inference job really did on the real clock: the frames it processed,
/// each with the model version and resolution it ran, and the predictions it made.
#[derive(Debug, Default)]
pub struct LiveServed {
    pub processed: Vec<(usize, usize, u32)>,
    pub predictions: Predictions,
    /// The job's (allocated, delivered) share of the device, in GPUs.
    pub shares: (f64, f64),
}

/// Score a stream's window. `segments` must be sorted by start and begin at 0; `models`
/// are the window's model versions. Frames are processed as the segments' shares allow, or,
/// on the real clock, as `live` says the inference job processed them. Predictions not
/// made already are computed once per (model, resolution, object) and batched.
pub fn serve<B: Backend>(
    be: &B,
    data: &WindowData,
    frame_rate: f64,
    segments: &[InferSegment],
    models: &mut [Model<B>],
    live: Option<LiveServed>,
) -> Served {
    let (frames, slots) = (data.frames, data.slots);
    // Pass 1: which frames are processed, by which model version at which resolution.
    let (processed, mut predictions) = match live {
        Some(live) => {
            let mut processed = vec![None; frames];
            for (f, model, res) in live.processed {
                processed[f] = Some((model, res));
            }
            (processed, live.predictions)
        }
        None => (planned(frames, frame_rate, segments), Predictions::new()),
    };
    // Pass 2: predictions for every (model, resolution) and object still needed.
    let mut needed: HashMap<(usize, u32), Vec<u32>> = HashMap::new();
    for (f, p) in processed.iter().enumerate() {
        if let Some((model, res)) = *p {
            let list = needed.entry((model, res)).or_default();
            let tracks = &data.track_of[f * slots..(f + 1) * slots];
            list.extend(
                tracks
                    .iter()
                    .filter(|&&t| !predictions.contains_key(&(model, res, t))),
            );
        }
    }
    for ((model, res), mut tracks) in needed {
        tracks.sort_unstable();
        tracks.dedup();
        if tracks.is_empty() {
            continue;
        }
        let idx: Vec<usize> = tracks.iter().map(|&t| t as usize).collect();
        let crops = at_resolution(&data.crops.select(&idx), res);
        let preds = model::predict_all(be, &mut models[model], &crops, 256);
        for (t, p) in tracks.iter().zip(preds) {
            predictions.insert((model, res, *t), p);
        }
    }
    // Pass 3: served results and accuracy per frame.
    let mut served: Vec<Option<u8>> = vec![None; slots];
    let mut per_frame = Vec::with_capacity(frames);
    for (f, p) in processed.iter().enumerate() {
        let in_view = &data.track_of[f * slots..(f + 1) * slots];
        if let Some((model, res)) = *p {
            for (slot, &t) in in_view.iter().enumerate() {
                served[slot] = Some(predictions[&(model, res, t)]);
            }
        }
        let right = in_view
            .iter()
            .zip(&served)
            .filter(|(t, s)| **s == Some(data.crops.labels[**t as usize]))
            .count();
        per_frame.push(right as f64 / slots as f64);
    }
    let accuracy = per_frame.iter().sum::<f64>() / frames.max(1) as f64;
    let chunk = frames.div_ceil(10).max(1);
    let chunks = per_frame
        .chunks(chunk)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    Served {
        accuracy,
        chunks,
        frames_processed: processed.iter().filter(|p| p.is_some()).count(),
        frames,
    }
}

/// Frames a job processes at `min(1/k, share / cost)` of the frame rate under each
/// segment: by which model version, at which resolution.
fn planned(frames: usize, frame_rate: f64, segments: &[InferSegment]) -> Vec<Option<(usize, u32)>> {
    let mut processed = vec![None; frames];
    let mut credit = 0.0f64;
    let mut seg = 0;
    for (f, p) in processed.iter_mut().enumerate() {
        let t = f as f64 / frame_rate;
        while seg + 1 < segments.len() && segments[seg + 1].start <= t {
            seg += 1;
        }
        let s = &segments[seg];
        let rate = if s.full_rate_cost > 0.0 {
            (1.0 / s.sampling as f64).min(s.share / s.full_rate_cost)
        } else {
            1.0 / s.sampling as f64
        };
        credit += rate;
        // A small epsilon keeps exact rates (1/k) from drifting by rounding.
        if credit >= 1.0 - 1e-9 {
            credit -= 1.0;
            *p = Some((s.model, s.resolution));
        }
    }
    processed
}

/// `data` at `res`×`res` (unchanged if already that size).
pub fn at_resolution(data: &Dataset, res: u32) -> Dataset {
    drift::resize(data, res as usize, res as usize)
}

/// Fraction of (frame, slot) pairs whose object is the same as in the last frame a job
/// sampling 1 frame in `k` processed: the accuracy factor of frame sampling on this
/// stream's object dwell, measured from a window's tracks.
pub fn sampling_factor(data: &WindowData, k: u32) -> f64 {
    let (frames, slots) = (data.frames, data.slots);
    let k = k.max(1) as usize;
    let mut same = 0usize;
    for f in 0..frames {
        let last = f - f % k;
        for s in 0..slots {
            if data.track_of[f * slots + s] == data.track_of[last * slots + s] {
                same += 1;
            }
        }
    }
    same as f64 / (frames * slots).max(1) as f64
}

/// An inference configuration's accuracy factor: its resolution's (from `resolution`) times
/// its frame sampling's on the stream's tracks (from `sampling`, else measured on `data`).
pub fn served_factor(
    resolution: &[(u32, f64)],
    sampling: &[(u32, f64)],
    data: &WindowData,
    c: &InferConfig,
) -> f64 {
    let lookup =
        |table: &[(u32, f64)], key: u32| table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    lookup(resolution, c.resolution).unwrap_or(1.0)
        * lookup(sampling, c.frame_sampling)
            .unwrap_or_else(|| sampling_factor(data, c.frame_sampling))
}

/// Each offered resolution's accuracy factor for `model`: its accuracy on `val` resized
/// there over `accuracy` (its accuracy at full size), and the modelled GPU-seconds that
/// took. Measured per model: a model near chance scores the same at every size, so the
/// factors of the model a window started with say nothing about the one that replaces it.
pub fn resolution_factors<B: Backend>(
    be: &B,
    cost: &CostModel,
    model: &mut Model<B>,
    val: &Dataset,
    accuracy: f64,
    infer: &[InferConfig],
) -> (Vec<(u32, f64)>, f64) {
    let mut resolutions: Vec<u32> = infer.iter().map(|c| c.resolution).collect();
    resolutions.sort_unstable();
    resolutions.dedup();
    let mut gpu = 0.0;
    let factors = resolutions
        .into_iter()
        .map(|r| {
            let acc = if r as usize == val.h {
                accuracy
            } else {
                gpu += cost.infer_seconds(r as usize, r as usize, val.len());
                model::evaluate(be, model, &at_resolution(val, r), 256) as f64
            };
            let factor = if accuracy > 0.0 {
                (acc / accuracy).min(1.0)
            } else {
                1.0
            };
            (r, factor)
        })
        .collect();
    (factors, gpu)
}

/// Sampling factors of a window's tracks for every sampling value offered.
pub fn sampling_factors(data: &WindowData, infer: &[InferProfile]) -> Vec<(u32, f64)> {
    let mut ks: Vec<u32> = infer
        .iter()
        .map(|p| p.config.frame_sampling.max(1))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks.into_iter()
        .map(|k| (k, sampling_factor(data, k)))
        .collect()
}
