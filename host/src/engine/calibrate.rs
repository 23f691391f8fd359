//! Online calibration of the profiler's predictions from the run's own outcomes.
//!
//! The estimator extrapolates a few profiled epochs on a small sample, and its errors are not
//! noise: on the example, 15- and 30-epoch head-only configurations came out 10 to 25 points
//! optimistic while every-layer ones came out pessimistic, window after window. Every job that
//! runs measures its configuration's real accuracy, so the host learns that bias as it goes:
//! a prediction is corrected by the mean error of earlier jobs of the same kind (trained
//! layers and epochs), shrunk toward no correction while outcomes are few.
//!
//! The same outcomes calibrate each prediction's standard error: the estimator states one
//! (or the profiler's prior error stands in), and the host scales it by how far the corrected
//! predictions really missed, measured in those stated errors, pooled over every kind and
//! shrunk toward a scale of 1 while outcomes are few.

/// What a correction is shared by: the trained layer groups and the epochs. Jobs that start
/// from a zoo model are their own kinds: their layer count is offset by [`ZOO_KIND`].
pub type Kind = (usize, u32);

/// Added to the layer count of a job that starts from a zoo model (its gain over the zoo
/// model is extrapolated, not profiled, and errs in its own way: on fashion-recurring its
/// first such jobs reached 13 points less than predicted).
pub const ZOO_KIND: usize = 1 << 16;

/// A prediction as the estimator made it, kept until its job's outcome is known.
#[derive(Debug, Clone)]
pub struct Raw {
    pub config: String,
    pub kind: Kind,
    /// Accuracy predicted, before any correction.
    pub predicted: f64,
    /// The standard error stated with it.
    pub stated: f64,
}

/// One finished job: its kind, the error of its uncorrected prediction (actual − predicted)
/// and the standard error stated with it.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Outcome {
    kind: Kind,
    error: f64,
    stated: f64,
}

/// The errors seen so far (kept in a checkpoint, so a resumed run corrects as it would have).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    outcomes: Vec<Outcome>,
}

impl Calibration {
    /// Record that the job predicted by `raw` reached `actual`.
    pub fn observe(&mut self, raw: &Raw, actual: f64) {
        self.outcomes.push(Outcome {
            kind: raw.kind,
            error: actual - raw.predicted,
            stated: raw.stated,
        });
    }

    /// The correction to add to an uncorrected prediction of `kind`: the mean error of its
    /// `n` earlier outcomes times n / (n + 1), so one outcome moves it half-way.
    pub fn correction(&self, kind: Kind) -> f64 {
        let (sum, n) = self
            .outcomes
            .iter()
            .filter(|o| o.kind == kind)
            .fold((0.0, 0usize), |(s, n), o| (s + o.error, n + 1));
        sum / (n as f64 + 1.0)
    }

    /// The standard error of a corrected prediction whose estimator stated `stated`: `stated`
    /// times the root-mean-square of the earlier outcomes' misses in units of their own
    /// stated errors, with one prior miss of exactly one unit.
    pub fn error(&self, stated: f64) -> f64 {
        let n = self.outcomes.len() as f64;
        let misses: f64 = self
            .outcomes
            .iter()
            .map(|o| ((o.error - self.correction(o.kind)) / o.stated.max(1e-3)).powi(2))
            .sum();
        stated * ((1.0 + misses) / (n + 1.0)).sqrt()
    }

    /// Outcomes recorded.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }
}
