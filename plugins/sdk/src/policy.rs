//! The reference scheduling policies: thief (paper, public-code and refined variants), the uniform
//! baselines, the two ablations, no retraining, and the δ-grid oracle.
//!
//! An [`Allocation`] gives every job (one inference and at most one retraining job per stream)
//! its GPU share; [`evaluate`] runs PickConfigs on it and returns the mean estimated window
//! accuracy, the objective every policy here maximizes or reports.

use crate::estimate::{EPS, Pick, factor_after, pick_configs, pick_infer, remaining};
use crate::params::{Params, flag, number, text};
use crate::types::{
    Description, Param, ParamSpec, PluginError, PluginKind, PolicyInput, RetrainProfile, Schedule,
    StreamInput, StreamSchedule,
};

/// A scheduling policy, implemented once and exported as a guest or called natively.
pub trait Policy {
    /// The self-description (name, version, parameters).
    fn describe() -> Description;
    /// Decide a schedule.
    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError>;
}

/// GPU shares per stream: `infer[i]` and `retrain[i]` (0 when the stream has no retraining job).
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub infer: Vec<f64>,
    pub retrain: Vec<f64>,
}

impl Allocation {
    /// Ekya's fair start: the GPUs split evenly over all jobs, each capped at one GPU.
    pub fn fair(input: &PolicyInput) -> Self {
        let jobs: usize = input
            .streams
            .iter()
            .map(|s| 1 + usize::from(!s.retrain.is_empty()))
            .sum();
        let share = (f64::from(input.gpus) / jobs.max(1) as f64).min(1.0);
        Allocation {
            infer: vec![share; input.streams.len()],
            retrain: input
                .streams
                .iter()
                .map(|s| if s.retrain.is_empty() { 0.0 } else { share })
                .collect(),
        }
    }

    /// A static per-stream split: `G/N` per stream, `infer_fraction` of it to inference.
    pub fn split(input: &PolicyInput, infer_fraction: f64) -> Self {
        let per_stream = f64::from(input.gpus) / input.streams.len().max(1) as f64;
        Allocation {
            infer: input
                .streams
                .iter()
                .map(|s| {
                    if s.retrain.is_empty() {
                        per_stream.min(1.0)
                    } else {
                        (per_stream * infer_fraction).min(1.0)
                    }
                })
                .collect(),
            retrain: input
                .streams
                .iter()
                .map(|s| {
                    if s.retrain.is_empty() {
                        0.0
                    } else {
                        (per_stream * (1.0 - infer_fraction)).min(1.0)
                    }
                })
                .collect(),
        }
    }
}

/// PickConfigs on every stream and the mean estimated window accuracy.
pub fn evaluate(input: &PolicyInput, alloc: &Allocation, min_accuracy: f64) -> (Vec<Pick>, f64) {
    let rem = remaining(input.window_seconds, input.elapsed_seconds);
    let picks: Vec<Pick> = input
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| pick_configs(s, alloc.infer[i], alloc.retrain[i], rem, min_accuracy))
        .collect();
    let mean = picks.iter().map(|p| p.accuracy).sum::<f64>() / picks.len().max(1) as f64;
    (picks, mean)
}

/// `input` with each stream's job in progress offered alone, with what it has left (what
/// `tandem:plugin@0.1.0` promised): for a policy that does not weigh switching a running job
/// to another configuration, which restarts it from scratch.
pub fn pin_running(input: &PolicyInput) -> PolicyInput {
    let mut pinned = input.clone();
    for s in &mut pinned.streams {
        if let Some(running) = &s.running {
            s.retrain.retain(|r| r.config.name == *running);
        }
    }
    pinned
}

/// Check the preconditions every policy relies on.
pub fn check_input(input: &PolicyInput) -> Result<(), PluginError> {
    let bad = |m: String| Err(PluginError::InvalidInput(m));
    if input.streams.is_empty() {
        return bad("no streams".into());
    }
    if input.gpus == 0 {
        return bad("no GPUs".into());
    }
    if !(input.window_seconds > 0.0 && input.window_seconds.is_finite()) {
        return bad(format!(
            "window length {} s is not positive",
            input.window_seconds
        ));
    }
    if !(input.elapsed_seconds >= 0.0 && input.elapsed_seconds.is_finite()) {
        return bad(format!(
            "elapsed time {} s is not valid",
            input.elapsed_seconds
        ));
    }
    for s in &input.streams {
        if s.infer.is_empty() {
            return bad(format!(
                "stream `{}` has no inference configuration",
                s.state.id
            ));
        }
        let finite = s.retrain.iter().all(|r| {
            r.gpu_seconds.is_finite() && r.gpu_seconds > 0.0 && r.accuracy_after.is_finite()
        }) && s
            .infer
            .iter()
            .all(|p| p.gpu_cost.is_finite() && p.gpu_cost >= 0.0 && p.accuracy_factor.is_finite());
        if !finite || !s.state.accuracy.is_finite() {
            return bad(format!(
                "stream `{}` has a non-finite or non-positive profile",
                s.state.id
            ));
        }
    }
    Ok(())
}

/// Turn an allocation and its picks into a schedule. A retraining share without a chosen
/// configuration goes to the same stream's inference, up to what its most demanding
/// configuration can use (an idle share helps nobody, and the greedy search's early stop
/// cannot always move it there itself); the inference configuration is then re-picked for
/// the larger share. When no inference configuration fits, the cheapest is named (the
/// engine subsamples).
pub fn to_schedule(
    input: &PolicyInput,
    alloc: &Allocation,
    picks: &[Pick],
    estimate: Option<f64>,
) -> Schedule {
    let streams = input
        .streams
        .iter()
        .zip(picks)
        .enumerate()
        .map(|(i, (s, p))| {
            let mut infer_share = alloc.infer[i];
            let mut infer = p.infer;
            if p.retrain.is_none() && alloc.retrain[i] > EPS {
                let useful = s
                    .infer
                    .iter()
                    .map(|c| c.gpu_cost)
                    .fold(0.0, f64::max)
                    .min(1.0);
                if useful > infer_share {
                    infer_share = (infer_share + alloc.retrain[i]).min(useful);
                    // More share never lowers the best factor, so a_MIN still holds.
                    infer = pick_infer(&s.infer, infer_share, s.state.accuracy, 0.0)
                        .map(|(k, _)| k)
                        .or(infer);
                }
            }
            let infer = infer.unwrap_or_else(|| cheapest_infer(s));
            StreamSchedule {
                stream_id: s.state.id.clone(),
                infer_share,
                retrain_share: if p.retrain.is_some() {
                    alloc.retrain[i]
                } else {
                    0.0
                },
                infer_config: s.infer[infer].config.name.clone(),
                retrain_config: p.retrain.map(|j| s.retrain[j].config.name.clone()),
            }
        })
        .collect();
    Schedule {
        streams,
        estimated_accuracy: estimate,
    }
}

fn cheapest_infer(s: &StreamInput) -> usize {
    (0..s.infer.len())
        .min_by(|&a, &b| s.infer[a].gpu_cost.total_cmp(&s.infer[b].gpu_cost))
        .unwrap_or(0)
}

/// Resolve a retraining configuration by name: an exact candidate name, or `cfg1` (the most
/// accurate; the cheaper on ties) or `cfg2` (the cheapest on the accuracy/cost Pareto front that
/// reaches at least half of cfg1's gain), or `zoo` (reuse only: the zoo model offered to
/// deploy as it is that scores best, if it beats the serving model; never a retraining).
/// `None` when the stream has no candidates.
pub fn resolve_retrain(stream: &StreamInput, name: &str) -> Result<Option<usize>, PluginError> {
    let c = &stream.retrain;
    if c.is_empty() {
        return Ok(None);
    }
    if let Some(i) = c.iter().position(|r| r.config.name == name) {
        return Ok(Some(i));
    }
    if name == "zoo" {
        let deploy = |r: &RetrainProfile| r.config.start_from.is_some() && r.config.epochs == 0;
        return Ok((0..c.len())
            .filter(|&i| deploy(&c[i]) && c[i].accuracy_after > stream.state.accuracy)
            .max_by(|&a, &b| c[a].accuracy_after.total_cmp(&c[b].accuracy_after)));
    }
    let better = |a: &RetrainProfile, b: &RetrainProfile| {
        a.accuracy_after > b.accuracy_after
            || (a.accuracy_after == b.accuracy_after && a.gpu_seconds < b.gpu_seconds)
    };
    let mut cfg1 = 0;
    for i in 1..c.len() {
        if better(&c[i], &c[cfg1]) {
            cfg1 = i;
        }
    }
    match name {
        "cfg1" => Ok(Some(cfg1)),
        "cfg2" => {
            let a0 = stream.state.accuracy;
            let target = a0 + 0.5 * (c[cfg1].accuracy_after - a0);
            let pareto = |i: usize| {
                !c.iter().any(|o| {
                    o.gpu_seconds <= c[i].gpu_seconds
                        && o.accuracy_after >= c[i].accuracy_after
                        && (o.gpu_seconds < c[i].gpu_seconds
                            || o.accuracy_after > c[i].accuracy_after)
                })
            };
            Ok((0..c.len())
                .filter(|&i| pareto(i) && c[i].accuracy_after >= target - EPS)
                .min_by(|&a, &b| c[a].gpu_seconds.total_cmp(&c[b].gpu_seconds))
                .or(Some(cfg1)))
        }
        other => Err(PluginError::InvalidParam(format!(
            "stream `{}` offers no retraining configuration named `{other}` (nor is it cfg1/cfg2/zoo)",
            stream.state.id
        ))),
    }
}

fn describe(name: &str, summary: &str, params: Vec<ParamSpec>) -> Description {
    Description {
        name: name.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        kind: PluginKind::Policy,
        summary: summary.into(),
        params,
    }
}

fn min_accuracy_param() -> ParamSpec {
    number(
        "min-accuracy",
        "a_MIN: served accuracy every stream must keep (0 = none)",
        0.0,
    )
}

// ---------------------------------------------------------------------------------------------
// Thief

/// The thief scheduler (Ekya, Algorithms 1 and 2).
pub struct Thief;

/// Which search the thief runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThiefVariant {
    /// Algorithm 1 of the paper: one pass over (thief, victim) pairs, each stealing Δ at a
    /// time until a steal stops improving.
    Paper,
    /// The public code: `rounds` passes, each pair taking the best amount of its whole sweep.
    Code,
    /// tandem's default: the code's sweeps repeated until a pass changes nothing, then again
    /// at Δ/2 and Δ/4. With Δ alone the search stops on its grid: a stream needing 0.25 GPU
    /// to serve every frame, offered 0.125 + k·0.1, was left at 0.15 beside one holding 0.325.
    /// At Δ, a pass that moves nothing between pairs is followed by one where each retraining
    /// job that cannot finish a configuration takes from all the others at once
    /// (`Search::pooled_pass`).
    Refine,
}

/// Where the thief's search starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Ekya's fair start: the GPUs split evenly over all jobs.
    Fair,
    /// tandem's default: the uniform split a user would pick by hand (each stream G/N, half
    /// to inference and half to retraining its safe configuration: [`Allocation::split`]).
    /// The search only moves away from it where its estimate improves, so the thief's
    /// estimate is never below the uniform split's.
    Uniform,
}

/// Thief search settings.
#[derive(Debug, Clone, Copy)]
pub struct ThiefOptions {
    /// Δ: GPU moved per steal.
    pub delta: f64,
    /// a_MIN.
    pub min_accuracy: f64,
    pub variant: ThiefVariant,
    /// Passes of the code variant.
    pub rounds: u32,
    /// Fund retraining with the GPU the search leaves unused (see [`fund_spare`]).
    pub spare: bool,
    pub anchor: Anchor,
    /// Standard errors taken off every predicted accuracy before the search (see
    /// [`risk_adjusted`]); 0 allocates by the predictions as they are (the paper).
    pub risk: f64,
}

/// Passes per Δ after which the refine variant stops even if a pass still moved something
/// (each pass strictly improves the estimate, so this only bounds the time).
const REFINE_MAX_PASSES: usize = 20;

/// Run the thief search from its anchor, on the risk-adjusted input. The picks and the
/// estimate are of the adjusted input; the allocation applies to `input` (same streams and
/// candidates).
pub fn thief(input: &PolicyInput, opts: ThiefOptions) -> (Allocation, Vec<Pick>, f64) {
    let adjusted = risk_adjusted(input, opts.risk);
    let start = match opts.anchor {
        Anchor::Fair => Allocation::fair(&adjusted),
        Anchor::Uniform => Allocation::split(&adjusted, 0.5),
    };
    thief_from(&adjusted, start, opts)
}

/// `input` with every predicted accuracy lowered by `risk` times its standard error (never
/// below 0): a lower confidence bound. A gain the estimator is unsure of must then be larger
/// to win GPU, and a stream whose profile errs widely keeps what the anchor gave it.
pub fn risk_adjusted(input: &PolicyInput, risk: f64) -> PolicyInput {
    let mut adjusted = input.clone();
    if risk > 0.0 {
        for r in adjusted
            .streams
            .iter_mut()
            .flat_map(|s| s.retrain.iter_mut())
        {
            r.accuracy_after = lower_bound(r, risk);
        }
    }
    adjusted
}

/// `r`'s predicted accuracy less `risk` standard errors, never below 0.
fn lower_bound(r: &RetrainProfile, risk: f64) -> f64 {
    (r.accuracy_after - risk * r.accuracy_error).max(0.0)
}

/// Run the thief search from a given start.
pub fn thief_from(
    input: &PolicyInput,
    start: Allocation,
    opts: ThiefOptions,
) -> (Allocation, Vec<Pick>, f64) {
    let n = input.streams.len();
    let (mut picks, _) = evaluate(input, &start, opts.min_accuracy);
    // Jobs: 2i = inference of stream i, 2i+1 = its retraining (if it has candidates).
    let jobs: Vec<usize> = (0..2 * n)
        .filter(|j| j % 2 == 0 || !input.streams[j / 2].retrain.is_empty())
        .collect();
    let mut search = Search {
        input,
        min_accuracy: opts.min_accuracy,
        rem: remaining(input.window_seconds, input.elapsed_seconds),
        total: picks.iter().map(|p| p.accuracy).sum(),
        best: start,
    };
    match opts.variant {
        ThiefVariant::Paper => {
            search.pass(&jobs, &mut picks, opts.delta, false);
        }
        ThiefVariant::Code => {
            for _ in 0..opts.rounds.max(1) {
                search.pass(&jobs, &mut picks, opts.delta, true);
            }
        }
        ThiefVariant::Refine => {
            let deltas = [opts.delta, opts.delta / 2.0, opts.delta / 4.0];
            for (level, delta) in deltas.into_iter().enumerate() {
                for _ in 0..REFINE_MAX_PASSES {
                    // Pooled moves on Δ's grid only, once the pairs stop: the finer steps
                    // refine shares that pairs move well, and pooled moves on them cost 4×
                    // the evaluations.
                    let moved = search.pass(&jobs, &mut picks, delta, true)
                        || (level == 0 && search.pooled_pass(&jobs, &mut picks, delta));
                    if !moved {
                        break;
                    }
                }
            }
        }
    }
    let mean = search.total / n.max(1) as f64;
    (search.best, picks, mean)
}

/// The thief's state between passes.
struct Search<'a> {
    input: &'a PolicyInput,
    min_accuracy: f64,
    rem: f64,
    best: Allocation,
    /// Sum over streams of the estimated window accuracy of `best`.
    total: f64,
}

impl Search<'_> {
    fn share(a: &Allocation, j: usize) -> f64 {
        if j.is_multiple_of(2) {
            a.infer[j / 2]
        } else {
            a.retrain[j / 2]
        }
    }

    fn set(a: &mut Allocation, j: usize, v: f64) {
        if j.is_multiple_of(2) {
            a.infer[j / 2] = v
        } else {
            a.retrain[j / 2] = v
        }
    }

    /// One pass over every (thief, victim) pair of `jobs`, moving `delta` at a time. `sweep`: take the
    /// best amount of the whole sweep (the code); otherwise stop at the first steal that does
    /// not improve (the paper). Per-stream picks are cached: a move touches at most two
    /// streams. Returns whether anything moved.
    fn pass(&mut self, jobs: &[usize], picks: &mut [Pick], delta: f64, sweep: bool) -> bool {
        let mut moved = false;
        for &thief in jobs {
            for &victim in jobs {
                if thief == victim {
                    continue;
                }
                let mut cur = self.best.clone();
                let mut k = 0u32;
                let mut sweep_best: Option<(Allocation, Pick, Pick, f64)> = None;
                loop {
                    k += 1;
                    let v = Self::share(&self.best, victim) - f64::from(k) * delta;
                    let t = Self::share(&self.best, thief) + f64::from(k) * delta;
                    if v < -EPS || t > 1.0 + EPS {
                        break;
                    }
                    Self::set(&mut cur, victim, v.max(0.0));
                    Self::set(&mut cur, thief, t.min(1.0));
                    let (st, sv) = (thief / 2, victim / 2);
                    let pick = |i: usize| {
                        pick_configs(
                            &self.input.streams[i],
                            cur.infer[i],
                            cur.retrain[i],
                            self.rem,
                            self.min_accuracy,
                        )
                    };
                    let (pt, pv) = (pick(st), pick(sv));
                    let new_total = if st == sv {
                        self.total - picks[st].accuracy + pt.accuracy
                    } else {
                        self.total - picks[st].accuracy - picks[sv].accuracy
                            + pt.accuracy
                            + pv.accuracy
                    };
                    let reference = sweep_best.as_ref().map_or(self.total, |b| b.3);
                    if new_total > reference + EPS {
                        sweep_best = Some((cur.clone(), pt, pv, new_total));
                    } else if !sweep {
                        break;
                    }
                }
                if let Some((alloc, pt, pv, new_total)) = sweep_best {
                    picks[victim / 2] = pv;
                    picks[thief / 2] = pt;
                    self.best = alloc;
                    self.total = new_total;
                    moved = true;
                }
            }
        }
        moved
    }

    /// One pass in which each retraining job in turn takes `delta`, `2·delta`, ... from all
    /// the other jobs at once, in proportion to their shares: from the other retraining jobs
    /// alone, or from every other job. A pair's steal moves at most what one victim holds, so
    /// a job that needs several victims' share to finish in the window gains nothing from
    /// any single steal and the pairwise search never funds it (unseen scenario 1017: a
    /// camera whose safe configuration needed a third of the GPU, beside five others holding
    /// a twelfth each for retraining, was never retrained). Inference needs no such move: its
    /// accuracy grows with every step of share (frames are sampled more sparsely below what
    /// it asks). Every stream's picks are evaluated again for such a move, so it is tried
    /// only for jobs with a configuration their share cannot finish. Returns whether
    /// anything moved.
    fn pooled_pass(&mut self, jobs: &[usize], picks: &mut [Pick], delta: f64) -> bool {
        let mut moved = false;
        for &thief in jobs.iter().filter(|&&j| j % 2 == 1) {
            let own = Self::share(&self.best, thief);
            // Only a job with a configuration its share cannot finish has anything to gain.
            let stream = &self.input.streams[thief / 2];
            if stream
                .retrain
                .iter()
                .all(|r| own > EPS && r.gpu_seconds / own < self.rem)
            {
                continue;
            }
            let mut found: Option<(Allocation, Vec<Pick>, f64)> = None;
            for retraining_only in [true, false] {
                let victims: Vec<usize> = jobs
                    .iter()
                    .copied()
                    .filter(|&v| v != thief && (!retraining_only || v % 2 == 1))
                    .collect();
                let pool: f64 = victims.iter().map(|&v| Self::share(&self.best, v)).sum();
                for k in 1u32.. {
                    let extra = f64::from(k) * delta;
                    if extra > pool + EPS || own + extra > 1.0 + EPS {
                        break;
                    }
                    let mut cur = self.best.clone();
                    let scale = ((pool - extra) / pool).max(0.0);
                    for &v in &victims {
                        Self::set(&mut cur, v, Self::share(&self.best, v) * scale);
                    }
                    Self::set(&mut cur, thief, (own + extra).min(1.0));
                    let (cur_picks, _) = evaluate(self.input, &cur, self.min_accuracy);
                    let total: f64 = cur_picks.iter().map(|p| p.accuracy).sum();
                    if total > found.as_ref().map_or(self.total, |f| f.2) + EPS {
                        found = Some((cur, cur_picks, total));
                    }
                }
            }
            if let Some((alloc, new_picks, total)) = found {
                picks.copy_from_slice(&new_picks);
                self.best = alloc;
                self.total = total;
                moved = true;
            }
        }
        moved
    }
}

fn thief_params() -> Vec<ParamSpec> {
    vec![
        number("delta", "Δ: GPU moved per steal, in GPUs", 0.1),
        text(
            "variant",
            "`refine` (sweeps until nothing moves, then at Δ/2 and Δ/4), `paper` (Algorithm 1, early stop per pair) or `code` (public code: 3 rounds of full sweeps)",
            "refine",
        ),
        number("rounds", "passes of the `code` variant", 3.0),
        text(
            "spare",
            "GPU the search finds no use for: `retrain` (default) starts the cheapest retraining of streams not retraining, `idle` leaves it unused (the paper)",
            "retrain",
        ),
        text(
            "anchor",
            "where the search starts: `uniform` (default: each stream G/N, half to inference, half to retraining; the thief never estimates worse than it) or `fair` (Ekya's even split over all jobs)",
            "uniform",
        ),
        number(
            "risk",
            "standard errors taken off each predicted accuracy before allocating (0: the predictions as they are, as in the paper)",
            1.0,
        ),
        number(
            "margin",
            "window-mean accuracy (0-1) by which the thief's estimate must beat the uniform split's (anchor=uniform) for the thief to leave it",
            0.0,
        ),
        text(
            "order",
            "how the retraining jobs share the GPU they are given: `gain-per-cost` (default: pooled and run one after another, the highest estimated gain per GPU-second first) or `together` (each its own share side by side, as in the paper)",
            "gain-per-cost",
        ),
        flag(
            "switch",
            "weigh switching a running job to another configuration (restarting it) when re-planning; false keeps each running job's configuration",
            true,
        ),
        min_accuracy_param(),
    ]
}

fn thief_options(p: &Params<'_>) -> Result<ThiefOptions, PluginError> {
    let delta = p.number("delta")?;
    if !(delta > 0.0 && delta <= 1.0) {
        return Err(PluginError::InvalidParam(format!(
            "delta must be in (0, 1], got {delta}"
        )));
    }
    let variant = match p.text("variant")? {
        "paper" => ThiefVariant::Paper,
        "code" => ThiefVariant::Code,
        "refine" => ThiefVariant::Refine,
        v => {
            return Err(PluginError::InvalidParam(format!(
                "variant must be `refine`, `paper` or `code`, got `{v}`"
            )));
        }
    };
    let rounds = p.number("rounds")?;
    if !(1.0..=100.0).contains(&rounds) {
        return Err(PluginError::InvalidParam(format!(
            "rounds must be in 1..=100, got {rounds}"
        )));
    }
    let spare = match p.text("spare")? {
        "retrain" => true,
        "idle" => false,
        v => {
            return Err(PluginError::InvalidParam(format!(
                "spare must be `retrain` or `idle`, got `{v}`"
            )));
        }
    };
    let anchor = match p.text("anchor")? {
        "uniform" => Anchor::Uniform,
        "fair" => Anchor::Fair,
        v => {
            return Err(PluginError::InvalidParam(format!(
                "anchor must be `uniform` or `fair`, got `{v}`"
            )));
        }
    };
    let risk = p.number("risk")?;
    if !(0.0..=10.0).contains(&risk) {
        return Err(PluginError::InvalidParam(format!(
            "risk must be in [0, 10] standard errors, got {risk}"
        )));
    }
    Ok(ThiefOptions {
        delta,
        min_accuracy: p.number("min-accuracy")?,
        variant,
        rounds: rounds as u32,
        spare,
        anchor,
        risk,
    })
}

impl Policy for Thief {
    fn describe() -> Description {
        describe(
            "thief",
            "Ekya's thief scheduler: from the uniform split a user would pick by hand (or Ekya's fair split), \
             each job steals Δ GPU from each other job while the estimated window-averaged accuracy improves, \
             with PickConfigs after every move; predictions are lowered by their standard error first, so \
             it moves away from the uniform split only for gains larger than its uncertainty.",
            thief_params(),
        )
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let specs = thief_params();
        let p = Params::new(&specs, params)?;
        let opts = thief_options(&p)?;
        let pinned;
        let input = if p.flag("switch")? {
            input
        } else {
            pinned = pin_running(input);
            &pinned
        };
        let (alloc, picks, mean) = thief(input, opts);
        // The uniform split a user would pick by hand, each stream retraining its safe
        // configuration (cfg2: the cheapest that reaches half the best gain), estimated the
        // same way: the thief keeps it unless its own plan is estimated better by `margin`.
        let margin = p.number("margin")?;
        if opts.anchor == Anchor::Uniform {
            let adjusted = risk_adjusted(&pin_running(input), opts.risk);
            let uniform = Fair::schedule(
                &adjusted,
                &[Param {
                    name: "retrain-config".into(),
                    value: crate::types::ParamValue::Text("cfg2".into()),
                }],
            )?;
            if uniform
                .estimated_accuracy
                .is_some_and(|u| mean < u + margin)
            {
                return ordered(input, uniform, &p, opts.risk);
            }
        }
        let mut schedule = to_schedule(input, &alloc, &picks, Some(mean));
        if opts.spare {
            fund_spare(input, &mut schedule);
        }
        ordered(input, schedule, &p, opts.risk)
    }
}

/// `schedule` with its retraining run in the order the `order` parameter names.
fn ordered(
    input: &PolicyInput,
    mut schedule: Schedule,
    p: &Params<'_>,
    risk: f64,
) -> Result<Schedule, PluginError> {
    match p.text("order")? {
        "gain-per-cost" => sequence(input, &mut schedule, risk),
        "together" => {}
        v => {
            return Err(PluginError::InvalidParam(format!(
                "order must be `gain-per-cost` or `together`, got `{v}`"
            )));
        }
    }
    Ok(schedule)
}

/// Run the schedule's retraining jobs one after another on the GPU it gives them all,
/// instead of side by side: the jobs' shares are pooled and handed out in order, each up
/// to one GPU, the running jobs first (their work is partly done), then the others by
/// estimated gain (risk-adjusted, over the serving model) per GPU-second, the highest first.
/// A job that gets nothing now is not started; the policy is asked again at every
/// completion, when it comes next. With a share's work done at a rate proportional to it,
/// the last job finishes no later than side by side and the new models serve sooner on
/// average (ordering by gain per unit of work is Smith's rule for the weighted sum of
/// completion times; with k equal jobs the mean finish moves from the last job's time to
/// (k+1)/2k of it). The order needs the estimates only to rank: wrong gains cost the order,
/// never the pooling. Measured: +1.2 points on the Ekya replay fixture, +0.04 to +0.7 on
/// the Fashion-MNIST examples and unseen scenarios, two small losses (−0.13, −0.02 points;
/// docs/results.md).
pub fn sequence(input: &PolicyInput, schedule: &mut Schedule, risk: f64) {
    let mut jobs: Vec<(usize, bool, f64)> = Vec::new();
    let mut pool = 0.0;
    for (i, (s, out)) in input.streams.iter().zip(&schedule.streams).enumerate() {
        let Some(name) = out.retrain_config.as_deref() else {
            continue;
        };
        let Some(r) = s.retrain.iter().find(|r| r.config.name == name) else {
            continue;
        };
        let gain = (lower_bound(r, risk) - s.state.accuracy).max(0.0);
        let running = s.running.as_deref() == Some(name);
        jobs.push((i, running, gain / r.gpu_seconds.max(EPS)));
        pool += out.retrain_share;
    }
    jobs.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)));
    for (i, running, _) in jobs {
        let share = pool.min(1.0);
        pool -= share;
        let out = &mut schedule.streams[i];
        out.retrain_share = share;
        if share < EPS && !running {
            out.retrain_share = 0.0;
            out.retrain_config = None;
        }
    }
}

/// Work conservation, tandem's addition to the thief: GPU its search leaves unused (inference
/// shares above what the chosen configuration can use, GPUs not allocated at all) starts the
/// cheapest retraining of streams that are not retraining, most degraded first, as many as
/// can finish in the window on an equal split; with none to start, it speeds up the running
/// jobs. The search gives such streams nothing because their profiles promise no gain, and
/// those are the estimates it is most often wrong about (a geometric drift shows a flat
/// 5-epoch profile, yet a real job gained 5 to 27 points); unused GPU makes the bet free, and
/// the host's deploy gate keeps a model that validates worse from serving.
pub fn fund_spare(input: &PolicyInput, schedule: &mut Schedule) {
    let rem = remaining(input.window_seconds, input.elapsed_seconds);
    let total = |s: &Schedule| -> f64 {
        s.streams
            .iter()
            .map(|o| o.infer_share + o.retrain_share)
            .sum()
    };
    let mut spare = (f64::from(input.gpus) - total(schedule)).max(0.0);
    let before: Vec<f64> = schedule.streams.iter().map(|o| o.infer_share).collect();
    let needs: Vec<f64> = input
        .streams
        .iter()
        .zip(&schedule.streams)
        .map(|(s, out)| {
            s.infer
                .iter()
                .find(|c| c.config.name == out.infer_config)
                .map_or(out.infer_share, |c| c.gpu_cost.min(1.0))
        })
        .collect();
    for (out, &need) in schedule.streams.iter_mut().zip(&needs) {
        if out.infer_share > need {
            spare += out.infer_share - need;
            out.infer_share = need;
        }
    }
    // Inference below its configuration's need drops frames for sure, while a job the
    // search gave nothing is a bet: the search's Δ grid leaves such residues (0.024 GPU at 6
    // streams in docs/fig6.md, which started three jobs of 0.008 GPU each that ran until the
    // window's last minutes while their streams' inference dropped 12% of frames), so they
    // go to starved inference first.
    let starved: f64 = schedule
        .streams
        .iter()
        .zip(&needs)
        .map(|(out, &need)| (need - out.infer_share).max(0.0))
        .sum();
    if starved > 1e-9 && spare > 1e-9 {
        let fill = (spare / starved).min(1.0);
        for (out, &need) in schedule.streams.iter_mut().zip(&needs) {
            out.infer_share += fill * (need - out.infer_share).max(0.0);
        }
        spare -= fill * starved;
    }
    // Streams not retraining that could, each with its cheapest configuration, most
    // degraded first. A zoo model deployed as it is (0 epochs) counts only when its check
    // measured it above the serving model (a sure gain, often too small for the search once
    // lowered by its error): one checked below is no bet at all, and as the cheapest it had
    // crowded out the training jobs (fashion-4cam-traffic, seed 12: the station camera,
    // which in the run without the zoo retrained from 0.435 to 0.52).
    let mut idle: Vec<(usize, usize)> = input
        .streams
        .iter()
        .enumerate()
        .filter(|(i, _)| schedule.streams[*i].retrain_config.is_none())
        .filter_map(|(i, s)| {
            let bet =
                |r: &RetrainProfile| r.config.epochs > 0 || r.accuracy_after > s.state.accuracy;
            let cheapest = (0..s.retrain.len())
                .filter(|&j| bet(&s.retrain[j]))
                .min_by(|&a, &b| {
                    s.retrain[a]
                        .gpu_seconds
                        .total_cmp(&s.retrain[b].gpu_seconds)
                })?;
            Some((i, cheapest))
        })
        .collect();
    idle.sort_by(|a, b| {
        input.streams[a.0]
            .state
            .accuracy
            .total_cmp(&input.streams[b.0].state.accuracy)
    });
    // As many as finish inside the window on an equal split (at most a GPU each).
    let fits = |k: usize| {
        let share = (spare / k as f64).min(1.0);
        idle[..k]
            .iter()
            .all(|&(i, j)| input.streams[i].retrain[j].gpu_seconds / share <= rem)
    };
    let running: Vec<usize> = (0..schedule.streams.len())
        .filter(|&i| schedule.streams[i].retrain_config.is_some())
        .collect();
    if spare < 1e-3 || rem <= 0.0 {
        // Too little to be worth a job.
    } else if let Some(k) = (1..=idle.len()).rev().find(|&k| fits(k)) {
        let share = (spare / k as f64).min(1.0);
        for &(i, j) in &idle[..k] {
            let out = &mut schedule.streams[i];
            out.retrain_share = share;
            out.retrain_config = Some(input.streams[i].retrain[j].config.name.clone());
        }
    } else {
        // Nobody new can finish: the running jobs go faster instead.
        for &i in &running {
            let out = &mut schedule.streams[i];
            let add = (spare / running.len() as f64).min(1.0 - out.retrain_share);
            out.retrain_share += add.max(0.0);
        }
    }
    // What nobody could use goes back to the inference shares it was trimmed from, so the
    // schedule never idles GPU the search had handed out.
    let mut left = (f64::from(input.gpus) - total(schedule)).max(0.0);
    for (out, &was) in schedule.streams.iter_mut().zip(&before) {
        let add = (was - out.infer_share).clamp(0.0, left);
        out.infer_share += add;
        left -= add;
    }
}

// ---------------------------------------------------------------------------------------------
// Uniform baselines, ablations, no retraining

/// The uniform baseline: one named retraining configuration for every stream and a static split.
pub struct Fair;

fn fair_params() -> Vec<ParamSpec> {
    vec![
        text(
            "retrain-config",
            "`cfg1` (most accurate), `cfg2` (cheap Pareto choice), `zoo` (reuse only: the best zoo model to deploy as it is, never a retraining) or a configuration name",
            "cfg1",
        ),
        number(
            "infer-fraction",
            "share of each stream's GPU given to inference (0.3, 0.5, 0.9 in the paper)",
            0.5,
        ),
        min_accuracy_param(),
    ]
}

fn infer_fraction(p: &Params<'_>) -> Result<f64, PluginError> {
    let f = p.number("infer-fraction")?;
    if !(0.0..=1.0).contains(&f) {
        return Err(PluginError::InvalidParam(format!(
            "infer-fraction must be in [0, 1], got {f}"
        )));
    }
    Ok(f)
}

impl Policy for Fair {
    fn describe() -> Description {
        describe(
            "fair",
            "Uniform baseline: every stream gets G/N GPUs, split statically between inference and \
             retraining, and retrains with one fixed configuration (Cfg1 or Cfg2).",
            fair_params(),
        )
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let input = &pin_running(input);
        let specs = fair_params();
        let p = Params::new(&specs, params)?;
        let (name, fraction, min_acc) = (
            p.text("retrain-config")?,
            infer_fraction(&p)?,
            p.number("min-accuracy")?,
        );
        let alloc = Allocation::split(input, fraction);
        let rem = remaining(input.window_seconds, input.elapsed_seconds);
        let mut picks = Vec::with_capacity(input.streams.len());
        for (i, s) in input.streams.iter().enumerate() {
            let retrain = resolve_retrain(s, name)?;
            let picked = pick_infer(&s.infer, alloc.infer[i], s.state.accuracy, min_acc);
            let (infer, factor) = (picked.map(|(k, _)| k), picked.map_or(0.0, |(_, f)| f));
            let accuracy = crate::estimate::stream_accuracy(
                s.state.accuracy,
                factor,
                retrain.map(|j| {
                    let after = factor_after(s, alloc.infer[i], alloc.retrain[i], factor, min_acc);
                    (&s.retrain[j], alloc.retrain[i], after)
                }),
                rem,
            );
            picks.push(Pick {
                infer,
                retrain,
                accuracy,
            });
        }
        let mean = picks.iter().map(|p| p.accuracy).sum::<f64>() / picks.len() as f64;
        Ok(to_schedule(input, &alloc, &picks, Some(mean)))
    }
}

/// No retraining: all GPU to inference, split evenly.
pub struct NoRetrain;

fn no_retrain_params() -> Vec<ParamSpec> {
    vec![min_accuracy_param()]
}

impl Policy for NoRetrain {
    fn describe() -> Description {
        describe(
            "no-retrain",
            "Never retrains: the GPUs are split evenly over the inference jobs.",
            no_retrain_params(),
        )
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let input = &pin_running(input);
        let specs = no_retrain_params();
        let min_acc = Params::new(&specs, params)?.number("min-accuracy")?;
        let per = (f64::from(input.gpus) / input.streams.len() as f64).min(1.0);
        let alloc = Allocation {
            infer: vec![per; input.streams.len()],
            retrain: vec![0.0; input.streams.len()],
        };
        let (picks, mean) = evaluate(input, &alloc, min_acc);
        Ok(to_schedule(input, &alloc, &picks, Some(mean)))
    }
}

/// Ekya-FixedRes: PickConfigs on a fixed inference/retraining split.
pub struct FixedRes;

fn fixed_res_params() -> Vec<ParamSpec> {
    vec![
        number(
            "infer-fraction",
            "share of each stream's GPU given to inference",
            0.5,
        ),
        min_accuracy_param(),
    ]
}

impl Policy for FixedRes {
    fn describe() -> Description {
        describe(
            "fixed-res",
            "Ekya-FixedRes ablation: the thief's configuration choice (PickConfigs) on a fixed 50/50 split of \
             each stream's G/N GPUs.",
            fixed_res_params(),
        )
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let input = &pin_running(input);
        let specs = fixed_res_params();
        let p = Params::new(&specs, params)?;
        let alloc = Allocation::split(input, infer_fraction(&p)?);
        let (picks, mean) = evaluate(input, &alloc, p.number("min-accuracy")?);
        Ok(to_schedule(input, &alloc, &picks, Some(mean)))
    }
}

/// Ekya-FixedConfig: the thief's allocation with fixed configurations.
pub struct FixedConfig;

fn fixed_config_params() -> Vec<ParamSpec> {
    let mut p = vec![
        text(
            "retrain-config",
            "the fixed retraining configuration: `cfg1`, `cfg2` or a name",
            "cfg1",
        ),
        text(
            "infer-config",
            "the fixed inference configuration's name; empty = the most accurate",
            "",
        ),
    ];
    p.extend(thief_params());
    p
}

impl Policy for FixedConfig {
    fn describe() -> Description {
        describe(
            "fixed-config",
            "Ekya-FixedConfig ablation: the thief's resource allocation, with one fixed retraining and one \
             fixed inference configuration per stream.",
            fixed_config_params(),
        )
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let input = &pin_running(input);
        let specs = fixed_config_params();
        let p = Params::new(&specs, params)?;
        let opts = thief_options(&p)?;
        let (rname, iname) = (p.text("retrain-config")?, p.text("infer-config")?);
        let mut narrowed = input.clone();
        for s in &mut narrowed.streams {
            let r = resolve_retrain(s, rname)?;
            s.retrain = r.map(|j| vec![s.retrain[j].clone()]).unwrap_or_default();
            let i = if iname.is_empty() {
                (0..s.infer.len())
                    .max_by(|&a, &b| {
                        s.infer[a]
                            .accuracy_factor
                            .total_cmp(&s.infer[b].accuracy_factor)
                    })
                    .unwrap_or(0)
            } else {
                s.infer
                    .iter()
                    .position(|c| c.config.name == iname)
                    .ok_or_else(|| {
                        PluginError::InvalidParam(format!(
                            "stream `{}` offers no inference configuration `{iname}`",
                            s.state.id
                        ))
                    })?
            };
            s.infer = vec![s.infer[i].clone()];
        }
        let (alloc, picks, mean) = thief(&narrowed, opts);
        let mut schedule = to_schedule(&narrowed, &alloc, &picks, Some(mean));
        if opts.spare {
            fund_spare(&narrowed, &mut schedule);
        }
        Ok(schedule)
    }
}

// ---------------------------------------------------------------------------------------------
// Oracle

/// The best schedule on a δ grid under the same estimate: exact (a knapsack over streams of
/// per-stream tables, equivalent to the exhaustive search and much cheaper).
pub struct Oracle;

fn oracle_params() -> Vec<ParamSpec> {
    vec![
        number("delta", "δ: grid step for every job's share, in GPUs", 0.05),
        number(
            "max-streams",
            "refuse instances with more streams than this",
            3.0,
        ),
        min_accuracy_param(),
    ]
}

/// A partial solution of the oracle's knapsack: summed accuracy and per-stream (infer units,
/// retrain units, picks).
type Best = (f64, Vec<(usize, usize, Pick)>);

/// The oracle's search: the best allocation with every share a multiple of `delta`.
pub fn oracle(input: &PolicyInput, delta: f64, min_accuracy: f64) -> (Allocation, Vec<Pick>, f64) {
    let units = (1.0 / delta + EPS).floor() as usize; // grid points per job: 0..=units
    let budget = (f64::from(input.gpus) / delta + EPS).floor() as usize;
    let rem = remaining(input.window_seconds, input.elapsed_seconds);
    let n = input.streams.len();
    // best[b] = (sum of accuracies, choices) using at most b units so far.
    let mut best: Vec<Best> = vec![(0.0, Vec::new()); budget + 1];
    for s in &input.streams {
        let rmax = if s.retrain.is_empty() { 0 } else { units };
        let mut table = Vec::new();
        for i in 0..=units {
            for r in 0..=rmax {
                let p = pick_configs(s, i as f64 * delta, r as f64 * delta, rem, min_accuracy);
                table.push((i, r, p));
            }
        }
        let mut next: Vec<Best> = vec![(f64::NEG_INFINITY, Vec::new()); budget + 1];
        for b in 0..=budget {
            for &(i, r, p) in &table {
                if i + r > b || best[b - i - r].0 == f64::NEG_INFINITY {
                    continue;
                }
                let v = best[b - i - r].0 + p.accuracy;
                if v > next[b].0 + EPS {
                    let mut c = best[b - i - r].1.clone();
                    c.push((i, r, p));
                    next[b] = (v, c);
                }
            }
        }
        best = next;
    }
    let (sum, choice) = best
        .into_iter()
        .fold((f64::NEG_INFINITY, Vec::new()), |acc, x| {
            if x.0 > acc.0 + EPS { x } else { acc }
        });
    let alloc = Allocation {
        infer: choice.iter().map(|c| c.0 as f64 * delta).collect(),
        retrain: choice.iter().map(|c| c.1 as f64 * delta).collect(),
    };
    let picks = choice.iter().map(|c| c.2).collect();
    (alloc, picks, sum / n.max(1) as f64)
}

impl Policy for Oracle {
    fn describe() -> Description {
        describe(
            "oracle",
            "Exact best schedule over a δ grid under the shared window-accuracy estimate, for small instances: \
             the yardstick for the heuristics.",
            oracle_params(),
        )
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let input = &pin_running(input);
        let specs = oracle_params();
        let p = Params::new(&specs, params)?;
        let delta = p.number("delta")?;
        if !(0.01..=1.0).contains(&delta) {
            return Err(PluginError::InvalidParam(format!(
                "delta must be in [0.01, 1], got {delta}"
            )));
        }
        let max_streams = p.number("max-streams")?;
        if input.streams.len() as f64 > max_streams {
            return Err(PluginError::InvalidInput(format!(
                "{} streams: the oracle searches at most {max_streams}",
                input.streams.len()
            )));
        }
        let (alloc, picks, mean) = oracle(input, delta, p.number("min-accuracy")?);
        Ok(to_schedule(input, &alloc, &picks, Some(mean)))
    }
}
