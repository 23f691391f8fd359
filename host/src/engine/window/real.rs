//! The real clock: the whole window on this device, every job interleaved by the
//! [`TimeSlicer`] — live inference from the window's start, the micro-profile once the
//! labels are in, then the retraining jobs — so each gets its allocated share of its time.

use std::cell::RefCell;
use std::rc::Rc;

use super::prepare::{Pending, ProfileTask, StreamProfiles};
use super::{Engine, Run};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::engine::serve::{self, LiveServed};
use crate::engine::slicer::{Progress, TimeSlicer};
use crate::engine::stream::WindowData;
use crate::model::{self, Model, Trainer};

impl<B: Backend> Engine<'_, B> {
    /// The real clock: the whole window runs on this device, every job interleaved by the
    /// [`TimeSlicer`] so each gets its allocated share of its time; window time is wall time
    /// since the window started times `real_time_scale`. Each stream's inference classifies
    /// its frames as they arrive from the window's start; once the labels are in, the
    /// micro-profile runs beside it, one profiling run per batch, on the profiler's share,
    /// and the first decision comes when it is done; then the started retraining jobs train
    /// batch by batch. Decisions and the executor's bookkeeping are as on the virtual clock;
    /// completions come from the device, and the frames served are the ones the inference
    /// jobs really processed.
    pub(super) fn run_real(
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
                let mut profiles = profiles.borrow_mut();
                for (t, done) in tasks.iter().zip(profiles.iter_mut()) {
                    for k in done.len()..t.runs.len() {
                        done.push(t.run(self.be, k, &self.cost));
                    }
                }
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
}

/// What the real clock's window reports beside the shared state.
pub(super) struct RealWindow {
    pub(super) decision_at: f64,
    pub(super) profiler_gpu: f64,
    pub(super) served: Vec<LiveServed>,
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
        let due = self.next_due;
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
