//! The real clock: the whole window on this device, every job interleaved by the
//! [`TimeSlicer`] — live inference from the window's start, the micro-profile once the
//! labels are in, then the retraining jobs — so each gets its allocated share of its time.

use std::cell::RefCell;
use std::rc::Rc;

use super::{Clocked, Engine, Timed, Timing, Window, swap_in};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::engine::profiler::{Profile, ProfileTask};
use crate::engine::schedule::{Scheduler, Step};
use crate::engine::serve::{self, LiveServed};
use crate::engine::slicer::{Progress, TimeSlicer};
use crate::engine::stream::{StreamWindow, WindowData};
use crate::model::{self, Model, Trainer};

impl<B: Backend> Engine<'_, B> {
    /// The real clock: the whole window runs on this device, every job interleaved by the
    /// [`TimeSlicer`] so each gets its allocated share of its time; window time is wall time
    /// since the window started times `real_time_scale`. Each stream's inference classifies
    /// its frames as they arrive from the window's start; once the labels are in, the
    /// micro-profile runs beside it, one profiling run per batch, on the profiler's share,
    /// and the first decision comes when it is done; then the started retraining jobs train
    /// batch by batch. The scheduler decides as on the virtual clock; completions come from
    /// the device, and the frames served are the ones the inference jobs really processed.
    pub(super) fn run_real(&self, window: &mut Window<'_, B>) -> Clocked {
        let Window {
            sched,
            streams: windows,
            tasks,
            profiler_share,
        } = window;
        let scale = self.scenario.real_time_scale;
        let (golden, horizon) = (
            self.scenario.golden_delay_seconds,
            self.scenario.window_seconds,
        );
        let until = horizon / scale;
        let mut device = Device::new(self, windows);
        device.sync_inference(self, sched, windows);

        // The labels' delay, then the micro-profile beside inference (and, `beside`, beside
        // the safe start's jobs).
        device.slicer.run(golden / scale);
        let beside = self.beside_share(tasks);
        device.start_profile(self, tasks, beside.unwrap_or(*profiler_share));
        let mut profiled: Option<f64> = None;
        let mut decision_at = horizon;
        let start = match beside {
            Some(share) => Some(self.safe_start(sched, tasks, share)),
            None => {
                // Nothing else can finish before the first decision.
                let id = device.profile.as_ref().map(|p| p.0);
                if id.is_none_or(|id| device.slicer.run(until) == Some(id)) {
                    decision_at = (device.slicer.now() * scale).min(horizon);
                }
                let (profiles, secs) = device.finish_profile(self, tasks);
                self.estimate(sched, windows, tasks, &profiles);
                profiled = Some(secs);
                None
            }
        };
        let first = if start.is_some() { golden } else { decision_at };
        let mut timed = Timed::new(windows, None, horizon);
        timed.swaps_before(first, sched, windows);
        sched.run(first, start, &mut |sched| {
            // Bring the slicer in line with the scheduler: inference shares, configurations
            // and deployed models; new retraining jobs, changed shares, switches, drops.
            device.sync_inference(self, sched, windows);
            device.sync_jobs(self, sched, windows, tasks);
            let id = loop {
                if let Some(id) = device.slicer.run(timed.next_at() / scale) {
                    break id;
                }
                // The next zoo swap is due (or the window is over).
                let Timing::Swap(i, at) = timed.pop()? else {
                    unreachable!("the real clock's profile is a slicer job")
                };
                if let Some(step) = swap_in(&mut windows[i], i, at) {
                    return Some(step);
                }
            };
            let at = (device.slicer.now() * scale).min(horizon);
            if profiled.is_none() && device.profile.as_ref().is_some_and(|p| p.0 == id) {
                let (profiles, secs) = device.finish_profile(self, tasks);
                self.estimate(sched, windows, tasks, &profiles);
                (profiled, decision_at) = (Some(secs), at);
                return Some(Step::Profiled(at));
            }
            let (i, model, config) = device.take_finished(id);
            let done = sched.finish(i, at, &device.left());
            debug_assert_eq!(config, done.config);
            let got = device.shares(id);
            let outcome = self.outcome(i, &mut windows[i], sched.input(i), model, got);
            Some(Step::Completed(done, outcome))
        });
        if profiled.is_none() {
            // The window ended first: the rest is profiled off the clock, so that every
            // prediction is still recorded.
            let (profiles, secs) = device.finish_profile(self, tasks);
            self.estimate(sched, windows, tasks, &profiles);
            profiled = Some(secs);
        }
        // Its device time in GPU-seconds of the modelled server, with the window start's
        // modelled measurements (reference slice, resolution factors).
        let profiler_gpu = profiled.unwrap_or(0.0) * scale * device.gpus
            + windows
                .iter()
                .map(|wd| wd.overhead.0 + wd.overhead.1)
                .sum::<f64>();
        // Jobs still running at the window end: what they got so far.
        for i in 0..device.running.len() {
            if let Some((id, _)) = device.running[i] {
                device.measured[i] = Some(device.shares(id));
            }
        }
        // Inference goes on to the window's end whatever happened before.
        device.slicer.run(until);
        let live = device
            .serving
            .iter()
            .map(|(id, job)| {
                Some(LiveServed {
                    shares: device.shares(*id),
                    ..std::mem::take(&mut job.borrow_mut().out)
                })
            })
            .collect();
        Clocked {
            decision_at,
            profiler_gpu,
            live,
            measured: device.measured,
        }
    }
}

/// This device as the real clock runs a window on it: the time slicer and the jobs in it.
struct Device<'s, B: Backend> {
    slicer: TimeSlicer<'s>,
    /// GPUs of the modelled server: they map onto this one device, so a share of g GPUs is
    /// g/G of its time, and reports come back in GPUs.
    gpus: f64,
    /// Per stream: its inference job.
    serving: Vec<LiveJob<B>>,
    /// Per stream: its retraining job, while one runs.
    running: Vec<Option<RunningJob<B>>>,
    /// Per stream: what its last job got, if it stopped before finishing.
    measured: Vec<Option<(f64, f64)>>,
    /// The micro-profile's slicer job and the profiles it has made so far.
    profile: Option<(usize, Rc<RefCell<StreamProfiles>>)>,
}

impl<'s, B: Backend> Device<'s, B> {
    /// Each stream's inference job, live in the slicer from the window's start.
    fn new(engine: &'s Engine<'_, B>, windows: &[StreamWindow<B>]) -> Self {
        let scale = engine.scenario.real_time_scale;
        let mut slicer = TimeSlicer::new();
        let serving = windows
            .iter()
            .zip(&engine.streams)
            .map(|(window, st)| {
                let fps = st.camera.spec.frame_rate;
                let job = Rc::new(RefCell::new(LiveInfer {
                    out: LiveServed::default(),
                    data: window.data.clone(),
                    model: window.versions[0].duplicate(engine.be),
                    version: 0,
                    sampling: 1,
                    resolution: 0,
                    next_due: 0,
                }));
                let (handle, be) = (job.clone(), engine.be);
                // Window seconds → slicer seconds, and back.
                let id = slicer.add(0.0, move |now| {
                    handle
                        .borrow_mut()
                        .step(be, fps, now * scale, |t| t / scale)
                });
                (id, job)
            })
            .collect();
        let n = windows.len();
        Self {
            slicer,
            gpus: engine.scenario.gpus as f64,
            serving,
            running: (0..n).map(|_| None).collect(),
            measured: vec![None; n],
            profile: None,
        }
    }

    /// A job's (allocated, delivered) shares so far, in GPUs.
    fn shares(&self, id: usize) -> (f64, f64) {
        let r = self.slicer.report(id);
        (r.allocated_share * self.gpus, r.delivered_share * self.gpus)
    }

    /// Add the micro-profile to the slicer as one job on `share` GPUs, one profiling run
    /// per slice (nothing when there is nothing to profile).
    fn start_profile(
        &mut self,
        engine: &'s Engine<'_, B>,
        tasks: &'s [ProfileTask<B>],
        share: f64,
    ) {
        let runs: Vec<(usize, usize)> = tasks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| (0..t.runs()).map(move |k| (i, k)))
            .collect();
        if runs.is_empty() {
            return;
        }
        let profiles = Rc::new(RefCell::new(vec![Vec::new(); tasks.len()]));
        let (out, be, cost) = (profiles.clone(), engine.be, &engine.cost);
        let mut next = 0;
        let id = self.slicer.add(share / self.gpus, move |_| {
            let (i, k) = runs[next];
            out.borrow_mut()[i].push(tasks[i].run(be, k, cost));
            next += 1;
            if next < runs.len() {
                Progress::Worked
            } else {
                Progress::Done
            }
        });
        self.profile = Some((id, profiles));
    }

    /// Each stream's profiles, the runs the window did not get to made off the clock, and
    /// the device seconds the profile used.
    fn finish_profile(
        &mut self,
        engine: &Engine<'_, B>,
        tasks: &[ProfileTask<B>],
    ) -> (Vec<Vec<Profile>>, f64) {
        let Some((id, cell)) = &self.profile else {
            return (vec![Vec::new(); tasks.len()], 0.0);
        };
        self.slicer.stop(*id);
        let r = self.slicer.report(*id);
        let mut profiles = cell.take();
        for (t, done) in tasks.iter().zip(profiles.iter_mut()) {
            for k in done.len()..t.runs() {
                done.push(t.run(engine.be, k, &engine.cost));
            }
        }
        (profiles, r.delivered_share * r.seconds)
    }

    /// Bring the inference jobs in line with the scheduler: share, sampling, resolution
    /// and serving model version.
    fn sync_inference(
        &mut self,
        engine: &Engine<'_, B>,
        sched: &Scheduler<'_>,
        windows: &[StreamWindow<B>],
    ) {
        for (i, (id, job)) in self.serving.iter().enumerate() {
            let seg = sched
                .executor()
                .infer_segments(i)
                .pop()
                .expect("a segment from time 0");
            let mut j = job.borrow_mut();
            if j.version != seg.model {
                j.model = windows[i].versions[seg.model].duplicate(engine.be);
                j.version = seg.model;
            }
            (j.sampling, j.resolution) = (seg.sampling.max(1), seg.resolution);
            self.slicer.set_share(*id, seg.share / self.gpus);
        }
    }

    /// Bring the retraining jobs in line with the scheduler: start the new ones (trained
    /// batch by batch from the window's starting model), re-share the running ones, stop
    /// the dropped ones (recording what they got).
    fn sync_jobs(
        &mut self,
        engine: &'s Engine<'_, B>,
        sched: &Scheduler<'_>,
        windows: &[StreamWindow<B>],
        tasks: &[ProfileTask<B>],
    ) {
        let exec = sched.executor();
        for i in 0..self.running.len() {
            let share = exec.retrain_share(i) / self.gpus;
            let current = self.running[i]
                .as_ref()
                .map(|(id, job)| (*id, job.borrow().config.clone()));
            match (exec.running_config(i), current) {
                (Some(config), Some((id, c))) if c == config => self.slicer.set_share(id, share),
                (Some(config), old) => {
                    // A new job, or the policy switched the running one to another
                    // configuration: the old one stops, the new one starts from scratch.
                    if let Some((id, _)) = old {
                        self.slicer.stop(id);
                    }
                    let (model, data, cfg) = engine.job(i, &windows[i], &tasks[i], config);
                    let job = Rc::new(RefCell::new(RealJob {
                        trainer: Trainer::new(&data, &cfg),
                        model,
                        data,
                        config: config.to_string(),
                    }));
                    let (handle, be) = (job.clone(), engine.be);
                    let id = self.slicer.add(share, move |_| {
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
                    self.running[i] = Some((id, job));
                }
                (None, Some((id, _))) => {
                    self.slicer.stop(id);
                    self.measured[i] = Some(self.shares(id));
                    self.running[i] = None;
                }
                (None, None) => {}
            }
        }
    }

    /// The job slicer job `id` was, which just finished: its stream, trained model and
    /// configuration.
    fn take_finished(&mut self, id: usize) -> (usize, Model<B>, String) {
        let i = self
            .running
            .iter()
            .position(|r| r.as_ref().is_some_and(|(j, _)| *j == id))
            .expect("only retraining jobs finish");
        let (_, job) = self.running[i].take().expect("running");
        let RealJob { model, config, .. } = Rc::try_unwrap(job)
            .ok()
            .expect("the slicer dropped its handle")
            .into_inner();
        (i, model, config)
    }

    /// What the running jobs have left of their work, as the device measured it.
    fn left(&self) -> Vec<(usize, f64)> {
        self.running
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let t = &r.as_ref()?.1.borrow().trainer;
                Some((
                    k,
                    1.0 - t.samples_done() as f64 / t.samples_total().max(1) as f64,
                ))
            })
            .collect()
    }
}

/// Each stream's profiles, in its task's run order.
type StreamProfiles = Vec<Vec<Profile>>;

/// A stream's inference job in the time slicer: its slicer id and its shared state.
type LiveJob<B> = (usize, Rc<RefCell<LiveInfer<B>>>);

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
