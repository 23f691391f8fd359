//! Scene changes inside a window, detected on the frames a stream serves before any label
//! arrives, and the zoo model to swap in when one is.
//!
//! The detector compares what the objects coming into view look like ([`Look`]: pixel
//! statistics, no model and no label needed) with what the window's labelled images looked
//! like: once a second it takes the newest objects (at least `min_objects` of them, from the
//! last few seconds), and flags a change when some component of their look differs by more
//! than `z` standard errors, twice in a row (one second of evidence alone can be a fluke). On a
//! change, the stream's own zoo model whose scene signature fits the new look best serves
//! from the second it fits (at the detection or up to [`MATCH_SECONDS`] after, as the newest
//! objects become all the new scene's); the next window's labels confirm it (it is checked
//! like any zoo model) or the policy retrains. Detection delay, the time to the swap and
//! false alarms are reported per window (`ZooReport`).

use super::stream::WindowData;
use super::zoo::Zoo;
use crate::data::Look;

/// How long after a detection the zoo is searched for a model of the new scene, seconds: a
/// tenth of the examples' 300 s windows. The slowest example camera (3.3 new objects a
/// second) renews the 64 objects of a look in about 19 s.
pub const MATCH_SECONDS: f64 = 30.0;

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
    /// The first change away from `reference` in `looks` (from [`Detector::looks`]), if any;
    /// `looks` goes on from the second after it.
    pub fn detect(
        &self,
        looks: &mut impl Iterator<Item = (usize, Look)>,
        reference: &Look,
    ) -> Option<Detection> {
        let mut flagged = false;
        for (second, look) in looks {
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

    /// Once a second, from the first with `min_objects` objects in view: the second and the
    /// look of the newest `min_objects` objects by then.
    pub fn looks<'a>(
        &self,
        data: &'a WindowData,
        fps: f64,
    ) -> impl Iterator<Item = (usize, Look)> + 'a {
        let mut order: Vec<usize> = (0..data.first_frame.len()).collect();
        order.sort_by_key(|&t| data.first_frame[t]);
        let seconds = (data.frames as f64 / fps).floor() as usize;
        let n = self.min_objects;
        (1..=seconds).filter_map(move |second| {
            let frame = ((second as f64) * fps) as usize;
            let seen = order.partition_point(|&t| data.first_frame[t] < frame);
            let newest = order.get(seen.checked_sub(n)?..seen)?;
            let look = Look::of_images(&data.crops, newest.iter().copied());
            Some((second, look))
        })
    }
}

/// The zoo model made on `stream` whose signature fits `look` best and does not fit `before`
/// (the scene the window's labels show). A signature fits when every component is within
/// `z` standard errors of the look's (a floor of 0.002); the nearest of those is taken.
///
/// Only the stream's own models: no label checks a swap on the frames, and another camera's
/// model that only looks alike served a pan-tilt camera's second view 12 points worse than
/// its own model did (fashion-recurring-severe, seed 62, window 6). Not one that fits the
/// old scene too: it is no model of the new one (fashion-recurring, seed 33: the pan-tilt
/// camera's model of its first view swapped in for the second; 0.5 points over the run).
pub fn best_match(
    zoo: &Zoo,
    (look, before): (&Look, &Look),
    z: f64,
    stream: &str,
) -> Option<String> {
    let fits = |sig: &[f64], look: &Look| {
        sig.len() == look.mean.len()
            && sig
                .iter()
                .zip(&look.mean)
                .zip(&look.se)
                .all(|((a, b), se)| (a - b).abs() <= z * se.max(0.002))
    };
    zoo.entries(None)
        .into_iter()
        .filter(|e| e.origin_stream == stream)
        .filter(|e| fits(&e.signature, look) && !fits(&e.signature, before))
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
