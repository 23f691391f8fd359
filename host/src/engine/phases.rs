//! [`Phases`]: each stream's serverless life over the run — active, warm-idle, cold,
//! starting, pre-warmed — as its camera's activity and the lifecycle policy make it.
//!
//! Each window is stepped a second at a time over every stream together (the memory budget
//! is the server's, so the streams are not independent):
//! - a stream whose camera sends frames is *active*; when they stop it turns *warm-idle*
//!   (resident, no work), and the lifecycle plugin is asked for every stream's keep-alive
//!   and pre-warm ([`crate::plugin::PluginHost::plan_lifecycle`]; also at each window
//!   start, and whenever a stream scales to zero at its keep-alive or comes back). Past its keep-alive it scales to zero (*cold*); with a pre-warm it is released
//!   at once and brought back (*pre-warmed*) that many seconds after its last frame;
//! - frames coming to a cold stream start it: it is *starting* for the cold start's time,
//!   measured on this machine ([`WakeCosts`]: from the load-ready artifacts a scale-down
//!   leaves, or from nothing prepared with `[lifecycle] preprocess = false`), and the frames
//!   that come meanwhile are lost; a pre-warmed stream pays only the pre-warmed wake-up;
//! - with a memory budget, a stream is let in only if the resident streams leave room for
//!   it: idle streams are released first, the least valuable first (warm-idle before
//!   pre-warmed, which a policy brought back on purpose; the longest idle first); if the
//!   active ones alone leave no room, it waits cold and its frames are lost. The budget
//!   therefore holds at every second.
//!
//! The executor learns from the phases when a stream needs inference and when its job can
//! run (its weights resident): see [`Phases::availability`]. Trade-off: one-second steps
//! (a cold start starts at the first frame's exact time and ends at its measured length,
//! but idleness is judged per second), which keeps a window of 8 cameras at 300 steps.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::report::{ColdStartRecord, LifecycleReport, StreamLife};
use crate::plugin::PluginError;
use crate::plugin::types::{LifecycleDecision, LifecycleInput, StreamActivity, StreamPhase};

/// Where a stream is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    #[default]
    Active,
    WarmIdle,
    /// Brought back ahead of its frames (resident, no work).
    Prewarmed,
    /// Loading; frames coming now are lost.
    Starting,
    /// Scaled to zero: only its files.
    Cold,
}

impl Phase {
    /// Whether it holds memory.
    pub fn resident(self) -> bool {
        self != Phase::Cold
    }

    /// Whether its weights are loaded, so its retraining job can run.
    pub fn loaded(self) -> bool {
        matches!(self, Phase::Active | Phase::WarmIdle | Phase::Prewarmed)
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Active => "active",
            Phase::WarmIdle => "warm-idle",
            Phase::Prewarmed => "prewarmed",
            Phase::Starting => "starting",
            Phase::Cold => "cold",
        }
    }

    fn wit(self) -> StreamPhase {
        match self {
            Phase::Active => StreamPhase::Active,
            Phase::WarmIdle | Phase::Prewarmed => StreamPhase::WarmIdle,
            Phase::Starting => StreamPhase::Starting,
            Phase::Cold => StreamPhase::Cold,
        }
    }
}

/// How a stream came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WakeKind {
    /// Cold, nothing prepared: weights decoded, data re-derived, plugins compiled.
    Cold,
    /// Cold, from the load-ready artifacts its scale-down left.
    Preprocessed,
    /// Pre-warmed: only the upload and the first inference left.
    Prewarmed,
}

impl WakeKind {
    /// Its name, as reports and the history spell it.
    pub fn name(self) -> &'static str {
        match self {
            WakeKind::Cold => "cold",
            WakeKind::Preprocessed => "preprocessed",
            WakeKind::Prewarmed => "prewarmed",
        }
    }
}

/// Seconds a wake-up takes by path, with each path's steps in milliseconds: measured on this
/// machine by really scaling a stream down and back (see `lifecycle::measure`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WakeCosts {
    pub cold: f64,
    pub preprocessed: f64,
    pub prewarmed: f64,
    /// (path, step, milliseconds), for the report.
    #[serde(default)]
    pub steps: Vec<(WakeKind, String, f64)>,
}

impl WakeCosts {
    fn of(&self, kind: WakeKind) -> f64 {
        match kind {
            WakeKind::Cold => self.cold,
            WakeKind::Preprocessed => self.preprocessed,
            WakeKind::Prewarmed => self.prewarmed,
        }
    }

    /// Each path (cold, preprocessed, pre-warmed) with its seconds and its steps (name,
    /// milliseconds) in the order they were measured: what the reports show.
    pub fn by_path(&self) -> impl Iterator<Item = (WakeKind, f64, Vec<(&str, f64)>)> {
        [WakeKind::Cold, WakeKind::Preprocessed, WakeKind::Prewarmed]
            .into_iter()
            .map(|kind| {
                let steps = self
                    .steps
                    .iter()
                    .filter(|(k, _, _)| *k == kind)
                    .map(|(_, step, ms)| (step.as_str(), *ms))
                    .collect();
                (kind, self.of(kind), steps)
            })
    }
}

/// Idle periods a stream remembers for its policy.
const HISTORY: usize = 256;

/// One stream's life, carried across windows (and through checkpoints).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Life {
    id: String,
    phase: Phase,
    /// Run seconds its frames stopped (while not active).
    idle_since: Option<f64>,
    /// Lengths of its past idle periods, oldest first.
    history: VecDeque<f64>,
    /// (keep-alive, pre-warm after), seconds after its last frame.
    decision: (f64, Option<f64>),
    /// Starting: run seconds its first inference is done, and how it is waking.
    ready_at: f64,
    waking: WakeKind,
    /// Seconds its last cold start took (0: none yet).
    last_cold_start: f64,
}

/// A window's inputs per stream.
pub struct StreamTick<'a> {
    /// Per frame, whether the camera sent it.
    pub present: &'a [bool],
    pub frame_rate: f64,
    /// Bytes it holds while resident.
    pub bytes: u64,
    /// Its serving model's accuracy (what keeping it warm protects).
    pub accuracy: f64,
}

/// The lifecycle policy as the phases call it.
pub type Decide<'d> =
    dyn FnMut(&LifecycleInput) -> Result<Vec<LifecycleDecision>, PluginError> + 'd;

/// One window's lives.
pub struct PhaseWindow {
    /// Per stream: (seconds into the window, phase) from then on, in time order.
    pub phases: Vec<Vec<(f64, Phase)>>,
    /// Per stream, per frame: sent while the stream could not serve it.
    pub lost: Vec<Vec<bool>>,
    pub report: LifecycleReport,
}

/// Every stream's life (see the module's documentation).
pub struct Phases {
    lives: Vec<Life>,
    budget: Option<u64>,
    costs: WakeCosts,
    preprocess: bool,
    policy: String,
}

/// The keep-alive when the lifecycle plugin fails before it ever decided (Knative's
/// scale-to-zero grace).
const FALLBACK_KEEP_ALIVE: f64 = 30.0;

impl Phases {
    /// Streams `ids`, all active and resident at the run's start.
    pub fn new(
        ids: Vec<String>,
        (budget, preprocess): (Option<u64>, bool),
        costs: WakeCosts,
        policy: String,
    ) -> Self {
        let lives = ids
            .into_iter()
            .map(|id| Life {
                id,
                phase: Phase::Active,
                idle_since: None,
                history: VecDeque::new(),
                decision: (FALLBACK_KEEP_ALIVE, None),
                ready_at: 0.0,
                waking: WakeKind::Preprocessed,
                last_cold_start: 0.0,
            })
            .collect();
        Self {
            lives,
            budget,
            costs,
            preprocess,
            policy,
        }
    }

    /// Step window `w` (`[w0, w0 + horizon)` in run seconds) a second at a time.
    pub fn window(
        &mut self,
        (w0, horizon): (f64, f64),
        ticks: &[StreamTick<'_>],
        decide: &mut Decide<'_>,
    ) -> PhaseWindow {
        let n = self.lives.len();
        let mut run = Run {
            w0,
            phases: self.lives.iter().map(|l| vec![(0.0, l.phase)]).collect(),
            report: LifecycleReport {
                policy: self.policy.clone(),
                memory_budget_bytes: self.budget,
                wake_costs: self.costs.clone(),
                streams: self
                    .lives
                    .iter()
                    .zip(ticks)
                    .map(|(l, t)| StreamLife {
                        stream: l.id.clone(),
                        resident_bytes: t.bytes,
                        ..StreamLife::default()
                    })
                    .collect(),
                ..LifecycleReport::default()
            },
            resident_seconds: vec![0.0; n],
        };
        let firsts: Vec<Vec<Option<f64>>> = ticks
            .iter()
            .map(|t| first_frames(t.present, t.frame_rate, horizon))
            .collect();
        self.ask(w0, ticks, decide, &mut run.report);
        let seconds = horizon.ceil() as usize;
        for k in 0..seconds {
            let t = k as f64;
            self.enforce(w0 + t, ticks, &mut run, None);
            let mut changed = false;
            for (i, first) in firsts.iter().enumerate() {
                changed |= self.tick(i, (w0, t), first[k], ticks, &mut run);
            }
            if changed {
                self.ask(w0 + t, ticks, decide, &mut run.report);
            }
            run.tally(&self.lives, ticks, horizon.min(t + 1.0) - t);
        }
        run.finish(&self.lives, ticks, horizon)
    }

    /// Ask the lifecycle plugin for every stream's decision at run second `now`; on failure
    /// the decisions stand (the fallback keep-alive before the first).
    fn ask(
        &mut self,
        now: f64,
        ticks: &[StreamTick<'_>],
        decide: &mut Decide<'_>,
        report: &mut LifecycleReport,
    ) {
        let input = LifecycleInput {
            now_seconds: now,
            streams: self
                .lives
                .iter()
                .zip(ticks)
                .map(|(l, t)| StreamActivity {
                    id: l.id.clone(),
                    phase: l.phase.wit(),
                    idle_seconds: l.idle_since.map_or(0.0, |s| (now - s).max(0.0)),
                    idle_history: l.history.iter().copied().collect(),
                    resident_bytes: t.bytes,
                    cold_start_seconds: l.last_cold_start,
                    accuracy: t.accuracy,
                })
                .collect(),
            memory_budget_bytes: self.budget,
        };
        report.calls += 1;
        match decide(&input) {
            Ok(decisions) => {
                for d in decisions {
                    if let Some(l) = self.lives.iter_mut().find(|l| l.id == d.stream_id) {
                        l.decision = (d.keep_alive_seconds, d.prewarm_after_seconds);
                    }
                }
            }
            Err(e) => report.errors.push(format!("at {now:.0} s: {e}")),
        }
    }

    /// Stream `i` over second `t` of the window (`first`: its first frame in that second,
    /// seconds into the window). Returns whether its phase changed by itself (it went idle,
    /// scaled to zero at its keep-alive, or came back): the policy is asked again then, so
    /// a decision always fits the phase it applies to (a policy that decides by how long a
    /// stream has been idle, such as `histogram`, moves on from one span to the next).
    fn tick(
        &mut self,
        i: usize,
        (w0, t): (f64, f64),
        first: Option<f64>,
        ticks: &[StreamTick<'_>],
        run: &mut Run,
    ) -> bool {
        let now = w0 + t;
        let l = &mut self.lives[i];
        if l.phase == Phase::Starting && l.ready_at < now + 1.0 {
            // Loaded within this second: it serves from then on.
            let at = (l.ready_at - w0).max(t);
            l.phase = if first.is_some() {
                Phase::Active
            } else {
                l.idle_since = Some(now);
                Phase::WarmIdle
            };
            run.set(i, at, l.phase);
            return true;
        }
        match (first, l.phase) {
            (Some(_), Phase::Active | Phase::Starting) => false,
            (Some(f), phase) => {
                if let Some(since) = l.idle_since.take() {
                    l.history.push_back((w0 + f - since).max(0.0));
                    if l.history.len() > HISTORY {
                        l.history.pop_front();
                    }
                }
                match phase {
                    Phase::WarmIdle => {
                        l.phase = Phase::Active;
                        run.set(i, t, Phase::Active);
                        true
                    }
                    Phase::Prewarmed => {
                        self.start(i, (w0, f), WakeKind::Prewarmed, run);
                        true
                    }
                    _ => {
                        let kind = if self.preprocess {
                            WakeKind::Preprocessed
                        } else {
                            WakeKind::Cold
                        };
                        if let Some(room) = self.admit(i, now, ticks, run) {
                            self.start(i, (w0, f.max(room)), kind, run);
                            true
                        } else {
                            // No room: it waits cold, its frames lost, and tries again.
                            self.lives[i].idle_since = None;
                            run.report.streams[i].memory_wait_seconds += 1;
                            false
                        }
                    }
                }
            }
            (None, Phase::Active) => {
                l.idle_since = Some(now);
                let (keep_alive, prewarm) = l.decision;
                l.phase = if keep_alive <= 0.0 || prewarm.is_some() {
                    Phase::Cold
                } else {
                    Phase::WarmIdle
                };
                run.set(i, t, l.phase);
                true
            }
            (None, Phase::Cold) if l.idle_since.is_none() => {
                // Frames stopped while it waited for memory.
                l.idle_since = Some(now);
                false
            }
            (None, phase) => {
                let idle = now - l.idle_since.unwrap_or(now);
                let (keep_alive, prewarm) = l.decision;
                // A pre-warm still ahead means "released until then" (wit/lifecycle.wit),
                // also for a stream that was resident when the decision came: the histogram
                // policy, asked again mid-spell, predicts the next mode's start, and such
                // streams were held warm through whole 180 s gaps until this was honoured.
                let release = idle >= keep_alive || prewarm.is_some_and(|p| idle < p);
                match phase {
                    Phase::WarmIdle | Phase::Prewarmed if release => {
                        l.phase = Phase::Cold;
                        run.set(i, t, Phase::Cold);
                        return true;
                    }
                    Phase::Cold if prewarm.is_some_and(|p| idle >= p) && idle < keep_alive => {
                        if let Some(room) = self.admit(i, now, ticks, run) {
                            self.lives[i].phase = Phase::Prewarmed;
                            run.set(i, t.max(room), Phase::Prewarmed);
                        }
                    }
                    _ => {}
                }
                false
            }
        }
    }

    /// Stream `i` starts at `f` seconds into the window, by `kind`.
    fn start(&mut self, i: usize, (w0, f): (f64, f64), kind: WakeKind, run: &mut Run) {
        let seconds = self.costs.of(kind);
        let l = &mut self.lives[i];
        (l.phase, l.ready_at, l.waking) = (Phase::Starting, w0 + f + seconds, kind);
        if kind != WakeKind::Prewarmed {
            l.last_cold_start = seconds;
        }
        run.set(i, f, Phase::Starting);
        run.report.cold_starts.push(ColdStartRecord {
            stream: l.id.clone(),
            at: f,
            path: kind,
            seconds,
        });
        // Loaded within the second its frames came back: it serves from then on.
        if f + seconds < f.floor() + 1.0 {
            l.phase = Phase::Active;
            run.set(i, f + seconds, Phase::Active);
        }
    }

    /// Room for stream `i` at run second `now`, releasing idle streams if need be (the least
    /// valuable first): from when (seconds into the window) it fits, if it does. A stream
    /// released this second may only just have finished starting, so the room can come a
    /// fraction of a second after `now`.
    fn admit(
        &mut self,
        i: usize,
        now: f64,
        ticks: &[StreamTick<'_>],
        run: &mut Run,
    ) -> Option<f64> {
        let Some(budget) = self.budget else {
            return Some(now - run.w0);
        };
        let need = ticks[i].bytes;
        self.enforce(now, ticks, run, Some(need));
        // Streams released this second (for this stream or one before it) free their room
        // when their release took effect.
        let room = (0..self.lives.len())
            .filter(|&j| !self.lives[j].phase.resident())
            .filter_map(|j| run.phases[j].last().map(|(at, _)| *at))
            .fold(now - run.w0, f64::max);
        (self.resident(ticks) + need <= budget).then_some(room)
    }

    /// Bytes the resident streams hold.
    fn resident(&self, ticks: &[StreamTick<'_>]) -> u64 {
        self.lives
            .iter()
            .zip(ticks)
            .filter(|(l, _)| l.phase.resident())
            .map(|(_, t)| t.bytes)
            .sum()
    }

    /// Keep the resident streams (plus `extra` bytes about to come in) within the budget:
    /// release idle streams, warm-idle before pre-warmed and the longest idle first; then,
    /// only when nothing extra is asked (a window whose streams grew), active ones.
    fn enforce(&mut self, now: f64, ticks: &[StreamTick<'_>], run: &mut Run, extra: Option<u64>) {
        let Some(budget) = self.budget else {
            return;
        };
        let need = extra.unwrap_or(0);
        let mut order: Vec<usize> = (0..self.lives.len())
            .filter(|&i| self.lives[i].phase.resident())
            .collect();
        let rank = |l: &Life| match l.phase {
            Phase::WarmIdle => 0,
            Phase::Prewarmed => 1,
            _ => 2,
        };
        order.sort_by(|&a, &b| {
            let (la, lb) = (&self.lives[a], &self.lives[b]);
            let since = |l: &Life| l.idle_since.unwrap_or(f64::INFINITY);
            rank(la)
                .cmp(&rank(lb))
                .then(since(la).total_cmp(&since(lb)))
        });
        for i in order {
            if self.resident(ticks) + need <= budget {
                break;
            }
            let l = &mut self.lives[i];
            if extra.is_some() && rank(l) == 2 {
                break;
            }
            if l.idle_since.is_none() {
                l.idle_since = Some(now);
            }
            l.phase = Phase::Cold;
            run.report.streams[i].evictions += 1;
            run.set(i, now - run.w0, Phase::Cold);
        }
    }

    /// Report `name` as the lifecycle policy from now on.
    pub fn set_policy(&mut self, name: String) {
        self.policy = name;
    }

    /// Charge cold starts at `costs` from now on.
    pub fn set_costs(&mut self, costs: WakeCosts) {
        self.costs = costs;
    }

    /// Each stream's phase now.
    pub fn phase(&self, i: usize) -> Phase {
        self.lives[i].phase
    }

    /// The lives between windows, for a checkpoint.
    pub fn saved(&self) -> serde_json::Value {
        serde_json::to_value(&self.lives).expect("lives serialize")
    }

    /// Continue from [`Phases::saved`]: the same streams, in order.
    pub fn restore(&mut self, saved: serde_json::Value) -> Result<(), String> {
        let lives: Vec<Life> = serde_json::from_value(saved).map_err(|e| e.to_string())?;
        let (found, want): (Vec<&str>, Vec<&str>) = (
            lives.iter().map(|l| l.id.as_str()).collect(),
            self.lives.iter().map(|l| l.id.as_str()).collect(),
        );
        if found != want {
            return Err(format!(
                "lifecycle streams {found:?}, the scenario has {want:?}"
            ));
        }
        self.lives = lives;
        Ok(())
    }
}

/// Per second of a window of `horizon` seconds: when the camera's first frame in it came,
/// seconds into the window (`None`: no frame that second).
fn first_frames(present: &[bool], frame_rate: f64, horizon: f64) -> Vec<Option<f64>> {
    let mut firsts = vec![None; horizon.ceil() as usize];
    for (f, _) in present.iter().enumerate().filter(|(_, p)| **p) {
        let t = f as f64 / frame_rate;
        if let Some(slot) = firsts.get_mut(t as usize)
            && slot.is_none()
        {
            *slot = Some(t);
        }
    }
    firsts
}

/// A window being stepped: its phase timelines and report.
struct Run {
    /// The window's start, run seconds.
    w0: f64,
    phases: Vec<Vec<(f64, Phase)>>,
    report: LifecycleReport,
    /// Per stream: seconds resident so far.
    resident_seconds: Vec<f64>,
}

impl Run {
    /// Stream `i` is in `phase` from `at` seconds into the window (or from its last change,
    /// if later).
    fn set(&mut self, i: usize, at: f64, phase: Phase) {
        let timeline = &mut self.phases[i];
        let last = timeline.last().expect("a timeline starts with a phase");
        let at = at.max(last.0);
        if last.1 == phase {
            return;
        }
        if last.0 == at {
            timeline.pop();
            if timeline.last().is_some_and(|l| l.1 == phase) {
                return;
            }
        }
        timeline.push((at, phase));
    }

    /// Account `dt` seconds of resident memory as the phases stand.
    fn tally(&mut self, lives: &[Life], ticks: &[StreamTick<'_>], dt: f64) {
        let mut total = 0;
        for (i, (l, t)) in lives.iter().zip(ticks).enumerate() {
            if l.phase.resident() {
                total += t.bytes;
                self.resident_seconds[i] += dt;
            }
        }
        let r = &mut self.report;
        r.memory_mean_bytes += total as f64 * dt;
        r.memory_peak_bytes = r.memory_peak_bytes.max(total);
    }

    fn finish(mut self, lives: &[Life], ticks: &[StreamTick<'_>], horizon: f64) -> PhaseWindow {
        self.report.memory_mean_bytes /= horizon.max(1e-9);
        let lost: Vec<Vec<bool>> = ticks
            .iter()
            .zip(&self.phases)
            .map(|(t, timeline)| lost_frames(t.present, t.frame_rate, timeline))
            .collect();
        for (i, s) in self.report.streams.iter_mut().enumerate() {
            s.frames_lost = lost[i].iter().filter(|l| **l).count();
            s.resident_mean_bytes = ticks[i].bytes as f64 * self.resident_seconds[i] / horizon;
            s.phases = self.phases[i].clone();
            s.end_phase = lives[i].phase;
        }
        PhaseWindow {
            phases: self.phases,
            lost,
            report: self.report,
        }
    }
}

/// Frames sent while the stream could not serve (starting, or cold waiting for memory).
fn lost_frames(present: &[bool], frame_rate: f64, timeline: &[(f64, Phase)]) -> Vec<bool> {
    let mut k = 0;
    present
        .iter()
        .enumerate()
        .map(|(f, &p)| {
            let t = f as f64 / frame_rate;
            while k + 1 < timeline.len() && timeline[k + 1].0 <= t {
                k += 1;
            }
            p && matches!(timeline[k].1, Phase::Starting | Phase::Cold)
        })
        .collect()
}
