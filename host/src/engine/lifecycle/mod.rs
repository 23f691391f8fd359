//! Scale to zero and back: what a stream holds resident, and three ways to bring it back.
//!
//! A warm stream's [`Resident`] set is its model (weights, their gradients and momentum, and
//! the workspace of the batch shape last run, all on the backend), its exemplar memory, the
//! labelled samples that arrived while it was cold and are not yet used ([`Labelled`]), and
//! its plugins ([`StreamPlugin`]: compiled components of its own, ready to instantiate;
//! tandem gives every call a fresh instance, so what an instance holds is its linear memory,
//! counted at its peak). [`Resident::bytes`] measures it.
//!
//! [`Lifecycle::scale_down`] releases all of it, leaving only files in the stream's
//! directory ([`artifacts`]): always the model as safetensors and a recipe of where every
//! labelled sample came from; with preprocessing, load-ready artifacts too. A [`Cold`] stream
//! holds nothing but the name of that directory; labels arriving for it go to disk
//! ([`Lifecycle::receive`]). Back from zero:
//! - **cold, nothing prepared** (the slow path, the reference): the weights decoded from
//!   safetensors; the camera's source images decoded again and the data path re-run for every
//!   window the memory and the pending labels came from (draw, drift, label:
//!   [`Camera::labelled`](super::stream::Camera::labelled)), checked against the checksums the
//!   recipe kept; every plugin compiled from its component;
//! - **cold from preprocessed artifacts** ([`Lifecycle::wake`] when a manifest exists): raw
//!   tensors read into the vectors that are used, each checked by its CRC-32; plugins mapped in
//!   from their compiled code. A missing or corrupt artifact falls back to the slow path for
//!   its step alone, with a warning naming the file;
//! - **pre-warmed** ([`Lifecycle::prewarm`] ahead of predicted activity, then
//!   [`Lifecycle::wake_prewarmed`]): everything already in host memory, only the upload to the
//!   device, the workspace, the plugins' first instances and the first inference left.
//!
//! Each wake-up is a [`ColdStart`]: its steps ([`Step`]) timed apart on the real clock, the
//! first inference a real forward pass on the first frames' objects.
//!
//! Backends. On the CPU backend "upload" is a copy into the model's vectors and the workspace
//! is host memory; nothing compiles kernels. On wgpu the upload and the workspace are device
//! buffers, and the kernel pipelines are compiled once per process on first use
//! (`GpuContext`'s cache, shared by every stream): a stream scaling to zero does not release
//! them, so a wake-up in a running process finds them ready; a new process pays them at its
//! first inference (`tandem bench coldstart --backend wgpu` reports that apart). The exemplar
//! memory and pending labels live in host memory on both backends (batches are gathered on the
//! host and written to the device per step). Measured figures: `docs/results.md`.

mod artifacts;
pub mod measure;
mod scale;
mod wake;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use artifacts::{Manifest, Recipe};

use super::memory::ExemplarMemory;
use super::scenario::Scenario;
use super::stream::{Camera, SourcePool};
use crate::compute::Backend;
use crate::data::{DataError, Dataset};
use crate::model::weights::WeightsError;
use crate::model::{Model, Shape};
use crate::plugin::{Plugin, PluginError, PluginHost};

/// What can stop a scale-down or a wake-up. A corrupt or missing load-ready artifact is not
/// one of them (its step falls back to the slow path with a warning); these are.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The stream's model file cannot be read: nothing else holds its weights.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The camera's source images cannot be decoded again (the slow path).
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Neither the recipe nor a manifest says what the stream held.
    #[error("{path}: {reason}")]
    Recipe { path: PathBuf, reason: String },
    /// A wake-up asked to re-run the data path of a camera the scenario does not have.
    #[error("camera {camera}: the scenario has {cameras} cameras")]
    NoCamera { camera: usize, cameras: usize },
}

/// Labelled samples that arrived for a stream, with the window they came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub window: u32,
    /// The window's golden-labelled samples as the camera delivers them
    /// ([`Camera::labelled`]): the slow path draws them again from that.
    pub samples: Dataset,
}

/// A plugin a stream keeps loaded for itself.
#[derive(Clone)]
pub struct StreamPlugin {
    /// What the stream uses it for (`policy`, `config-space`, `estimator`, ...).
    pub role: String,
    /// The component file it was compiled from (the slow path compiles it again).
    pub component: PathBuf,
    pub plugin: Arc<Plugin>,
}

impl StreamPlugin {
    /// `component` compiled into a plugin of the stream's own.
    pub fn compile(
        host: &PluginHost,
        role: &str,
        component: &Path,
    ) -> Result<Self, LifecycleError> {
        let bytes = std::fs::read(component).map_err(|source| LifecycleError::Io {
            path: component.to_owned(),
            source,
        })?;
        let plugin = host.compile_private(&component.display().to_string(), &bytes)?;
        Ok(Self {
            role: role.to_string(),
            component: component.to_owned(),
            plugin: Arc::new(plugin),
        })
    }
}

/// What a warm stream holds.
pub struct Resident<B: Backend> {
    pub model: Model<B>,
    pub memory: ExemplarMemory,
    /// Labelled samples that arrived while it was cold, in arrival order, until the stream
    /// uses them (whatever is left here at the next scale-down is kept again).
    pub pending: Vec<Labelled>,
    pub plugins: Vec<StreamPlugin>,
}

/// Bytes a stream holds, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Bytes {
    /// Weights and biases (on the backend; in host memory when pre-warmed).
    pub weights: u64,
    /// Their gradients and momentum (on the backend).
    pub optimizer: u64,
    /// The model's activations and gradients for its last batch shape (on the backend).
    pub workspace: u64,
    /// Exemplar memory tensors (host memory).
    pub memory: u64,
    /// Pending labelled samples (host memory).
    pub pending: u64,
    /// The plugins' instances: the largest linear memory each has reached.
    pub plugins: u64,
}

impl Bytes {
    pub fn total(&self) -> u64 {
        self.weights + self.optimizer + self.workspace + self.memory + self.pending + self.plugins
    }
}

fn plugin_bytes(plugins: &[StreamPlugin]) -> u64 {
    plugins
        .iter()
        .map(|p| p.plugin.peak_memory_bytes() as u64)
        .sum()
}

impl<B: Backend> Resident<B> {
    /// What it holds, measured: the model's buffers on the backend by their lengths, the
    /// memory and pending tensors, the plugins' linear memory.
    pub fn bytes(&self, be: &B) -> Bytes {
        let m = self.model.bytes(be);
        Bytes {
            weights: m.weights,
            optimizer: m.optimizer,
            workspace: m.workspace,
            memory: self.memory.samples().bytes(),
            pending: self.pending.iter().map(|p| p.samples.bytes()).sum(),
            plugins: plugin_bytes(&self.plugins),
        }
    }
}

/// A stream scaled to zero: the name of its directory and nothing else.
#[derive(Debug, Clone)]
pub struct Cold {
    id: String,
    dir: PathBuf,
    /// Warnings from while it was cold (reported by its next wake-up).
    warnings: Vec<String>,
}

impl Cold {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether its load-ready artifacts are there (a manifest; each file is checked only
    /// when it is read).
    pub fn preprocessed(&self) -> bool {
        self.dir.join(artifacts::MANIFEST).exists()
    }

    /// What it holds in memory: no tensors, no plugins (its labels arriving while cold went
    /// to disk).
    pub fn bytes(&self) -> Bytes {
        Bytes::default()
    }

    /// Bytes of its files.
    pub fn disk_bytes(&self) -> u64 {
        artifacts::disk_bytes(&self.dir)
    }
}

/// A stream brought into host memory ahead of its activity: what is left is the upload to
/// the device, the workspace, the plugins' first instances and the first inference.
pub struct Prewarmed {
    cold: Cold,
    arch: crate::model::Arch,
    /// The flat parameter layout (`model::weights::to_flat`).
    weights: Vec<f32>,
    memory: ExemplarMemory,
    pending: Vec<Labelled>,
    plugins: Vec<StreamPlugin>,
    /// How loading it went (off the critical path of its wake-up).
    pub load: ColdStart,
}

impl Prewarmed {
    pub fn id(&self) -> &str {
        self.cold.id()
    }

    /// What it holds in host memory (nothing on the backend yet).
    pub fn bytes(&self) -> Bytes {
        Bytes {
            weights: 4 * self.weights.len() as u64,
            memory: self.memory.samples().bytes(),
            pending: self.pending.iter().map(|p| p.samples.bytes()).sum(),
            plugins: plugin_bytes(&self.plugins),
            ..Bytes::default()
        }
    }

    /// Give up on it: back to cold (its files are still there).
    pub fn release(self) -> Cold {
        self.cold
    }
}

/// One step of a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Reading the recipe or the manifest.
    Manifest,
    /// Reading (decoding, on the slow path) and uploading the weights.
    Weights,
    /// Allocating the model's workspace for the first batch.
    Workspace,
    /// Decoding the camera's source images again (slow path only).
    Source,
    /// The exemplar memory: re-run from its windows, or read.
    Memory,
    /// Labels that arrived while cold: re-run from their windows, or read.
    Pending,
    /// Plugins compiled, or mapped in from compiled code, and instantiated.
    Plugins,
    /// A real forward pass on the first frames' objects.
    FirstInference,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Manifest,
        Step::Weights,
        Step::Workspace,
        Step::Source,
        Step::Memory,
        Step::Pending,
        Step::Plugins,
        Step::FirstInference,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Manifest => "manifest",
            Step::Weights => "weights",
            Step::Workspace => "workspace",
            Step::Source => "source",
            Step::Memory => "memory",
            Step::Pending => "pending",
            Step::Plugins => "plugins",
            Step::FirstInference => "first_inference",
        }
    }
}

/// Which way a stream came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakePath {
    /// Cold, nothing prepared (or nothing usable).
    Slow,
    /// Cold, from the load-ready artifacts (some steps may have fallen back).
    Preprocessed,
    /// From host memory.
    Prewarmed,
}

/// How a wake-up (or a pre-warm's load) went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColdStart {
    pub path: WakePath,
    /// Milliseconds per step, in the order they ran (a step that ran in two parts, such as
    /// reading then uploading the weights, is summed).
    pub steps: Vec<(Step, f64)>,
    /// Steps that fell back to the slow path.
    pub fallbacks: Vec<Step>,
    /// Why, naming the file.
    pub warnings: Vec<String>,
    /// The first inference's predictions, one per object of the first batch.
    pub predictions: Vec<u8>,
}

impl ColdStart {
    fn new(path: WakePath) -> Self {
        Self {
            path,
            steps: Vec::new(),
            fallbacks: Vec::new(),
            warnings: Vec::new(),
            predictions: Vec::new(),
        }
    }

    /// Time to first inference: every step, in milliseconds.
    pub fn total_ms(&self) -> f64 {
        self.steps.iter().fold(0.0, |sum, (_, ms)| sum + ms)
    }

    /// One step's milliseconds (0 when it did not run).
    pub fn ms(&self, step: Step) -> f64 {
        // A fold from +0: an empty f64 sum is -0.
        self.steps
            .iter()
            .filter(|(s, _)| *s == step)
            .fold(0.0, |sum, (_, ms)| sum + ms)
    }

    /// Run `f` as (part of) `step`, timed.
    fn time<T>(&mut self, step: Step, f: impl FnOnce() -> T) -> T {
        let t = std::time::Instant::now();
        let out = f();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match self.steps.iter_mut().find(|(s, _)| *s == step) {
            Some((_, total)) => *total += ms,
            None => self.steps.push((step, ms)),
        }
        out
    }

    /// `step` falls back to the slow path because of `why`.
    fn fall_back(&mut self, step: Step, why: String) {
        if !self.fallbacks.contains(&step) {
            self.fallbacks.push(step);
        }
        self.warnings
            .push(format!("{}: slow path instead: {why}", step.name()));
    }
}

/// The data path that produced a stream's labelled samples, run again on the slow path:
/// camera `camera` of `scenario`, its source images decoded afresh.
#[derive(Clone, Copy)]
pub struct Replay<'a> {
    pub scenario: &'a Scenario,
    pub camera: usize,
}

impl Replay<'_> {
    /// The camera with its source decoded again (Fashion-MNIST's IDX files inflated and
    /// normalised, the synthetic generator run, a samplelist's frames decoded and cropped).
    fn decode(&self) -> Result<Camera, LifecycleError> {
        let s = self.scenario;
        let spec = s.cameras.get(self.camera).ok_or(LifecycleError::NoCamera {
            camera: self.camera,
            cameras: s.cameras.len(),
        })?;
        Ok(Camera {
            index: self.camera,
            spec: spec.clone(),
            pool: SourcePool::for_camera(spec, s.seed)?,
        })
    }
}

/// The first frames' objects a waking stream classifies: its first inference.
#[derive(Clone, Copy)]
pub struct FirstBatch<'a> {
    /// NHWC `f32` images.
    pub images: &'a [f32],
    pub shape: Shape,
}

/// Scales streams to zero under `<data dir>/streams/` and brings them back.
pub struct Lifecycle {
    root: PathBuf,
    host: Arc<PluginHost>,
    /// Whether scaling down writes the load-ready artifacts.
    preprocess: bool,
}

impl Lifecycle {
    /// Streams' files under `data_dir/streams`; plugins compiled or loaded on `host`.
    pub fn new(data_dir: &Path, host: Arc<PluginHost>, preprocess: bool) -> Self {
        Self {
            root: data_dir.join("streams"),
            host,
            preprocess,
        }
    }

    pub fn preprocess(&self) -> bool {
        self.preprocess
    }

    /// The directory of stream `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join(safe)
    }

    /// The stream `id` scaled to zero before, from its files (after a restart).
    pub fn cold(&self, id: &str) -> Option<Cold> {
        let dir = self.dir(id);
        dir.join(artifacts::MODEL).exists().then(|| Cold {
            id: id.to_string(),
            dir,
            warnings: Vec::new(),
        })
    }
}
