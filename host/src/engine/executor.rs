//! [`Executor`]: enforces GPU shares on the virtual clock.
//!
//! Jobs progress as a fluid: a retraining job with share `s` does `s` GPU-seconds of its work
//! per second, so it can never get more than it was allocated, and it finishes exactly when
//! its work is done; the executor then hands control back so the policy can re-divide the
//! GPU. Inference jobs are recorded as segments of constant share and configuration, which
//! [`super::serve`] turns into processed frames. Because progress is counted in modelled
//! GPU-seconds (see [`super::cost`]), a run is reproducible on any machine.

use super::report::{Allocation, JobReport};
use super::serve::InferSegment;
use tandem_plugin_sdk::policy::{Fair, Policy as _};

use crate::plugin::types::{
    InferProfile, PolicyInput, RetrainProfile, Schedule, StreamInput, StreamSchedule,
};

/// A retraining job that just finished.
#[derive(Debug, Clone)]
pub struct Completion {
    pub stream: usize,
    pub at: f64,
    pub config: String,
    /// Its true cost in GPU-seconds at a full GPU.
    pub gpu_seconds: f64,
}

/// What applying a schedule changed.
#[derive(Debug, Default)]
pub struct Applied {
    pub allocations: Vec<Allocation>,
    /// Jobs started, by stream.
    pub started: Vec<(usize, JobReport)>,
}

#[derive(Debug, Clone)]
struct RetrainJob {
    config: String,
    total: f64,
    share: f64,
    remaining: f64,
    started: f64,
    /// ∫ share dt while it ran (for the time-averaged allocation).
    share_time: f64,
    /// GPU-seconds received.
    consumed: f64,
    ended: Option<f64>,
    running: bool,
}

#[derive(Debug)]
pub struct Executor {
    gpus: f64,
    horizon: f64,
    now: f64,
    infer: Vec<Vec<InferSegment>>,
    infer_config: Vec<String>,
    retrain: Vec<Option<RetrainJob>>,
    retrain_used: f64,
}

impl Executor {
    pub fn new(gpus: f64, horizon: f64) -> Self {
        Self {
            gpus,
            horizon,
            now: 0.0,
            infer: Vec::new(),
            infer_config: Vec::new(),
            retrain: Vec::new(),
            retrain_used: 0.0,
        }
    }

    fn ensure(&mut self, i: usize) {
        while self.infer.len() <= i {
            self.infer.push(Vec::new());
            self.infer_config.push(String::new());
            self.retrain.push(None);
        }
    }

    fn push_segment(&mut self, i: usize, seg: InferSegment) {
        let segs = &mut self.infer[i];
        if let Some(last) = segs.last_mut().filter(|l| l.start >= seg.start) {
            *last = seg;
        } else {
            segs.push(seg);
        }
    }

    /// Stream `i`'s inference job runs with `share` and `profile`'s configuration from `at`.
    pub fn set_infer(&mut self, i: usize, at: f64, share: f64, profile: &InferProfile) {
        self.ensure(i);
        let model = self.infer[i].last().map_or(0, |s| s.model);
        let k = profile.config.frame_sampling.max(1);
        self.infer_config[i] = profile.config.name.clone();
        self.push_segment(
            i,
            InferSegment {
                start: at,
                share,
                sampling: k,
                resolution: profile.config.resolution,
                full_rate_cost: profile.gpu_cost * k as f64,
                model,
            },
        );
    }

    /// Stream `i` serves with model version `version` from `at`.
    pub fn set_model(&mut self, i: usize, at: f64, version: usize) {
        let last = self.infer[i]
            .last()
            .cloned()
            .expect("inference starts at time 0");
        self.push_segment(
            i,
            InferSegment {
                start: at,
                model: version,
                ..last
            },
        );
    }

    /// Start a retraining job of `gpu_seconds` for stream `i` at `at` with `share`.
    pub fn start_retrain(&mut self, i: usize, at: f64, share: f64, config: &str, gpu_seconds: f64) {
        self.ensure(i);
        debug_assert!(
            (self.now - at).abs() < 1e-9,
            "jobs start at the executor's time"
        );
        self.retrain[i] = Some(RetrainJob {
            config: config.to_string(),
            total: gpu_seconds,
            share,
            remaining: gpu_seconds,
            started: at,
            share_time: 0.0,
            consumed: 0.0,
            ended: None,
            running: true,
        });
    }

    /// Change a running job's share.
    pub fn set_retrain_share(&mut self, i: usize, share: f64) {
        if let Some(j) = self.retrain[i].as_mut().filter(|j| j.running) {
            j.share = share;
        }
    }

    /// Stop stream `i`'s job (finished or dropped); returns the share it held.
    pub fn release_retrain(&mut self, i: usize) -> f64 {
        match self.retrain.get_mut(i).and_then(|j| j.as_mut()) {
            Some(j) if j.share > 0.0 || j.running => {
                let freed = j.share;
                j.share = 0.0;
                if j.running {
                    j.running = false;
                    j.ended.get_or_insert(self.now);
                }
                freed
            }
            _ => 0.0,
        }
    }

    /// GPU-seconds stream `i`'s running job still needs.
    pub fn remaining(&self, i: usize) -> Option<f64> {
        self.retrain
            .get(i)?
            .as_ref()
            .filter(|j| j.running)
            .map(|j| j.remaining)
    }

    /// Move the clock to `to`, progressing every running job by its share.
    pub fn advance(&mut self, to: f64) {
        let dt = (to - self.now).max(0.0);
        for j in self.retrain.iter_mut().flatten().filter(|j| j.running) {
            let work = (j.share * dt).min(j.remaining);
            j.remaining -= work;
            j.consumed += work;
            j.share_time += j.share * dt;
            self.retrain_used += work;
        }
        self.now = to;
    }

    /// Advance to the next retraining completion and return it; or, if none comes before
    /// the window ends, advance to the end and return `None`.
    pub fn run_to_next_completion(&mut self) -> Option<Completion> {
        let next = self
            .retrain
            .iter()
            .enumerate()
            .filter_map(|(i, j)| {
                j.as_ref()
                    .filter(|j| j.running && j.share > 0.0)
                    .map(|j| (i, self.now + j.remaining / j.share))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((i, at)) if at < self.horizon => {
                self.advance(at);
                let j = self.retrain[i].as_mut().expect("job exists");
                j.remaining = 0.0;
                j.running = false;
                j.ended = Some(at);
                Some(Completion {
                    stream: i,
                    at,
                    config: j.config.clone(),
                    gpu_seconds: j.total,
                })
            }
            _ => {
                self.advance(self.horizon);
                None
            }
        }
    }

    /// The policy's input at `at`: `inputs` as offered, except that a running job is offered
    /// as itself, with the work it has left (the policy keeps it, re-shares it or drops it).
    pub fn policy_input(
        &self,
        inputs: &[&StreamInput],
        gpus: u32,
        window_seconds: f64,
        at: f64,
    ) -> PolicyInput {
        PolicyInput {
            streams: inputs
                .iter()
                .enumerate()
                .map(|(i, input)| {
                    let mut input = (*input).clone();
                    if let Some(config) = self.running_config(i) {
                        input.retrain.retain(|r| r.config.name == config);
                        // A job finishing at this very instant (two completions at once)
                        // still has a sliver left; a zero would be an invalid profile.
                        let left = self.remaining(i).unwrap_or(0.0).max(1e-6);
                        input.retrain.iter_mut().for_each(|r| r.gpu_seconds = left);
                    }
                    input
                })
                .collect(),
            gpus,
            window_seconds,
            elapsed_seconds: at,
        }
    }

    /// Set stream `i`'s running job's remaining work to `fraction` of its total (the real
    /// clock knows progress from the device, not from the modelled cost).
    pub fn set_remaining_fraction(&mut self, i: usize, fraction: f64) {
        if let Some(j) = self
            .retrain
            .get_mut(i)
            .and_then(|j| j.as_mut())
            .filter(|j| j.running)
        {
            j.remaining = j.total * fraction.clamp(0.0, 1.0);
        }
    }

    /// Stream `i`'s running job's current share (0 when none runs).
    pub fn retrain_share(&self, i: usize) -> f64 {
        self.retrain
            .get(i)
            .and_then(|j| j.as_ref())
            .filter(|j| j.running)
            .map_or(0.0, |j| j.share)
    }

    /// Mark stream `i`'s job finished at `at`, the executor's current time (the real clock
    /// decides completions by the device, not by the modelled cost).
    pub fn finish(&mut self, i: usize, at: f64) -> Completion {
        let j = self.retrain[i].as_mut().expect("a job runs");
        j.running = false;
        j.ended = Some(at);
        j.remaining = 0.0;
        Completion {
            stream: i,
            at,
            config: j.config.clone(),
            gpu_seconds: j.total,
        }
    }

    /// The configuration stream `i` is retraining with, if a job runs.
    pub fn running_config(&self, i: usize) -> Option<&str> {
        self.retrain
            .get(i)?
            .as_ref()
            .filter(|j| j.running)
            .map(|j| j.config.as_str())
    }

    /// Apply a (validated) schedule at `at` to the streams of `inputs` (in executor order):
    /// inference shares and configurations, running jobs' shares, jobs started or dropped.
    /// A started job's true cost is `true_cost(stream, profile)`: the estimate the policy saw
    /// is only what it believed.
    pub fn apply(
        &mut self,
        schedule: &Schedule,
        inputs: &[&StreamInput],
        at: f64,
        true_cost: &dyn Fn(usize, &RetrainProfile) -> f64,
    ) -> Applied {
        let mut out = Applied::default();
        for (i, input) in inputs.iter().enumerate() {
            let Some(d) = schedule
                .streams
                .iter()
                .find(|d| d.stream_id == input.state.id)
            else {
                continue;
            };
            let infer = input
                .infer
                .iter()
                .find(|p| p.config.name == d.infer_config)
                .unwrap_or(&input.infer[0]);
            self.set_infer(i, at, d.infer_share, infer);
            let running = self.running_config(i).map(str::to_string);
            match (&d.retrain_config, running) {
                (Some(name), Some(r)) if *name == r => self.set_retrain_share(i, d.retrain_share),
                (Some(name), _) => {
                    if let Some(profile) = input.retrain.iter().find(|r| r.config.name == *name) {
                        let gpu_seconds = true_cost(i, profile);
                        self.start_retrain(i, at, d.retrain_share, name, gpu_seconds);
                        out.started.push((
                            i,
                            JobReport {
                                config: name.clone(),
                                predicted_accuracy: profile.accuracy_after,
                                actual_accuracy: None,
                                predicted_gpu_seconds: profile.gpu_seconds,
                                actual_gpu_seconds: gpu_seconds,
                                started_at: at,
                                finished_at: None,
                                allocated_share: d.retrain_share,
                                delivered_share: 0.0,
                                deployed: false,
                            },
                        ));
                    }
                }
                (None, Some(_)) => {
                    self.release_retrain(i);
                }
                (None, None) => {}
            }
            let running = self.running_config(i).map(str::to_string);
            out.allocations.push(Allocation {
                at,
                stream: input.state.id.clone(),
                infer_share: d.infer_share,
                retrain_share: if running.is_some() {
                    d.retrain_share
                } else {
                    0.0
                },
                infer_config: d.infer_config.clone(),
                retrain_config: running,
            });
        }
        out
    }

    /// Stream `i`'s job: (time-averaged allocated share, delivered share = GPU-seconds
    /// received over the time it ran).
    pub fn job_shares(&self, i: usize) -> (f64, f64) {
        let Some(j) = self.retrain.get(i).and_then(|j| j.as_ref()) else {
            return (0.0, 0.0);
        };
        let span = j.ended.unwrap_or(self.now) - j.started;
        if span <= 0.0 {
            return (j.share, j.share);
        }
        (j.share_time / span, j.consumed / span)
    }

    pub fn infer_segments(&self, i: usize) -> Vec<InferSegment> {
        self.infer[i].clone()
    }

    pub fn infer_config(&self, i: usize) -> &str {
        &self.infer_config[i]
    }

    /// Modelled GPU-seconds used: retraining work done, plus what each inference job could
    /// use of its share at its configuration.
    pub fn gpu_seconds_used(&self) -> f64 {
        let infer: f64 = self
            .infer
            .iter()
            .map(|segs| {
                segs.iter()
                    .enumerate()
                    .map(|(j, s)| {
                        let end = segs.get(j + 1).map_or(self.horizon, |n| n.start);
                        s.share.min(s.full_rate_cost / s.sampling as f64) * (end - s.start).max(0.0)
                    })
                    .sum::<f64>()
            })
            .sum();
        infer + self.retrain_used
    }

    /// The current allocation with `freed` share handed out evenly to the running retraining
    /// jobs (each capped at one GPU), or to inference when none runs: the fallback when the
    /// policy fails at a completion (what Ekya's code does on every completion).
    pub fn hand_out(&self, input: &PolicyInput, freed: f64) -> Schedule {
        let running: Vec<usize> = (0..self.retrain.len())
            .filter(|&i| self.remaining(i).is_some())
            .collect();
        let targets = if running.is_empty() {
            (0..input.streams.len()).collect()
        } else {
            running.clone()
        };
        let extra = freed / targets.len().max(1) as f64;
        let streams = input
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let infer_share = self.infer[i].last().map_or(0.0, |l| l.share);
                let job = self.retrain[i].as_ref().filter(|j| j.running);
                let bonus = if targets.contains(&i) { extra } else { 0.0 };
                let (infer_share, retrain_share) = match job {
                    Some(j) if running.contains(&i) => (infer_share, (j.share + bonus).min(1.0)),
                    _ => ((infer_share + bonus).min(1.0), 0.0),
                };
                StreamSchedule {
                    stream_id: s.state.id.clone(),
                    infer_share,
                    retrain_share,
                    infer_config: self.infer_config[i].clone(),
                    retrain_config: job.map(|j| j.config.clone()),
                }
            })
            .collect();
        let _ = self.gpus;
        Schedule {
            streams,
            estimated_accuracy: None,
        }
    }
}

/// The most accurate inference configuration that fits `share` (the cheapest if none does).
pub fn best_infer(infer: &[InferProfile], share: f64) -> &InferProfile {
    infer
        .iter()
        .filter(|p| p.gpu_cost <= share + 1e-12)
        .max_by(|a, b| a.accuracy_factor.total_cmp(&b.accuracy_factor))
        .or_else(|| {
            infer
                .iter()
                .min_by(|a, b| a.gpu_cost.total_cmp(&b.gpu_cost))
        })
        .expect("a stream offers at least one inference configuration")
}

/// Inference allocation before any decision in a first window: a fair split of `gpus` over
/// `streams`, capped at what the most accurate configuration needs, with the best
/// configuration that fits.
pub fn initial_infer(infer: &[InferProfile], gpus: f64, streams: usize) -> (f64, String) {
    let top = best_infer(infer, f64::INFINITY).gpu_cost;
    let share = (gpus / streams.max(1) as f64).min(1.0).min(top);
    (share, best_infer(infer, share).config.name.clone())
}

/// What runs when the policy fails: at a window's start Ekya's fair split (the native `fair`
/// policy, or inference only if even that refuses the input); at a completion the finished
/// job's `freed` share handed out evenly ([`Executor::hand_out`]).
pub fn fallback(input: &PolicyInput, on_completion: Option<(&Executor, f64)>) -> Schedule {
    match on_completion {
        Some((exec, freed)) => exec.hand_out(input, freed),
        None => Fair::schedule(input, &[]).unwrap_or_else(|_| inference_only(input)),
    }
}

/// Inference only, split evenly.
fn inference_only(input: &PolicyInput) -> Schedule {
    let share = (input.gpus as f64 / input.streams.len().max(1) as f64).min(1.0);
    Schedule {
        streams: input
            .streams
            .iter()
            .map(|s| StreamSchedule {
                stream_id: s.state.id.clone(),
                infer_share: share,
                retrain_share: 0.0,
                infer_config: best_infer(&s.infer, share).config.name.clone(),
                retrain_config: None,
            })
            .collect(),
        estimated_accuracy: None,
    }
}
