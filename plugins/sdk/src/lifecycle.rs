//! Serverless streams: the [`Lifecycle`] trait and the reference lifecycle policies. Each
//! decides, per stream, how long it stays resident after its last frame (keep-alive) and
//! whether a cold stream is brought back ahead of its next frames (pre-warm).
//!
//! - [`FixedKeepAlive`]: one keep-alive for every stream, no pre-warm (Knative-like).
//! - [`AlwaysWarm`]: never scale to zero.
//! - [`NeverKeep`]: scale to zero as soon as a stream goes idle, no pre-warm.
//! - [`Histogram`]: the hybrid histogram policy of "Serverless in the Wild" (ATC'20), per mode:
//!   of a stream's past idle times, those at least as long as its current idle spell are cut
//!   into modes (from the shortest, each mode holds the times up to `width` times its first:
//!   short gaps between bursts, long quiet spells); if the next mode is where at least
//!   `min-share` of them ended, the stream is pre-warmed ahead of that mode's low percentile
//!   and kept until its high one (or, for a mode wider than `max-span-seconds`, over its
//!   densest run of idle times that fits), released in between; asked again at each phase
//!   change, it moves on to the next mode. With too few idle times or no likely mode (random arrivals),
//!   a fixed keep-alive. Trade-off: one mode at a time (the interface has
//!   one resident span per decision), so the host must ask again when the phase changes.

use crate::params::{Params, number};
use crate::types::{
    Description, LifecycleDecision, LifecycleInput, Param, ParamSpec, PluginError, PluginKind,
    StreamPhase,
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

/// The hybrid histogram policy, per mode of the idle times.
pub struct Histogram;

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Sorted idle times cut into modes: from the shortest, a mode takes every time up to
/// `width` times its first (a short gap between bursts and a night are different modes).
fn modes(sorted: &[f64], width: f64) -> Vec<&[f64]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..sorted.len() {
        if sorted[i] > width * sorted[start].max(1.0) {
            out.push(&sorted[start..i]);
            start = i;
        }
    }
    if start < sorted.len() {
        out.push(&sorted[start..]);
    }
    out
}

/// What the histogram policy's parameters say.
struct HistogramParams {
    head: f64,
    tail: f64,
    margin: f64,
    slack: f64,
    min_samples: usize,
    width: f64,
    min_share: f64,
    fallback: f64,
    span: f64,
}

impl HistogramParams {
    fn read(params: &[Param]) -> Result<Self, PluginError> {
        let specs = Histogram::describe().params;
        let p = Params::new(&specs, params)?;
        let (head, tail) = (p.number("head")?, p.number("tail")?);
        if !(0.0 <= head && head < tail && tail <= 100.0) {
            return Err(PluginError::InvalidParam(format!(
                "percentiles must satisfy 0 <= head < tail <= 100, got {head} and {tail}"
            )));
        }
        let width = p.number("width")?;
        if width.is_nan() || width <= 1.0 {
            return Err(PluginError::InvalidParam(format!(
                "`width` must be more than 1, got {width}"
            )));
        }
        Ok(Self {
            head: head / 100.0,
            tail: tail / 100.0,
            margin: non_negative(&p, "margin")?,
            slack: non_negative(&p, "slack-seconds")?,
            min_samples: non_negative(&p, "min-samples")? as usize,
            width,
            min_share: non_negative(&p, "min-share")?,
            fallback: non_negative(&p, "fallback-seconds")?,
            span: non_negative(&p, "max-span-seconds")?,
        })
    }

    /// The part of a mode to be resident for: from its low to its high percentile, or, when
    /// that span with its pads is longer than `span`, the densest run of its idle times that
    /// fits. Why: a mode spread by random arrivals (a car park's quiet spell cut short at
    /// random) had streams pre-warmed 80 s ahead of an arrival, more than the keep-alive
    /// holds for a whole spell; capped, a prediction never costs more resident time than the
    /// fixed keep-alive, and spends it where the past spells ended.
    fn window(&self, mode: &[f64]) -> (f64, f64) {
        let (lo, hi) = (quantile(mode, self.head), quantile(mode, self.tail));
        let fits = |lo: f64, hi: f64| {
            (1.0 + 2.0 * self.margin) * (hi - lo) + 2.0 * self.slack <= self.span
        };
        if fits(lo, hi) {
            return (lo, hi);
        }
        // Sorted times: for each start the furthest end that fits; the most times win, the
        // earliest on a tie.
        let (mut best, mut j) = ((0, 0), 0);
        for i in 0..mode.len() {
            j = j.max(i);
            while j + 1 < mode.len() && fits(mode[i], mode[j + 1]) {
                j += 1;
            }
            if j - i > best.1 - best.0 {
                best = (i, j);
            }
        }
        (mode[best.0], mode[best.1])
    }

    /// (keep-alive, pre-warm) for a stream idle `t` seconds (0 while active), cold or not,
    /// whose cold start takes `cold_start` seconds, from its past idle times.
    fn decide(&self, history: &[f64], t: f64, cold: bool, cold_start: f64) -> (f64, Option<f64>) {
        let mut idle: Vec<f64> = history
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .collect();
        idle.sort_by(f64::total_cmp);
        if idle.len() < self.min_samples.max(1) {
            return (self.fallback, None);
        }
        // What the history says of an idle spell that has lasted `t` seconds: the idle times
        // at least that long, and the next mode among them.
        let rest = &idle[idle.partition_point(|x| *x < t)..];
        let Some(&mode) = modes(rest, self.width).first() else {
            // Past every idle time seen: idle from now on, as far as the history knows.
            return (t, None);
        };
        if (mode.len() as f64) < self.min_share * rest.len() as f64 {
            // Not the likely end of this spell: released now, by the same rule that decides a
            // pre-warm (a mode not likely enough to come back for is not likely enough to
            // stay for); the host asks again at the next phase change, when a later mode may
            // be the likely one. Holding such streams for the fixed keep-alive instead (the
            // rule before) was most of what the policy held beyond scale-to-zero: on
            // serverless-12cam-quiet 46-49 MiB, 52-56% of always-warm's, against 33-37 MiB
            // released at once, for 2-4 more cold starts in about 80 (docs/serverless.md).
            return (t, None);
        }
        let (lo, hi) = self.window(mode);
        let pad = self.margin * (hi - lo) + self.slack;
        let (prewarm, keep) = (lo - pad - cold_start, hi + pad);
        if prewarm > t {
            // Released until shortly before the mode: back by its head.
            (keep, Some(prewarm))
        } else if cold {
            // Inside the mode already: back at once.
            (keep, Some(t))
        } else {
            (keep, None)
        }
    }
}

impl Lifecycle for Histogram {
    fn describe() -> Description {
        describe(
            "histogram",
            "The hybrid histogram policy (Serverless in the Wild), per mode of each stream's \
             idle times (short gaps between bursts, long quiet spells): resident through the \
             mode its idle spell is in, released before the next one and pre-warmed ahead of \
             its low percentile, kept until its high one (a wide mode only over its densest part); asked again whenever the stream's \
             phase changes. A fixed keep-alive while its history is short; released at once when no \
             mode is likely.",
            vec![
                number(
                    "head",
                    "percentile of a mode's idle times to be warm by",
                    5.0,
                ),
                number(
                    "tail",
                    "percentile of a mode's idle times to stay warm until",
                    99.0,
                ),
                number(
                    "margin",
                    "fraction of a mode's width added on both sides",
                    0.1,
                ),
                number(
                    "slack-seconds",
                    "seconds added on both sides of a mode",
                    2.0,
                ),
                number(
                    "min-samples",
                    "idle periods needed before trusting the histogram",
                    4.0,
                ),
                number(
                    "width",
                    "a mode holds the idle times up to this many times its shortest",
                    1.5,
                ),
                number(
                    "min-share",
                    "the next mode is predicted if at least this share of the idle times as long as the spell so far end in it",
                    0.5,
                ),
                number(
                    "fallback-seconds",
                    "keep-alive while the history is shorter than min-samples",
                    30.0,
                ),
                number(
                    "max-span-seconds",
                    "the longest resident span one predicted mode may hold (a wider mode is covered where its idle times are densest)",
                    30.0,
                ),
            ],
        )
    }

    fn plan(
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        let p = HistogramParams::read(params)?;
        Ok(input
            .streams
            .iter()
            .map(|s| {
                let t = match s.phase {
                    StreamPhase::Active | StreamPhase::Starting => 0.0,
                    _ => s.idle_seconds.max(0.0),
                };
                let cold = s.phase == StreamPhase::Cold;
                let (keep_alive, prewarm) =
                    p.decide(&s.idle_history, t, cold, s.cold_start_seconds.max(0.0));
                LifecycleDecision {
                    stream_id: s.id.clone(),
                    keep_alive_seconds: keep_alive,
                    prewarm_after_seconds: prewarm,
                }
            })
            .collect())
    }
}
