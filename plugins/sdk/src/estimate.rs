//! The window-averaged accuracy estimate and PickConfigs (Ekya, §4 and Algorithm 2).
//!
//! Every policy that reasons about accuracy uses these functions, so that the thief, the oracle
//! and the ablations maximize exactly the same objective.
//!
//! Model: while a stream retrains it serves with its current model; once the job ends (after
//! `gpu_seconds / share` wall seconds) the new model serves for the rest of the window. Served
//! accuracy is the model's accuracy times the inference configuration's accuracy factor. A job
//! that cannot finish within the remaining window brings nothing and is never picked.
//!
//! Unlike the paper's estimate, a finished job's share is counted as going back to its own
//! stream's inference: the host asks the policy again at every completion, so inference
//! starved while a job runs is not starved for the rest of the window (the re-plan may do
//! better still). Taking from inference to finish a job sooner is valued at what it costs.

use crate::types::{InferProfile, RetrainProfile, StreamInput};

/// Shares below this are treated as zero; comparisons of shares use it as tolerance.
pub const EPS: f64 = 1e-9;

/// Estimated window-averaged accuracy of one stream over `remaining` seconds. `retrain` is the
/// job, its share, and the inference factor once the job's share is handed back.
pub fn stream_accuracy(
    start_accuracy: f64,
    infer_factor: f64,
    retrain: Option<(&RetrainProfile, f64, f64)>,
    remaining: f64,
) -> f64 {
    match retrain {
        Some((job, share, after_factor)) if share > EPS && remaining > EPS => {
            let t = job.gpu_seconds / share;
            if t < remaining {
                (start_accuracy * infer_factor * t
                    + job.accuracy_after * after_factor * (remaining - t))
                    / remaining
            } else {
                start_accuracy * infer_factor
            }
        }
        _ => start_accuracy * infer_factor,
    }
}

/// PickConfigs' answer for one stream at given shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Index into the stream's `infer` candidates; `None` when none fits the share.
    pub infer: Option<usize>,
    /// Index into the stream's `retrain` candidates; `None` when not retraining.
    pub retrain: Option<usize>,
    /// The stream's estimated window-averaged accuracy with these choices.
    pub accuracy: f64,
}

/// Accuracy factor of inference configuration `i` run at `share`. When the share covers its
/// cost this is its own factor; below that the job keeps up with only `share / cost` of its
/// frames (the engine skips the rest and reuses results, as Ekya's simulator does), an
/// effective sampling of `k · cost / share`, whose factor is interpolated over the offered
/// configurations of the same resolution (and falls to 0 past the sparsest one).
pub fn infer_factor_at(infer: &[InferProfile], i: usize, share: f64) -> f64 {
    let p = &infer[i];
    if share + EPS >= p.gpu_cost {
        return p.accuracy_factor;
    }
    if share <= EPS {
        return 0.0;
    }
    let k = f64::from(p.config.frame_sampling.max(1)) * p.gpu_cost / share;
    // (sampling, factor) of the same resolution, sorted by sampling.
    let mut curve: Vec<(f64, f64)> = infer
        .iter()
        .filter(|q| q.config.resolution == p.config.resolution)
        .map(|q| (f64::from(q.config.frame_sampling.max(1)), q.accuracy_factor))
        .collect();
    curve.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in curve.windows(2) {
        let ((k0, f0), (k1, f1)) = (w[0], w[1]);
        if k <= k1 && k >= k0 {
            let t = if k1 > k0 { (k - k0) / (k1 - k0) } else { 1.0 };
            return f0 + t * (f1 - f0);
        }
    }
    0.0
}

/// The inference configuration with the best accuracy factor at `share` (see
/// [`infer_factor_at`]) whose served accuracy stays at or above `min_accuracy`; ties go to the
/// cheaper one. Returns its index and that factor.
pub fn pick_infer(
    infer: &[InferProfile],
    share: f64,
    start_accuracy: f64,
    min_accuracy: f64,
) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for i in 0..infer.len() {
        let f = infer_factor_at(infer, i, share);
        if f <= 0.0 || f * start_accuracy < min_accuracy - EPS {
            continue;
        }
        best = match best {
            Some((b, bf))
                if bf > f + EPS || (bf >= f - EPS && infer[b].gpu_cost <= infer[i].gpu_cost) =>
            {
                Some((b, bf))
            }
            _ => Some((i, f)),
        };
    }
    best
}

/// The stream's best inference factor once its job ends and the retraining share serves its
/// inference too (never below `factor`, the one it serves with meanwhile).
pub fn factor_after(
    stream: &StreamInput,
    infer_share: f64,
    retrain_share: f64,
    factor: f64,
    min_accuracy: f64,
) -> f64 {
    let share = infer_share + retrain_share;
    pick_infer(&stream.infer, share, stream.state.accuracy, min_accuracy)
        .map_or(factor, |(_, f)| f.max(factor))
}

/// PickConfigs for one stream: the best inference configuration for `infer_share`, then the
/// retraining configuration with the highest estimated window accuracy at `retrain_share`
/// (or none when no configuration finishes in time or beats not retraining).
pub fn pick_configs(
    stream: &StreamInput,
    infer_share: f64,
    retrain_share: f64,
    remaining: f64,
    min_accuracy: f64,
) -> Pick {
    let a0 = stream.state.accuracy;
    let Some((infer, factor)) = pick_infer(&stream.infer, infer_share, a0, min_accuracy) else {
        return Pick {
            infer: None,
            retrain: None,
            accuracy: 0.0,
        };
    };
    let mut best = Pick {
        infer: Some(infer),
        retrain: None,
        accuracy: stream_accuracy(a0, factor, None, remaining),
    };
    if retrain_share > EPS {
        let after = factor_after(stream, infer_share, retrain_share, factor, min_accuracy);
        for (j, job) in stream.retrain.iter().enumerate() {
            if job.gpu_seconds / retrain_share >= remaining {
                continue;
            }
            let acc = stream_accuracy(a0, factor, Some((job, retrain_share, after)), remaining);
            if acc > best.accuracy + EPS {
                best = Pick {
                    infer: Some(infer),
                    retrain: Some(j),
                    accuracy: acc,
                };
            }
        }
    }
    best
}

/// Seconds of the window left to plan for.
pub fn remaining(window_seconds: f64, elapsed_seconds: f64) -> f64 {
    (window_seconds - elapsed_seconds).max(0.0)
}
