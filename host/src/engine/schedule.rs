//! [`Scheduler`]: a window's scheduling loop, written once for every clock.
//!
//! The loop is Ekya's: at the first decision the policy splits the GPUs; the shares are
//! applied to the [`Executor`]; the jobs run until one finishes; its share is released, its
//! outcome folded into its stream's policy input, and the policy is asked again; until the
//! window ends. A policy that fails (an error, a trap, a timeout, an invalid schedule) is
//! replaced by the fallback for that call, and the call is recorded either way.
//!
//! With the profile beside the jobs (`[profiler] timing = "beside"`), the window starts with
//! the host's safe start instead of a decision (every stream retraining its safe configuration
//! on a uniform split, the profile on its own share): until the profile is in, a finished
//! job's share is handed out evenly without asking the policy, which has nothing to decide by
//! yet; once it is in, the policy re-plans with the running jobs' progress and may continue,
//! switch or stop each ([`Step::Profiled`]).
//!
//! What differs between the virtual clock, the real clock and replay is only how the next
//! event comes about and what it produced, so [`Scheduler::run`] takes that as a closure:
//! the virtual clock runs the executor's fluid model to the next completion and trains the job
//! for real ([`Scheduler::next_completion`]); the real clock time-slices the jobs on the device
//! and reports the one the device finished ([`Scheduler::finish`]); replay takes the recorded
//! outcome. The scheduler keeps the records every clock reports: policy calls, allocations,
//! jobs and predictions ([`Records`]).

use std::time::Instant;

use tandem_plugin_sdk::policy::{Fair, Policy as _};

use super::executor::{Avail, Completion, Executor};
use super::report::{Allocation, JobReport, PolicyCall, PredictionRecord};
use crate::plugin::PluginError;
use crate::plugin::types::{
    InferProfile, PolicyInput, RetrainProfile, Schedule, StreamInput, StreamSchedule,
};

/// A scheduling policy as the loop calls it: anything that answers a [`PolicyInput`] (a
/// plugin through `PluginHost::decide`, a native policy in tests), with the name and digest
/// its calls are recorded under.
pub struct Policy<'p> {
    pub name: String,
    pub digest: String,
    pub decide: &'p mut dyn FnMut(&PolicyInput) -> Result<Schedule, PluginError>,
}

/// What a finished retraining job produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Accuracy of the retrained model on the window's validation split.
    pub accuracy: f64,
    /// Whether it serves from the completion on (the window may refuse a model that
    /// validates worse than the one serving).
    pub deployed: bool,
    /// The deployed model's accuracy factor for each offered inference configuration, in
    /// the stream's order (measured again: a new model degrades differently with
    /// resolution); `None` keeps the old ones.
    pub infer_factors: Option<Vec<f64>>,
    /// The job's (time-averaged allocated, delivered) share while it ran.
    pub shares: (f64, f64),
}

/// What a window's scheduling produced, for its report.
#[derive(Debug, Default)]
pub struct Records {
    pub calls: Vec<PolicyCall>,
    /// Every change of allocation, in time order.
    pub allocations: Vec<Allocation>,
    /// Per stream, the retraining job started last (if any).
    pub jobs: Vec<Option<JobReport>>,
    /// Every prediction offered to the policy, with the outcome where its job ran.
    pub predictions: Vec<PredictionRecord>,
}

/// What happens next in a window.
pub enum Step {
    /// A retraining job finished with this outcome.
    Completed(Completion, Outcome),
    /// The profile is in at this time (the streams' candidates were offered again).
    Profiled(f64),
    /// A scene change was seen on stream `.0`'s frames at `.1`, and a zoo model (the next
    /// model version) serves it from then on.
    Swapped(usize, f64),
}

/// The next event, or `None` once the window is over.
pub type NextStep<'n, 'p> = dyn FnMut(&mut Scheduler<'p>) -> Option<Step> + 'n;

/// One window's scheduling state: the executor, each stream's policy input and what every
/// offered job would really cost, the policy, and the records.
pub struct Scheduler<'p> {
    exec: Executor,
    gpus: u32,
    horizon: f64,
    inputs: Vec<StreamInput>,
    /// Per stream: each offered retraining configuration's true cost in GPU-seconds at a
    /// full GPU (the policy sees only an estimate).
    costs: Vec<Vec<(String, f64)>>,
    /// Per stream: the model version serving (0: the one the window started with).
    versions: Vec<usize>,
    policy: Policy<'p>,
    /// Whether the candidates carry profiled predictions (until then the policy is not asked).
    profiled: bool,
    /// Per stream: whether a zoo model was swapped in mid-window (it retrains no more).
    swapped: Vec<bool>,
    records: Records,
}

impl<'p> Scheduler<'p> {
    /// A window of `horizon` seconds on `gpus` GPUs whose streams offer `inputs` (inference
    /// profiles; retraining comes with [`Self::offer`]) and serve with `start[i]` =
    /// (share, inference configuration) until the first decision.
    pub fn new(
        gpus: u32,
        horizon: f64,
        inputs: Vec<StreamInput>,
        start: &[(f64, String)],
        policy: Policy<'p>,
    ) -> Self {
        let n = inputs.len();
        let mut exec = Executor::new(horizon);
        for (i, (input, (share, config))) in inputs.iter().zip(start).enumerate() {
            exec.set_infer(i, 0.0, *share, infer_named(input, config, *share));
        }
        Self {
            exec,
            gpus,
            horizon,
            inputs,
            costs: vec![Vec::new(); n],
            versions: vec![0; n],
            policy,
            profiled: false,
            swapped: vec![false; n],
            records: Records {
                jobs: vec![None; n],
                ..Records::default()
            },
        }
    }

    /// Stream `i`'s retraining candidates as the policy sees them, each with its true cost,
    /// and the predictions they came from. A stream whose job already finished this window
    /// is offered none (one job a window: the profile measured the model it replaced).
    pub fn offer(
        &mut self,
        i: usize,
        retrain: Vec<RetrainProfile>,
        costs: Vec<(String, f64)>,
        predictions: Vec<PredictionRecord>,
    ) {
        let finished = self.records.jobs[i]
            .as_ref()
            .is_some_and(|j| j.finished_at.is_some());
        self.inputs[i].retrain = if finished || self.swapped[i] {
            Vec::new()
        } else {
            retrain
        };
        self.costs[i] = costs;
        self.records.predictions.extend(predictions);
    }

    /// The loop: at `at` (if the window is not over by then) the host's `start` schedule, or
    /// else the policy's first decision; then each event `next` reports: a finished job's
    /// outcome and a new decision, or the profile coming in and a re-plan.
    pub fn run(&mut self, at: f64, start: Option<Schedule>, next: &mut NextStep<'_, 'p>) {
        if at >= self.horizon || self.inputs.is_empty() {
            return;
        }
        self.exec.advance(at);
        match start {
            Some(schedule) => self.apply(&schedule, at),
            None => self.replan(at, None),
        }
        while let Some(step) = next(self) {
            match step {
                Step::Completed(done, outcome) => self.complete(done, outcome),
                Step::Profiled(at) => {
                    self.exec.advance(at);
                    // The profiler's share comes back to the jobs.
                    let freed = f64::from(self.gpus) - self.exec.allocated();
                    self.replan(at, Some(freed.max(0.0)));
                }
                Step::Swapped(i, at) => self.swap(i, at),
            }
        }
    }

    /// Stream `i`'s scene changed mid-window and a zoo model serves it from `at`: its job
    /// (training on labels of the old scene) stops and it is offered none (its share goes to
    /// the running jobs, the policy having no labels of the new scene to decide by).
    pub fn swap(&mut self, i: usize, at: f64) {
        self.swapped[i] = true;
        self.serve_next(i, at);
        self.inputs[i].retrain.clear();
        let freed = self.exec.release_retrain(i);
        if freed > 0.0 {
            let input = self.policy_input(at);
            let schedule = self.hand_out(&input, freed);
            self.apply(&schedule, at);
        }
    }

    /// Stream `i`'s next model version serves from `at`, its jobs and candidates unchanged (a
    /// zoo model swapped in as the window's labels came, see `Stream::serve_labelled`; a
    /// mid-window [`Scheduler::swap`] does this and more).
    pub fn serve_next(&mut self, i: usize, at: f64) {
        self.exec.advance(at);
        self.versions[i] += 1;
        self.exec.set_model(i, at, self.versions[i]);
    }

    /// Ask the policy with the candidates as offered now; on failure the fallback decides:
    /// Ekya's fair split at a first decision (`freed` none), or the running allocation with
    /// the `freed` GPU (the profiler's share, coming back) handed out evenly.
    fn replan(&mut self, at: f64, freed: Option<f64>) {
        self.profiled = true;
        let input = self.policy_input(at);
        let schedule = self.decide(&input, at, freed);
        self.apply(&schedule, at);
    }

    /// The virtual clock's next completion before `until`: every job progresses by its share
    /// until one has done its work (`None` when none does by `until` or the window's end).
    pub fn next_completion(&mut self, until: f64) -> Option<Completion> {
        self.exec.run_to_next_completion(until)
    }

    /// The real clock's completion: stream `i`'s job finished on the device at `at`; the
    /// others have `left[k]` of their work left, as the device measured it.
    pub fn finish(&mut self, i: usize, at: f64, left: &[(usize, f64)]) -> Completion {
        self.exec.advance(at);
        for &(k, fraction) in left {
            self.exec.set_remaining_fraction(k, fraction);
        }
        self.exec.finish(i, at)
    }

    /// A finished job's outcome: a deployed model serves from the completion on and its
    /// stream is offered no other job this window; then the policy is asked again for the
    /// share the job frees (on failure, that share is handed out evenly).
    fn complete(&mut self, done: Completion, outcome: Outcome) {
        let Completion { stream: i, at, .. } = done;
        let input = &mut self.inputs[i];
        if outcome.deployed {
            if let Some(factors) = &outcome.infer_factors {
                for (q, f) in input.infer.iter_mut().zip(factors) {
                    q.accuracy_factor = *f;
                }
            }
            self.versions[i] += 1;
            self.exec.set_model(i, at, self.versions[i]);
            input.state.accuracy = outcome.accuracy;
        }
        input.retrain.clear();
        if let Some(j) = self.records.jobs[i].as_mut() {
            j.deployed = outcome.deployed;
            j.actual_accuracy = Some(outcome.accuracy);
            j.finished_at = Some(at);
            (j.allocated_share, j.delivered_share) = outcome.shares;
        }
        let id = &self.inputs[i].state.id;
        if let Some(p) = self
            .records
            .predictions
            .iter_mut()
            .find(|p| p.stream == *id && p.config == done.config)
        {
            p.actual_accuracy = Some(outcome.accuracy);
            p.actual_gpu_seconds = Some(done.gpu_seconds);
        }
        let input = self.policy_input(at);
        let freed = self.exec.release_retrain(i);
        let schedule = if self.profiled {
            self.decide(&input, at, Some(freed))
        } else {
            self.hand_out(&input, freed)
        };
        self.apply(&schedule, at);
    }

    /// The policy's input at `at`: the streams as offered, a running job named and offered
    /// with the work it has left and its progress, beside the configurations it could switch
    /// to (the policy keeps it, re-shares it, switches or drops it).
    fn policy_input(&self, at: f64) -> PolicyInput {
        let streams = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let mut input = input.clone();
                if let Some(config) = self.exec.running_config(i) {
                    input.running = Some(config.to_string());
                    // A job finishing at this very instant (two completions at once) still
                    // has a sliver left; a zero would be an invalid profile.
                    let left = self.exec.remaining(i).unwrap_or(0.0).max(1e-6);
                    let progress = self.exec.progress(i).unwrap_or(0.0);
                    for r in input.retrain.iter_mut().filter(|r| r.config.name == config) {
                        (r.gpu_seconds, r.progress) = (left, progress);
                    }
                }
                input
            })
            .collect();
        PolicyInput {
            streams,
            gpus: self.gpus,
            window_seconds: self.horizon,
            elapsed_seconds: at,
        }
    }

    /// Ask the policy and record the call; on failure, the fallback decides: Ekya's fair
    /// split at the first decision, the `freed` share handed out evenly at a completion.
    fn decide(&mut self, input: &PolicyInput, at: f64, freed: Option<f64>) -> Schedule {
        let started = Instant::now();
        let result = (self.policy.decide)(input);
        let micros = started.elapsed().as_micros() as u64;
        let (output, error) = match result {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.records.calls.push(PolicyCall {
            at,
            plugin: self.policy.name.clone(),
            digest: self.policy.digest.clone(),
            input: input.clone(),
            output: output.clone(),
            error,
            micros,
        });
        match (output, freed) {
            (Some(s), _) => s,
            (None, Some(freed)) => self.hand_out(input, freed),
            (None, None) => Fair::schedule(input, &[]).unwrap_or_else(|_| inference_only(input)),
        }
    }

    /// Apply a (validated) schedule at `at`: inference shares and configurations, running
    /// jobs' shares, jobs started (at their true cost) or dropped; record the allocations.
    fn apply(&mut self, schedule: &Schedule, at: f64) {
        for (i, input) in self.inputs.iter().enumerate() {
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
            self.exec.set_infer(i, at, d.infer_share, infer);
            let running = self.exec.running_config(i).map(str::to_string);
            match (&d.retrain_config, running) {
                (Some(name), Some(r)) if *name == r => {
                    self.exec.set_retrain_share(i, d.retrain_share);
                    // Its latest prediction (the profile may have come in since it started).
                    let profile = input.retrain.iter().find(|r| r.config.name == *name);
                    if let (Some(j), Some(p)) = (self.records.jobs[i].as_mut(), profile) {
                        j.predicted_accuracy = p.accuracy_after;
                    }
                }
                (Some(name), _) => {
                    if let Some(profile) = input.retrain.iter().find(|r| r.config.name == *name) {
                        let gpu_seconds = self.costs[i]
                            .iter()
                            .find(|(c, _)| c == name)
                            .map_or(profile.gpu_seconds, |(_, s)| *s);
                        self.exec
                            .start_retrain(i, at, d.retrain_share, name, gpu_seconds);
                        self.records.jobs[i] = Some(JobReport {
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
                        });
                    }
                }
                (None, Some(_)) => {
                    self.exec.release_retrain(i);
                }
                (None, None) => {}
            }
            let running = self.exec.running_config(i).map(str::to_string);
            self.records.allocations.push(Allocation {
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
    }

    /// The current allocation with `freed` share handed out evenly to the running retraining
    /// jobs (each capped at one GPU), or to inference when none runs: the fallback when the
    /// policy fails at a completion (what Ekya's code does on every completion).
    fn hand_out(&self, input: &PolicyInput, freed: f64) -> Schedule {
        let n = input.streams.len();
        let running: Vec<usize> = (0..n)
            .filter(|&i| self.exec.running_config(i).is_some())
            .collect();
        let targets = if running.is_empty() {
            (0..n).collect()
        } else {
            running.clone()
        };
        let extra = freed / targets.len().max(1) as f64;
        let streams = input
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let infer_share = self.exec.infer_share(i);
                let bonus = if targets.contains(&i) { extra } else { 0.0 };
                let job = self.exec.running_config(i).map(str::to_string);
                let (infer_share, retrain_share) = match job {
                    Some(_) => (infer_share, (self.exec.retrain_share(i) + bonus).min(1.0)),
                    None => ((infer_share + bonus).min(1.0), 0.0),
                };
                // A larger inference share serves a better configuration where one fits:
                // kept on the one chosen for the smaller share, streams of the 8-stream fig6
                // served at low resolution until the profile came in beside (thief with a
                // 0.1 profile share: 0.592 before this, 0.642 after).
                let current = infer_named(s, self.exec.infer_config(i), infer_share);
                let better = best_infer(&s.infer, infer_share);
                let infer = if better.accuracy_factor > current.accuracy_factor + 1e-12 {
                    better
                } else {
                    current
                };
                StreamSchedule {
                    stream_id: s.state.id.clone(),
                    infer_share,
                    retrain_share,
                    infer_config: infer.config.name.clone(),
                    retrain_config: job,
                }
            })
            .collect();
        Schedule {
            streams,
            estimated_accuracy: None,
        }
    }

    /// Stream `i`'s availability over the window (when it comes and goes): the executor
    /// lends its shares while it cannot use them.
    pub fn set_availability(&mut self, i: usize, timeline: Vec<(f64, Avail)>) {
        self.exec.set_availability(i, timeline);
    }

    /// Stream `i`'s policy input as it stands.
    pub fn input(&self, i: usize) -> &StreamInput {
        &self.inputs[i]
    }

    /// The executor, for the real clock to bring its time slicer in line with.
    pub fn executor(&self) -> &Executor {
        &self.exec
    }

    /// Stream `i`'s job's (time-averaged allocated, delivered) share on the virtual clock.
    pub fn job_shares(&self, i: usize) -> (f64, f64) {
        self.exec.job_shares(i)
    }

    /// Close the window: jobs that did not finish report how far they got (`measured[i]`
    /// where the device measured it, the executor's account otherwise), and the clock moves
    /// to the window's end. Returns the executor, the records and each stream's input as it
    /// ended.
    pub fn close(
        mut self,
        measured: &[Option<(f64, f64)>],
    ) -> (Executor, Records, Vec<StreamInput>) {
        for (i, j) in self.records.jobs.iter_mut().enumerate() {
            if let Some(j) = j.as_mut().filter(|j| j.finished_at.is_none()) {
                (j.allocated_share, j.delivered_share) = measured
                    .get(i)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| self.exec.job_shares(i));
            }
        }
        self.exec.advance(self.horizon);
        (self.exec, self.records, self.inputs)
    }
}

/// Inference allocation until a window's first decision: what the stream ran at the end of
/// the last window (`carried`), or in its first window a fair split of `gpus` over
/// `streams`, capped at what the most accurate configuration needs, with the best
/// configuration that fits.
pub fn start_infer(
    carried: Option<&(f64, String)>,
    infer: &[InferProfile],
    gpus: f64,
    streams: usize,
) -> (f64, String) {
    if let Some(c) = carried {
        return c.clone();
    }
    let top = best_infer(infer, f64::INFINITY).gpu_cost;
    let share = (gpus / streams.max(1) as f64).min(1.0).min(top);
    (share, best_infer(infer, share).config.name.clone())
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

/// The offered inference profile named `config`, or (a configuration no longer offered)
/// the best that fits `share`.
fn infer_named<'i>(input: &'i StreamInput, config: &str, share: f64) -> &'i InferProfile {
    input
        .infer
        .iter()
        .find(|p| p.config.name == config)
        .unwrap_or_else(|| best_infer(&input.infer, share))
}

/// Inference only, split evenly: the fallback's fallback, when even the fair split refuses
/// the input.
pub fn inference_only(input: &PolicyInput) -> Schedule {
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
