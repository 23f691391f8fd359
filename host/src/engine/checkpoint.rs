//! Checkpoints: what a run needs to continue from its last committed window
//! (`tandem run --resume RUN_ID`).
//!
//! After each window, before the window is committed to the history, the recorder saves the
//! engine's state into `<data-dir>/checkpoints/run-<id>/w<next>/`: per stream its model
//! (`stream-<i>.safetensors`, as [`crate::model::weights`] writes models) and its exemplar
//! memory (`memory-<i>.safetensors`: images `[n, h, w, c]` f32 and labels `[n]` u8), plus
//! `state.json` (the next window, each stream's inference choice, sampling factors, what its
//! last window predicted and did and which zoo model serves it, the calibration), and the
//! engine's model zoo as [`Zoo::save`] writes it (`zoo/`), and, for serverless streams,
//! each stream's lifecycle (phase, idle history, the policy's last decision) in `state.json`. The folder is written under a temporary name and renamed, the history's
//! `runs.checkpoint` points at it in the same transaction as the window, and the previous one is
//! deleted only after that commit: whatever moment a crash picks, the history names a whole
//! checkpoint that matches its last committed window. The window loop exposes its state
//! through [`super::Engine::checkpoint_state`] and takes it back through
//! [`super::Engine::restore`]; camera data is a pure function of (seed, camera, window), so
//! nothing else is needed for a resumed run to continue exactly as an uninterrupted one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::EngineError;
use super::calibrate::Calibration;
use super::memory::{ExemplarMemory, Origin};
use super::stream::Recent;
use super::zoo::Zoo;
use crate::compute::Backend;
use crate::data::Dataset;
use crate::model::{Arch, Model, weights};

/// The checkpoint format's version (in `state.json`).
const FORMAT: u32 = 4;

/// One stream's state between windows, borrowed from the engine.
pub struct StreamView<'a, B: Backend> {
    pub id: &'a str,
    pub model: &'a Model<B>,
    pub memory: &'a ExemplarMemory,
    pub infer: &'a Option<(f64, String)>,
    pub sampling: &'a [(u32, f64)],
    pub recent: &'a Recent,
    pub serving_zoo: &'a Option<String>,
}

/// The engine's state between windows, borrowed.
pub struct EngineView<'a, B: Backend> {
    pub be: &'a B,
    pub zoo: Option<&'a Zoo>,
    /// The window that runs next.
    pub next: u32,
    pub calibration: &'a Calibration,
    pub streams: Vec<StreamView<'a, B>>,
    /// The streams' lifecycle ([`super::phases::Phases::saved`]), when they come and go.
    pub lives: Option<serde_json::Value>,
}

/// One stream's state read back.
pub struct StreamState<B: Backend> {
    pub id: String,
    pub model: Model<B>,
    pub memory: Dataset,
    /// Where each exemplar of `memory` came from.
    pub origins: Vec<Origin>,
    pub infer: Option<(f64, String)>,
    pub sampling: Vec<(u32, f64)>,
    pub recent: Recent,
    pub serving_zoo: Option<String>,
}

/// The engine's state read back from a checkpoint.
pub struct Restored<B: Backend> {
    pub zoo: Option<Zoo>,
    pub next: u32,
    pub calibration: Calibration,
    pub streams: Vec<StreamState<B>>,
    pub lives: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct StreamJson {
    id: String,
    origins: Vec<Origin>,
    infer: Option<(f64, String)>,
    sampling: Vec<(u32, f64)>,
    recent: Recent,
    serving_zoo: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StateJson {
    format: u32,
    next_window: u32,
    calibration: Calibration,
    streams: Vec<StreamJson>,
    #[serde(default)]
    lives: Option<serde_json::Value>,
}

fn err(path: &Path, what: impl std::fmt::Display) -> EngineError {
    EngineError::Setup(format!("checkpoint {}: {what}", path.display()))
}

/// The folder of run `run`'s checkpoint before window `next`, relative to the data dir.
pub fn relative_dir(run: i64, next: u32) -> PathBuf {
    PathBuf::from("checkpoints")
        .join(format!("run-{run}"))
        .join(format!("w{next}"))
}

/// Save `state` for run `run` under `data_dir`; returns the checkpoint's folder relative to
/// `data_dir` (what the history records).
pub fn save<B: Backend>(
    state: &EngineView<'_, B>,
    data_dir: &Path,
    run: i64,
) -> Result<PathBuf, EngineError> {
    let be = state.be;
    let rel = relative_dir(run, state.next);
    let dir = data_dir.join(&rel);
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
    for (i, s) in state.streams.iter().enumerate() {
        weights::save(be, s.model, &tmp.join(format!("stream-{i}.safetensors")))
            .map_err(|e| err(&tmp, e))?;
        let path = tmp.join(format!("memory-{i}.safetensors"));
        std::fs::write(&path, memory_bytes(s.memory.samples())).map_err(|e| err(&path, e))?;
    }
    let json = StateJson {
        format: FORMAT,
        next_window: state.next,
        calibration: state.calibration.clone(),
        streams: state
            .streams
            .iter()
            .map(|s| StreamJson {
                id: s.id.to_string(),
                origins: s.memory.origins().to_vec(),
                infer: s.infer.clone(),
                sampling: s.sampling.to_vec(),
                recent: s.recent.clone(),
                serving_zoo: s.serving_zoo.clone(),
            })
            .collect(),
        lives: state.lives.clone(),
    };
    if let Some(zoo) = state.zoo {
        zoo.save(&tmp.join("zoo")).map_err(|e| err(&tmp, e))?;
    }
    let path = tmp.join("state.json");
    let text = serde_json::to_vec_pretty(&json).map_err(|e| err(&path, e))?;
    std::fs::write(&path, text).map_err(|e| err(&path, e))?;
    // A folder left by a crash between this rename and the commit is replaced.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| err(&dir, e))?;
    Ok(rel)
}

/// Delete run `run`'s checkpoints other than `keep` (relative to `data_dir`); best effort.
pub fn prune(data_dir: &Path, run: i64, keep: &Path) {
    let run_dir = data_dir.join("checkpoints").join(format!("run-{run}"));
    let Ok(entries) = std::fs::read_dir(&run_dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.path() != data_dir.join(keep) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Delete all of run `run`'s checkpoints; best effort.
pub fn remove(data_dir: &Path, run: i64) {
    let _ = std::fs::remove_dir_all(data_dir.join("checkpoints").join(format!("run-{run}")));
}

/// Restore `engine` from the checkpoint in `dir` (its streams, models and memories must match
/// the engine's scenario).
pub fn restore<B: Backend>(
    engine: &mut super::Engine<'_, B>,
    dir: &Path,
) -> Result<(), EngineError> {
    let view = engine.checkpoint_state();
    let first = view
        .streams
        .first()
        .ok_or_else(|| err(dir, "the engine has no streams"))?;
    let (be, arch) = (view.be, first.model.arch());
    let like = first.memory.samples().empty_like();
    let ids: Vec<String> = view.streams.iter().map(|s| s.id.to_string()).collect();
    let z = &engine.scenario().zoo;
    let zoo = view
        .zoo
        .is_some()
        .then_some((z.max_models as usize, (z.max_mib * 1024.0 * 1024.0) as u64));
    let restored = load(be, dir, arch, &ids, &like, zoo)?;
    engine.restore(restored)
}

/// Read the checkpoint in `dir` for an engine of `arch` with streams `ids`, each memory of
/// images shaped like `like`, and a zoo bounded by `zoo` (models, bytes) if it has one.
pub fn load<B: Backend>(
    be: &B,
    dir: &Path,
    arch: Arch,
    ids: &[String],
    like: &Dataset,
    zoo: Option<(usize, u64)>,
) -> Result<Restored<B>, EngineError> {
    let path = dir.join("state.json");
    let text = std::fs::read(&path).map_err(|e| err(&path, e))?;
    let state: StateJson = serde_json::from_slice(&text).map_err(|e| err(&path, e))?;
    if state.format != FORMAT {
        return Err(err(
            &path,
            format!("format {}, this build reads {FORMAT}", state.format),
        ));
    }
    let found: Vec<&str> = state.streams.iter().map(|s| s.id.as_str()).collect();
    if found != ids {
        return Err(err(
            &path,
            format!("streams {found:?}, the scenario has {ids:?}"),
        ));
    }
    let mut streams = Vec::new();
    for (i, s) in state.streams.into_iter().enumerate() {
        let model = weights::load(be, &dir.join(format!("stream-{i}.safetensors")), Some(arch))
            .map_err(|e| err(dir, e))?;
        let path = dir.join(format!("memory-{i}.safetensors"));
        let bytes = std::fs::read(&path).map_err(|e| err(&path, e))?;
        let memory = memory_from_bytes(&bytes, like).map_err(|e| err(&path, e))?;
        streams.push(StreamState {
            id: s.id,
            model,
            memory,
            origins: s.origins,
            infer: s.infer,
            sampling: s.sampling,
            recent: s.recent,
            serving_zoo: s.serving_zoo,
        });
    }
    let zoo = match zoo {
        Some((models, bytes)) => {
            let (zoo, warnings) = Zoo::open(&dir.join("zoo"), models, bytes);
            if let Some(w) = warnings.first() {
                return Err(err(dir, format!("zoo: {w}")));
            }
            Some(zoo)
        }
        None => None,
    };
    Ok(Restored {
        zoo,
        next: state.next_window,
        calibration: state.calibration,
        streams,
        lives: state.lives,
    })
}

/// An exemplar memory as safetensors: `images` `[n, h, w, c]` f32 and `labels` `[n]` u8, the
/// class count in the metadata.
fn memory_bytes(d: &Dataset) -> Vec<u8> {
    let images: Vec<u8> = d.images.iter().flat_map(|x| x.to_le_bytes()).collect();
    let n = d.len();
    let views = [
        (
            "images",
            TensorView::new(Dtype::F32, vec![n, d.h, d.w, d.c], &images).expect("shape"),
        ),
        (
            "labels",
            TensorView::new(Dtype::U8, vec![n], &d.labels).expect("shape"),
        ),
    ];
    let meta = HashMap::from([("classes".to_string(), d.classes.to_string())]);
    safetensors::serialize(views, Some(meta)).expect("serializing in memory")
}

fn memory_from_bytes(bytes: &[u8], like: &Dataset) -> Result<Dataset, String> {
    let t = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let images = t.tensor("images").map_err(|e| e.to_string())?;
    let labels = t.tensor("labels").map_err(|e| e.to_string())?;
    let n = labels.shape().first().copied().unwrap_or(0);
    if images.dtype() != Dtype::F32
        || labels.dtype() != Dtype::U8
        || images.shape() != [n, like.h, like.w, like.c]
    {
        return Err(format!(
            "memory tensors {:?} {:?} / {:?} {:?} do not hold {n} images of {}x{}x{}",
            images.dtype(),
            images.shape(),
            labels.dtype(),
            labels.shape(),
            like.h,
            like.w,
            like.c
        ));
    }
    let mut d = like.empty_like();
    d.images = images
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    d.labels = labels.data().to_vec();
    if let Some(&bad) = d.labels.iter().find(|&&l| l as usize >= d.classes) {
        return Err(format!(
            "label {bad} is not below the {} classes",
            d.classes
        ));
    }
    Ok(d)
}
