//! [`Scenario`]: what a run simulates, read from a TOML file. Every field is documented in
//! `examples/README.md`; errors name the file, the key and its line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::activity::ActivitySpec;
use crate::data::Drift;

/// A scenario: cameras, windows, GPUs and the plugins that decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Retraining windows to run.
    pub windows: u32,
    /// Window length in (virtual) seconds.
    #[serde(default = "defaults::window_seconds")]
    pub window_seconds: f64,
    /// GPUs on the modelled server.
    #[serde(default = "defaults::gpus")]
    pub gpus: u32,
    /// Capacity of one modelled GPU for the virtual clock, in useful GFLOP/s of this CNN's
    /// work. The default makes one camera's inference at full rate and resolution need about
    /// a quarter GPU, as in Ekya's setting.
    #[serde(default)]
    pub gpu_gflops: Option<f64>,
    /// Seconds until the golden model's labels arrive; taken out of the window.
    #[serde(default = "defaults::golden_delay")]
    pub golden_delay_seconds: f64,
    /// Fraction of golden labels replaced by a random wrong class.
    #[serde(default)]
    pub label_noise: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub clock: ClockKind,
    /// Deploy a retrained model only if it scores at least the serving model's accuracy on
    /// the window's validation split; otherwise the old model keeps serving. `false` deploys
    /// every finished job, as Ekya does.
    #[serde(default = "defaults::yes")]
    pub validate_before_deploy: bool,
    /// Real clock only: window seconds per wall-clock second (1 runs windows in real time;
    /// 10 runs a 200 s window in 20 s of wall time, jobs still time-sliced by their shares).
    #[serde(default = "defaults::real_time_scale")]
    pub real_time_scale: f64,
    /// Width of the hidden layer of every camera's starting model.
    #[serde(default = "defaults::hidden")]
    pub hidden: u32,
    /// Output channels of the CNN's three convolutions.
    #[serde(default = "defaults::channels")]
    pub channels: [u32; 3],
    #[serde(default)]
    pub pretrain: Pretrain,
    #[serde(default)]
    pub profiler: ProfilerSettings,
    #[serde(default)]
    pub memory: MemorySettings,
    #[serde(default)]
    pub zoo: ZooSettings,
    #[serde(default)]
    pub lifecycle: LifecycleSettings,
    #[serde(default = "defaults::policy")]
    pub policy: PluginRef,
    #[serde(default = "defaults::config_space")]
    pub config_space: PluginRef,
    #[serde(default = "defaults::estimator")]
    pub estimator: PluginRef,
    /// The policies `tandem compare` runs when given no `--policies`, as specs
    /// (`name:param=value:...`): an example can name the baselines it is meant to be read
    /// against. Empty: thief, fair, no-retrain.
    #[serde(default)]
    pub compare: Vec<String>,
    pub cameras: Vec<CameraSpec>,
}

/// Which clock drives the executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Progress in modelled GPU-seconds: reproducible on any machine, as fast as it allows.
    #[default]
    Virtual,
    /// Wall-clock time-slicing on the actual device.
    Real,
}

/// A plugin chosen by name (built-in or registered), with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

/// A policy named on a command line or form: `name` or `name:key=value:key=value`
/// (values: numbers, true/false, or text).
pub fn parse_policy(spec: &str) -> Result<PluginRef, String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().trim().to_string();
    if name.is_empty() {
        return Err(format!("policy `{spec}`: empty name"));
    }
    let mut params = BTreeMap::new();
    for kv in parts {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!("policy `{spec}`: `{kv}` is not key=value"));
        };
        let value = if let Ok(n) = v.parse::<f64>() {
            toml::Value::Float(n)
        } else if let Ok(b) = v.parse::<bool>() {
            toml::Value::Boolean(b)
        } else {
            toml::Value::String(v.to_string())
        };
        params.insert(k.to_string(), value);
    }
    Ok(PluginRef { name, params })
}

/// The label a policy is shown and recorded under: `name:key=value...`.
pub fn policy_label(p: &PluginRef) -> String {
    let mut s = p.name.clone();
    for (k, v) in &p.params {
        let v = match v {
            toml::Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        s.push_str(&format!(":{k}={v}"));
    }
    s
}

/// How each camera's starting model is pretrained on undrifted data (cached on disk).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pretrain {
    pub samples: u32,
    pub epochs: u32,
}

impl Default for Pretrain {
    fn default() -> Self {
        Self {
            samples: 12_000,
            epochs: 2,
        }
    }
}

/// The micro-profiler's budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfilerSettings {
    /// Profile at all. Off, nothing is trained or charged before the first decision and the
    /// policy is offered every configuration with no predicted gain and its modelled cost:
    /// the honest setting for a policy that never reads predictions (a fixed configuration,
    /// no retraining). A policy spec's `profile=false` sets it for that policy alone.
    pub enabled: bool,
    /// Epochs each candidate configuration is trained for.
    pub epochs: u32,
    /// Fraction of the window's labelled data used.
    pub sample_fraction: f64,
    /// How a configuration's epochs map onto the profile's curve.
    pub axis: ProfileAxis,
    /// Correct each prediction by the mean error of the run's earlier jobs of the same kind
    /// (see [`super::calibrate`]). Off reproduces the estimator's raw predictions.
    pub calibrate: bool,
    /// When the policy first decides: after the profile (`before`, Ekya's), or at the
    /// golden-label delay with every stream retraining its safe configuration on a uniform
    /// split while the profile runs beside, the policy re-planning once it is in (`beside`).
    pub timing: ProfileTiming,
    /// `beside`: the fraction of the GPUs the profile runs on next to the jobs.
    pub share: f64,
    /// Standard error of a prediction before the run has measured any (used when the
    /// estimator states none); the calibration then learns it from finished jobs.
    pub prior_error: f64,
    /// Skip a stream's profile when its scene looks unchanged (its serving model scores
    /// within `reuse_tolerance`, plus the measurement's own noise, of where the last window
    /// left it) and the last profile's predictions held; the last predictions are offered
    /// again, re-anchored.
    pub reuse: bool,
    pub reuse_tolerance: f64,
    /// Profile only the groups that train on the safe configuration's data fraction (a
    /// third of Ekya's grid); the other candidates are offered with no gain predicted.
    pub lean: bool,
    /// The configuration a stream starts with at the golden-label delay when its history
    /// names none (`beside`); empty: the cheapest that trains on at least half the window's
    /// data.
    pub safe_config: String,
    /// Where the retraining predictions come from (policy spec host option `estimate=`).
    pub estimate: EstimateSource,
}

/// Where a window's retraining predictions come from (see [`ProfilerSettings::estimate`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstimateSource {
    /// Every stream's micro-profile, every window (Ekya's), kept cheap by `lean` and `reuse`.
    Profile,
    /// The default: the stream's own history stands in for the profile
    /// ([`super::stream::Stream::history_offers`]: its safe configuration, predicted to bring
    /// it back to the best level its model has reached), and a stream is profiled only when
    /// its scene moved since the last window or its last job missed that prediction. On
    /// Ekya's Fig. 6 setting even knowing each stream's best configuration in hindsight is
    /// worth 0.2 to 0.6 points over the uniform split, less than the profile costs
    /// (docs/fig6.md); where a returning scene needs another configuration
    /// (fashion-recurring-severe), the profile is what finds it.
    #[default]
    History,
    /// History alone: a stream is profiled only after its job missed its prediction, not when
    /// its scene moved. Level with the uniform split on Fig. 6, 3.1 to 5.0 points below
    /// `history` on fashion-recurring-severe (docs/results.md).
    #[serde(rename = "history-only")]
    HistoryOnly,
}

/// When the policy first decides in a window (see [`ProfilerSettings::timing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileTiming {
    /// Profile first, decide when the profile is in (Ekya). The default: with the profile
    /// kept cheap (`lean`, `reuse`) it measured at or above `beside` on every point of
    /// docs/fig6.md.
    #[default]
    Before,
    /// Start the safe configurations at once, profile beside, re-plan when profiled.
    Beside,
}

/// How a retraining configuration's length maps onto the micro-profile's accuracy curve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileAxis {
    /// A job's epochs are the profile's epochs (Ekya): data size changes cost, not accuracy.
    #[default]
    Epochs,
    /// By samples seen: a job of E epochs over D samples sits at E·D/S profile epochs of
    /// an S-sample profile (more data, more steps; far extrapolation).
    Samples,
}

impl ProfilerSettings {
    /// Semantic checks; the error is (key path, reason).
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: &str| Err((key.to_string(), reason.to_string()));
        if !(self.share > 0.0 && self.share < 1.0) {
            return bad(
                "profiler.share",
                "must be in (0, 1): a fraction of the GPUs",
            );
        }
        if !(self.prior_error > 0.0 && self.prior_error <= 1.0) {
            return bad("profiler.prior_error", "must be in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.reuse_tolerance) {
            return bad("profiler.reuse_tolerance", "must be in [0, 1]");
        }
        if !(self.sample_fraction > 0.0 && self.sample_fraction <= 1.0) {
            return bad("profiler.sample_fraction", "must be in (0, 1]");
        }
        Ok(())
    }
}

impl Default for ProfilerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            epochs: 5,
            sample_fraction: 0.1,
            axis: ProfileAxis::default(),
            calibrate: true,
            timing: ProfileTiming::default(),
            share: 0.25,
            prior_error: 0.08,
            reuse: true,
            reuse_tolerance: 0.02,
            lean: true,
            safe_config: String::new(),
            estimate: EstimateSource::default(),
        }
    }
}

/// The exemplar memory each stream keeps of past windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySettings {
    /// Samples kept, balanced over classes.
    pub capacity: u32,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self { capacity: 400 }
    }
}

/// The model zoo: models retrained for earlier scenes, shared by every stream, checked and
/// offered again when a scene comes back (see [`super::zoo`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZooSettings {
    /// Keep and offer zoo models at all. A policy spec's `zoo=false` turns it off for that
    /// policy alone.
    pub enabled: bool,
    /// `keep`: start from the zoo the data dir holds; `fresh`: start empty (with only the
    /// pretrained model), so runs compared with and without it start alike.
    pub start: ZooStart,
    /// Bounds: models kept, and their weights' total size in MiB.
    pub max_models: u32,
    pub max_mib: f64,
    /// The selector plugin that short-lists models to check.
    pub selector: PluginRef,
    /// Models checked per stream and window, at most.
    pub max_candidates: u32,
    /// Watch each stream's frames for a scene change inside the window and swap in the
    /// stream's own zoo model that fits the new scene (see [`super::detect`]).
    pub detect: bool,
    /// Objects the detector measures a look over, at least; standard errors a component of
    /// it must move by to flag a change; and how close (in standard errors of the new look) a
    /// zoo model's signature must be to be swapped in.
    pub detect_objects: u32,
    pub detect_z: f64,
    pub match_z: f64,
}

/// Serverless streams (see [`super::phases`]): which lifecycle policy scales idle streams
/// to zero and pre-warms them, and the server's memory budget. In force when a camera has an
/// activity schedule or a budget is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSettings {
    /// The lifecycle plugin (world `lifecycle`); a policy spec's `lifecycle=NAME` overrides
    /// it for that policy alone.
    pub policy: PluginRef,
    /// Bytes the resident streams may hold together, in MiB (none: no limit).
    pub memory_budget_mib: Option<f64>,
    /// A scale-down leaves load-ready artifacts (weights, memory and pending labels as raw
    /// tensors, plugins precompiled); `false`: a cold start rebuilds everything.
    pub preprocess: bool,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            policy: PluginRef {
                name: "always-warm".into(),
                params: Default::default(),
            },
            memory_budget_mib: None,
            preprocess: true,
        }
    }
}

impl LifecycleSettings {
    /// The budget in bytes.
    pub fn budget_bytes(&self) -> Option<u64> {
        self.memory_budget_mib.map(|m| (m * 1024.0 * 1024.0) as u64)
    }
}

/// Which zoo a run starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZooStart {
    #[default]
    Keep,
    Fresh,
}

impl ZooSettings {
    /// Semantic checks; the error is (key path, reason).
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: &str| Err((key.to_string(), reason.to_string()));
        if self.max_models == 0 {
            return bad(
                "zoo.max_models",
                "must be at least 1 (the pretrained model)",
            );
        }
        if !(self.max_mib.is_finite() && self.max_mib > 0.0) {
            return bad("zoo.max_mib", "must be a positive size in MiB");
        }
        if self.max_candidates == 0 {
            return bad("zoo.max_candidates", "must be at least 1");
        }
        if self.detect_objects < 8 {
            return bad(
                "zoo.detect_objects",
                "must be at least 8 (a look needs a sample)",
            );
        }
        for (key, z) in [
            ("zoo.detect_z", self.detect_z),
            ("zoo.match_z", self.match_z),
        ] {
            if !(z.is_finite() && z > 0.0) {
                return bad(key, "must be a positive number of standard errors");
            }
        }
        Ok(())
    }
}

impl Default for ZooSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            start: ZooStart::default(),
            // ELITE found 20-30 models the sweet spot; one small CNN's weights are ~0.2 MiB.
            max_models: 24,
            max_mib: 64.0,
            selector: PluginRef {
                name: "nearest".into(),
                params: Default::default(),
            },
            max_candidates: 3,
            detect: true,
            detect_objects: 64,
            detect_z: 6.0,
            match_z: 4.0,
        }
    }
}

/// Where a camera's images come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    FashionMnist,
    Synthetic,
    /// Ekya's samplelist format: a CSV of `idx,class,x0,y0,x1,y1` rows and the frame images.
    Samplelist,
}

/// One camera stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    pub name: String,
    pub source: SourceKind,
    /// For `samplelist`: the CSV file (relative to the scenario file).
    #[serde(default)]
    pub samplelist: Option<PathBuf>,
    /// Frames per second.
    #[serde(default = "defaults::frame_rate")]
    pub frame_rate: f64,
    /// Objects (crops to classify) per frame.
    #[serde(default = "defaults::objects")]
    pub objects_per_frame: u32,
    /// Mean number of consecutive frames an object stays in view (objects persist, so a
    /// skipped frame's reused result is often still right).
    #[serde(default = "defaults::dwell")]
    pub object_dwell_frames: f64,
    /// Labelled samples the golden model provides per window.
    #[serde(default = "defaults::train_samples")]
    pub train_samples: u32,
    /// Drift schedule: each point applies from its window on, until the next point.
    #[serde(default)]
    pub drift: Vec<DriftPoint>,
    /// When it sends frames (none: always).
    #[serde(default)]
    pub activity: Option<ActivitySpec>,
}

/// The scene from `window` on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftPoint {
    pub window: u32,
    /// Seconds into `window` at which the scene changes (0: at its start). A change inside a
    /// window reaches the frames from then on; the window's labels were drawn before it.
    #[serde(default)]
    pub at_seconds: f64,
    /// Relative frequency of each class (default: uniform).
    #[serde(default)]
    pub class_mix: Option<Vec<f32>>,
    /// Illumination multiplier (1 = unchanged).
    #[serde(default = "one")]
    pub brightness: f32,
    /// Contrast around mid-grey (1 = unchanged).
    #[serde(default = "one")]
    pub contrast: f32,
    /// Gaussian sensor noise (standard deviation, pixel values in [0, 1]).
    #[serde(default)]
    pub noise: f32,
    /// Gaussian blur sigma in pixels.
    #[serde(default)]
    pub blur: f32,
    /// Random rotation within ± this many degrees.
    #[serde(default)]
    pub rotation: f32,
    /// Zoom factor (1 = unchanged).
    #[serde(default = "one")]
    pub scale: f32,
}

fn one() -> f32 {
    1.0
}

impl DriftPoint {
    /// Semantic checks against the previous point's (window, at_seconds); the error is
    /// (field, reason).
    fn check(
        &self,
        last: Option<(u32, f64)>,
        window_seconds: f64,
    ) -> Result<(), (&'static str, String)> {
        if last.is_some_and(|(w, at)| (self.window, self.at_seconds) <= (w, at)) {
            return Err((
                "window",
                "drift points must be in increasing order of window and at_seconds".into(),
            ));
        }
        if !(self.at_seconds >= 0.0 && self.at_seconds < window_seconds) {
            return Err((
                "at_seconds",
                format!(
                    "{} is not a time inside the window (0 to {window_seconds} s)",
                    self.at_seconds
                ),
            ));
        }
        if let Some(mix) = &self.class_mix
            && (mix.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || mix.iter().sum::<f32>() <= 0.0)
        {
            return Err((
                "class_mix",
                "weights must be non-negative with a positive sum".into(),
            ));
        }
        for (field, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("noise", self.noise),
            ("blur", self.blur),
            ("rotation", self.rotation),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err((field, format!("{v} is not a finite number >= 0")));
            }
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err((
                "scale",
                format!("{} is not a positive zoom factor", self.scale),
            ));
        }
        Ok(())
    }

    /// The appearance part of this scene.
    pub fn appearance(&self) -> Drift {
        Drift {
            brightness: self.brightness,
            contrast: self.contrast,
            noise: self.noise,
            blur: self.blur,
            rotation: self.rotation,
            scale: self.scale,
        }
    }
}

mod defaults {
    use super::PluginRef;
    pub fn window_seconds() -> f64 {
        200.0
    }
    pub fn gpus() -> u32 {
        1
    }
    pub fn golden_delay() -> f64 {
        2.0
    }
    pub fn real_time_scale() -> f64 {
        1.0
    }
    pub fn hidden() -> u32 {
        128
    }
    pub fn channels() -> [u32; 3] {
        [16, 32, 64]
    }
    pub fn yes() -> bool {
        true
    }
    pub fn frame_rate() -> f64 {
        30.0
    }
    pub fn objects() -> u32 {
        4
    }
    pub fn dwell() -> f64 {
        4.0
    }
    pub fn train_samples() -> u32 {
        300
    }
    fn plugin(name: &str) -> PluginRef {
        PluginRef {
            name: name.into(),
            params: Default::default(),
        }
    }
    pub fn policy() -> PluginRef {
        plugin("thief")
    }
    pub fn config_space() -> PluginRef {
        plugin("ekya-space")
    }
    pub fn estimator() -> PluginRef {
        plugin("optimus")
    }
}

/// The most GPUs a scenario (or a replay) may model: far above any edge server, and small
/// enough that per-GPU bookkeeping stays cheap.
pub const MAX_GPUS: u32 = 1024;

/// A scenario file that cannot be used. Says which file, key and line.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read (the reason is in the message once, not repeated as a source).
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: `{key}`: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
}

impl Scenario {
    /// Read and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io {
            path: path.to_owned(),
            reason: match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    "not a text file (a scenario is TOML, in UTF-8)".to_string()
                }
                _ => e.to_string(),
            },
        })?;
        let mut s = Scenario::parse(&text, path)?;
        // Samplelist paths are relative to the scenario file and stay inside its folder: a
        // scenario cannot make the host open files elsewhere.
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, cam) in s.cameras.iter_mut().enumerate() {
            let Some(p) = cam.samplelist.as_mut() else {
                continue;
            };
            if !crate::data::inside_folder(p) {
                let key = format!("cameras[{i}].samplelist");
                return Err(ScenarioError::Invalid {
                    path: path.to_owned(),
                    line: key_line(&text, &key).unwrap_or(0),
                    key,
                    reason: format!(
                        "`{}` is outside the scenario's folder (name a file in it or below it)",
                        p.display()
                    ),
                });
            }
            *p = base.join(&*p);
        }
        Ok(s)
    }

    /// Parse and check scenario text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            let mut message = e.message().trim().to_string();
            // Flattened tables lose the key in serde's message: quote the line itself.
            if let Some(src) = text
                .lines()
                .nth(line.wrapping_sub(1))
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                message.push_str(&format!(" (in `{src}`)"));
            }
            ScenarioError::Syntax {
                path: path.to_owned(),
                line,
                message,
            }
        })?;
        if let Err((key, reason)) = scenario.check() {
            let line = key_line(text, &key).unwrap_or(0);
            return Err(ScenarioError::Invalid {
                path: path.to_owned(),
                line,
                key,
                reason,
            });
        }
        Ok(scenario)
    }

    /// Whether streams come and go: a camera has an activity schedule, or a memory budget
    /// is set (see [`LifecycleSettings`]).
    pub fn serverless(&self) -> bool {
        self.lifecycle.memory_budget_mib.is_some()
            || self.cameras.iter().any(|c| c.activity.is_some())
    }

    /// Semantic checks; the error is (key path, reason).
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, reason: &str| Err((key.to_string(), reason.to_string()));
        if self.windows == 0 {
            return bad("windows", "must be at least 1");
        }
        for spec in &self.compare {
            parse_policy(spec).map_err(|e| ("compare".to_string(), e))?;
        }
        if !(self.window_seconds.is_finite() && self.window_seconds > 0.0) {
            return bad("window_seconds", "must be a positive number of seconds");
        }
        if !(1..=MAX_GPUS).contains(&self.gpus) {
            return bad("gpus", &format!("must be from 1 to {MAX_GPUS}"));
        }
        if let Some(g) = self.gpu_gflops.filter(|g| !(g.is_finite() && *g > 0.0)) {
            return bad("gpu_gflops", &format!("{g} is not a positive capacity"));
        }
        if !(0.0..self.window_seconds).contains(&self.golden_delay_seconds) {
            return bad(
                "golden_delay_seconds",
                "must be at least 0 and shorter than the window",
            );
        }
        if !(0.0..=1.0).contains(&self.label_noise) {
            return bad("label_noise", "must be a fraction between 0 and 1");
        }
        if !(self.real_time_scale.is_finite() && self.real_time_scale > 0.0) {
            return bad(
                "real_time_scale",
                "must be a positive number of window seconds per wall second",
            );
        }
        if self.hidden == 0 {
            return bad("hidden", "must be at least 1");
        }
        if self.channels.contains(&0) {
            return bad("channels", "every convolution needs at least 1 channel");
        }
        self.profiler.check()?;
        self.zoo.check()?;
        if let Some(m) = self.lifecycle.memory_budget_mib
            && !(m.is_finite() && m > 0.0)
        {
            return bad(
                "lifecycle.memory_budget_mib",
                &format!("{m} is not a positive size in MiB"),
            );
        }
        if self.serverless() && self.clock == ClockKind::Real {
            return bad(
                "clock",
                "activity schedules and memory budgets run on the virtual clock (cold starts are measured on this machine and charged to it)",
            );
        }
        if self.cameras.is_empty() {
            return bad("cameras", "at least one camera is needed");
        }
        let mut names = std::collections::HashSet::new();
        for (i, cam) in self.cameras.iter().enumerate() {
            let key = |field: &str| format!("cameras[{i}].{field}");
            if !names.insert(cam.name.as_str()) {
                return Err((
                    key("name"),
                    format!("camera name `{}` is used twice", cam.name),
                ));
            }
            if !(cam.frame_rate.is_finite() && cam.frame_rate > 0.0) {
                return Err((
                    key("frame_rate"),
                    "must be a positive number of frames per second".into(),
                ));
            }
            if cam.objects_per_frame == 0 {
                return Err((key("objects_per_frame"), "must be at least 1".into()));
            }
            if !(cam.object_dwell_frames >= 1.0) {
                return Err((
                    key("object_dwell_frames"),
                    "must be at least 1 frame".into(),
                ));
            }
            if cam.train_samples < 8 {
                return Err((key("train_samples"), "must be at least 8".into()));
            }
            if cam.source == SourceKind::Samplelist && cam.samplelist.is_none() {
                return Err((
                    key("samplelist"),
                    "a samplelist camera needs the CSV file's path".into(),
                ));
            }
            if let Some(a) = &cam.activity {
                a.check()
                    .map_err(|(field, reason)| (key(&format!("activity.{field}")), reason))?;
            }
            let mut last = None;
            for (j, d) in cam.drift.iter().enumerate() {
                let dkey = |field: &str| format!("cameras[{i}].drift[{j}].{field}");
                d.check(last, self.window_seconds)
                    .map_err(|(field, reason)| (dkey(field), reason))?;
                last = Some((d.window, d.at_seconds));
            }
        }
        Ok(())
    }

    /// The scene of camera `cam` at the start of window `w`: the last drift point before
    /// `w`, or at its start.
    pub fn scene(&self, cam: usize, w: u32) -> Option<&DriftPoint> {
        self.cameras[cam]
            .drift
            .iter()
            .rev()
            .find(|d| d.window < w || (d.window == w && d.at_seconds == 0.0))
    }

    /// The scene camera `cam` changes to during window `w`, if it does (the first drift
    /// point of `w` with `at_seconds` past its start).
    pub fn mid_scene(&self, cam: usize, w: u32) -> Option<&DriftPoint> {
        self.cameras[cam]
            .drift
            .iter()
            .find(|d| d.window == w && d.at_seconds > 0.0)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line where a key path like `cameras[2].drift[0].window` is written, by walking the
/// parsed document's spans. Falls back to the deepest enclosing item found.
pub(crate) fn key_line(text: &str, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span: Range<usize> = 0..0;
    let mut table = Some(doc.get_ref());
    let mut value: Option<&DeValue> = None;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let t = match (table, value) {
            (Some(t), _) => t,
            (None, Some(DeValue::Table(t))) => t,
            _ => break,
        };
        let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        span = k.span();
        value = Some(v.get_ref());
        table = None;
        if let (Some(i), DeValue::Array(items)) = (index, v.get_ref()) {
            let Some(item) = items.get(i) else { break };
            span = item.span();
            value = Some(item.get_ref());
        }
    }
    (span.end > 0).then(|| line_of(text, span.start))
}
