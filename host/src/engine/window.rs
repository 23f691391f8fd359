//! [`Engine`]: the window loop. Each window: draw every camera's data, measure the serving
//! models, micro-profile the candidate configurations, let the policy plugin split the GPUs
//! (after the golden labels and the profiler), run the jobs on the executor — re-asking the
//! policy whenever a retraining job finishes — and score what every stream served.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::calibrate::{self, Calibration};
use super::cost::CostModel;
use super::executor::{self, Completion, Executor};
use super::memory::ExemplarMemory;
use super::profiler::{self, Profile};
use super::report::{
    Allocation, JobReport, PolicyCall, PredictionRecord, StreamReport, WindowReport,
};
use super::scenario::{ClockKind, ProfileAxis, Scenario};
use super::serve::{self, InferSegment, LiveServed};
use super::slicer::{Progress, TimeSlicer};
use super::stream::{Camera, WindowData};
use super::{EngineError, Plugins};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::model::{self, Model, TrainConfig, Trainer};
use crate::plugin::types::{
    EstimateRequest, InferConfig, InferProfile, PolicyInput, RetrainConfig, RetrainProfile,
    Schedule, StreamInput, StreamState,
};

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
        let mut live: Vec<Option<LiveServed>> = (0..n).map(|_| None).collect();
        let (decision_at, profiler_gpu) = match s.clock {
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
                (decision_at, profiler_gpu)
            }
            ClockKind::Real => {
                let real = self.run_real(w, &mut st, tasks, &pending, profiler_share);
                live = real.served.into_iter().map(Some).collect();
                (real.decision_at, real.profiler_gpu)
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
            let served = serve::serve(
                self.be,
                &p.data,
                self.cameras[i].spec.frame_rate,
                &segments,
                &mut versions[i],
                live[i].as_ref(),
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
                infer_allocated_share: live[i].as_ref().map(|l| l.shares.0),
                infer_delivered_share: live[i].as_ref().map(|l| l.shares.1),
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

    /// Draw camera `i`'s window, measure its model, get its candidates and their inference
    /// profiles: everything but the micro-profile (see [`Self::profile_task`] and
    /// [`Self::finish`]).
    fn draft(&mut self, i: usize, w: u32) -> Result<Draft, EngineError> {
        let s = &self.scenario;
        let data = self.cameras[i].window(s, w);
        // Every 4th labelled sample is held out to measure accuracy (the profiler's and
        // the jobs' validation split); the rest is what retraining may use.
        let (val_idx, fit_idx): (Vec<usize>, Vec<usize>) =
            (0..data.train.len()).partition(|j| j % 4 == 3);
        let (fit, val) = (data.train.select(&fit_idx), data.train.select(&val_idx));
        let be = self.be;
        let st = &mut self.streams[i];
        // One pass over the validation split gives both the serving model's accuracy and,
        // on its leading slice, the profiler's reference point.
        let predicted = model::predict_all(be, &mut st.model, &val, 256);
        let start_accuracy = model::hit_rate(&predicted, &val.labels) as f64;
        let state = StreamState {
            id: st.id.clone(),
            window: w,
            accuracy: start_accuracy,
            class_mix: data.class_mix.clone(),
            samples: fit.len() as u32,
        };
        let configs = self.plugins.configs(&state)?;
        let slice = profiler::val_slice(&val);
        let serving_on_slice = model::hit_rate(&predicted[..slice.len()], &slice.labels) as f64;
        let slice_gpu = if s.profiler.enabled {
            self.cost.infer_seconds(slice.h, slice.w, slice.len())
        } else {
            0.0
        };

        // Inference: resolution factors measured on the validation split, sampling factors
        // on the last window's object tracks (this window's in window 0).
        let cam = &self.cameras[i].spec;
        let per_second = cam.frame_rate * cam.objects_per_frame as f64;
        let (res_factor, res_gpu) = resolution_factors(
            be,
            &self.cost,
            &mut self.streams[i].model,
            &val,
            start_accuracy,
            &configs.infer,
        );
        let st = &mut self.streams[i];
        if st.sampling.is_empty() {
            st.sampling = sampling_factors(&data, &[]);
        }
        let infer = configs
            .infer
            .iter()
            .map(|c| InferProfile {
                config: c.clone(),
                accuracy_factor: served_factor(&res_factor, &st.sampling, &data, c),
                gpu_cost: self.cost.infer_share(c.resolution as usize, per_second)
                    / c.frame_sampling.max(1) as f64,
            })
            .collect();
        Ok(Draft {
            prepared: Prepared {
                data: Rc::new(data),
                fit,
                val,
                start_accuracy,
                input: StreamInput {
                    state,
                    retrain: Vec::new(),
                    infer,
                },
                uncorrected: Vec::new(),
            },
            retrain: configs.retrain,
            slice,
            serving_on_slice,
            slice_gpu,
            res_gpu,
        })
    }

    /// The profile runs stream `i`'s candidates need: one per group of configurations that
    /// train the same network on the same data, all measured on one slice of the validation
    /// split. None with the profiler off.
    fn profile_task(&self, i: usize, w: u32, d: &Draft) -> ProfileTask<B> {
        let s = &self.scenario;
        let st = &self.streams[i];
        let hidden = st.model.arch().hidden;
        let mut runs: Vec<(ProfileKey, RetrainConfig, u64)> = Vec::new();
        if s.profiler.enabled {
            for c in &d.retrain {
                let key = profile_key(c, hidden);
                if runs.iter().all(|(k, _, _)| *k != key) {
                    let seed = s.seed ^ ((i as u64) << 16) ^ ((w as u64) << 4) ^ runs.len() as u64;
                    runs.push((key, c.clone(), seed));
                }
            }
        }
        ProfileTask {
            model: st.model.duplicate(self.be),
            fit: d.prepared.fit.clone(),
            memory: st.memory.samples().clone(),
            slice: d.slice.clone(),
            serving_on_slice: d.serving_on_slice,
            epochs: s.profiler.epochs,
            sample_fraction: s.profiler.sample_fraction,
            runs,
        }
    }

    /// Turn stream `i`'s profiles into the retraining profiles the policy gets (the estimator
    /// plugin's predictions, calibrated), written into `p`; returns the prediction records.
    fn finish(
        &self,
        i: usize,
        p: &mut Prepared,
        retrain_configs: &[RetrainConfig],
        serving_on_slice: f64,
        profiles: &[(ProfileKey, Profile)],
    ) -> Vec<PredictionRecord> {
        let s = &self.scenario;
        let st = &self.streams[i];
        let hidden = st.model.arch().hidden;
        let (fit, start_accuracy) = (&p.fit, p.start_accuracy);
        let mut retrain = Vec::new();
        let mut records = Vec::new();
        let mut uncorrected = Vec::new();
        for c in retrain_configs {
            let layers = profiler::effective_layers(c, hidden);
            let job_samples =
                profiler::job_size(fit.len(), st.memory.samples().len(), c.data_fraction);
            let modelled_seconds =
                self.cost.train_seconds(fit.h, fit.w, layers, job_samples) * c.epochs as f64;
            let key = profile_key(c, hidden);
            let Some((_, profile)) = profiles.iter().find(|(k, _)| *k == key) else {
                // No profile (the profiler is off): every configuration at its modelled
                // cost, no gain predicted.
                retrain.push(RetrainProfile {
                    config: c.clone(),
                    accuracy_after: start_accuracy,
                    gpu_seconds: modelled_seconds,
                });
                continue;
            };
            // The curve is anchored where the profiled copy started, on the slice it was
            // measured on (a replaced head starts near chance, not at the serving accuracy).
            let request = EstimateRequest {
                config: c.clone(),
                start_accuracy: profile.anchor,
                observations: profile.observations.clone(),
                // The estimator scales time by data_fraction / profiled_data_fraction; the
                // job also trains on the memory, so express the profiled size in those units.
                profiled_data_fraction: c.data_fraction * profile.samples as f64
                    / job_samples as f64,
                epochs_at: vec![match s.profiler.axis {
                    // Ekya's reading: a job's epochs are the profile's epochs.
                    ProfileAxis::Epochs => c.epochs,
                    // Gradient steps: a job makes epochs × (its data / the sample) passes
                    // over a sample-sized set.
                    ProfileAxis::Samples => ((c.epochs as usize * job_samples) as f64
                        / profile.samples.max(1) as f64)
                        .round()
                        .max(1.0) as u32,
                }],
                shares: vec![],
                throughput: vec![],
            };
            let (accuracy_after, gpu_seconds, estimator_error) =
                match self.plugins.predict(&request) {
                    // Carried from the slice to the whole validation split.
                    Ok(p) => (
                        (p.accuracy.first().copied().unwrap_or(profile.anchor) + start_accuracy
                            - serving_on_slice)
                            .clamp(0.0, 1.0),
                        p.gpu_seconds,
                        None,
                    ),
                    Err(e) => {
                        // Without an estimate, the last profiled point and the cost model stand
                        // in; the error is recorded with the prediction.
                        let last = profile
                            .observations
                            .last()
                            .map_or(start_accuracy, |o| o.accuracy);
                        (
                            (last + start_accuracy - serving_on_slice).clamp(0.0, 1.0),
                            modelled_seconds,
                            Some(e.to_string()),
                        )
                    }
                };
            let kind = (layers, c.epochs);
            uncorrected.push((c.name.clone(), kind, accuracy_after));
            let accuracy_after = if s.profiler.calibrate {
                (accuracy_after + self.calibration.correction(kind)).clamp(0.0, 1.0)
            } else {
                accuracy_after
            };
            records.push(PredictionRecord {
                stream: st.id.clone(),
                config: c.name.clone(),
                predicted_accuracy: accuracy_after,
                predicted_gpu_seconds: gpu_seconds,
                actual_accuracy: None,
                actual_gpu_seconds: None,
                estimator_error,
            });
            retrain.push(RetrainProfile {
                config: c.clone(),
                accuracy_after,
                gpu_seconds,
            });
        }
        p.input.retrain = retrain;
        p.uncorrected = uncorrected;
        records
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

    /// Fill in every stream's retraining profiles from its micro-profile.
    fn finish_all(&self, st: &mut Run<B>, pending: &[Pending], profiles: &[StreamProfiles]) {
        for (i, (p, profiles)) in pending.iter().zip(profiles).enumerate() {
            let records = self.finish(
                i,
                &mut st.prepared[i],
                &p.retrain,
                p.serving_on_slice,
                profiles,
            );
            st.predictions.extend(records);
        }
    }

    /// The window's first policy call, at `at`.
    fn first_decision(&self, st: &mut Run<B>, at: f64) {
        st.exec.advance(at);
        let input = self.policy_input(&st.prepared, &st.exec, at);
        let schedule = self.decide(&input, at, &mut st.calls, None);
        self.apply(&schedule, st, at);
    }

    /// The real clock: the whole window runs on this device, every job interleaved by the
    /// [`TimeSlicer`] so each gets its allocated share of its time; window time is wall time
    /// since the window started times `real_time_scale`. Each stream's inference classifies
    /// its frames as they arrive from the window's start; once the labels are in, the
    /// micro-profile runs beside it, one profiling run per batch, on the profiler's share,
    /// and the first decision comes when it is done; then the started retraining jobs train
    /// batch by batch. Decisions and the executor's bookkeeping are as on the virtual clock;
    /// completions come from the device, and the frames served are the ones the inference
    /// jobs really processed.
    fn run_real(
        &self,
        w: u32,
        st: &mut Run<B>,
        tasks: Vec<ProfileTask<B>>,
        pending: &[Pending],
        profiler_share: f64,
    ) -> RealWindow {
        let scale = self.scenario.real_time_scale;
        let horizon = self.scenario.window_seconds;
        let until = horizon / scale;
        // The modelled server's G GPUs map onto this one device: a share of g GPUs is g/G of
        // its time, and reports come back in GPUs.
        let gpus = self.scenario.gpus as f64;
        let mut slicer = TimeSlicer::new();
        // A job's (allocated, delivered) shares so far, in GPUs.
        let shares = |slicer: &TimeSlicer, id: usize| {
            let r = slicer.report(id);
            (r.allocated_share * gpus, r.delivered_share * gpus)
        };
        let n = st.prepared.len();
        let mut serving: Vec<(usize, Rc<RefCell<LiveInfer<B>>>)> = Vec::with_capacity(n);
        for i in 0..n {
            let data = st.prepared[i].data.clone();
            let fps = self.cameras[i].spec.frame_rate;
            let job = Rc::new(RefCell::new(LiveInfer {
                out: LiveServed::default(),
                data,
                model: st.versions[i][0].duplicate(self.be),
                version: 0,
                sampling: 1,
                resolution: 0,
                next_due: 0,
            }));
            let handle = job.clone();
            let be = self.be;
            // Window seconds → slicer seconds, and back.
            let id = slicer.add(0.0, move |now| {
                handle
                    .borrow_mut()
                    .step(be, fps, now * scale, |t| t / scale)
            });
            serving.push((id, job));
        }
        self.sync_inference(&mut slicer, &serving, st);

        // The labels' delay, then the micro-profile beside inference.
        slicer.run(self.scenario.golden_delay_seconds / scale);
        let runs: Vec<(usize, usize)> = tasks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| (0..t.runs.len()).map(move |k| (i, k)))
            .collect();
        let profiles: Rc<RefCell<Vec<StreamProfiles>>> = Rc::new(RefCell::new(vec![Vec::new(); n]));
        let mut profiled = runs.is_empty();
        let mut profiler_device = 0.0;
        if !profiled {
            let (out, be, cost, tasks) = (profiles.clone(), self.be, self.cost.clone(), &tasks);
            let mut next = 0;
            let id = slicer.add(profiler_share / gpus, move |_| {
                let (i, k) = runs[next];
                out.borrow_mut()[i].push(tasks[i].run(be, k, &cost));
                next += 1;
                if next < runs.len() {
                    Progress::Worked
                } else {
                    Progress::Done
                }
            });
            // Nothing else can finish before the first decision.
            profiled = slicer.run(until) == Some(id);
            let r = slicer.report(id);
            profiler_device = r.delivered_share * r.seconds;
            if !profiled {
                // The window ended first: the rest is profiled off the clock, so that every
                // prediction is still recorded (no decision is made this window).
                let done: usize = profiles.borrow().iter().map(Vec::len).sum();
                for (i, t) in tasks.iter().enumerate() {
                    let have = profiles.borrow()[i].len();
                    for k in have..t.runs.len() {
                        profiles.borrow_mut()[i].push(t.run(self.be, k, &self.cost));
                    }
                }
                debug_assert!(done < profiles.borrow().iter().map(Vec::len).sum::<usize>());
            }
        }
        let decision_at = if profiled {
            (slicer.now() * scale).min(horizon)
        } else {
            horizon
        };
        // Its device time in GPU-seconds of the modelled server, with the window start's
        // modelled measurements (reference slice, resolution factors).
        let profiler_gpu =
            profiler_device * scale * gpus + pending.iter().map(|p| p.gpu.0 + p.gpu.1).sum::<f64>();
        self.finish_all(st, pending, &profiles.borrow());
        if decision_at < horizon {
            self.first_decision(st, decision_at);
        }

        // Per stream: (slicer id, the job's model, data and trainer).
        let mut running: Vec<Option<RunningJob<B>>> = (0..n).map(|_| None).collect();
        let mut deciding = decision_at < horizon;
        while deciding {
            // Bring the slicer in line with the executor: inference shares, configurations
            // and deployed models; new retraining jobs, changed shares, drops.
            self.sync_inference(&mut slicer, &serving, st);
            for (i, slot) in running.iter_mut().enumerate() {
                match (st.exec.running_config(i), &*slot) {
                    (Some(config), None) => {
                        let (model, data, cfg) =
                            self.job(i, w, &st.prepared[i], config, &st.versions[i][0]);
                        let job = Rc::new(RefCell::new(RealJob {
                            trainer: Trainer::new(&data, &cfg),
                            model,
                            data,
                            config: config.to_string(),
                        }));
                        let handle = job.clone();
                        let be = self.be;
                        let id = slicer.add(st.exec.retrain_share(i) / gpus, move |_| {
                            let mut j = handle.borrow_mut();
                            let RealJob {
                                trainer,
                                model,
                                data,
                                ..
                            } = &mut *j;
                            trainer.step(be, model, data);
                            if trainer.done() {
                                Progress::Done
                            } else {
                                Progress::Worked
                            }
                        });
                        *slot = Some((id, job));
                    }
                    (Some(_), Some((id, _))) => {
                        slicer.set_share(*id, st.exec.retrain_share(i) / gpus)
                    }
                    (None, Some((id, _))) => {
                        slicer.stop(*id);
                        if let Some(j) = st.jobs[i].as_mut() {
                            (j.allocated_share, j.delivered_share) = shares(&slicer, *id);
                        }
                        *slot = None;
                    }
                    (None, None) => {}
                }
            }
            let Some(id) = slicer.run(until) else {
                deciding = false;
                continue;
            };
            let i = running
                .iter()
                .position(|r| r.as_ref().is_some_and(|(j, _)| *j == id))
                .expect("only retraining jobs finish");
            let (_, job) = running[i].take().expect("running");
            let at = (slicer.now() * scale).min(horizon);
            st.exec.advance(at);
            // What the others have left, as the device measured it.
            for (k, r) in running.iter().enumerate() {
                if let Some((_, job)) = r {
                    let t = &job.borrow().trainer;
                    let left = 1.0 - t.samples_done() as f64 / t.samples_total().max(1) as f64;
                    st.exec.set_remaining_fraction(k, left);
                }
            }
            let done = st.exec.finish(i, at);
            let got = shares(&slicer, id);
            let RealJob { model, config, .. } = Rc::try_unwrap(job)
                .ok()
                .expect("the slicer dropped its handle")
                .into_inner();
            debug_assert_eq!(config, done.config);
            self.complete(st, done, model, got);
        }
        // Jobs still running at the window end: what they got so far.
        for (i, r) in running.iter().enumerate() {
            if let (Some((id, _)), Some(j)) = (r, st.jobs[i].as_mut()) {
                (j.allocated_share, j.delivered_share) = shares(&slicer, *id);
            }
        }
        // Inference goes on to the window's end whatever happened before.
        slicer.run(until);
        st.exec.advance(horizon);
        RealWindow {
            decision_at,
            profiler_gpu,
            served: serving
                .iter()
                .map(|(id, job)| LiveServed {
                    shares: shares(&slicer, *id),
                    ..std::mem::take(&mut job.borrow_mut().out)
                })
                .collect(),
        }
    }

    /// Bring the real clock's inference jobs in line with the executor: share, sampling,
    /// resolution and serving model version.
    fn sync_inference(
        &self,
        slicer: &mut TimeSlicer,
        serving: &[(usize, Rc<RefCell<LiveInfer<B>>>)],
        st: &Run<B>,
    ) {
        let gpus = self.scenario.gpus as f64;
        for (i, (id, job)) in serving.iter().enumerate() {
            let seg = st
                .exec
                .infer_segments(i)
                .pop()
                .expect("a segment from time 0");
            let mut j = job.borrow_mut();
            if j.version != seg.model {
                j.model = st.versions[i][seg.model].duplicate(self.be);
                j.version = seg.model;
            }
            (j.sampling, j.resolution) = (seg.sampling.max(1), seg.resolution);
            slicer.set_share(*id, seg.share / gpus);
        }
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

/// A job in the time slicer: its slicer id and its shared state.
type RunningJob<B> = (usize, Rc<RefCell<RealJob<B>>>);

/// A retraining job on the real clock.
struct RealJob<B: Backend> {
    trainer: Trainer,
    model: Model<B>,
    data: Dataset,
    config: String,
}

/// A stream's inference on the real clock: it classifies the newest frame that has
/// arrived, once its sampling makes that frame due, with the serving model at the
/// configured resolution; frames it does not get to reuse the last results (see
/// [`serve::serve`]).
struct LiveInfer<B: Backend> {
    data: Rc<WindowData>,
    /// A copy of the serving model version `version` (the job's own, for its workspaces).
    model: Model<B>,
    version: usize,
    sampling: u32,
    resolution: u32,
    /// The first frame it may process next.
    next_due: usize,
    out: LiveServed,
}

impl<B: Backend> LiveInfer<B> {
    /// One frame's work at window time `t`, or how long until one is due (`to_slicer`
    /// turns window seconds into the slicer's).
    fn step(&mut self, be: &B, fps: f64, t: f64, to_slicer: impl Fn(f64) -> f64) -> Progress {
        let frames = self.data.frames;
        let due = self.next_due.max(self.out.from);
        if due >= frames {
            return Progress::Idle(f64::INFINITY);
        }
        let newest = ((t * fps).floor().max(0.0) as usize).min(frames - 1);
        if newest < due {
            return Progress::Idle(to_slicer(due as f64 / fps));
        }
        let slots = self.data.slots;
        let tracks = &self.data.track_of[newest * slots..(newest + 1) * slots];
        let idx: Vec<usize> = tracks.iter().map(|&t| t as usize).collect();
        let crops = serve::at_resolution(&self.data.crops.select(&idx), self.resolution);
        let preds = model::predict_all(be, &mut self.model, &crops, 256);
        let out = &mut self.out;
        out.processed.push((newest, self.version, self.resolution));
        for (&t, p) in tracks.iter().zip(preds) {
            out.predictions
                .insert((self.version, self.resolution, t), p);
        }
        self.next_due = newest + self.sampling as usize;
        Progress::Worked
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

/// What makes two configurations' profiles the same run: trained layer groups, width,
/// batch size, learning rate and data fraction (the last two as bits).
type ProfileKey = (usize, u32, u32, u64, u64);

/// A stream's profiling runs, by group.
type StreamProfiles = Vec<(ProfileKey, Profile)>;

fn profile_key(c: &RetrainConfig, hidden: usize) -> ProfileKey {
    (
        profiler::effective_layers(c, hidden),
        c.width,
        c.batch_size,
        c.learning_rate.to_bits(),
        c.data_fraction.to_bits(),
    )
}

/// A stream's window before its micro-profile: the prepared stream without retraining
/// profiles, its candidate retraining configurations, the profiler's validation slice and
/// the serving model's accuracy on it, and the modelled GPU-seconds measured so far.
struct Draft {
    prepared: Prepared,
    retrain: Vec<RetrainConfig>,
    slice: Dataset,
    serving_on_slice: f64,
    /// Modelled GPU-seconds of the reference slice's and the resolution factors' measurements.
    slice_gpu: f64,
    res_gpu: f64,
}

/// What a stream's profiles are turned into predictions with, once they have run.
struct Pending {
    retrain: Vec<RetrainConfig>,
    serving_on_slice: f64,
    /// The draft's (reference slice, resolution factors) modelled GPU-seconds.
    gpu: (f64, f64),
}

/// What the real clock's window reports beside the shared state.
struct RealWindow {
    decision_at: f64,
    profiler_gpu: f64,
    served: Vec<LiveServed>,
}

/// A stream's micro-profile runs, on copies of what they read, so they can run at once (the
/// virtual clock) or one by one as a time-sliced job (the real clock).
struct ProfileTask<B: Backend> {
    model: Model<B>,
    fit: Dataset,
    memory: Dataset,
    slice: Dataset,
    serving_on_slice: f64,
    epochs: u32,
    sample_fraction: f64,
    /// One per group: its key, a representative configuration and the run's seed.
    runs: Vec<(ProfileKey, RetrainConfig, u64)>,
}

impl<B: Backend> ProfileTask<B> {
    /// Run profile `k`.
    fn run(&self, be: &B, k: usize, cost: &CostModel) -> (ProfileKey, Profile) {
        let (key, c, seed) = &self.runs[k];
        let p = profiler::profile(
            be,
            &self.model,
            c,
            &self.fit,
            &self.memory,
            &self.slice,
            self.serving_on_slice,
            self.epochs,
            self.sample_fraction,
            cost,
            *seed,
        );
        (*key, p)
    }
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
