//! What a retraining job is, and the micro-profiler that predicts what it will do.
//!
//! - [`JobPlan`]: one candidate configuration on one stream's window: the layer groups it
//!   trains, its head, the samples it trains on and its modelled cost. The profiler samples
//!   it, the scheduler charges it, the window trains it ([`JobPlan::job`]).
//! - [`ProfileTask`]: at each window start, copies of the stream's model are trained for a
//!   few epochs on a small sample of what the jobs would train on, measured after each epoch
//!   ([`ProfileTask::run`]), and the estimator plugin turns those observations into each
//!   candidate's predicted accuracy and GPU time, corrected by the run's calibration
//!   ([`ProfileTask::estimate`]; Ekya §4.3).
//!
//! Configurations that differ only in epochs share one profile (they train the same layers
//! of the same network on the same data), so a window profiles a handful of runs, not one
//! per configuration. Its GPU time is charged to the window by the caller.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;

use super::Plugins;
use super::calibrate::{self, Calibration, Raw, ZOO_KIND};
use super::cost::CostModel;
use super::report::PredictionRecord;
use super::scenario::{ProfileAxis, ProfilerSettings};
use super::zoo::{self, ZooCheck};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::model::{self, Model, TrainConfig};
use crate::plugin::types::{EstimateRequest, Observation, RetrainConfig, RetrainProfile};

/// A retraining configuration as one stream's window would run it.
#[derive(Debug, Clone)]
pub struct JobPlan {
    pub config: RetrainConfig,
    /// Layer groups it trains: a new head (another width) is always trained whole, so at
    /// least the hidden layer and the classifier.
    pub layers: usize,
    /// Hidden width of the model it trains: its own, or the serving model's when it says 0.
    pub head: usize,
    /// Samples it trains on per epoch: its fraction of the window's labelled samples (at
    /// least one) plus the exemplar memory.
    pub samples: usize,
    /// Its true cost: modelled GPU-seconds at a full GPU.
    pub gpu_seconds: f64,
}

impl JobPlan {
    /// `config` on a window with `fit` labelled samples and `memory` exemplars, for a
    /// serving model of hidden width `hidden`.
    pub fn new(
        config: &RetrainConfig,
        hidden: usize,
        fit: &Dataset,
        memory: usize,
        cost: &CostModel,
    ) -> Self {
        let head = if config.width == 0 {
            hidden
        } else {
            config.width as usize
        };
        let l = (config.layers_trained as usize).clamp(1, model::LAYER_GROUPS.len());
        let layers = if head != hidden { l.max(2) } else { l };
        let samples = job_size(fit.len(), memory, config.data_fraction);
        let gpu_seconds = cost.train_seconds(fit.h, fit.w, layers, samples) * config.epochs as f64;
        Self {
            config: config.clone(),
            layers,
            head,
            samples,
            gpu_seconds,
        }
    }

    /// Deploy zoo model `id` as it is: nothing trained; what it costs is swapping it in
    /// (its check was paid for at the window start).
    pub fn deploy(id: &str) -> Self {
        JobPlan {
            config: RetrainConfig {
                name: format!("zoo:{id}"),
                epochs: 0,
                layers_trained: 0,
                data_fraction: 1.0,
                width: 0,
                batch_size: 1,
                learning_rate: 0.0,
                start_from: Some(id.to_string()),
            },
            layers: 0,
            head: 0,
            samples: 0,
            gpu_seconds: DEPLOY_GPU_SECONDS,
        }
    }

    /// What a correction of its predictions is shared by (see [`calibrate`]).
    pub fn kind(&self) -> calibrate::Kind {
        (self.layers, self.config.epochs)
    }

    /// The job ready to train: `serving` with this plan's head, its data (the window's
    /// fraction of `fit`, a seeded subset, plus the `memory`) and its settings.
    pub fn job<B: Backend>(
        &self,
        be: &B,
        serving: &Model<B>,
        fit: &Dataset,
        memory: &Dataset,
        seed: u64,
    ) -> (Model<B>, Dataset, TrainConfig) {
        let data = job_data(fit, memory, self.config.data_fraction, seed);
        // A zoo model (`serving` is then that model) keeps its own head unless the
        // configuration names a width; deployed as it is, it is not touched at all.
        let m = match (&self.config.start_from, self.config.width) {
            (Some(_), _) if self.config.epochs == 0 => serving.duplicate(be),
            (Some(_), 0) => serving.duplicate(be),
            _ => serving.with_head(be, self.head, seed ^ 1),
        };
        // The job anneals its learning rate over its epochs, so the model it deploys is not a
        // noisy constant-rate iterate: on the example this lifted every retraining policy by
        // 0.5-1.5 points and cut the profiler's error on the thief's jobs (8.1 -> 5.3 points).
        // Profiles keep a constant rate: their per-epoch points trace the curve's shape.
        let cfg = TrainConfig {
            cosine: true,
            ..self.train_config(seed ^ 2)
        };
        (m, data, cfg)
    }

    /// Its training settings at a constant learning rate.
    fn train_config(&self, seed: u64) -> TrainConfig {
        let c = &self.config;
        TrainConfig {
            epochs: c.epochs as usize,
            trained_layers: self.layers,
            data_fraction: 1.0,
            batch_size: c.batch_size.max(1) as usize,
            lr: c.learning_rate as f32,
            momentum: 0.9,
            weight_decay: 5e-4,
            seed,
            cosine: false,
        }
    }

    /// Plans with the same key share one profile: trained layer groups, width, batch size,
    /// learning rate and data fraction (the last two as bits).
    fn profile_key(&self) -> (usize, u32, u32, u64, u64) {
        let c = &self.config;
        (
            self.layers,
            c.width,
            c.batch_size,
            c.learning_rate.to_bits(),
            c.data_fraction.to_bits(),
        )
    }
}

/// Modelled GPU-seconds of swapping a checked zoo model in: next to nothing (a job of one
/// millisecond at a full GPU), but a job all the same, so the scheduler deploys it as it
/// deploys any other.
pub const DEPLOY_GPU_SECONDS: f64 = 1e-3;

/// Samples a retraining job trains on: its fraction of the window's `fit` samples (at least
/// one) plus the `memory` exemplars. [`job_data`] builds exactly that many.
pub fn job_size(fit: usize, memory: usize, fraction: f64) -> usize {
    ((fit as f64 * fraction).round() as usize).clamp(1, fit.max(1)) + memory
}

/// The training set of a retraining job: the configured fraction of the window's labelled
/// samples (a seeded subset) plus the whole exemplar memory.
pub fn job_data(fit: &Dataset, memory: &Dataset, fraction: f64, seed: u64) -> Dataset {
    let mut idx: Vec<usize> = (0..fit.len()).collect();
    idx.shuffle(&mut Pcg64Mcg::seed_from_u64(seed));
    idx.truncate(job_size(fit.len(), 0, fraction));
    let mut d = fit.select(&idx);
    d.extend(memory);
    d
}

/// SGD steps per profiling epoch the batch size is lowered to reach.
const PROFILE_STEPS_PER_EPOCH: usize = 4;

/// Validation samples a profiling run measures after each epoch. Evaluation, not training,
/// dominates a profile's cost (a head-only epoch on a ~40-sample sample costs what
/// classifying 40 crops does), so the slice is kept small; 5 epochs of it average out.
pub const PROFILE_VAL_SAMPLES: usize = 48;

/// The slice of the validation split every profile of a window measures on.
pub fn val_slice(val: &Dataset) -> Dataset {
    val.take(PROFILE_VAL_SAMPLES)
}

/// One profiling run's measurements.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Accuracy on the validation slice and cumulative GPU-seconds after each epoch.
    pub observations: Vec<Observation>,
    /// Accuracy of the profiled copy before training (epoch 0), on the same slice: the
    /// curve's anchor. A replaced head starts near chance.
    pub anchor: f64,
    /// Samples the profiling run trained on.
    pub samples: usize,
    /// GPU-seconds the run cost (training and the per-epoch evaluations).
    pub gpu_seconds: f64,
}

/// What a stream's profile reads, copied so it can run beside the window: the window's
/// labelled samples and exemplar memory, the slice every run is measured on, and the
/// serving model's accuracy there and on the whole validation split.
pub struct ProfileData {
    pub fit: Dataset,
    pub memory: Dataset,
    pub slice: Dataset,
    pub serving_on_slice: f64,
    pub start_accuracy: f64,
    /// The zoo models checked, measured on the whole validation split of `val_len` samples.
    pub zoo_checks: Vec<ZooCheck>,
    pub val_len: usize,
}

/// One stream's micro-profile: its runs, on copies of what they read, so they can run at
/// once (the virtual clock) or one by one as a time-sliced job (the real clock); then the
/// predictions made from them.
pub struct ProfileTask<B: Backend> {
    stream: String,
    /// The serving model as the window started.
    model: Model<B>,
    data: ProfileData,
    settings: ProfilerSettings,
    plans: Vec<JobPlan>,
    /// One run per group of plans that train the same network on the same data: the
    /// index of the group's first plan and the run's seed. None with the profiler off.
    runs: Vec<(usize, u64)>,
    /// Predictions carried over from the last window instead of profiling (see
    /// [`ProfileTask::reuse`]).
    reused: Option<Vec<RetrainProfile>>,
}

/// What a stream's profiles predict of its candidates.
pub struct Estimates {
    /// What the policy is offered.
    pub retrain: Vec<RetrainProfile>,
    /// Every prediction made, for the record.
    pub records: Vec<PredictionRecord>,
    /// Each prediction as the estimator made it (what the calibration learns from once its
    /// job has run).
    pub uncorrected: Vec<Raw>,
}

impl<B: Backend> ProfileTask<B> {
    /// The profile of `plans` on stream `stream`'s window: copies of `serving` trained on
    /// samples of `data`; `seed` makes every run reproducible.
    pub fn new(
        be: &B,
        stream: &str,
        serving: &Model<B>,
        data: ProfileData,
        plans: Vec<JobPlan>,
        settings: &ProfilerSettings,
        seed: u64,
    ) -> Self {
        let mut runs: Vec<(usize, u64)> = Vec::new();
        if settings.enabled {
            // Zoo plans are not profiled: a deployed one was measured, a retrained one is
            // predicted from its configuration's profile.
            for (k, plan) in plans.iter().enumerate() {
                if plan.config.start_from.is_some() {
                    continue;
                }
                let key = plan.profile_key();
                if runs.iter().all(|(r, _)| plans[*r].profile_key() != key) {
                    runs.push((k, seed ^ runs.len() as u64));
                }
            }
        }
        Self {
            stream: stream.to_string(),
            model: serving.duplicate(be),
            data,
            settings: settings.clone(),
            plans,
            runs,
            reused: None,
        }
    }

    /// Profile only the groups that train on `fraction` of the window's data (the other
    /// candidates are offered with no gain predicted); returns the modelled GPU-seconds the
    /// dropped runs would have cost.
    pub fn narrow(&mut self, fraction: f64, cost: &CostModel) -> f64 {
        let keep: Vec<bool> = self
            .runs
            .iter()
            .map(|(r, _)| self.plans[*r].config.data_fraction == fraction)
            .collect();
        let saved = (0..self.runs.len())
            .filter(|&k| !keep[k])
            .map(|k| self.run_cost(k, cost).0)
            .sum();
        let mut k = 0;
        self.runs.retain(|_| {
            k += 1;
            keep[k - 1]
        });
        saved
    }

    /// Offer `offers` (the last window's predictions, re-anchored) instead of profiling;
    /// returns the modelled GPU-seconds the skipped runs would have cost.
    pub fn reuse(&mut self, offers: Vec<RetrainProfile>, cost: &CostModel) -> f64 {
        let saved = (0..self.runs.len()).map(|k| self.run_cost(k, cost).0).sum();
        self.runs.clear();
        self.reused = Some(offers);
        saved
    }

    /// Run `k`'s sample size and modelled cost: (GPU-seconds, samples, per-epoch training,
    /// one evaluation of the slice).
    fn run_cost(&self, k: usize, cost: &CostModel) -> (f64, usize, f64, f64) {
        let plan = &self.plans[self.runs[k].0];
        let job = job_size(
            self.data.fit.len(),
            self.data.memory.len(),
            plan.config.data_fraction,
        );
        let samples = job_size(job, 0, self.settings.sample_fraction);
        let (h, w) = (self.data.fit.h, self.data.fit.w);
        let per_epoch = cost.train_seconds(h, w, plan.layers, samples);
        let eval = cost.infer_seconds(h, w, self.data.slice.len());
        let anchor = if plan.head == self.model.arch().hidden {
            0.0
        } else {
            eval
        };
        let epochs = self.settings.epochs as f64;
        (
            (per_epoch + eval) * epochs + anchor,
            samples,
            per_epoch,
            eval,
        )
    }

    /// Profiling runs to make.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The candidates' plans.
    pub fn plans(&self) -> &[JobPlan] {
        &self.plans
    }

    /// Each candidate's true cost: (configuration, modelled GPU-seconds at a full GPU).
    pub fn costs(&self) -> Vec<(String, f64)> {
        self.plans
            .iter()
            .map(|p| (p.config.name.clone(), p.gpu_seconds))
            .collect()
    }

    /// Make run `k`: train a copy for the profiler's epochs on a sample of what its jobs
    /// would train on, measuring it on the slice after each epoch.
    pub fn run(&self, be: &B, k: usize, cost: &CostModel) -> Profile {
        let (plan, seed) = (&self.plans[self.runs[k].0], self.runs[k].1);
        let hidden = self.model.arch().hidden;
        // A sample of what the job itself trains on: its fraction of the window's data and
        // the memory, in the job's proportions. Old exemplars dilute the new data, the more
        // so the smaller the fraction; sampling the new data alone predicted 0.9 where a job
        // reached 0.45.
        let job = job_data(
            &self.data.fit,
            &self.data.memory,
            plan.config.data_fraction,
            seed,
        );
        let sample = job_data(
            &job,
            &self.data.fit.empty_like(),
            self.settings.sample_fraction,
            seed ^ 5,
        );
        let mut m = self.model.with_head(be, plan.head, seed ^ 2);
        let base = plan.train_config(seed ^ 3);
        // A sample is a tenth of the data: with the job's batch size an epoch over it would
        // be one or two steps and the curve would say nothing. Smaller batches keep several
        // steps per epoch, as an epoch of the real job has.
        let cfg = TrainConfig {
            epochs: self.settings.epochs as usize,
            batch_size: base
                .batch_size
                .min((sample.len() / PROFILE_STEPS_PER_EPOCH).max(1)),
            ..base
        };
        let (gpu_seconds, samples, per_epoch, _) = self.run_cost(k, cost);
        debug_assert_eq!(samples, sample.len());
        // The copy starts as the serving model unless its head is replaced.
        let anchor = if plan.head == hidden {
            self.data.serving_on_slice
        } else {
            model::evaluate(be, &mut m, &self.data.slice, 256) as f64
        };
        let mut observations = Vec::new();
        let slice = &self.data.slice;
        model::train_observed(be, &mut m, &sample, &cfg, &mut |_, _| {}, &mut |m, e| {
            observations.push(Observation {
                epochs: e as u32,
                accuracy: model::evaluate(be, m, slice, 256) as f64,
                gpu_seconds: per_epoch * e as f64,
            });
        });
        Profile {
            anchor,
            gpu_seconds,
            observations,
            samples: sample.len(),
        }
    }

    /// Turn the runs' profiles (`profiles[k]` is run `k`'s) into what the policy is offered:
    /// each candidate's prediction from the estimator plugin, carried from the slice to the
    /// whole validation split and corrected by `calibration`, with its standard error (the
    /// estimator's, or the profiler's prior, rescaled by `calibration`). Without a profile
    /// (the profiler is off) a candidate is offered at its modelled cost with no gain
    /// predicted; with reused predictions, those.
    pub fn estimate(
        &self,
        profiles: &[Profile],
        plugins: &Plugins,
        calibration: &Calibration,
    ) -> Estimates {
        let mut out = Estimates {
            retrain: Vec::new(),
            records: Vec::new(),
            uncorrected: Vec::new(),
        };
        if let Some(offers) = &self.reused {
            out.records = offers.iter().map(|r| self.record(r, None)).collect();
            out.retrain = offers.clone();
        }
        for plan in self.plans.iter().filter(|_| self.reused.is_none()) {
            if plan.config.start_from.is_some() {
                continue;
            }
            let key = plan.profile_key();
            let profile = self
                .runs
                .iter()
                .zip(profiles)
                .find(|((r, _), _)| self.plans[*r].profile_key() == key)
                .map(|(_, p)| p);
            let Some(profile) = profile else {
                out.retrain.push(RetrainProfile {
                    config: plan.config.clone(),
                    accuracy_after: self.data.start_accuracy,
                    gpu_seconds: plan.gpu_seconds,
                    accuracy_error: 0.0,
                    progress: 0.0,
                });
                continue;
            };
            let (raw, gpu_seconds, estimator_error) = self.predict(plan, profile, plugins);
            let (accuracy_after, accuracy_error) = if self.settings.calibrate {
                (
                    (raw.predicted + calibration.correction(plan.kind())).clamp(0.0, 1.0),
                    calibration.error(raw.stated),
                )
            } else {
                (raw.predicted, raw.stated)
            };
            let offer = RetrainProfile {
                config: plan.config.clone(),
                accuracy_after,
                gpu_seconds,
                accuracy_error,
                progress: 0.0,
            };
            out.records.push(self.record(&offer, estimator_error));
            out.retrain.push(offer);
            out.uncorrected.push(raw);
        }
        let zoo = self.zoo_offers(&out.retrain, calibration, &mut out.uncorrected);
        out.records.extend(zoo.iter().map(|r| self.record(r, None)));
        out.retrain.extend(zoo);
        out
    }

    /// The zoo plans' offers: a model deployed as it is reaches what its check measured (its
    /// error that of a measured accuracy); a configuration retrained from it gains over it
    /// what the same configuration is predicted to gain over the serving model (`base`),
    /// scaled to the room left above it, with that prediction's error, then corrected by the
    /// run's earlier jobs retrained from zoo models (their own calibration kind, kept in
    /// `raws` to learn from this one's outcome).
    fn zoo_offers(
        &self,
        base: &[RetrainProfile],
        calibration: &Calibration,
        raws: &mut Vec<Raw>,
    ) -> Vec<RetrainProfile> {
        let (start, n) = (self.data.start_accuracy, self.data.val_len.max(1) as f64);
        let correct = |kind| {
            if self.settings.calibrate {
                calibration.correction(kind)
            } else {
                0.0
            }
        };
        self.plans
            .iter()
            .filter_map(|plan| {
                let id = plan.config.start_from.as_ref()?;
                let z = self
                    .data
                    .zoo_checks
                    .iter()
                    .find(|c| c.model == *id)?
                    .accuracy;
                let measured = (z * (1.0 - z) / n).sqrt().max(0.005);
                let (accuracy_after, accuracy_error) = if plan.config.epochs == 0 {
                    (z, measured)
                } else {
                    let own = zoo::own_config(&plan.config.name);
                    match base.iter().find(|r| r.config.name == own) {
                        Some(r) if r.accuracy_error > 0.0 && start < 1.0 => {
                            let predicted = (z
                                + (r.accuracy_after - start) * (1.0 - z) / (1.0 - start))
                                .clamp(0.0, 1.0);
                            let (layers, epochs) = plan.kind();
                            let kind = (layers + ZOO_KIND, epochs);
                            raws.push(Raw {
                                config: plan.config.name.clone(),
                                kind,
                                predicted,
                                stated: r.accuracy_error,
                            });
                            (
                                (predicted + correct(kind)).clamp(0.0, 1.0),
                                r.accuracy_error,
                            )
                        }
                        _ => (z, measured),
                    }
                };
                Some(RetrainProfile {
                    config: plan.config.clone(),
                    accuracy_after,
                    gpu_seconds: plan.gpu_seconds,
                    accuracy_error,
                    progress: 0.0,
                })
            })
            .collect()
    }

    /// The record of an offered prediction.
    fn record(&self, offer: &RetrainProfile, estimator_error: Option<String>) -> PredictionRecord {
        PredictionRecord {
            stream: self.stream.clone(),
            config: offer.config.name.clone(),
            predicted_accuracy: offer.accuracy_after,
            predicted_gpu_seconds: offer.gpu_seconds,
            actual_accuracy: None,
            actual_gpu_seconds: None,
            estimator_error,
        }
    }

    /// The estimator's prediction for `plan` from its group's `profile` (on the validation
    /// split, uncalibrated, with the standard error it states or the profiler's prior), its
    /// GPU-seconds, and the estimator's error if it failed (the last profiled point and the
    /// modelled cost stand in).
    fn predict(
        &self,
        plan: &JobPlan,
        profile: &Profile,
        plugins: &Plugins,
    ) -> (Raw, f64, Option<String>) {
        let c = &plan.config;
        // The curve is anchored where the profiled copy started, on the slice it was
        // measured on (a replaced head starts near chance, not at the serving accuracy).
        let request = EstimateRequest {
            config: c.clone(),
            start_accuracy: profile.anchor,
            observations: profile.observations.clone(),
            // The estimator scales time by data_fraction / profiled_data_fraction; the job
            // also trains on the memory, so express the profiled size in those units.
            profiled_data_fraction: c.data_fraction * profile.samples as f64 / plan.samples as f64,
            epochs_at: vec![match self.settings.axis {
                // Ekya's reading: a job's epochs are the profile's epochs.
                ProfileAxis::Epochs => c.epochs,
                // Gradient steps: a job makes epochs × (its data / the sample) passes over a
                // sample-sized set.
                ProfileAxis::Samples => ((c.epochs as usize * plan.samples) as f64
                    / profile.samples.max(1) as f64)
                    .round()
                    .max(1.0) as u32,
            }],
            shares: vec![],
            throughput: vec![],
        };
        // Predictions are made on the slice; the serving model's gap between the slice and
        // the whole split carries them over.
        let (start, on_slice) = (self.data.start_accuracy, self.data.serving_on_slice);
        let prior = self.settings.prior_error;
        let (predicted, stated, gpu_seconds, error) = match plugins.predict(&request) {
            Ok(p) => (
                (p.accuracy.first().copied().unwrap_or(profile.anchor) + start - on_slice)
                    .clamp(0.0, 1.0),
                p.accuracy_error.first().copied().unwrap_or(prior),
                p.gpu_seconds,
                None,
            ),
            Err(e) => {
                let last = profile.observations.last().map_or(start, |o| o.accuracy);
                (
                    (last + start - on_slice).clamp(0.0, 1.0),
                    prior,
                    plan.gpu_seconds,
                    Some(e.to_string()),
                )
            }
        };
        let raw = Raw {
            config: c.name.clone(),
            kind: plan.kind(),
            predicted,
            stated,
        };
        (raw, gpu_seconds, error)
    }
}
