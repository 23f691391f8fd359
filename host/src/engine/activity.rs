//! [`Activity`]: when a camera sends frames, over the whole run.
//!
//! A camera without a schedule is always busy. With one, it is busy in the parts of a
//! repeating `cycle` (a daily rhythm a lifecycle policy can learn: a car park busy mornings and
//! evenings), plus `arrivals` bursts at random (Poisson in time, seeded: what no rhythm
//! predicts), except during fixed `idle` periods (a shop closed for the night). Times are run
//! seconds: window `w` covers `[w·W, (w+1)·W)`.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// A camera's activity schedule, as written in the scenario (`[cameras.activity]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySpec {
    /// A repeating rhythm: busy in these parts of each period.
    #[serde(default)]
    pub cycle: Option<Cycle>,
    /// Bursts of frames at random moments, on top of the rhythm.
    #[serde(default)]
    pub arrivals: Option<Arrivals>,
    /// Periods with no frames at all, `[start, end)` in run seconds.
    #[serde(default)]
    pub idle: Vec<[f64; 2]>,
}

/// Busy in `busy` (`[start, end)` seconds within each period) of every `period` seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cycle {
    pub period: f64,
    pub busy: Vec<[f64; 2]>,
}

/// Bursts of `seconds` starting at random, `per_hour` of them an hour on average.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    pub per_hour: f64,
    pub seconds: f64,
}

impl ActivitySpec {
    /// Semantic checks; the error is (field, reason).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let interval = |[a, b]: [f64; 2]| a.is_finite() && b.is_finite() && 0.0 <= a && a < b;
        if let Some(c) = &self.cycle {
            if !(c.period.is_finite() && c.period > 0.0) {
                return Err(("cycle", format!("period {} is not positive", c.period)));
            }
            if let Some(b) = c.busy.iter().find(|b| !interval(**b) || b[1] > c.period) {
                return Err((
                    "cycle",
                    format!("busy part {b:?} is not [start, end) within the period"),
                ));
            }
        }
        if let Some(a) = &self.arrivals
            && !(a.per_hour.is_finite()
                && a.per_hour >= 0.0
                && a.seconds.is_finite()
                && a.seconds > 0.0)
        {
            return Err(("arrivals", "per_hour must be >= 0 and seconds > 0".into()));
        }
        if let Some(p) = self.idle.iter().find(|p| !interval(**p)) {
            return Err(("idle", format!("{p:?} is not a period [start, end)")));
        }
        Ok(())
    }
}

/// A camera's activity over a run of `until` seconds, its random bursts drawn once.
#[derive(Clone, Debug)]
pub struct Activity {
    spec: ActivitySpec,
    /// Random bursts, `[start, end)`, in time order.
    bursts: Vec<[f64; 2]>,
}

impl Activity {
    /// `spec` over `until` run seconds, bursts drawn from `seed`.
    pub fn new(spec: &ActivitySpec, until: f64, seed: u64) -> Self {
        let mut bursts = Vec::new();
        if let Some(a) = spec.arrivals.as_ref().filter(|a| a.per_hour > 0.0) {
            let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xAC71);
            let rate = a.per_hour / 3600.0;
            let mut t = 0.0;
            loop {
                // Exponential gaps between arrivals: a Poisson process.
                t += -(1.0 - rng.random::<f64>()).ln() / rate;
                if t >= until {
                    break;
                }
                bursts.push([t, t + a.seconds]);
            }
        }
        Activity {
            spec: spec.clone(),
            bursts,
        }
    }

    /// Whether the camera sends frames at run second `t`.
    pub fn busy(&self, t: f64) -> bool {
        let within = |p: &[f64; 2], t: f64| p[0] <= t && t < p[1];
        if self.spec.idle.iter().any(|p| within(p, t)) {
            return false;
        }
        let rhythm = match &self.spec.cycle {
            None => self.spec.arrivals.is_none(),
            Some(c) => c.busy.iter().any(|b| within(b, t.rem_euclid(c.period))),
        };
        rhythm || self.bursts.iter().any(|b| within(b, t))
    }
}
