//! The window start, stream by stream: a draft (the window's data, the serving model's
//! accuracy, the candidate configurations and their inference profiles), the micro-profile's
//! runs as a task that can run at once (virtual clock) or time-sliced (real clock), and the
//! finish that turns the profiles into the predictions the policy allocates by.

use std::rc::Rc;

use super::{Engine, Prepared, Run, resolution_factors, sampling_factors, served_factor};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::engine::EngineError;
use crate::engine::cost::CostModel;
use crate::engine::profiler::{self, Profile};
use crate::engine::report::PredictionRecord;
use crate::engine::scenario::ProfileAxis;
use crate::model::{self, Model};
use crate::plugin::types::{
    EstimateRequest, InferProfile, RetrainConfig, RetrainProfile, StreamInput, StreamState,
};

impl<B: Backend> Engine<'_, B> {
    /// Draw camera `i`'s window, measure its model, get its candidates and their inference
    /// profiles: everything but the micro-profile (see [`Self::profile_task`] and
    /// [`Self::finish`]).
    pub(super) fn draft(&mut self, i: usize, w: u32) -> Result<Draft, EngineError> {
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
    pub(super) fn profile_task(&self, i: usize, w: u32, d: &Draft) -> ProfileTask<B> {
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
    pub(super) fn finish(
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

    /// Fill in every stream's retraining profiles from its micro-profile.
    pub(super) fn finish_all(
        &self,
        st: &mut Run<B>,
        pending: &[Pending],
        profiles: &[StreamProfiles],
    ) {
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
}

/// What makes two configurations' profiles the same run: trained layer groups, width,
/// batch size, learning rate and data fraction (the last two as bits).
pub(super) type ProfileKey = (usize, u32, u32, u64, u64);

/// A stream's profiling runs, by group.
pub(super) type StreamProfiles = Vec<(ProfileKey, Profile)>;

pub(super) fn profile_key(c: &RetrainConfig, hidden: usize) -> ProfileKey {
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
pub(super) struct Draft {
    pub(super) prepared: Prepared,
    pub(super) retrain: Vec<RetrainConfig>,
    pub(super) slice: Dataset,
    pub(super) serving_on_slice: f64,
    /// Modelled GPU-seconds of the reference slice's and the resolution factors' measurements.
    pub(super) slice_gpu: f64,
    pub(super) res_gpu: f64,
}

/// What a stream's profiles are turned into predictions with, once they have run.
pub(super) struct Pending {
    pub(super) retrain: Vec<RetrainConfig>,
    pub(super) serving_on_slice: f64,
    /// The draft's (reference slice, resolution factors) modelled GPU-seconds.
    pub(super) gpu: (f64, f64),
}

/// A stream's micro-profile runs, on copies of what they read, so they can run at once (the
/// virtual clock) or one by one as a time-sliced job (the real clock).
pub(super) struct ProfileTask<B: Backend> {
    pub(super) model: Model<B>,
    pub(super) fit: Dataset,
    pub(super) memory: Dataset,
    pub(super) slice: Dataset,
    pub(super) serving_on_slice: f64,
    pub(super) epochs: u32,
    pub(super) sample_fraction: f64,
    /// One per group: its key, a representative configuration and the run's seed.
    pub(super) runs: Vec<(ProfileKey, RetrainConfig, u64)>,
}

impl<B: Backend> ProfileTask<B> {
    /// Run profile `k`.
    pub(super) fn run(&self, be: &B, k: usize, cost: &CostModel) -> (ProfileKey, Profile) {
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
