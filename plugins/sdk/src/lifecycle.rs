//! Serverless streams: the [`Lifecycle`] trait and the reference lifecycle policies. Each
//! decides, per stream, how long it stays resident after its last frame (keep-alive) and
//! whether a cold stream is brought back ahead of its next frames (pre-warm).
//!
//! - [`FixedKeepAlive`]: one keep-alive for every stream, no pre-warm (Knative-like).
//! - [`AlwaysWarm`]: never scale to zero.
//! - [`NeverKeep`]: scale to zero as soon as a stream goes idle, no pre-warm.
//! - [`Histogram`]: the hybrid histogram policy of "Serverless in the Wild" (ATC'20): from a
//!   stream's past idle times, pre-warm at their low percentile and keep alive until their
//!   high percentile; with too few or too spread idle times, a fixed keep-alive instead.

use crate::params::{Params, number};
use crate::types::{
    Description, LifecycleDecision, LifecycleInput, Param, ParamSpec, PluginError, PluginKind,
};

/// A lifecycle policy, implemented once and exported as a guest or called natively.
pub trait Lifecycle {
    /// The self-description.
    fn describe() -> Description;
    /// One decision per input stream.
    fn plan(
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError>;
}

fn describe(name: &str, summary: &str, params: Vec<ParamSpec>) -> Description {
    Description {
        name: name.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        kind: PluginKind::Lifecycle,
        summary: summary.into(),
        params,
    }
}

/// Every stream the same decision.
fn uniform(
    input: &LifecycleInput,
    keep_alive: f64,
    prewarm: Option<f64>,
) -> Vec<LifecycleDecision> {
    input
        .streams
        .iter()
        .map(|s| LifecycleDecision {
            stream_id: s.id.clone(),
            keep_alive_seconds: keep_alive,
            prewarm_after_seconds: prewarm,
        })
        .collect()
}

fn non_negative(p: &Params<'_>, name: &str) -> Result<f64, PluginError> {
    let v = p.number(name)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(PluginError::InvalidParam(format!(
            "`{name}` must be 0 or more, got {v}"
        )))
    }
}

/// A fixed keep-alive, no pre-warm.
pub struct FixedKeepAlive;

impl Lifecycle for FixedKeepAlive {
    fn describe() -> Description {
        describe(
            "keep-alive",
            "Every stream stays resident a fixed time after its last frame, then scales to zero; \
             no pre-warm (Knative's scale-to-zero grace).",
            vec![number("seconds", "keep-alive after the last frame", 30.0)],
        )
    }

    fn plan(
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        let specs = Self::describe().params;
        let p = Params::new(&specs, params)?;
        Ok(uniform(input, non_negative(&p, "seconds")?, None))
    }
}

/// Never scale to zero.
pub struct AlwaysWarm;

impl Lifecycle for AlwaysWarm {
    fn describe() -> Description {
        describe(
            "always-warm",
            "Every stream stays resident forever: no cold start, the most memory.",
            vec![],
        )
    }

    fn plan(
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        Params::new(&[], params)?;
        Ok(uniform(input, f64::MAX, None))
    }
}

/// Scale to zero at once.
pub struct NeverKeep;

impl Lifecycle for NeverKeep {
    fn describe() -> Description {
        describe(
            "scale-to-zero",
            "Every stream scales to zero as soon as it goes idle, and starts cold when frames \
             return: the least memory, a cold start every time.",
            vec![],
        )
    }

    fn plan(
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        Params::new(&[], params)?;
        Ok(uniform(input, 0.0, None))
    }
}

/// The hybrid histogram policy.
pub struct Histogram;

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Lifecycle for Histogram {
    fn describe() -> Description {
        describe(
            "histogram",
            "The hybrid histogram policy (Serverless in the Wild): from each stream's past idle \
             times, scale to zero after its last frame, pre-warm ahead of the low percentile of \
             its idle times and keep it until the high one; a fixed keep-alive while its history \
             is short or too spread to predict.",
            vec![
                number(
                    "head",
                    "percentile of idle times to be warm by (pre-warm)",
                    5.0,
                ),
                number("tail", "percentile of idle times to stay warm until", 99.0),
                number("margin", "fraction of the window added on both sides", 0.1),
                number(
                    "min-samples",
                    "idle periods needed before trusting the histogram",
                    4.0,
                ),
                number(
                    "max-cv",
                    "idle times more spread than this (coefficient of variation) are unpredictable",
                    2.0,
                ),
                number("fallback-seconds", "keep-alive while unpredictable", 30.0),
            ],
        )
    }

    fn plan(
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        let specs = Self::describe().params;
        let p = Params::new(&specs, params)?;
        let (head, tail) = (p.number("head")?, p.number("tail")?);
        if !(0.0 <= head && head < tail && tail <= 100.0) {
            return Err(PluginError::InvalidParam(format!(
                "percentiles must satisfy 0 <= head < tail <= 100, got {head} and {tail}"
            )));
        }
        let margin = non_negative(&p, "margin")?;
        let min_samples = non_negative(&p, "min-samples")? as usize;
        let max_cv = non_negative(&p, "max-cv")?;
        let fallback = non_negative(&p, "fallback-seconds")?;
        Ok(input
            .streams
            .iter()
            .map(|s| {
                let mut idle: Vec<f64> = s
                    .idle_history
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .collect();
                idle.sort_by(f64::total_cmp);
                let n = idle.len() as f64;
                let mean = idle.iter().sum::<f64>() / n.max(1.0);
                let sd =
                    (idle.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n.max(1.0)).sqrt();
                let predictable = idle.len() >= min_samples.max(1) && sd <= max_cv * mean;
                let (keep_alive, prewarm) = if predictable {
                    let (lo, hi) = (quantile(&idle, head / 100.0), quantile(&idle, tail / 100.0));
                    let width = hi - lo;
                    // Warm by the head (a cold start ahead of it), resident until the tail.
                    let prewarm = lo - margin * width - s.cold_start_seconds;
                    let keep_alive = hi + margin * width;
                    // A pre-warm at once is no release at all.
                    (keep_alive, (prewarm > 0.0).then_some(prewarm))
                } else {
                    (fallback, None)
                };
                LifecycleDecision {
                    stream_id: s.id.clone(),
                    keep_alive_seconds: keep_alive,
                    prewarm_after_seconds: prewarm,
                }
            })
            .collect())
    }
}
