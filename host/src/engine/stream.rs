//! Camera streams: what each camera sees in each window, and what each stream knows.
//!
//! A [`SourcePool`] holds a source's images, split so that labelled training samples and the
//! crops seen in frames never share an image. A [`Camera`] draws, for window `w`, a
//! [`WindowData`]: the labelled samples the golden model provides (drifted like the scene,
//! optionally with label noise) and the frames, as object tracks: each of the frame's object
//! slots shows one object for a random number of consecutive frames, so a skipped frame's
//! reused result is right while the object stays in view.
//!
//! A [`Stream`] is a camera with its learning state across windows (serving model, exemplar
//! memory, last inference allocation). [`Stream::open`] starts its window: the camera's data,
//! the serving model measured on the held-out labels, the candidate configurations from the
//! config-space plugin with their inference profiles and job plans, and the micro-profile to
//! run ([`StreamWindow`], its policy input, its [`ProfileTask`]); [`Stream::close`] folds the
//! window back into the state.

use std::rc::Rc;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::activity::Activity;
use super::calibrate::Raw;
use super::cost::CostModel;
use super::detect::{Detection, Detector, MATCH_SECONDS, best_match};
use super::memory::ExemplarMemory;
use super::profiler::{self, JobPlan, ProfileData, ProfileTask};
use super::scenario::{
    CameraSpec, EstimateSource, ProfilerSettings, Scenario, SourceKind, ZooSettings,
};
use super::serve;
use super::zoo::{self, PRETRAINED, Zoo, ZooCheck};
use super::{EngineError, Plugins};
use crate::compute::Backend;
use crate::data::{DataError, Dataset, Drift, Look, drift, fashion, synthetic};
use crate::model::{self, Model};
use crate::plugin::types::{
    InferConfig, InferProfile, RetrainConfig, RetrainProfile, SelectionRequest, StreamInput,
    StreamState,
};

/// A source's images: `train` feeds labelled samples, `frames` feeds what cameras see.
#[derive(Debug)]
pub struct SourcePool {
    pub train: Dataset,
    pub frames: Dataset,
}

impl SourcePool {
    /// Load (or generate) the pool for a source kind.
    pub fn load(kind: &SourceKind, seed: u64) -> Result<Arc<SourcePool>, DataError> {
        Ok(Arc::new(match kind {
            SourceKind::FashionMnist => SourcePool {
                train: fashion::load(fashion::Split::Train)?,
                frames: fashion::load(fashion::Split::Test)?,
            },
            SourceKind::Synthetic => SourcePool {
                train: synthetic::generate(6_000, seed.wrapping_add(101)),
                frames: synthetic::generate(3_000, seed.wrapping_add(202)),
            },
            SourceKind::Samplelist => {
                return Err(DataError::Source(
                    "a samplelist source needs its CSV file (SourcePool::for_camera)".into(),
                ));
            }
        }))
    }

    /// The pool for one camera: its samplelist's crops, or the shared source of its kind.
    pub fn for_camera(spec: &CameraSpec, seed: u64) -> Result<Arc<SourcePool>, DataError> {
        match (&spec.source, &spec.samplelist) {
            (SourceKind::Samplelist, Some(csv)) => Self::samplelist(csv),
            (SourceKind::Samplelist, None) => Err(DataError::Source(format!(
                "camera `{}`: a samplelist camera needs `samplelist = \"FILE.csv\"`",
                spec.name
            ))),
            (kind, _) => Self::load(kind, seed),
        }
    }

    /// A samplelist's crops, split by frame so that labelled samples and the crops seen in
    /// frames never come from the same image: every third frame (in file order) feeds the
    /// camera's frames, the others the golden model's labelled samples.
    pub fn samplelist(csv: &std::path::Path) -> Result<Arc<SourcePool>, DataError> {
        let (crops, frame_of) = crate::data::samplelist::load(csv)?;
        let mut order: Vec<&String> = Vec::new();
        for f in &frame_of {
            if !order.contains(&f) {
                order.push(f);
            }
        }
        if order.len() < 3 {
            return Err(DataError::Source(format!(
                "{}: {} frame image(s); a samplelist needs at least 3 (labelled samples and camera frames come from different frames)",
                csv.display(),
                order.len()
            )));
        }
        let to_frames = |f: &String| order.iter().position(|o| *o == f).unwrap_or(0) % 3 == 2;
        let (frames, train): (Vec<usize>, Vec<usize>) =
            (0..crops.len()).partition(|&i| to_frames(&frame_of[i]));
        Ok(Arc::new(SourcePool {
            train: crops.select(&train),
            frames: crops.select(&frames),
        }))
    }
}

/// What a camera sees in one window.
#[derive(Debug, Clone)]
pub struct WindowData {
    /// Samples labelled by the golden model (labels may be noisy).
    pub train: Dataset,
    /// One crop per object track, with its true label.
    pub crops: Dataset,
    pub frames: usize,
    pub slots: usize,
    /// The track in view in each (frame, slot): `track_of[frame * slots + slot]`.
    pub track_of: Vec<u32>,
    /// The frame each track comes into view.
    pub first_frame: Vec<usize>,
    /// When the scene changed inside the window, seconds (see `DriftPoint::at_seconds`).
    pub changed_at: Option<f64>,
    /// Per frame: whether the camera sent it (its activity schedule); frames it did not send
    /// are neither served nor scored.
    pub present: Vec<bool>,
    /// Fraction per class of the labelled samples.
    pub class_mix: Vec<f64>,
}

/// One camera stream of a scenario.
#[derive(Debug, Clone)]
pub struct Camera {
    pub index: usize,
    pub spec: CameraSpec,
    pub pool: Arc<SourcePool>,
}

impl Camera {
    /// The camera's data for window `w` of `scenario`: deterministic in (seed, camera, window).
    pub fn window(&self, scenario: &Scenario, w: u32) -> WindowData {
        let (seed, mix, look) = self.scene(scenario, w);
        let uniform = vec![1.0; self.pool.train.classes];
        let mix = &mix;
        let (train, class_mix) = self.labelled_with_mix(scenario, w);

        let frames = (self.spec.frame_rate * scenario.window_seconds)
            .round()
            .max(1.0) as usize;
        let slots = self.spec.objects_per_frame as usize;
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 4);
        let mut track_of = vec![0u32; frames * slots];
        let mut tracks = 0u32;
        // The frame each track comes into view.
        let mut first_frame = Vec::new();
        // Geometric dwell: an object leaves after each frame with probability 1/dwell.
        let leave = 1.0 / self.spec.object_dwell_frames;
        for s in 0..slots {
            let mut current = tracks;
            tracks += 1;
            first_frame.push(0);
            for f in 0..frames {
                if f > 0 && rng.random::<f64>() < leave {
                    current = tracks;
                    tracks += 1;
                    first_frame.push(f);
                }
                track_of[f * slots + s] = current;
            }
        }
        let mut crops = look.apply(
            &drift::resample_mix(&self.pool.frames, mix, tracks as usize, seed ^ 5),
            seed ^ 6,
        );
        // A scene change inside the window: objects that come into view from then on are
        // the new scene's (those already in view stay as they were).
        let change = scenario.mid_scene(self.index, w).map(|d| {
            let at = (d.at_seconds * self.spec.frame_rate).round() as usize;
            let later: Vec<usize> = (0..tracks as usize)
                .filter(|&t| first_frame[t] >= at)
                .collect();
            let mix = d.class_mix.as_deref().unwrap_or(&uniform);
            let new = d.appearance().apply(
                &drift::resample_mix(&self.pool.frames, mix, later.len(), seed ^ 7),
                seed ^ 8,
            );
            for (k, &t) in later.iter().enumerate() {
                crops.replace(t, new.image(k), new.labels[k]);
            }
            d.at_seconds
        });
        // resample_mix draws in order, so track t is crop t.
        // When the camera sends frames (all the time without a schedule).
        let present = match &self.spec.activity {
            None => vec![true; frames],
            Some(a) => {
                let w0 = w as f64 * scenario.window_seconds;
                let activity = Activity::new(
                    a,
                    w0 + scenario.window_seconds,
                    scenario.seed ^ self.index as u64,
                );
                (0..frames)
                    .map(|f| activity.busy(w0 + f as f64 / self.spec.frame_rate))
                    .collect()
            }
        };
        WindowData {
            train,
            crops,
            frames,
            slots,
            track_of,
            first_frame,
            class_mix,
            changed_at: change,
            present,
        }
    }
}

impl Camera {
    fn seed(&self, scenario: &Scenario, w: u32) -> u64 {
        scenario.seed ^ ((self.index as u64 + 1) << 32) ^ ((w as u64 + 1) << 8)
    }

    /// Window `w`'s labelled samples ([`WindowData::train`]) alone: what the golden model
    /// labels, drawn from the source in the scene's class mix, drifted like the scene, with
    /// the scenario's label noise. The data path a stream scaled to zero runs again to
    /// rebuild its memory when nothing was prepared (`engine::lifecycle`).
    pub fn labelled(&self, scenario: &Scenario, w: u32) -> Dataset {
        self.labelled_with_mix(scenario, w).0
    }

    /// Window `w`'s seed, class mix (uniform unless the scene sets one) and drift.
    fn scene(&self, scenario: &Scenario, w: u32) -> (u64, Vec<f32>, Drift) {
        let scene = scenario.scene(self.index, w);
        let mix = scene
            .and_then(|s| s.class_mix.clone())
            .unwrap_or_else(|| vec![1.0; self.pool.train.classes]);
        let look = scene.map(|s| s.appearance()).unwrap_or_default();
        (self.seed(scenario, w), mix, look)
    }

    /// [`Camera::labelled`] and its class mix (before label noise).
    fn labelled_with_mix(&self, scenario: &Scenario, w: u32) -> (Dataset, Vec<f64>) {
        let (seed, mix, look) = self.scene(scenario, w);
        let classes = self.pool.train.classes;
        let mut train = look.apply(
            &drift::resample_mix(
                &self.pool.train,
                &mix,
                self.spec.train_samples as usize,
                seed ^ 1,
            ),
            seed ^ 2,
        );
        let class_mix = train
            .class_counts()
            .iter()
            .map(|&c| c as f64 / train.len().max(1) as f64)
            .collect();
        if scenario.label_noise > 0.0 {
            let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 3);
            for l in &mut train.labels {
                if rng.random::<f64>() < scenario.label_noise {
                    *l = ((*l as usize + rng.random_range(1..classes)) % classes) as u8;
                }
            }
        }
        (train, class_mix)
    }
}

/// A window's labelled samples as the window uses them: (what retraining may use, three
/// samples in four; held out to measure models, every fourth). [`Stream::close`] absorbs the
/// first followed by the second into the memory.
pub fn split(train: &Dataset) -> (Dataset, Dataset) {
    let (val_idx, fit_idx): (Vec<usize>, Vec<usize>) = (0..train.len()).partition(|j| j % 4 == 3);
    (train.select(&fit_idx), train.select(&val_idx))
}

/// A camera and its learning state across windows.
pub struct Stream<B: Backend> {
    pub camera: Camera,
    /// The model serving at the end of the last window.
    pub model: Model<B>,
    pub memory: ExemplarMemory,
    /// Inference share and configuration at the end of the last window (kept at the start
    /// of the next, until the first decision).
    pub infer: Option<(f64, String)>,
    /// Sampling accuracy factors measured on the last window's object tracks.
    pub sampling: Vec<(u32, f64)>,
    /// What the last window predicted and did.
    pub recent: Recent,
    /// The zoo's id of the model serving, when it is one of the zoo's.
    pub serving_zoo: Option<String>,
    /// Whether the scene changed since the last window ([`Stream::unchanged`], set as the
    /// window opens): what ran and was predicted last window then says nothing about the
    /// scene at hand, and the safe start does not follow it.
    pub scene_moved: bool,
}

/// Standard errors two windows' looks may differ by, component by component, and still be
/// one scene (about 4 keeps the chance that sampling alone splits one scene, over a few
/// dozen components, under 1%).
const LOOK_Z: f64 = 4.0;

/// What a stream's last window predicted and did: where its safe start comes from, and
/// whether its profile can be reused.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Recent {
    /// The serving model's accuracy at the window's start and end, on its validation split
    /// of `val` samples.
    pub start: f64,
    pub end: f64,
    pub val: usize,
    /// What its labelled images looked like.
    pub look: Look,
    /// The profiled predictions offered: (configuration, accuracy after, standard error);
    /// empty when nothing was profiled.
    pub predicted: Vec<(String, f64, f64)>,
    /// The job that finished: its configuration, measured accuracy and whether it deployed.
    pub ran: Option<(String, f64, bool)>,
    /// The retraining configuration that last ran and deployed here: this window's job, or,
    /// when it deployed a zoo model as it is (which trains nothing), the one before.
    #[serde(default)]
    pub retrained: Option<String>,
    /// The highest accuracy the stream's model ended any window with so far: the level
    /// retraining on the scene's labels has shown it can reach (see [`Stream::history_offers`]).
    #[serde(default)]
    pub level: f64,
}

impl Recent {
    /// What [`Recent::retrained`] becomes after a window whose finished job was `job`
    /// (configuration, deployed): that configuration if it retrained and deployed (from a
    /// zoo model too: the configuration is what worked); the `previous` one if it deployed a
    /// zoo model as it is, which trains nothing and so says nothing of which configuration
    /// works here (taken as "what ran", it sent the safe start, and with it the lean
    /// profile's data fraction, to the fallbacks); none otherwise.
    pub fn retrained_after(previous: Option<&str>, job: Option<(&str, bool)>) -> Option<String> {
        match job {
            Some((config, _)) if matches!(zoo::source(config), Some((_, true))) => {
                previous.map(str::to_string)
            }
            // Retrained from a zoo model: the configuration is what worked.
            Some((config, true)) => Some(zoo::own_config(config).to_string()),
            _ => None,
        }
    }

    /// Whether the predictions held: the job that ran reached its prediction within two
    /// standard errors (a window whose job did not finish says nothing against them).
    fn held(&self) -> bool {
        let Some((config, actual, _)) = &self.ran else {
            return true;
        };
        self.predicted
            .iter()
            .find(|(c, _, _)| c == config)
            .is_none_or(|(_, after, error)| (actual - after).abs() <= 2.0 * error)
    }
}

/// The standard error of the difference of two accuracies, each measured on its own number of
/// samples (`(accuracy, samples)`), taken at their mean.
fn difference_error((a, n): (f64, usize), (b, m): (f64, usize)) -> f64 {
    let p = 0.5 * (a + b);
    (p * (1.0 - p) * (1.0 / n.max(1) as f64 + 1.0 / m.max(1) as f64)).sqrt()
}

/// The best of a window's zoo checks when it scores above the serving model (`start`, on
/// the same `val` labels) beyond the measurement's noise (two standard errors of the
/// difference): the model the host swaps in at the labels, and the one a retraining may
/// start from.
fn clearly_best(checks: &[ZooCheck], (start, val): (f64, usize)) -> Option<&ZooCheck> {
    checks
        .iter()
        .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
        .filter(|c| c.accuracy - start > 2.0 * difference_error((c.accuracy, val), (start, val)))
}

/// One stream's window, as it goes: its data, its labelled samples split for training and
/// validation, and the model versions that serve it.
pub struct StreamWindow<B: Backend> {
    /// Shared with the real clock's inference job while it runs.
    pub data: Rc<WindowData>,
    /// What retraining may use: three labelled samples in four.
    pub fit: Dataset,
    /// Held out to measure models: every fourth labelled sample.
    pub val: Dataset,
    /// The serving model's accuracy on `val` at the window start.
    pub start_accuracy: f64,
    /// The models that served, in order (index 0: the one the window started with).
    pub versions: Vec<Model<B>>,
    /// Modelled GPU-seconds of the window start's measurements: the profiler's reference
    /// slice, and the resolution factors.
    pub overhead: (f64, f64),
    /// Each prediction as the estimator made it, for the calibration.
    pub uncorrected: Vec<Raw>,
    /// Modelled GPU-seconds of the profile it skipped, reusing the last window's.
    pub profile_saved: f64,
    /// What its profile offered the policy (predictions with their errors).
    pub offered: Vec<RetrainProfile>,
    /// What its labelled images look like.
    pub look: Look,
    /// The zoo models checked for it, and why the selector found none, if it failed.
    pub zoo_checks: Vec<ZooCheck>,
    pub zoo_error: Option<String>,
    /// A scene change seen on its frames inside the window, and the zoo model swapped in for
    /// it (when, seconds into the window, its id, and the model until it is swapped in).
    pub detection: Option<Detection>,
    pub swap: Option<(f64, String)>,
    pub swap_model: Option<Model<B>>,
    /// The zoo's id of the model serving at the window's start, if it is one of the zoo's.
    pub start_zoo: Option<String>,
    /// The zoo model swapped in as the labels came ([`Stream::serve_labelled`]): it is
    /// `versions[1]` and serves from the golden-label delay (the last window's model,
    /// `versions[0]`, until then).
    pub labelled: Option<String>,
}

impl<B: Backend> StreamWindow<B> {
    /// The model this window's own jobs (and the profile that predicts them) train from: the
    /// one serving at the window's start, even where a zoo model was swapped in at the labels.
    /// Retrained window after window on an exemplar memory of every scene it has seen, that
    /// model knows more than a zoo model chosen on one window's labels. Retraining from the
    /// zoo model instead, a yard camera's profile predicted 2.5 points for the job that gained
    /// 36 from its own model, and the next night began 4 points lower
    /// (fashion-recurring-severe, seed 63); the zoo's effect there went from +1.60 / +0.60 /
    /// -0.29 to +1.06 / +0.38 / +1.53 points, and on fashion-recurring from +1.09 / +1.17 /
    /// +0.13 to +1.48 / +0.87 / +0.70. Retraining from a zoo model stays on offer
    /// (`<config>+zoo:<id>`), and a job deploys only if it beats what serves.
    pub fn start_model(&self) -> &Model<B> {
        &self.versions[0]
    }
}

impl<B: Backend> Stream<B> {
    /// `camera`, starting from `pretrained` with an empty memory of `capacity` exemplars.
    pub fn new(be: &B, camera: Camera, pretrained: &Model<B>, capacity: usize) -> Self {
        let memory = ExemplarMemory::new(capacity, &camera.pool.train.empty_like());
        Self {
            camera,
            model: pretrained.duplicate(be),
            memory,
            infer: None,
            sampling: Vec::new(),
            recent: Recent::default(),
            serving_zoo: Some(PRETRAINED.to_string()),
            scene_moved: false,
        }
    }

    /// The last window's predictions, re-anchored on this window's serving model, when its
    /// scene looks unchanged and they held: each candidate is offered reaching what it was
    /// predicted to reach (at least today's accuracy), with its error (the scene as in
    /// [`Stream::unchanged`]; a 16-sample split alone moves by 0.06). `None` means profile
    /// again.
    pub fn reusable(
        &self,
        plans: &[JobPlan],
        here: (f64, usize, &Look),
        tolerance: f64,
    ) -> Option<Vec<RetrainProfile>> {
        let (r, start) = (&self.recent, here.0);
        if r.predicted.is_empty() || !self.unchanged(here, tolerance) || !r.held() {
            return None;
        }
        plans
            .iter()
            .filter(|plan| plan.config.start_from.is_none())
            .map(|plan| {
                let (_, after, error) = r
                    .predicted
                    .iter()
                    .find(|(c, _, _)| *c == plan.config.name)?;
                Some(RetrainProfile {
                    config: plan.config.clone(),
                    accuracy_after: after.max(start),
                    gpu_seconds: plan.gpu_seconds,
                    accuracy_error: *error,
                    progress: 0.0,
                })
            })
            .collect()
    }

    /// The predictions `estimate = "history"` offers instead of a profile: the safe
    /// configuration ([`Stream::safe_plan`]) alone, predicted to bring the stream back to the
    /// best level its model has ended a window with ([`Recent::level`]: a drift took what
    /// retraining on the new labels gives back, and one job rarely gives it all back: in
    /// docs/fig6.md a camera back to 0.68 of its 0.755 after its drift window still gained
    /// 4.6 served points from the next window's job), never below where it starts (`here`:
    /// this window's start accuracy and validation size), with the error of two measured
    /// accuracies; with no history yet, a gain of the profiler's prior error, with that
    /// error. The other configurations are not offered: offered at no gain, the cheapest
    /// (a tenth of the data) replaced the safe one wherever the thief's search had a share
    /// to fill (0.4 points less at 8 streams of docs/fig6.md). A fixed configuration's
    /// baseline names its configuration with `profile=false` (every one offered at no gain).
    pub fn history_offers(
        &self,
        plans: &[JobPlan],
        (start, val): (f64, usize),
        p: &ProfilerSettings,
    ) -> Vec<RetrainProfile> {
        let r = &self.recent;
        let (after, error) = if r.val > 0 {
            (
                r.level.max(start),
                difference_error((start, val), (r.level, r.val)),
            )
        } else {
            ((start + p.prior_error).min(1.0), p.prior_error)
        };
        self.safe_plan(plans, &p.safe_config)
            .map(|k| RetrainProfile {
                config: plans[k].config.clone(),
                accuracy_after: after,
                gpu_seconds: plans[k].gpu_seconds,
                accuracy_error: error,
                progress: 0.0,
            })
            .into_iter()
            .collect()
    }

    /// Whether the scene looks as the last window left it: its labelled images look alike
    /// ([`Look`]) and the serving model scores on this window's `val` labels (`start`) what
    /// it scored at the last window's end, within `tolerance` plus two standard errors of the
    /// difference of two measured accuracies.
    fn unchanged(&self, (start, val, look): (f64, usize, &Look), tolerance: f64) -> bool {
        let r = &self.recent;
        let noise = difference_error((start, val), (r.end, r.val));
        r.look.same_scene(look, LOOK_Z) && (start - r.end).abs() <= tolerance + 2.0 * noise
    }

    /// The configuration this stream starts with before its profile is in: while the scene
    /// looks unchanged, the retraining configuration that last ran and deployed (history says
    /// it works here), else by the last window's predictions the cheapest that reached half the best
    /// gain; then `named` if offered; else the cheapest that trains on at least half the
    /// window's data; else the cheapest. After a scene change the last window's choice is not
    /// followed: in docs/fig6.md a stream whose 10%-data job deployed in a calm window kept
    /// that data fraction into its drift window (noise and blur: its images looked alike, its
    /// accuracy fell 6 points), so the lean profile tried only 10%-data configurations,
    /// predicted no gain, and the stream went unretrained where the uniform split's 50%-data
    /// job gained 7.5 points.
    pub fn safe_plan(&self, plans: &[JobPlan], named: &str) -> Option<usize> {
        let empty = Recent::default();
        let r = if self.scene_moved {
            &empty
        } else {
            &self.recent
        };
        let own = |i: usize| plans[i].config.start_from.is_none();
        let by_name = |n: &str| {
            plans
                .iter()
                .position(|p| p.config.name == n)
                .filter(|&i| own(i))
        };
        if let Some(i) = r.retrained.as_deref().and_then(by_name) {
            return Some(i);
        }
        let cheapest = |ok: &dyn Fn(usize) -> bool| {
            (0..plans.len())
                .filter(|&i| own(i) && ok(i))
                .min_by(|&a, &b| plans[a].gpu_seconds.total_cmp(&plans[b].gpu_seconds))
        };
        let gain = |i: usize| {
            r.predicted
                .iter()
                .find(|(c, _, _)| *c == plans[i].config.name)
                .map(|(_, after, _)| after - r.start)
        };
        let best = (0..plans.len()).filter_map(gain).fold(0.0, f64::max);
        if best > 0.0
            && let Some(i) = cheapest(&|i| gain(i).is_some_and(|g| g >= 0.5 * best))
        {
            return Some(i);
        }
        by_name(named)
            .or_else(|| cheapest(&|i| plans[i].config.data_fraction >= 0.5))
            .or_else(|| cheapest(&|_| true))
    }

    pub fn id(&self) -> &str {
        &self.camera.spec.name
    }

    /// Start window `w`: draw the camera's data, measure the serving model, get the candidate
    /// configurations, their inference profiles and job plans, and check the models the zoo's
    /// selector short-lists (each offered as a plan to deploy, the best also to retrain from).
    /// Returns the window, the stream's policy input (retraining is offered once profiled)
    /// and its profile task (reused or narrowed per `[profiler]`).
    pub fn open(
        &mut self,
        be: &B,
        s: &Scenario,
        w: u32,
        plugins: &Plugins,
        (cost, zoo): (&CostModel, Option<&Zoo>),
    ) -> Result<(StreamWindow<B>, StreamInput, ProfileTask<B>), EngineError> {
        let data = self.camera.window(s, w);
        // Every 4th labelled sample is held out to measure accuracy (the profiler's and
        // the jobs' validation split); the rest is what retraining may use.
        let (fit, val) = split(&data.train);
        // One pass over the validation split gives both the serving model's accuracy and,
        // on its leading slice, the profiler's reference point.
        let predicted = model::predict_all(be, &mut self.model, &val, 256);
        let own_accuracy = model::hit_rate(&predicted, &val.labels) as f64;
        let look = Look::of(&data.train);
        let tolerance = s.profiler.reuse_tolerance;
        self.scene_moved = !self.unchanged((own_accuracy, val.len(), &look), tolerance);
        let start_zoo = self.serving_zoo.clone();
        // The zoo is checked only when the scene moved since the last window: one as the last
        // window left it is served by the model that window chose. Checked every window, on
        // fashion-4cam-traffic (no scene recurs) the checks (three models on 200 validation
        // crops a stream) were 5 of the 12.5 GPU-seconds charged before the first decision.
        let (zoo_checks, zoo_error) = zoo
            .filter(|_| self.scene_moved)
            .map_or_else(Default::default, |zoo| {
                self.check_zoo(be, zoo, plugins, (w, &look), &val)
            });
        // A scene change seen on the frames inside the window, else one seen at the labels.
        let (detection, swap, swapped) = match zoo.filter(|_| s.zoo.detect) {
            Some(zoo) => match self.watch(zoo, &s.zoo, &data, &look) {
                (None, _) => {
                    let here = (own_accuracy, val.len());
                    (None, None, self.serve_labelled(be, zoo, &zoo_checks, here))
                }
                (seen, swap) => (seen, swap, None),
            },
            None => (None, None, None),
        };
        // What serves from the labels on: the zoo model swapped in then, if any, as its check
        // measured it on `val`. The window's own jobs and their profile go on from the
        // stream's own model (`start_model` says why).
        let (before, swapped_accuracy) = swapped.unzip();
        let start_accuracy = swapped_accuracy.unwrap_or(own_accuracy);
        let state = StreamState {
            id: self.id().to_string(),
            window: w,
            accuracy: start_accuracy,
            class_mix: data.class_mix.clone(),
            samples: fit.len() as u32,
        };
        let configs = plugins.configs(&state)?;
        let slice = profiler::val_slice(&val);
        let serving_on_slice = model::hit_rate(&predicted[..slice.len()], &slice.labels) as f64;
        let slice_cost = cost.infer_seconds(slice.h, slice.w, slice.len());
        let slice_gpu = if s.profiler.enabled { slice_cost } else { 0.0 };
        let (infer, res_gpu) =
            self.infer_profiles(be, cost, &data, (&val, start_accuracy), &configs.infer);
        let memory = self.memory.samples();
        let plans = self.job_plans(
            &configs.retrain,
            (&fit, memory.len(), cost),
            (&zoo_checks, (start_accuracy, val.len())),
            &s.profiler.safe_config,
        );
        let check_gpu = cost.infer_seconds(val.h, val.w, val.len()) * zoo_checks.len() as f64;
        let swap_model = swap.as_ref().and_then(|(_, id)| zoo?.load(be, id));
        let swap = swap.filter(|_| swap_model.is_some());
        let i = self.camera.index as u64;
        let base_model = before.as_ref().unwrap_or(&self.model);
        let mut task = ProfileTask::new(
            be,
            &state.id,
            base_model,
            ProfileData {
                fit: fit.clone(),
                memory: memory.clone(),
                slice,
                serving_on_slice,
                start_accuracy: own_accuracy,
                zoo_checks: zoo_checks.clone(),
                val_len: val.len(),
            },
            plans,
            &s.profiler,
            s.seed ^ (i << 16) ^ ((w as u64) << 4),
        );
        let profile_saved =
            self.shrink_profile(&mut task, s, cost, (start_accuracy, val.len(), &look));
        let labelled = before.is_some().then(|| self.serving_zoo.clone()).flatten();
        let versions = before.into_iter().chain([self.model.duplicate(be)]);
        let window = StreamWindow {
            data: Rc::new(data),
            fit,
            val,
            start_accuracy,
            labelled,
            versions: versions.collect(),
            overhead: (slice_gpu, res_gpu + check_gpu),
            uncorrected: Vec::new(),
            profile_saved,
            offered: Vec::new(),
            look,
            zoo_checks,
            zoo_error,
            detection,
            swap,
            swap_model,
            start_zoo,
        };
        let input = StreamInput {
            state,
            retrain: Vec::new(),
            infer,
            running: None,
        };
        Ok((window, input, task))
    }

    /// Each offered inference configuration's profile: resolution factors measured on the
    /// validation split `val` (where the serving model scores `accuracy`), sampling factors on
    /// the last window's object tracks (this window's in window 0); and the modelled
    /// GPU-seconds the measurement took.
    fn infer_profiles(
        &mut self,
        be: &B,
        cost: &CostModel,
        data: &WindowData,
        (val, accuracy): (&Dataset, f64),
        offered: &[InferConfig],
    ) -> (Vec<InferProfile>, f64) {
        let (res_factor, res_gpu) =
            serve::resolution_factors(be, cost, &mut self.model, val, accuracy, offered);
        if self.sampling.is_empty() {
            self.sampling = serve::sampling_factors(data, &[]);
        }
        let cam = &self.camera.spec;
        let per_second = cam.frame_rate * cam.objects_per_frame as f64;
        let infer = offered
            .iter()
            .map(|c| InferProfile {
                config: c.clone(),
                accuracy_factor: serve::served_factor(&res_factor, &self.sampling, data, c),
                gpu_cost: cost.infer_share(c.resolution as usize, per_second)
                    / c.frame_sampling.max(1) as f64,
            })
            .collect();
        (infer, res_gpu)
    }

    /// A scene that changed before the window began, seen at the labels: when a checked zoo
    /// model scores above the serving model (`here`: its accuracy and the number of labels)
    /// by more than two standard errors of the difference ([`clearly_best`]), it becomes this stream's model for the window
    /// (served from the golden-label delay, before the profile and the policy's first
    /// decision; the window's own jobs still train from the model it replaces). Returns the
    /// model it replaces and the new one's accuracy on the labels, as its check measured it.
    /// Serving a model
    /// made for the scene before, a stream whose scenes alternate started a window at 0.25
    /// while its zoo model scored 0.755 on the window's labels, and the policy's deploy of it
    /// came 30 s later (fashion-recurring, seed 33).
    fn serve_labelled(
        &mut self,
        be: &B,
        zoo: &Zoo,
        checks: &[ZooCheck],
        here: (f64, usize),
    ) -> Option<(Model<B>, f64)> {
        let best = clearly_best(checks, here)?;
        let model = zoo.load(be, &best.model)?;
        self.serving_zoo = Some(best.model.clone());
        Some((std::mem::replace(&mut self.model, model), best.accuracy))
    }

    /// The zoo models the selector short-lists for this stream in window `w` (its scene
    /// looking like `look`), each measured on the validation split `val`. A selector that
    /// fails short-lists nothing (the window goes on without the zoo) and says why.
    fn check_zoo(
        &self,
        be: &B,
        zoo: &Zoo,
        plugins: &Plugins,
        (w, look): (u32, &Look),
        val: &Dataset,
    ) -> (Vec<ZooCheck>, Option<String>) {
        let entries = zoo.entries(self.serving_zoo.as_deref());
        if entries.is_empty() {
            return (Vec::new(), None);
        }
        let request = SelectionRequest {
            stream_id: self.id().to_string(),
            window: w,
            signature: look.mean.clone(),
            entries,
            max_candidates: plugins.zoo_candidates,
        };
        let (ids, error) = match plugins.select(&request) {
            Some(Ok(ids)) => (ids, None),
            Some(Err(e)) => (Vec::new(), Some(e.to_string())),
            None => (Vec::new(), None),
        };
        let checks = ids
            .into_iter()
            .filter_map(|id: String| {
                let mut m = zoo.load(be, &id)?;
                let accuracy = model::evaluate(be, &mut m, val, 256) as f64;
                Some(ZooCheck {
                    model: id.clone(),
                    accuracy,
                })
            })
            .collect();
        (checks, error)
    }

    /// Watch the window's frames for a scene change away from what its labelled images
    /// (`look`) show, and find the zoo model that fits the new scene: the change, the model
    /// and when it is found (seconds into the window).
    ///
    /// The look that flags a change still holds objects from before it, so a model of the
    /// new scene may fit only some seconds later, once the newest objects are all the new
    /// scene's: the search goes on for up to [`MATCH_SECONDS`] after the detection. Matching
    /// at the detection alone found a model for 4 of the 9 changes of
    /// fashion-recurring-severe's three seeds; going on found all 9.
    fn watch(
        &self,
        zoo: &Zoo,
        settings: &ZooSettings,
        data: &WindowData,
        look: &Look,
    ) -> (Option<Detection>, Option<(f64, String)>) {
        let detector = Detector {
            min_objects: settings.detect_objects as usize,
            z: settings.detect_z,
        };
        let mut looks = detector.looks(data, self.camera.spec.frame_rate);
        let Some(d) = detector.detect(&mut looks, look) else {
            return (None, None);
        };
        // From the detection's own look on, each later second's once.
        let swap = std::iter::once((d.at as usize, d.look.clone()))
            .chain(looks.take_while(|(second, _)| (*second as f64) <= d.at + MATCH_SECONDS))
            .find_map(|(second, new)| {
                let id = best_match(zoo, (&new, look), settings.match_z, self.id())?;
                Some((second as f64, id))
            });
        (Some(d), swap)
    }

    /// A plan for each offered configuration, then for the checked zoo models
    /// ([`Stream::zoo_plans`]).
    fn job_plans(
        &self,
        configs: &[RetrainConfig],
        (fit, memory, cost): (&Dataset, usize, &CostModel),
        (checks, here): (&[ZooCheck], (f64, usize)),
        safe_config: &str,
    ) -> Vec<JobPlan> {
        let hidden = self.model.arch().hidden;
        let mut plans: Vec<JobPlan> = configs
            .iter()
            .map(|c| JobPlan::new(c, hidden, fit, memory, cost))
            .collect();
        let zoo = self.zoo_plans(checks, &plans, here, (fit, memory, cost), safe_config);
        plans.extend(zoo);
        plans
    }

    /// Plans for the checked zoo models: each deployed as it is (0 epochs, the check already
    /// paid for, so nearly free), and the safe configuration retrained starting from the best
    /// one when it beats the serving model (`here`: its accuracy and the number of labels)
    /// beyond the checks' noise ([`clearly_best`], the rule of the swap at the labels): a zoo
    /// model within a label or two of the serving one is no better a start.
    fn zoo_plans(
        &self,
        checks: &[ZooCheck],
        plans: &[JobPlan],
        here: (f64, usize),
        (fit, memory, cost): (&Dataset, usize, &CostModel),
        safe_config: &str,
    ) -> Vec<JobPlan> {
        let mut out: Vec<JobPlan> = checks.iter().map(|c| JobPlan::deploy(&c.model)).collect();
        let best = clearly_best(checks, here);
        if let (Some(best), Some(k)) = (best, self.safe_plan(plans, safe_config)) {
            let mut config = plans[k].config.clone();
            config.name = format!("{}+zoo:{}", config.name, best.model);
            config.start_from = Some(best.model.clone());
            out.push(JobPlan::new(
                &config,
                self.model.arch().hidden,
                fit,
                memory,
                cost,
            ));
        }
        out
    }

    /// Skip or narrow the profile per `[profiler]`: the stream's history while its scene
    /// holds and its last prediction held (`estimate`), the last window's predictions when its
    /// scene looks unchanged (`here` = this window's start accuracy, validation size and
    /// look), else with `lean` only the safe configuration's data fraction. Returns the
    /// modelled GPU-seconds saved.
    fn shrink_profile(
        &self,
        task: &mut ProfileTask<B>,
        s: &Scenario,
        cost: &CostModel,
        here: (f64, usize, &Look),
    ) -> f64 {
        let p = &s.profiler;
        // History stands in for the profile while the scene holds and its last prediction
        // held. A stream whose scene moved since a window it was measured in, or whose job
        // missed its prediction (a drift the safe configuration does not bring back: on
        // fashion-8cam-mixed a camera's head-only job reached 0.47 of a predicted 0.79, where
        // an every-layer one reached 0.74), is profiled: with history alone, on
        // fashion-recurring-severe, whose night and fog come back every window or two, the
        // safe job ran one window late each time, 3.1 to 5.0 points below this rule.
        let moved = self.scene_moved && self.recent.val > 0;
        let history = match p.estimate {
            EstimateSource::Profile => false,
            EstimateSource::History => !moved,
            EstimateSource::HistoryOnly => true,
        };
        if p.enabled && history && self.recent.held() {
            let offers = self.history_offers(task.plans(), (here.0, here.1), p);
            return task.reuse(offers, cost);
        }
        let reused = (p.enabled && p.reuse)
            .then(|| self.reusable(task.plans(), here, p.reuse_tolerance))
            .flatten();
        match reused {
            Some(offers) => task.reuse(offers, cost),
            None if p.lean => {
                let safe = self.safe_plan(task.plans(), &p.safe_config);
                let fraction = safe.map(|k| task.plans()[k].config.data_fraction);
                fraction.map_or(0.0, |f| task.narrow(f, cost))
            }
            None => 0.0,
        }
    }

    /// Fold window `w` of a run seeded `seed` in: the model serving at its end (`window`'s last version) serves
    /// on, with the inference allocation `infer` it ended with; its labelled samples join
    /// the memory; the sampling factors of its tracks for the configurations `offered`
    /// stand for the next window's.
    /// Bytes it holds while resident, measured: its model's weights, their gradients and
    /// momentum and its workspace on the backend, and its exemplar memory. (The plugins are
    /// the engine's, shared by every stream, so no stream's.)
    pub fn resident_bytes(&self, be: &B) -> u64 {
        let m = self.model.bytes(be);
        m.weights + m.optimizer + m.workspace + self.memory.samples().bytes()
    }

    pub fn close(
        &mut self,
        mut window: StreamWindow<B>,
        infer: (f64, String),
        offered: &[InferProfile],
        seed: u64,
        w: u32,
    ) {
        self.model = window.versions.pop().expect("at least the starting model");
        self.infer = Some(infer);
        let mut labelled = window.fit;
        labelled.extend(&window.val);
        let i = self.camera.index as u64;
        self.memory
            .absorb(&labelled, w, seed ^ (i << 20) ^ w as u64);
        self.sampling = serve::sampling_factors(&window.data, offered);
    }
}
