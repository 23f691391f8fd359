//! Bringing a stream back: its state loaded into host memory (from the load-ready artifacts
//! where they are sound, by the slow path where not), then onto the backend and through its
//! first inference.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;
use std::sync::Arc;

use super::artifacts::{self, MANIFEST, MEMORY, MODEL, Manifest, RECIPE, Recipe, WEIGHTS};
use super::{
    Cold, ColdStart, FirstBatch, Labelled, Lifecycle, LifecycleError, Prewarmed, Replay, Resident,
    Step, StreamPlugin, WakePath,
};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::engine::memory::ExemplarMemory;
use crate::engine::stream::{Camera, split};
use crate::model::{Arch, weights};

/// A stream's state in host memory.
struct Loaded {
    arch: Arch,
    weights: Vec<f32>,
    memory: ExemplarMemory,
    pending: Vec<Labelled>,
    plugins: Vec<StreamPlugin>,
}

impl Lifecycle {
    /// Bring a cold stream back: from its load-ready artifacts where they are sound, by the
    /// slow path (`replay` re-runs the data path) where they are missing or corrupt, then
    /// its first inference on `first`.
    pub fn wake<B: Backend>(
        &self,
        be: &B,
        cold: Cold,
        replay: Replay<'_>,
        first: FirstBatch<'_>,
    ) -> Result<(Resident<B>, ColdStart), LifecycleError> {
        let mut start = ColdStart::new(WakePath::Slow);
        let loaded = self.load(&cold, replay, &mut start)?;
        let resident = to_device(be, loaded, first, &cold.dir, &mut start)?;
        Ok((resident, start))
    }

    /// Load a cold stream into host memory ahead of its activity, as [`Lifecycle::wake`]
    /// would (fallbacks included), stopping short of the backend.
    pub fn prewarm(&self, cold: Cold, replay: Replay<'_>) -> Result<Prewarmed, LifecycleError> {
        let mut load = ColdStart::new(WakePath::Slow);
        let l = self.load(&cold, replay, &mut load)?;
        Ok(Prewarmed {
            cold,
            arch: l.arch,
            weights: l.weights,
            memory: l.memory,
            pending: l.pending,
            plugins: l.plugins,
            load,
        })
    }

    /// Bring a pre-warmed stream onto the backend: upload, workspace, the plugins' first
    /// instances, first inference.
    pub fn wake_prewarmed<B: Backend>(
        &self,
        be: &B,
        p: Prewarmed,
        first: FirstBatch<'_>,
    ) -> Result<(Resident<B>, ColdStart), LifecycleError> {
        let mut start = ColdStart::new(WakePath::Prewarmed);
        for plugin in &p.plugins {
            start.time(Step::Plugins, || self.host.instantiate_only(&plugin.plugin))?;
        }
        let loaded = Loaded {
            arch: p.arch,
            weights: p.weights,
            memory: p.memory,
            pending: p.pending,
            plugins: p.plugins,
        };
        let resident = to_device(be, loaded, first, &p.cold.dir, &mut start)?;
        Ok((resident, start))
    }

    /// The stream's state in host memory, each step from the artifacts when a sound manifest
    /// names them, else by the slow path; `start` records the steps.
    fn load(
        &self,
        cold: &Cold,
        replay: Replay<'_>,
        start: &mut ColdStart,
    ) -> Result<Loaded, LifecycleError> {
        let dir = &cold.dir;
        start.warnings.extend(cold.warnings.iter().cloned());
        let (recipe, manifest) = start.time(Step::Manifest, || read_recipe(dir))?;
        let manifest = match manifest {
            Ok(m) => m,
            Err(why) => {
                start.fall_back(Step::Manifest, why);
                None
            }
        };
        if manifest.is_some() {
            start.path = WakePath::Preprocessed;
        }
        let fast = manifest.as_ref();

        let weights = fast.map(|m| start.time(Step::Weights, || read_weights(dir, &recipe, m)));
        let weights = match weights {
            Some(Ok(w)) => w,
            other => {
                if let Some(Err(why)) = other {
                    start.fall_back(Step::Weights, why);
                }
                start.time(Step::Weights, || decode_weights(dir, &recipe))?
            }
        };

        let memory = fast.map(|m| {
            start.time(Step::Memory, || {
                let data = artifacts::read_dataset(dir, MEMORY, recipe.sample, m)?;
                let origins = recipe.memory.origins.clone();
                ExemplarMemory::restore(recipe.memory.capacity, data, origins).ok_or_else(|| {
                    format!("{}: does not match its origins", dir.join(MEMORY).display())
                })
            })
        });
        let pending: Vec<Option<Result<Dataset, String>>> = (0..recipe.pending.len())
            .map(|k| fast.map(|m| start.time(Step::Pending, || read_pending(dir, k, &recipe, m))))
            .collect();

        let mut source = Source::new(replay);
        let memory = match memory {
            Some(Ok(m)) => m,
            other => {
                if let Some(Err(why)) = other {
                    start.fall_back(Step::Memory, why);
                }
                source.decode(start)?;
                start.time(Step::Memory, || source.memory(&recipe))
            }
        };
        let mut batches = Vec::with_capacity(recipe.pending.len());
        for (k, read) in pending.into_iter().enumerate() {
            let p = &recipe.pending[k];
            let samples = match read {
                Some(Ok(d)) => d,
                other => {
                    if let Some(Err(why)) = other {
                        start.fall_back(Step::Pending, why);
                    }
                    source.decode(start)?;
                    start.time(Step::Pending, || source.pending(p))
                }
            };
            batches.push(Labelled {
                window: p.window,
                samples,
            });
        }
        start.warnings.append(&mut source.warnings);

        let mut plugins = Vec::with_capacity(recipe.plugins.len());
        for p in &recipe.plugins {
            let plugin = fast.map(|m| start.time(Step::Plugins, || self.load_plugin(dir, p, m)));
            let plugin = match plugin {
                Some(Ok(plugin)) => plugin,
                other => {
                    if let Some(Err(why)) = other {
                        start.fall_back(Step::Plugins, why);
                    }
                    start.time(Step::Plugins, || {
                        StreamPlugin::compile(&self.host, &p.role, &p.component)
                    })?
                }
            };
            plugins.push(plugin);
        }
        Ok(Loaded {
            arch: recipe.arch,
            weights,
            memory,
            pending: batches,
            plugins,
        })
    }

    /// A plugin mapped in from its compiled code, checked against the manifest (the slow
    /// path, compiling its component, is the caller's fallback).
    fn load_plugin(
        &self,
        dir: &Path,
        p: &artifacts::PluginRecipe,
        m: &Manifest,
    ) -> Result<StreamPlugin, String> {
        let name = artifacts::plugin_file(&p.role);
        let code = artifacts::read_checked(dir, &name, m)?;
        // SAFETY: `scale_down` wrote these bytes from `PluginHost::precompiled` into the
        // stream's own directory, and they match the length and CRC-32 it recorded; wasmtime
        // itself refuses code of another engine configuration or version.
        let plugin = unsafe {
            self.host.load_precompiled(
                &p.component.display().to_string(),
                &code,
                (&p.digest, p.size),
            )
        }
        .map_err(|e| format!("{}: {e}", dir.join(&name).display()))?;
        Ok(StreamPlugin {
            role: p.role.clone(),
            component: p.component.clone(),
            plugin: Arc::new(plugin),
        })
    }
}

/// The recipe (from the manifest when there is a sound one, else `recipe.json`) and the
/// manifest: `Ok(None)` when there is none, `Err(why)` when it is unusable. No recipe at all
/// is an error: nothing then says what the stream held.
#[allow(clippy::type_complexity)]
fn read_recipe(dir: &Path) -> Result<(Recipe, Result<Option<Manifest>, String>), LifecycleError> {
    let manifest = artifacts::read_json::<Manifest>(&dir.join(MANIFEST));
    if let Ok(Some(m)) = &manifest {
        return Ok((m.recipe.clone(), manifest));
    }
    let path = dir.join(RECIPE);
    match artifacts::read_json::<Recipe>(&path) {
        Ok(Some(r)) => Ok((r, manifest)),
        Ok(None) => Err(LifecycleError::Recipe {
            path,
            reason: "missing: nothing says what the stream held".into(),
        }),
        Err(reason) => Err(LifecycleError::Recipe { path, reason }),
    }
}

/// The load-ready weights: raw `f32` read into the vector that is uploaded.
fn read_weights(dir: &Path, recipe: &Recipe, m: &Manifest) -> Result<Vec<f32>, String> {
    let flat = artifacts::read_f32(dir, WEIGHTS, m)?;
    if flat.len() != weights::flat_len(&recipe.arch) {
        return Err(format!(
            "{}: {} values, the architecture has {} parameters",
            dir.join(WEIGHTS).display(),
            flat.len(),
            weights::flat_len(&recipe.arch)
        ));
    }
    Ok(flat)
}

/// The slow path's weights: the safetensors file parsed and every value decoded.
fn decode_weights(dir: &Path, recipe: &Recipe) -> Result<Vec<f32>, LifecycleError> {
    let path = dir.join(MODEL);
    let bytes = std::fs::read(&path).map_err(|source| LifecycleError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(weights::flat_from_bytes(&bytes, &path, Some(recipe.arch))?.1)
}

fn read_pending(dir: &Path, k: usize, recipe: &Recipe, m: &Manifest) -> Result<Dataset, String> {
    let stem = artifacts::pending_stem(k);
    let d = artifacts::read_dataset(dir, &stem, recipe.sample, m)?;
    if d.len() != recipe.pending[k].len {
        return Err(format!(
            "{}: {} samples, {} arrived",
            dir.join(stem).display(),
            d.len(),
            recipe.pending[k].len
        ));
    }
    Ok(d)
}

/// The slow path's data: the camera's source decoded once, each window drawn once.
struct Source<'a> {
    replay: Replay<'a>,
    camera: Option<Camera>,
    /// Each window's labelled samples as the camera delivered them.
    drawn: BTreeMap<u32, Dataset>,
    warnings: Vec<String>,
}

impl<'a> Source<'a> {
    fn new(replay: Replay<'a>) -> Self {
        Self {
            replay,
            camera: None,
            drawn: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Decode the camera's source (once), timed as [`Step::Source`].
    fn decode(&mut self, start: &mut ColdStart) -> Result<(), LifecycleError> {
        if self.camera.is_none() {
            self.camera = Some(start.time(Step::Source, || self.replay.decode())?);
        }
        Ok(())
    }

    fn window(&mut self, w: u32) -> &Dataset {
        let camera = self.camera.as_ref().expect("decoded first");
        let scenario = self.replay.scenario;
        self.drawn
            .entry(w)
            .or_insert_with(|| camera.labelled(scenario, w))
    }

    /// The memory rebuilt from its origins: each window drawn again and split as the window
    /// split it (what it absorbed: the part to retrain on, then the held-out part). Exemplars
    /// the data path no longer gives are left out, with a warning.
    fn memory(&mut self, recipe: &Recipe) -> ExemplarMemory {
        let r = &recipe.memory;
        let mut absorbed: BTreeMap<u32, Dataset> = BTreeMap::new();
        let mut data = recipe.sample.empty();
        let mut origins = Vec::with_capacity(r.origins.len());
        for o in &r.origins {
            let batch = match absorbed.entry(o.window) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let (mut fit, val) = split(self.window(o.window));
                    fit.extend(&val);
                    e.insert(fit)
                }
            };
            let i = o.index as usize;
            if i < batch.len() && batch.sample_len() == data.sample_len() {
                data.push(batch.image(i), batch.labels[i]);
                origins.push(*o);
            }
        }
        if origins.len() < r.origins.len() {
            self.warnings.push(format!(
                "memory: {} of {} exemplars are not in what camera {} of scenario `{}` gives now, left out",
                r.origins.len() - origins.len(),
                r.origins.len(),
                self.replay.camera,
                self.replay.scenario.name
            ));
        } else if artifacts::crc(&data) != r.crc32 {
            self.warnings.push(format!(
                "memory: the data path gave back other exemplars than the stream held (CRC-32 {:08x}, recorded {:08x})",
                artifacts::crc(&data),
                r.crc32
            ));
        }
        let capacity = r.capacity.max(origins.len());
        ExemplarMemory::restore(capacity, data, origins).expect("one origin per exemplar")
    }

    /// Labels that arrived while cold, drawn again from their window.
    fn pending(&mut self, p: &artifacts::PendingRecipe) -> Dataset {
        let d = self.window(p.window).clone();
        if d.len() != p.len || artifacts::crc(&d) != p.crc32 {
            self.warnings.push(format!(
                "pending: window {}'s labels drawn again differ from the {} that arrived",
                p.window, p.len
            ));
        }
        d
    }
}

/// Upload the weights, allocate the workspace, run the first inference.
fn to_device<B: Backend>(
    be: &B,
    loaded: Loaded,
    first: FirstBatch<'_>,
    dir: &Path,
    start: &mut ColdStart,
) -> Result<Resident<B>, LifecycleError> {
    let (n, h, w) = first.shape;
    assert_eq!(
        first.images.len(),
        n * h * w * loaded.arch.in_channels,
        "the first batch's images do not fill its shape"
    );
    let mut model = start.time(Step::Weights, || {
        weights::from_flat(be, loaded.arch, &loaded.weights, &dir.join(WEIGHTS))
    })?;
    start.time(Step::Workspace, || model.prepare(be, first.shape));
    start.predictions = start.time(Step::FirstInference, || {
        model.predict(be, first.images, first.shape)
    });
    Ok(Resident {
        model,
        memory: loaded.memory,
        pending: loaded.pending,
        plugins: loaded.plugins,
    })
}
