//! Online calibration of the profiler's predictions from the run's own outcomes.
//!
//! The estimator extrapolates a few profiled epochs on a small sample, and its errors are not
//! noise: on the example, 15- and 30-epoch head-only configurations came out 10 to 25 points
//! optimistic while every-layer ones came out pessimistic, window after window. Every job that
//! runs measures its configuration's real accuracy, so the host learns that bias as it goes:
//! a prediction is corrected by the mean error of earlier jobs of the same kind (trained
//! layers and epochs), shrunk toward no correction while outcomes are few.

/// What a correction is shared by: the trained layer groups and the epochs.
pub type Kind = (usize, u32);

/// The errors seen so far, per kind.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    errors: Vec<(Kind, f64)>,
}

impl Calibration {
    /// Record that a job of `kind` predicted `predicted` (uncorrected) and reached `actual`.
    pub fn observe(&mut self, kind: Kind, predicted: f64, actual: f64) {
        self.errors.push((kind, actual - predicted));
    }

    /// The correction to add to an uncorrected prediction of `kind`: the mean error of its
    /// `n` earlier outcomes times n / (n + 1), so one outcome moves it half-way.
    pub fn correction(&self, kind: Kind) -> f64 {
        let (sum, n) = self
            .errors
            .iter()
            .filter(|(k, _)| *k == kind)
            .fold((0.0, 0usize), |(s, n), (_, e)| (s + e, n + 1));
        sum / (n as f64 + 1.0)
    }

    /// Outcomes recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}
