//! The window-averaged accuracy estimate and PickConfigs (Ekya, §4 and Algorithm 2).
//!
//! Every policy that reasons about accuracy uses these functions, so that the thief, the oracle
//! and the ablations maximize exactly the same objective.
//!
//! Model: while a stream retrains it serves with its current model; once the job ends (after
//! `gpu_seconds / share` wall seconds) the new model serves for the rest of the window. Served
//! accuracy is the model's accuracy times the inference configuration's accuracy factor. A job
//! that cannot finish within the remaining window brings nothing and is never picked.

use crate::types::{InferProfile, RetrainProfile, StreamInput};

/// Shares below this are treated as zero; comparisons of shares use it as tolerance.
pub const EPS: f64 = 1e-9;

/// Estimated window-averaged accuracy of one stream over `remaining` seconds.
pub fn stream_accuracy(
    start_accuracy: f64,
    infer_factor: f64,
    retrain: Option<(&RetrainProfile, f64)>,
    remaining: f64,
) -> f64 {
    let model = match retrain {
        Some((job, share)) if share > EPS && remaining > EPS => {
            let t = job.gpu_seconds / share;
            if t < remaining {
                (start_accuracy * t + job.accuracy_after * (remaining - t)) / remaining
            } else {
                start_accuracy
            }
        }
        _ => start_accuracy,
    };
    model * infer_factor
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

/// The most accurate inference configuration whose cost fits `share` and whose served accuracy
/// stays at or above `min_accuracy` (when several fit, the cheaper one wins ties).
pub fn pick_infer(
    infer: &[InferProfile],
    share: f64,
    start_accuracy: f64,
    min_accuracy: f64,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, p) in infer.iter().enumerate() {
        if p.gpu_cost > share + EPS || p.accuracy_factor * start_accuracy < min_accuracy - EPS {
            continue;
        }
        best = match best {
            Some(b)
                if infer[b].accuracy_factor > p.accuracy_factor
                    || (infer[b].accuracy_factor == p.accuracy_factor
                        && infer[b].gpu_cost <= p.gpu_cost) =>
            {
                Some(b)
            }
            _ => Some(i),
        };
    }
    best
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
    let Some(infer) = pick_infer(&stream.infer, infer_share, a0, min_accuracy) else {
        return Pick {
            infer: None,
            retrain: None,
            accuracy: 0.0,
        };
    };
    let factor = stream.infer[infer].accuracy_factor;
    let mut best = Pick {
        infer: Some(infer),
        retrain: None,
        accuracy: stream_accuracy(a0, factor, None, remaining),
    };
    if retrain_share > EPS {
        for (j, job) in stream.retrain.iter().enumerate() {
            if job.gpu_seconds / retrain_share >= remaining {
                continue;
            }
            let acc = stream_accuracy(a0, factor, Some((job, retrain_share)), remaining);
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
