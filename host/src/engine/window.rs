//! [`Engine`]: the window loop. Each window: every stream opens its window (data, serving
//! model measured, candidates and their plans: [`Stream::open`]), the micro-profile runs
//! and predicts ([`ProfileTask`]), the [`Scheduler`] asks the policy plugin for the split
//! after the golden labels and the profile and re-asks it at every completion, the
//! retraining jobs really train, and each stream's served frames are scored
//! ([`serve::serve`]) before the window is folded back into the streams.
//!
//! The virtual clock is here; `real` holds the real clock's window, which drives the same
//! scheduler from the device.

use super::calibrate::Calibration;
use super::checkpoint;
use super::cost::CostModel;
use super::executor::{Avail, Executor};
use super::memory::ExemplarMemory;
use super::phases::{Phase, PhaseWindow, Phases, StreamTick, WakeCosts};
use super::profiler::{Profile, ProfileTask};
use super::report::{StreamReport, WindowReport, ZooCheckRecord, ZooDetection, ZooReport, ZooUse};
use super::scenario::{ClockKind, ProfileTiming, Scenario};
use super::schedule::{
    Outcome, Policy, Records, Scheduler, Step, best_infer, inference_only, start_infer,
};
use super::serve::{self, LiveServed};
use super::stream::{Camera, Recent, Stream, StreamWindow};
use super::zoo::{self, Zoo};
use super::{EngineError, Plugins};
use crate::compute::Backend;
use crate::model::{self, Model};
use crate::plugin::types::{InferConfig, PolicyInput, RetrainProfile, Schedule, StreamInput};
use tandem_plugin_sdk::policy::{Fair, Policy as _};

mod real;

/// Runs a scenario window by window on backend `B`.
pub struct Engine<'a, B: Backend> {
    be: &'a B,
    scenario: Scenario,
    plugins: Plugins,
    cost: CostModel,
    streams: Vec<Stream<B>>,
    next: u32,
    calibration: Calibration,
    /// Models retrained for earlier scenes, shared by the streams (none: no zoo).
    zoo: Option<Zoo>,
    /// The streams' serverless lives (none: every stream always there).
    phases: Option<Phases>,
}

/// A window in progress: the scheduler, each stream's window and micro-profile, and the
/// share the micro-profile runs on until the first decision.
struct Window<'p, B: Backend> {
    sched: Scheduler<'p>,
    streams: Vec<StreamWindow<B>>,
    tasks: Vec<ProfileTask<B>>,
    profiler_share: f64,
    /// The streams' phases this window, when they come and go.
    life: Option<PhaseWindow>,
}

/// What comes at known times in a window besides completions: zoo swaps where a scene
/// change was seen, and (timing `beside`) the profile coming in.
struct Timed {
    /// (time, stream), in time order.
    swaps: std::collections::VecDeque<(f64, usize)>,
    profile: Option<f64>,
    /// Whether a profile beside the jobs has yet to be offered (it may come after the end).
    profile_pending: bool,
    horizon: f64,
}

/// One of [`Timed`]'s events.
enum Timing {
    Swap(usize, f64),
    Profile(f64),
}

impl Timed {
    fn new<B: Backend>(streams: &[StreamWindow<B>], profile: Option<f64>, horizon: f64) -> Self {
        let mut swaps: Vec<(f64, usize)> = streams
            .iter()
            .enumerate()
            .filter_map(|(i, st)| Some((st.swap.as_ref()?.0, i)))
            .filter(|(at, _)| *at < horizon)
            .collect();
        swaps.sort_by(|a, b| a.0.total_cmp(&b.0));
        Timed {
            swaps: swaps.into(),
            profile: profile.filter(|&t| t < horizon),
            profile_pending: profile.is_some(),
            horizon,
        }
    }

    /// When the next event comes (the window's end if none does).
    fn next_at(&self) -> f64 {
        let swap = self.swaps.front().map_or(self.horizon, |s| s.0);
        swap.min(self.profile.unwrap_or(self.horizon))
    }

    /// The next event, taken off (`None` when none comes before the window's end).
    fn pop(&mut self) -> Option<Timing> {
        let swap = self.swaps.front().map_or(f64::INFINITY, |s| s.0);
        match self.profile {
            Some(p) if p <= swap => {
                (self.profile, self.profile_pending) = (None, false);
                Some(Timing::Profile(p))
            }
            _ => self.swaps.pop_front().map(|(at, i)| Timing::Swap(i, at)),
        }
    }

    /// Swaps due before the scheduler's first decision at `first` happen right away.
    fn swaps_before<B: Backend>(
        &mut self,
        first: f64,
        sched: &mut Scheduler<'_>,
        streams: &mut [StreamWindow<B>],
    ) {
        while self.swaps.front().is_some_and(|s| s.0 <= first) {
            let (at, i) = self.swaps.pop_front().expect("checked");
            if swap_in(&mut streams[i], i, at).is_some() {
                sched.swap(i, at);
            }
        }
    }
}

/// Stream `i`'s zoo model for the scene change seen at `at` joins its window's model
/// versions (the scheduler serves it from `at`); `None` when it is the model serving
/// already (the window's starting model, nothing deployed since).
fn swap_in<B: Backend>(window: &mut StreamWindow<B>, i: usize, at: f64) -> Option<Step> {
    let already = window.versions.len() == 1
        && window.swap.as_ref().map(|(_, id)| id) == window.start_zoo.as_ref();
    let model = window
        .swap_model
        .take()
        .expect("a swap comes with its model");
    if already {
        window.swap = None;
        return None;
    }
    window.versions.push(model);
    Some(Step::Swapped(i, at))
}

/// What a clock reports of a window besides the scheduler's records.
struct Clocked {
    /// When the first decision came (golden-label delay plus profiling), seconds.
    decision_at: f64,
    /// GPU-seconds the window start's measurements and the micro-profile used.
    profiler_gpu: f64,
    /// Real clock: per stream, what its inference job really served.
    live: Vec<Option<LiveServed>>,
    /// Real clock: per stream, the measured (allocated, delivered) share of its job if it
    /// did not finish.
    measured: Vec<Option<(f64, f64)>>,
}

impl<'a, B: Backend> Engine<'a, B> {
    /// An engine whose cameras all start from `pretrained`.
    pub fn new(
        be: &'a B,
        scenario: Scenario,
        plugins: Plugins,
        cameras: Vec<Camera>,
        pretrained: &Model<B>,
        cost: CostModel,
    ) -> Self {
        let capacity = scenario.memory.capacity as usize;
        let streams: Vec<Stream<B>> = cameras
            .into_iter()
            .map(|c| Stream::new(be, c, pretrained, capacity))
            .collect();
        let phases = scenario.serverless().then(|| {
            let l = &scenario.lifecycle;
            Phases::new(
                streams.iter().map(|st| st.id().to_string()).collect(),
                (l.budget_bytes(), l.preprocess),
                WakeCosts::default(),
                plugins.lifecycle_name(),
            )
        });
        Self {
            be,
            scenario,
            plugins,
            cost,
            streams,
            next: 0,
            calibration: Calibration::default(),
            zoo: None,
            phases,
        }
    }

    /// The engine with cold starts charged at `costs` (measured by the session).
    pub fn with_wake_costs(mut self, costs: WakeCosts) -> Self {
        if let Some(p) = self.phases.as_mut() {
            p.set_costs(costs);
        }
        self
    }

    /// The engine with `zoo` shared by its streams (none: no zoo).
    pub fn with_zoo(mut self, zoo: Option<Zoo>) -> Self {
        self.zoo = zoo;
        self
    }

    /// Run with `plugins` from the next window on.
    pub fn set_plugins(&mut self, plugins: Plugins) {
        if let Some(p) = self.phases.as_mut() {
            p.set_policy(plugins.lifecycle_name());
        }
        self.plugins = plugins;
    }

    /// Its zoo as it stands (to save it at the end of a run).
    pub fn zoo(&self) -> Option<&Zoo> {
        self.zoo.as_ref()
    }

    /// The policy plugin's sha256 digest.
    pub fn policy_digest(&self) -> String {
        self.plugins.policy_digest()
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Windows run so far.
    pub fn windows_done(&self) -> u32 {
        self.next
    }

    /// What the next window starts from, for a checkpoint ([`super::checkpoint`]).
    pub fn checkpoint_state(&self) -> checkpoint::EngineView<'_, B> {
        checkpoint::EngineView {
            be: self.be,
            zoo: self.zoo.as_ref(),
            next: self.next,
            calibration: &self.calibration,
            streams: self
                .streams
                .iter()
                .map(|s| checkpoint::StreamView {
                    id: &s.camera.spec.name,
                    model: &s.model,
                    memory: &s.memory,
                    infer: &s.infer,
                    sampling: &s.sampling,
                    recent: &s.recent,
                    serving_zoo: &s.serving_zoo,
                })
                .collect(),
            lives: self.phases.as_ref().map(Phases::saved),
        }
    }

    /// Continue from a checkpoint: its next window, each stream's model, memory, inference
    /// choice, sampling factors, recent window and zoo model, the calibration and the zoo.
    pub fn restore(&mut self, c: checkpoint::Restored<B>) -> Result<(), EngineError> {
        match (self.phases.as_mut(), c.lives) {
            (Some(p), Some(lives)) => p.restore(lives).map_err(EngineError::Setup)?,
            (None, None) => {}
            (Some(_), None) => {
                return Err(EngineError::Setup(
                    "the checkpoint has no lifecycle for this serverless scenario".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(EngineError::Setup(
                    "the checkpoint has a lifecycle but the scenario's streams never idle".into(),
                ));
            }
        }
        self.next = c.next;
        self.calibration = c.calibration;
        if c.zoo.is_some() {
            self.zoo = c.zoo;
        }
        for (st, r) in self.streams.iter_mut().zip(c.streams) {
            st.model = r.model;
            st.memory = ExemplarMemory::restore(
                self.scenario.memory.capacity as usize,
                r.memory,
                r.origins,
            )
            .ok_or_else(|| {
                EngineError::Setup(format!(
                    "checkpoint: stream `{}`'s memory disagrees with its origins or capacity",
                    r.id
                ))
            })?;
            st.infer = r.infer;
            st.sampling = r.sampling;
            st.recent = r.recent;
            st.serving_zoo = r.serving_zoo;
        }
        Ok(())
    }

    /// Run the next window.
    pub fn run_window(&mut self) -> Result<WindowReport, EngineError> {
        let n = self.streams.len();
        let (mut streams, mut inputs, mut tasks) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for st in &mut self.streams {
            let (window, input, task) = st.open(
                self.be,
                &self.scenario,
                self.next,
                &self.plugins,
                (&self.cost, self.zoo.as_ref()),
            )?;
            streams.push(window);
            inputs.push(input);
            tasks.push(task);
        }
        let life = self.step_phases(&streams, &inputs);
        let beside = self.beside_share(&tasks).is_some();
        let (start, profiler_share) = self.start_allocation(&inputs, !beside);
        let plugins = &self.plugins;
        let mut decide = |input: &PolicyInput| plugins.decide(input);
        let policy = Policy {
            name: plugins.policy_name(),
            digest: plugins.policy_digest(),
            decide: &mut decide,
        };
        let s = &self.scenario;
        let mut sched = Scheduler::new(s.gpus, s.window_seconds, inputs, &start, policy);
        for (i, timeline) in life.iter().flat_map(|l| l.phases.iter()).enumerate() {
            sched.set_availability(i, availability(timeline));
        }
        for (i, st) in streams.iter().enumerate() {
            if st.labelled.is_some() {
                sched.serve_next(i, s.golden_delay_seconds.min(s.window_seconds));
            }
        }
        let mut window = Window {
            sched,
            streams,
            tasks,
            profiler_share,
            life,
        };
        let clocked = match s.clock {
            ClockKind::Virtual => self.run_virtual(&mut window),
            ClockKind::Real => self.run_real(&mut window),
        };
        let closed = window.sched.close(&clocked.measured);
        Ok(self.close((window.streams, window.life), closed, clocked))
    }

    /// Step the streams' lives through the window now opening (when they come and go): the
    /// lifecycle plugin decides as the cameras' frames stop and return.
    fn step_phases(
        &mut self,
        windows: &[StreamWindow<B>],
        inputs: &[StreamInput],
    ) -> Option<PhaseWindow> {
        let phases = self.phases.as_mut()?;
        let s = &self.scenario;
        let ticks: Vec<StreamTick<'_>> = windows
            .iter()
            .zip(inputs)
            .zip(&self.streams)
            .map(|((w, input), st)| StreamTick {
                present: &w.data.present,
                frame_rate: st.camera.spec.frame_rate,
                bytes: st.resident_bytes(self.be),
                accuracy: input.state.accuracy,
            })
            .collect();
        let plugins = &self.plugins;
        let w0 = self.next as f64 * s.window_seconds;
        Some(phases.window((w0, s.window_seconds), &ticks, &mut |input| {
            plugins.plan_lifecycle(input)
        }))
    }

    /// Inference allocation until the first decision, and the profiler's share: inference
    /// keeps last window's allocation (in window 0, a fair split capped at what the best
    /// configuration needs); when the profile comes first (`reserve`), it runs beside on what
    /// is left, at least half of the GPUs (inference shrinks for those few seconds, so the
    /// decision comes early).
    fn start_allocation(&self, inputs: &[StreamInput], reserve: bool) -> (Vec<(f64, String)>, f64) {
        let gpus = self.scenario.gpus as f64;
        let mut start: Vec<(f64, String)> = self
            .streams
            .iter()
            .zip(inputs)
            .map(|(st, input)| start_infer(st.infer.as_ref(), &input.infer, gpus, inputs.len()))
            .collect();
        let used: f64 = start.iter().map(|(sh, _)| sh).sum();
        let profiler_share = (gpus - used).max(0.5 * gpus);
        if reserve && used > gpus - profiler_share {
            let scale = (gpus - profiler_share) / used;
            start.iter_mut().for_each(|(sh, _)| *sh *= scale);
        }
        (start, profiler_share)
    }

    /// The virtual clock: the profiles run at once and are charged at the profiler's share
    /// (before the first decision, or beside the safe start); the scheduler's executor runs
    /// the jobs as a fluid, and each job that completes is trained for real.
    fn run_virtual(&self, window: &mut Window<'_, B>) -> Clocked {
        let Window {
            sched,
            streams,
            tasks,
            profiler_share,
            ..
        } = window;
        let profiles: Vec<Vec<Profile>> = tasks
            .iter()
            .map(|t| {
                (0..t.runs())
                    .map(|k| t.run(self.be, k, &self.cost))
                    .collect()
            })
            .collect();
        // Per stream: the reference slice, its profiles, the resolution factors.
        let mut profiler_gpu = 0.0;
        for (st, profiles) in streams.iter().zip(&profiles) {
            let mut gpu = st.overhead.0;
            for q in profiles {
                gpu += q.gpu_seconds;
            }
            profiler_gpu += gpu + st.overhead.1;
        }
        let golden = self.scenario.golden_delay_seconds;
        let (start, profiled_at) = match self.beside_share(tasks) {
            Some(share) => (
                Some(self.safe_start(sched, tasks, share)),
                golden + profiler_gpu / share,
            ),
            None => {
                self.estimate(sched, streams, tasks, &profiles);
                (None, golden + profiler_gpu / *profiler_share)
            }
        };
        let first = if start.is_some() { golden } else { profiled_at };
        let horizon = self.scenario.window_seconds;
        let mut timed = Timed::new(streams, start.is_some().then_some(profiled_at), horizon);
        timed.swaps_before(first, sched, streams);
        sched.run(first, start, &mut |sched| {
            loop {
                if let Some(done) = sched.next_completion(timed.next_at()) {
                    let i = done.stream;
                    let (mut m, data, cfg) = self.job(i, &streams[i], &tasks[i], &done.config);
                    model::train(self.be, &mut m, &data, &cfg, &mut |_, _| {});
                    let shares = sched.job_shares(i);
                    let outcome = self.outcome(i, &mut streams[i], sched.input(i), m, shares);
                    return Some(Step::Completed(done, outcome));
                }
                match timed.pop()? {
                    Timing::Swap(i, at) => {
                        if let Some(step) = swap_in(&mut streams[i], i, at) {
                            return Some(step);
                        }
                    }
                    // The profile is in: offer its predictions and let the policy re-plan.
                    Timing::Profile(at) => {
                        self.estimate(sched, streams, tasks, &profiles);
                        return Some(Step::Profiled(at));
                    }
                }
            }
        });
        if timed.profile_pending {
            // The window ended first: the predictions are recorded all the same.
            self.estimate(sched, streams, tasks, &profiles);
        }
        let n = streams.len();
        Clocked {
            decision_at: profiled_at,
            profiler_gpu,
            live: (0..n).map(|_| None).collect(),
            measured: vec![None; n],
        }
    }

    /// The GPUs the profile runs on beside the jobs, when it does: `timing = "beside"` and
    /// something to profile (with every profile reused, the policy decides at once).
    fn beside_share(&self, tasks: &[ProfileTask<B>]) -> Option<f64> {
        let p = &self.scenario.profiler;
        (p.timing == ProfileTiming::Beside && tasks.iter().any(|t| t.runs() > 0))
            .then_some(p.share * self.scenario.gpus as f64)
    }

    /// The host's start while the profile runs beside: every stream retraining its safe
    /// configuration ([`Stream::safe_plan`]) on the uniform split a user would pick by hand
    /// (the `fair` policy's: G/N per stream, half to inference), scaled to the GPUs the
    /// profile's `share` leaves. Each safe configuration is offered at its modelled cost
    /// with no gain predicted yet.
    fn safe_start(
        &self,
        sched: &mut Scheduler<'_>,
        tasks: &[ProfileTask<B>],
        share: f64,
    ) -> Schedule {
        let s = &self.scenario;
        let mut streams = Vec::with_capacity(tasks.len());
        for (i, (st, task)) in self.streams.iter().zip(tasks).enumerate() {
            let mut input = sched.input(i).clone();
            let plans = task.plans();
            input.retrain = st
                .safe_plan(plans, &s.profiler.safe_config)
                .map(|k| RetrainProfile {
                    config: plans[k].config.clone(),
                    accuracy_after: input.state.accuracy,
                    gpu_seconds: plans[k].gpu_seconds,
                    accuracy_error: 0.0,
                    progress: 0.0,
                })
                .into_iter()
                .collect();
            sched.offer(i, input.retrain.clone(), task.costs(), Vec::new());
            streams.push(input);
        }
        let input = PolicyInput {
            streams,
            gpus: s.gpus,
            window_seconds: s.window_seconds,
            elapsed_seconds: s.golden_delay_seconds,
        };
        let mut schedule = Fair::schedule(&input, &[]).unwrap_or_else(|_| inference_only(&input));
        let scale = 1.0 - share / s.gpus as f64;
        for (d, st) in schedule.streams.iter_mut().zip(&input.streams) {
            d.infer_share *= scale;
            d.retrain_share *= scale;
            d.infer_config = best_infer(&st.infer, d.infer_share).config.name.clone();
        }
        schedule
    }

    /// Offer every stream's candidates to the scheduler, as its profiles predict them.
    fn estimate(
        &self,
        sched: &mut Scheduler<'_>,
        windows: &mut [StreamWindow<B>],
        tasks: &[ProfileTask<B>],
        profiles: &[Vec<Profile>],
    ) {
        for (i, (task, profiles)) in tasks.iter().zip(profiles).enumerate() {
            let e = task.estimate(profiles, &self.plugins, &self.calibration);
            windows[i].offered = e.retrain.clone();
            sched.offer(i, e.retrain, task.costs(), e.records);
            windows[i].uncorrected = e.uncorrected;
        }
    }

    /// Stream `i`'s job `config` in the window now running, ready to train from the model
    /// the window started with, or from the zoo model the configuration names (deployed as
    /// it is when it trains for no epochs).
    fn job(
        &self,
        i: usize,
        window: &StreamWindow<B>,
        task: &ProfileTask<B>,
        config: &str,
    ) -> (Model<B>, crate::data::Dataset, model::TrainConfig) {
        let plan = task
            .plans()
            .iter()
            .find(|p| p.config.name == config)
            .expect("the job was offered");
        let w = self.next as u64;
        let seed = self.scenario.seed ^ ((i as u64) << 24) ^ (w << 12) ^ 0x7E7;
        let memory = self.streams[i].memory.samples();
        let from_zoo = plan.config.start_from.as_ref().and_then(|id| {
            let zoo = self.zoo.as_ref()?;
            zoo.load(self.be, id)
        });
        let start = from_zoo.as_ref().unwrap_or(window.start_model());
        plan.job(self.be, start, &window.fit, memory, seed)
    }

    /// What stream `i`'s finished job `m` brings: its accuracy on the validation split, and
    /// whether it serves from now on. The serving model was measured on the same split at
    /// the window start; a job can make things worse (a replaced head, a step size too large
    /// for this data), and with the gate on such a model is dropped and the old one keeps
    /// serving. A deployed model's inference factors are measured again (like the
    /// validation, not charged to the GPU).
    fn outcome(
        &self,
        i: usize,
        window: &mut StreamWindow<B>,
        input: &StreamInput,
        mut m: Model<B>,
        shares: (f64, f64),
    ) -> Outcome {
        let accuracy = model::evaluate(self.be, &mut m, &window.val, 256) as f64;
        let deployed = !self.scenario.validate_before_deploy || accuracy >= window.start_accuracy;
        let infer_factors = deployed.then(|| {
            let configs: Vec<InferConfig> = input.infer.iter().map(|q| q.config.clone()).collect();
            let (res, _) = serve::resolution_factors(
                self.be,
                &self.cost,
                &mut m,
                &window.val,
                accuracy,
                &configs,
            );
            let sampling = &self.streams[i].sampling;
            configs
                .iter()
                .map(|c| serve::served_factor(&res, sampling, &window.data, c))
                .collect()
        });
        if deployed {
            window.versions.push(m);
        }
        Outcome {
            accuracy,
            deployed,
            infer_factors,
            shares,
        }
    }

    /// Score what each stream served, fold the window into each stream, the calibration and
    /// the zoo, and report it.
    fn close(
        &mut self,
        (windows, life): (Vec<StreamWindow<B>>, Option<PhaseWindow>),
        (exec, records, inputs): (Executor, Records, Vec<StreamInput>),
        mut clocked: Clocked,
    ) -> WindowReport {
        let w = self.next;
        let n = windows.len();
        let saved = windows.iter().map(|wd| wd.profile_saved).sum();
        let mut zoo = self.zoo.as_ref().map(|_| ZooReport::default());
        let mut streams = Vec::with_capacity(n);
        for (i, (mut window, input)) in windows.into_iter().zip(inputs).enumerate() {
            let live = clocked.live[i].take();
            let lost = life.as_ref().map_or(&[][..], |l| &l.lost[i][..]);
            let report = self.score(i, &mut window, (&exec, &records), (live, lost));
            let ended = (
                report.end_accuracy,
                (exec.infer_share(i), report.infer_config.clone()),
            );
            streams.push(report);
            self.fold(i, window, (&input, &records), ended, zoo.as_mut());
        }
        if let (Some(report), Some(z)) = (zoo.as_mut(), &self.zoo) {
            (report.models, report.bytes) = (z.len(), z.bytes());
        }
        // A stream whose camera sent nothing this window has no accuracy to count.
        let seen: Vec<f64> = streams
            .iter()
            .filter(|r| r.frames > 0)
            .map(|r| r.accuracy)
            .collect();
        let mean_accuracy = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
        self.next += 1;
        let s = &self.scenario;
        let (gpus, horizon) = (s.gpus as f64, s.window_seconds);
        WindowReport {
            window: w,
            mean_accuracy,
            gpu_utilization: (exec.gpu_seconds_used() + clocked.profiler_gpu) / (gpus * horizon),
            streams,
            profiler_gpu_seconds: clocked.profiler_gpu,
            profiler_saved_gpu_seconds: saved,
            decision_at: clocked.decision_at,
            policy_calls: records.calls,
            allocations: records.allocations,
            predictions: records.predictions,
            zoo,
            lifecycle: life.map(|l| l.report),
            gpus: s.gpus,
            window_seconds: horizon,
        }
    }

    /// Stream `i`'s window as its users saw it: the frames served (as the executor's
    /// allocation affords them, or as the real clock's inference job `live` really served
    /// them) scored against the truth, and the model serving at the end measured.
    fn score(
        &self,
        i: usize,
        window: &mut StreamWindow<B>,
        (exec, records): (&Executor, &Records),
        (live, lost): (Option<LiveServed>, &[bool]),
    ) -> StreamReport {
        let segments = exec.infer_segments(i);
        let infer_shares = live.as_ref().map(|l| l.shares);
        let fps = self.streams[i].camera.spec.frame_rate;
        let served = serve::serve(
            self.be,
            &window.data,
            (fps, lost),
            &segments,
            &mut window.versions,
            live,
        );
        let serving = window
            .versions
            .last_mut()
            .expect("at least the starting model");
        StreamReport {
            stream: self.streams[i].id().to_string(),
            accuracy: served.accuracy,
            chunks: served.chunks,
            start_accuracy: window.start_accuracy,
            end_accuracy: model::evaluate(self.be, serving, &window.val, 256) as f64,
            frames: served.frames,
            frames_processed: served.frames_processed,
            retrain: records.jobs[i].clone(),
            infer_config: exec.infer_config(i).to_string(),
            infer_share: exec.mean_infer_share(i),
            infer_allocated_share: infer_shares.map(|s| s.0),
            infer_delivered_share: infer_shares.map(|s| s.1),
        }
    }

    /// Fold stream `i`'s window in: the calibration learns from its jobs' outcomes, the
    /// stream remembers what was predicted and done (`ended`: its end accuracy and inference
    /// allocation), the zoo records its checks, the zoo model it used and the model it
    /// retrained, and the stream carries its model and memory on.
    fn fold(
        &mut self,
        i: usize,
        window: StreamWindow<B>,
        (input, records): (&StreamInput, &Records),
        (end_accuracy, infer): (f64, (f64, String)),
        zoo: Option<&mut ZooReport>,
    ) {
        let (s, w) = (&self.scenario, self.next);
        for raw in &window.uncorrected {
            let outcome = records
                .predictions
                .iter()
                .find(|r| r.stream == input.state.id && r.config == raw.config);
            if let Some(actual) = outcome.and_then(|r| r.actual_accuracy) {
                self.calibration.observe(raw, actual);
            }
        }
        let job = records.jobs[i].as_ref();
        let ran = job.and_then(|j| Some((j.config.clone(), j.actual_accuracy?, j.deployed)));
        let retrained = Recent::retrained_after(
            self.streams[i].recent.retrained.as_deref(),
            ran.as_ref().map(|r| (r.0.as_str(), r.2)),
        );
        self.streams[i].recent = Recent {
            start: window.start_accuracy,
            end: end_accuracy,
            val: window.val.len(),
            look: window.look.clone(),
            predicted: window
                .offered
                .iter()
                .filter(|r| r.accuracy_error > 0.0 && r.config.start_from.is_none())
                .map(|r| (r.config.name.clone(), r.accuracy_after, r.accuracy_error))
                .collect(),
            ran,
            retrained,
            level: self.streams[i].recent.level.max(end_accuracy),
        };
        if let (Some(report), Some(z)) = (zoo, self.zoo.as_mut()) {
            let deployed = job.filter(|j| j.deployed && j.finished_at.is_some());
            let st = &mut self.streams[i];
            let id = st.id().to_string();
            report.check_gpu_seconds +=
                self.cost
                    .infer_seconds(window.val.h, window.val.w, window.val.len())
                    * window.zoo_checks.len() as f64;
            report
                .checks
                .extend(window.zoo_checks.iter().map(|c| ZooCheckRecord {
                    stream: id.clone(),
                    model: c.model.clone(),
                    accuracy: c.accuracy,
                }));
            report.errors.extend(window.zoo_error.clone());
            if let Some(d) = &window.detection {
                report.detections.push(ZooDetection {
                    stream: id.clone(),
                    at: d.at,
                    changed_at: window.data.changed_at,
                    swapped_to: window.swap.as_ref().map(|(_, id)| id.clone()),
                    swapped_at: window.swap.as_ref().map(|(at, _)| *at),
                });
            }
            if let Some(model) = &window.labelled {
                // Swapped in at the labels: a use as it is (not a detection on the frames).
                z.used(model, w);
                report.uses.push(ZooUse {
                    stream: id.clone(),
                    model: model.clone(),
                    as_is: true,
                });
            }
            if let Some((_, model)) = &window.swap {
                // The swapped-in model serves to the end (its stream retrained no more).
                z.used(model, w);
                st.serving_zoo = Some(model.clone());
            } else if let Some(job) = deployed {
                let from = zoo::source(&job.config);
                if let Some((model, as_is)) = from {
                    z.used(model, w);
                    report.uses.push(ZooUse {
                        stream: id.clone(),
                        model: model.to_string(),
                        as_is,
                    });
                }
                match from {
                    Some((model, true)) => st.serving_zoo = Some(model.to_string()),
                    _ => {
                        let serving = window.versions.last().expect("at least the starting model");
                        let look = window.look.mean.clone();
                        let (added, evicted) =
                            z.insert(self.be, serving, (&id, w), look, end_accuracy);
                        st.serving_zoo = Some(added.clone());
                        report.added.push(added);
                        report.evicted.extend(evicted.into_iter().map(|m| m.id));
                    }
                }
            }
        }
        self.streams[i].close(window, infer, &input.infer, s.seed, w);
    }
}

/// What the executor needs of a stream's phases: when it has frames to serve and when its
/// weights are loaded for its job.
fn availability(timeline: &[(f64, Phase)]) -> Vec<(f64, Avail)> {
    timeline
        .iter()
        .map(|&(at, phase)| {
            let avail = Avail {
                frames: phase == Phase::Active,
                loaded: phase.loaded(),
            };
            (at, avail)
        })
        .collect()
}
