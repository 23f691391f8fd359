//! Scene changes inside a window, detected on the frames a stream serves before any label
//! arrives, and the zoo model to swap in when one is.
//!
//! The detector compares what the objects coming into view look like ([`Look`]: pixel
//! statistics, no model and no label needed) with what the window's labelled images looked
//! like: once a second it takes the newest objects (at least `min_objects` of them, from the
//! last few seconds), and flags a change when some component of their look differs by more
//! than `z` standard errors, twice in a row (one second of evidence alone can be a fluke). On a
//! change, the zoo model whose scene signature fits the new look best serves from then on;
//! the next window's labels confirm it (it is checked like any zoo model) or the policy
//! retrains. Detection delay and false alarms are reported per window (`ZooReport`).

use super::stream::WindowData;
use super::zoo::Zoo;
use crate::data::Look;

/// A scene change seen on the served frames.
#[derive(Debug, Clone)]
pub struct Detection {
    /// When it was flagged, seconds into the window.
    pub at: f64,
    /// What the new objects look like.
    pub look: Look,
}

/// How the detector decides (see `[zoo]` in the scenario).
#[derive(Debug, Clone, Copy)]
pub struct Detector {
    /// Objects a look is measured over, at least.
    pub min_objects: usize,
    /// Standard errors a component must move by to flag a change.
    pub z: f64,
}

impl Detector {
    /// The first change in `data`'s frames (at `fps`) away from `reference`, if any.
    pub fn detect(&self, data: &WindowData, fps: f64, reference: &Look) -> Option<Detection> {
        let mut order: Vec<usize> = (0..data.first_frame.len()).collect();
        order.sort_by_key(|&t| data.first_frame[t]);
        let seconds = (data.frames as f64 / fps).floor() as usize;
        let mut flagged = false;
        for second in 1..=seconds {
            let frame = ((second as f64) * fps) as usize;
            // Objects in view by now, the newest `min_objects` of them.
            let seen = order.partition_point(|&t| data.first_frame[t] < frame);
            if seen < self.min_objects {
                continue;
            }
            let newest = order[seen - self.min_objects..seen].iter().copied();
            let look = Look::of_images(&data.crops, newest);
            if look.same_scene(reference, self.z) {
                flagged = false;
            } else if flagged {
                return Some(Detection {
                    at: second as f64,
                    look,
                });
            } else {
                flagged = true;
            }
        }
        None
    }
}

/// The zoo model (other than `serving`) whose signature fits `look` best: every component
/// within `z` standard errors of the look's (a floor of 0.002), the nearest of those.
pub fn best_match(zoo: &Zoo, look: &Look, serving: Option<&str>, z: f64) -> Option<String> {
    let fits = |sig: &[f64]| {
        sig.len() == look.mean.len()
            && sig
                .iter()
                .zip(&look.mean)
                .zip(&look.se)
                .all(|((a, b), se)| (a - b).abs() <= z * se.max(0.002))
    };
    zoo.entries(serving)
        .into_iter()
        .filter(|e| fits(&e.signature))
        .map(|e| {
            let d: f64 = e
                .signature
                .iter()
                .zip(&look.mean)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            (d, e.id)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id)
}
