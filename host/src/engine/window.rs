//! [`Engine`]: the window loop. Each window: draw every camera's data, measure the serving
//! models, micro-profile the candidate configurations, let the policy plugin split the GPUs
//! (after the golden labels and the profiler), run the jobs on the executor — re-asking the
//! policy whenever a retraining job finishes — and score what every stream served.
//! `prepare` holds the window start (draft, micro-profile tasks, predictions), `real` the
//! real clock's window.

use std::rc::Rc;
use std::time::Instant;

use super::calibrate::{self, Calibration};
use super::checkpoint;
use super::cost::CostModel;
use super::executor::{self, Completion, Executor};
use super::memory::ExemplarMemory;
use super::profiler;
use super::report::{
    Allocation, JobReport, PolicyCall, PredictionRecord, StreamReport, WindowReport,
};
use super::scenario::{ClockKind, Scenario};
use super::serve::{self, InferSegment, LiveServed};
use super::stream::{Camera, WindowData};
use super::{EngineError, Plugins};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::model::{self, Model, TrainConfig};
use crate::plugin::types::{
    InferConfig, InferProfile, PolicyInput, RetrainProfile, Schedule, StreamInput,
};

mod prepare;
mod real;

use prepare::{Pending, ProfileTask, StreamProfiles};

/// One camera's learning state across windows.
struct StreamState_<B: Backend> {
    id: String,
    model: Model<B>,
    memory: ExemplarMemory,
    /// Inference share and configuration at the end of the last window (kept at the start
    /// of the next, until the first decision).
    infer: Option<(f64, String)>,
    /// Sampling accuracy factors measured on the last window's object tracks.
    sampling: Vec<(u32, f64)>,
}

/// Runs a scenario window by window on backend `B`.
pub struct Engine<'a, B: Backend> {
    be: &'a B,
    scenario: Scenario,
    plugins: Plugins,
    cameras: Vec<Camera>,
    cost: CostModel,
    streams: Vec<StreamState_<B>>,
    next: u32,
    calibration: Calibration,
}

/// Everything the window needs about one stream after profiling.
struct Prepared {
    /// Shared with the real clock's inference jobs while they run.
    data: Rc<WindowData>,
    fit: Dataset,
    val: Dataset,
    start_accuracy: f64,
    input: StreamInput,
    /// Per offered configuration: its name, calibration kind and uncorrected prediction.
    uncorrected: Vec<(String, calibrate::Kind, f64)>,
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
        let streams = cameras
            .iter()
            .map(|c| StreamState_ {
                id: c.spec.name.clone(),
                model: pretrained.duplicate(be),
                memory: ExemplarMemory::new(
                    scenario.memory.capacity as usize,
                    &c.pool.train.empty_like(),
                ),
                infer: None,
                sampling: Vec::new(),
            })
            .collect();
        Self {
            be,
            scenario,
            plugins,
            cameras,
            cost,
            streams,
            next: 0,
            calibration: Calibration::default(),
        }
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
            next: self.next,
            calibration: &self.calibration,
            streams: self
                .streams
                .iter()
                .map(|s| checkpoint::StreamView {
                    id: &s.id,
                    model: &s.model,
                    memory: &s.memory,
                    infer: &s.infer,
                    sampling: &s.sampling,
                })
                .collect(),
        }
    }

    /// Continue from a checkpoint: its next window, and each stream's model, memory,
    /// inference choice and sampling factors, and the calibration.
    pub fn restore(&mut self, c: checkpoint::Restored<B>) {
        self.next = c.next;
        self.calibration = c.calibration;
        for (st, r) in self.streams.iter_mut().zip(c.streams) {
            st.model = r.model;
            st.memory =
                ExemplarMemory::with_samples(self.scenario.memory.capacity as usize, r.memory);
            st.infer = r.infer;
            st.sampling = r.sampling;
        }
    }

    /// Run the next window.
    pub fn run_window(&mut self) -> Result<WindowReport, EngineError> {
        let w = self.next;
        let s = self.scenario.clone();
        let (gpus, horizon) = (s.gpus as f64, s.window_seconds);
        let n = self.cameras.len();
        let mut drafts = Vec::with_capacity(n);
        for i in 0..n {
            drafts.push(self.draft(i, w)?);
        }
        let tasks: Vec<ProfileTask<B>> = drafts
            .iter()
            .enumerate()
            .map(|(i, d)| self.profile_task(i, w, d))
            .collect();
        // Until the first decision, inference keeps last window's allocation (in window 0,
        // a fair split capped at what the best configuration needs) and the profiler runs
        // beside it on what is left, at least half of the GPUs (inference shrinks for those
        // few seconds, so the decision comes early in the window).
        let mut start: Vec<(f64, String)> = (0..n)
            .map(|i| {
                self.streams[i].infer.clone().unwrap_or_else(|| {
                    executor::initial_infer(&drafts[i].prepared.input.infer, gpus, n)
                })
            })
            .collect();
        let used: f64 = start.iter().map(|(sh, _)| sh).sum();
        let profiler_share = (gpus - used).max(0.5 * gpus);
        if used > gpus - profiler_share {
            let scale = (gpus - profiler_share) / used;
            start.iter_mut().for_each(|(sh, _)| *sh *= scale);
        }
        let mut exec = Executor::new(gpus, horizon);
        let mut versions: Vec<Vec<Model<B>>> = Vec::with_capacity(n);
        for (i, st) in self.streams.iter().enumerate() {
            versions.push(vec![st.model.duplicate(self.be)]);
            let (share, cfg) = &start[i];
            exec.set_infer(
                i,
                0.0,
                *share,
                infer_profile(&drafts[i].prepared.input, cfg),
            );
        }
        let mut pending = Vec::with_capacity(n);
        let mut prepared = Vec::with_capacity(n);
        for d in drafts {
            pending.push(Pending {
                retrain: d.retrain,
                serving_on_slice: d.serving_on_slice,
                gpu: (d.slice_gpu, d.res_gpu),
            });
            prepared.push(d.prepared);
        }
        let mut st = Run {
            prepared,
            versions,
            exec,
            jobs: vec![None; n],
            predictions: Vec::new(),
            calls: Vec::new(),
            allocations: Vec::new(),
        };
        // Real clock: what each inference job really served.
        let (decision_at, profiler_gpu, mut live): (f64, f64, Vec<Option<LiveServed>>) =
            match s.clock {
                ClockKind::Virtual => {
                    let profiles: Vec<StreamProfiles> = tasks
                        .iter()
                        .map(|t| {
                            (0..t.runs.len())
                                .map(|k| t.run(self.be, k, &self.cost))
                                .collect()
                        })
                        .collect();
                    // Per stream: the reference slice, its profiles, the resolution factors.
                    let mut profiler_gpu = 0.0;
                    for (p, profiles) in pending.iter().zip(&profiles) {
                        let mut gpu = p.gpu.0;
                        for (_, q) in profiles {
                            gpu += q.gpu_seconds;
                        }
                        profiler_gpu += gpu + p.gpu.1;
                    }
                    self.finish_all(&mut st, &pending, &profiles);
                    let decision_at = s.golden_delay_seconds + profiler_gpu / profiler_share;
                    if decision_at < horizon {
                        self.first_decision(&mut st, decision_at);
                        // Run until the window ends, re-deciding at every completion.
                        while let Some(done) = st.exec.run_to_next_completion() {
                            let (mut m, data, cfg) = self.job(
                                done.stream,
                                w,
                                &st.prepared[done.stream],
                                &done.config,
                                &st.versions[done.stream][0],
                            );
                            model::train(self.be, &mut m, &data, &cfg, &mut |_, _| {});
                            let shares = st.exec.job_shares(done.stream);
                            self.complete(&mut st, done, m, shares);
                        }
                    }
                    (decision_at, profiler_gpu, (0..n).map(|_| None).collect())
                }
                ClockKind::Real => {
                    let real = self.run_real(w, &mut st, tasks, &pending, profiler_share);
                    let live = real.served.into_iter().map(Some).collect();
                    (real.decision_at, real.profiler_gpu, live)
                }
            };
        let Run {
            prepared,
            mut versions,
            exec,
            mut jobs,
            predictions,
            calls,
            allocations,
        } = st;
        // Jobs still running at the window end report how far they got (real clock: set by
        // the slicer already).
        if s.clock == ClockKind::Virtual {
            for (i, j) in jobs.iter_mut().enumerate() {
                if let Some(j) = j.as_mut().filter(|j| j.finished_at.is_none()) {
                    let (allocated, delivered) = exec.job_shares(i);
                    j.allocated_share = allocated;
                    j.delivered_share = delivered;
                }
            }
        }

        // Score what each stream served, then fold the window into each stream's state.
        let mut streams = Vec::with_capacity(n);
        for (i, p) in prepared.iter().enumerate() {
            let segments = exec.infer_segments(i);
            let live = live[i].take();
            let infer_shares = live.as_ref().map(|l| l.shares);
            let served = serve::serve(
                self.be,
                &p.data,
                self.cameras[i].spec.frame_rate,
                &segments,
                &mut versions[i],
                live,
            );
            let serving = versions[i].last_mut().expect("at least the starting model");
            let end_accuracy = model::evaluate(self.be, serving, &p.val, 256) as f64;
            let last = segments.last().expect("a segment from time 0");
            let infer_config = exec.infer_config(i).to_string();
            streams.push(StreamReport {
                stream: p.input.state.id.clone(),
                accuracy: served.accuracy,
                chunks: served.chunks,
                start_accuracy: p.start_accuracy,
                end_accuracy,
                frames: served.frames,
                frames_processed: served.frames_processed,
                retrain: jobs[i].clone(),
                infer_config: infer_config.clone(),
                infer_share: time_average(&segments, horizon),
                infer_allocated_share: infer_shares.map(|s| s.0),
                infer_delivered_share: infer_shares.map(|s| s.1),
            });
            let st = &mut self.streams[i];
            st.model = versions[i].pop().expect("at least the starting model");
            st.infer = Some((last.share, infer_config));
            let mut labelled = p.fit.clone();
            labelled.extend(&p.val);
            st.memory
                .absorb(&labelled, s.seed ^ ((i as u64) << 20) ^ w as u64);
            st.sampling = sampling_factors(&p.data, &p.input.infer);
        }
        for p in &prepared {
            for (config, kind, predicted) in &p.uncorrected {
                let outcome = predictions
                    .iter()
                    .find(|r| r.stream == p.input.state.id && r.config == *config);
                if let Some(actual) = outcome.and_then(|r| r.actual_accuracy) {
                    self.calibration.observe(*kind, *predicted, actual);
                }
            }
        }
        let mean_accuracy = streams.iter().map(|r| r.accuracy).sum::<f64>() / n.max(1) as f64;
        self.next += 1;
        Ok(WindowReport {
            window: w,
            mean_accuracy,
            gpu_utilization: (exec.gpu_seconds_used() + profiler_gpu) / (gpus * horizon),
            streams,
            profiler_gpu_seconds: profiler_gpu,
            decision_at,
            policy_calls: calls,
            allocations,
            predictions,
            gpus: s.gpus,
            window_seconds: horizon,
        })
    }

    fn policy_input(&self, prepared: &[Prepared], exec: &Executor, at: f64) -> PolicyInput {
        let inputs: Vec<&StreamInput> = prepared.iter().map(|p| &p.input).collect();
        exec.policy_input(
            &inputs,
            self.scenario.gpus,
            self.scenario.window_seconds,
            at,
        )
    }

    /// Ask the policy; on any failure fall back (Ekya's fair split at the window start; at a
    /// completion, the finished job's share handed out evenly) and record why.
    fn decide(
        &self,
        input: &PolicyInput,
        at: f64,
        calls: &mut Vec<PolicyCall>,
        on_completion: Option<(&Executor, f64)>,
    ) -> Schedule {
        let started = Instant::now();
        let result = self.plugins.decide(input);
        let micros = started.elapsed().as_micros() as u64;
        let (output, error) = match result {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        calls.push(PolicyCall {
            at,
            plugin: self.plugins.policy_name(),
            digest: self.plugins.policy_digest(),
            input: input.clone(),
            output: output.clone(),
            error: error.clone(),
            micros,
        });
        if let Some(s) = output {
            return s;
        }
        executor::fallback(input, on_completion)
    }

    fn apply(&self, schedule: &Schedule, st: &mut Run<B>, at: f64) {
        let inputs: Vec<&StreamInput> = st.prepared.iter().map(|p| &p.input).collect();
        let prepared = &st.prepared;
        // The job's true cost comes from the cost model, not from the estimate.
        let true_cost = |i: usize, profile: &RetrainProfile| {
            let p = &prepared[i];
            let layers =
                profiler::effective_layers(&profile.config, self.streams[i].model.arch().hidden);
            let samples = profiler::job_size(
                p.fit.len(),
                self.streams[i].memory.samples().len(),
                profile.config.data_fraction,
            );
            self.cost.train_seconds(p.fit.h, p.fit.w, layers, samples)
                * profile.config.epochs as f64
        };
        let applied = st.exec.apply(schedule, &inputs, at, &true_cost);
        for (i, job) in applied.started {
            st.jobs[i] = Some(job);
        }
        st.allocations.extend(applied.allocations);
    }

    /// A finished job's model starts serving at `done.at`, is measured, and the policy is
    /// asked again for the GPU it frees.
    fn complete(
        &self,
        st: &mut Run<B>,
        done: Completion,
        mut m: Model<B>,
        (allocated, delivered): (f64, f64),
    ) {
        let Completion { stream: i, at, .. } = done;
        let acc = model::evaluate(self.be, &mut m, &st.prepared[i].val, 256) as f64;
        // The serving model was measured on the same split at the window start. A job can
        // make things worse (a replaced head, a step size too large for this data); with the
        // gate on, such a model is dropped and the old one keeps serving.
        let deploy = !self.scenario.validate_before_deploy || acc >= st.prepared[i].start_accuracy;
        if deploy {
            // The policy is asked again next: its inference factors must be the new model's.
            // (Like the validation above, this measurement is not charged to the GPU.)
            let p = &mut st.prepared[i];
            let configs: Vec<InferConfig> =
                p.input.infer.iter().map(|q| q.config.clone()).collect();
            let (res, _) = resolution_factors(self.be, &self.cost, &mut m, &p.val, acc, &configs);
            for q in &mut p.input.infer {
                q.accuracy_factor =
                    served_factor(&res, &self.streams[i].sampling, &p.data, &q.config);
            }
            st.versions[i].push(m);
            let version = st.versions[i].len() - 1;
            st.exec.set_model(i, at, version);
            st.prepared[i].input.state.accuracy = acc;
        }
        st.prepared[i].input.retrain.clear();
        if let Some(j) = st.jobs[i].as_mut() {
            j.deployed = deploy;
            j.actual_accuracy = Some(acc);
            j.finished_at = Some(at);
            j.allocated_share = allocated;
            j.delivered_share = delivered;
        }
        let id = &st.prepared[i].input.state.id;
        if let Some(p) = st
            .predictions
            .iter_mut()
            .find(|p| p.stream == *id && p.config == done.config)
        {
            p.actual_accuracy = Some(acc);
            p.actual_gpu_seconds = Some(done.gpu_seconds);
        }
        let input = self.policy_input(&st.prepared, &st.exec, at);
        let freed = st.exec.release_retrain(i);
        let schedule = self.decide(&input, at, &mut st.calls, Some((&st.exec, freed)));
        self.apply(&schedule, st, at);
    }

    /// The window's first policy call, at `at`.
    fn first_decision(&self, st: &mut Run<B>, at: f64) {
        st.exec.advance(at);
        let input = self.policy_input(&st.prepared, &st.exec, at);
        let schedule = self.decide(&input, at, &mut st.calls, None);
        self.apply(&schedule, st, at);
    }

    /// A retraining job ready to run: the stream's starting model with the configured head,
    /// its data (the window's fraction plus the memory) and its training settings.
    fn job(
        &self,
        i: usize,
        w: u32,
        p: &Prepared,
        config: &str,
        start: &Model<B>,
    ) -> (Model<B>, Dataset, TrainConfig) {
        let profile = p
            .input
            .retrain
            .iter()
            .find(|r| r.config.name == config)
            .expect("the job was offered");
        let c = &profile.config;
        let layers = profiler::effective_layers(c, start.arch().hidden);
        let seed = self.scenario.seed ^ ((i as u64) << 24) ^ ((w as u64) << 12) ^ 0x7E7;
        let data = profiler::job_data(
            &p.fit,
            self.streams[i].memory.samples(),
            c.data_fraction,
            seed,
        );
        let m = start.with_head(
            self.be,
            profiler::head_width(c, start.arch().hidden),
            seed ^ 1,
        );
        // The job anneals its learning rate over its epochs, so the model it deploys is not a
        // noisy constant-rate iterate: on the example this lifted every retraining policy by
        // 0.5-1.5 points and cut the profiler's error on the thief's jobs (8.1 -> 5.3 points).
        // Profiles keep a constant rate: their per-epoch points trace the curve's shape.
        let cfg = TrainConfig {
            cosine: true,
            ..profiler::train_config(c, layers, seed ^ 2)
        };
        (m, data, cfg)
    }
}

/// One window's moving parts.
struct Run<B: Backend> {
    prepared: Vec<Prepared>,
    versions: Vec<Vec<Model<B>>>,
    exec: Executor,
    jobs: Vec<Option<JobReport>>,
    predictions: Vec<PredictionRecord>,
    calls: Vec<PolicyCall>,
    allocations: Vec<Allocation>,
}

/// The profile of an offered inference configuration (validation guarantees it exists).
fn infer_profile<'p>(input: &'p StreamInput, config: &str) -> &'p InferProfile {
    input
        .infer
        .iter()
        .find(|p| p.config.name == config)
        .unwrap_or(&input.infer[0])
}

fn lookup(table: &[(u32, f64)], key: u32) -> f64 {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(1.0, |(_, v)| *v)
}

fn sampling_lookup(table: &[(u32, f64)], data: &WindowData, k: u32) -> f64 {
    table
        .iter()
        .find(|(kk, _)| *kk == k)
        .map_or_else(|| serve::sampling_factor(data, k), |(_, v)| *v)
}

/// An inference configuration's accuracy factor: its resolution's (from `resolution`) times
/// its frame sampling's on the stream's tracks (from `sampling`, else measured on `data`).
fn served_factor(
    resolution: &[(u32, f64)],
    sampling: &[(u32, f64)],
    data: &WindowData,
    c: &InferConfig,
) -> f64 {
    lookup(resolution, c.resolution) * sampling_lookup(sampling, data, c.frame_sampling)
}

/// Each offered resolution's accuracy factor for `model`: its accuracy on `val` resized
/// there over `accuracy` (its accuracy at full size), and the modelled GPU-seconds that
/// took. Measured per model: a model near chance scores the same at every size, so the
/// factors of the model a window started with say nothing about the one that replaces it.
fn resolution_factors<B: Backend>(
    be: &B,
    cost: &CostModel,
    model: &mut Model<B>,
    val: &Dataset,
    accuracy: f64,
    infer: &[InferConfig],
) -> (Vec<(u32, f64)>, f64) {
    let mut resolutions: Vec<u32> = infer.iter().map(|c| c.resolution).collect();
    resolutions.sort_unstable();
    resolutions.dedup();
    let mut gpu = 0.0;
    let factors = resolutions
        .into_iter()
        .map(|r| {
            let acc = if r as usize == val.h {
                accuracy
            } else {
                gpu += cost.infer_seconds(r as usize, r as usize, val.len());
                model::evaluate(be, model, &serve::at_resolution(val, r), 256) as f64
            };
            let factor = if accuracy > 0.0 {
                (acc / accuracy).min(1.0)
            } else {
                1.0
            };
            (r, factor)
        })
        .collect();
    (factors, gpu)
}

/// Sampling factors of a window's tracks for every sampling value offered.
fn sampling_factors(data: &WindowData, infer: &[InferProfile]) -> Vec<(u32, f64)> {
    let mut ks: Vec<u32> = infer
        .iter()
        .map(|p| p.config.frame_sampling.max(1))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks.into_iter()
        .map(|k| (k, serve::sampling_factor(data, k)))
        .collect()
}

fn time_average(segments: &[InferSegment], horizon: f64) -> f64 {
    segments
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let end = segments.get(j + 1).map_or(horizon, |n| n.start);
            s.share * (end - s.start).max(0.0)
        })
        .sum::<f64>()
        / horizon
}
