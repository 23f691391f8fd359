//! [`Zoo`]: the models retrained for earlier scenes, shared by every stream of the server and
//! offered again when a scene comes back.
//!
//! Every model a window deploys after retraining enters the zoo (and the pretrained model
//! does at the start), with where it came from, its scene signature (what its window's
//! labelled images looked like: [`Look`](crate::data::Look)'s means, comparable across
//! streams and models, computed from data the host has anyway), its accuracy when made, and
//! how often and how lately it was used. At each window start a selector plugin short-lists
//! models for a stream from their signatures; the host checks them on the window's labels
//! and offers the policy each as a configuration to deploy as it is, and the best one as a
//! starting point for retraining ([`super::stream`]).
//!
//! Bounded by a count and by bytes: past either, the least useful model goes first: the
//! fewest uses, then the longest unused, then the oldest (the pretrained model is never
//! evicted). An engine works on its own copy, so runs compared side by side never see each
//! other's models; `tandem run` and the live dashboard save theirs back to the data dir
//! (`zoo/`: one safetensors file per model and `index.json`), where the next run finds it.
//! A missing or corrupt file is skipped with a warning, never a crash.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compute::Backend;
use crate::model::{Model, weights};
use crate::plugin::types::ZooEntry;

/// One model of the zoo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooModel {
    pub id: String,
    /// The stream and window that produced it (`pretrained` for the starting model).
    pub origin_stream: String,
    pub origin_window: u32,
    /// The scene signature of that window.
    pub signature: Vec<f64>,
    /// Its accuracy on that window's validation split when made.
    pub accuracy: f64,
    /// Times it was deployed or retrained from since.
    pub uses: u32,
    /// The last window that used it (its own window until then).
    pub last_used_window: u32,
    /// Size of its weights file.
    pub bytes: u64,
}

/// A zoo model checked for a stream: its accuracy on the window's validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooCheck {
    pub model: String,
    pub accuracy: f64,
}

/// The zoo's index file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    next_id: u64,
    models: Vec<ZooModel>,
}

/// The zoo of one engine.
#[derive(Debug, Clone)]
pub struct Zoo {
    max_models: usize,
    max_bytes: u64,
    next_id: u64,
    /// Each model with its safetensors bytes.
    models: Vec<(ZooModel, Vec<u8>)>,
}

/// What went wrong reading or writing a zoo directory (the engine goes on without the model
/// or the save).
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("zoo {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("zoo {path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// Id of the pretrained model, the one model never evicted.
pub const PRETRAINED: &str = "pretrained";

impl Zoo {
    /// An empty zoo bounded by `max_models` and `max_bytes`.
    pub fn new(max_models: usize, max_bytes: u64) -> Self {
        Zoo {
            max_models: max_models.max(1),
            max_bytes,
            next_id: 1,
            models: Vec::new(),
        }
    }

    /// The zoo saved in `dir`, within the bounds (the least useful evicted first). Models
    /// whose file is missing or unreadable are left out, each with a warning in the second
    /// value; a missing directory is an empty zoo.
    pub fn open(dir: &Path, max_models: usize, max_bytes: u64) -> (Self, Vec<String>) {
        let mut zoo = Zoo::new(max_models, max_bytes);
        let mut warnings = Vec::new();
        let index_path = dir.join("index.json");
        let index: Index = match std::fs::read_to_string(&index_path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(index) => index,
                Err(e) => {
                    warnings.push(format!(
                        "zoo {}: unreadable index, starting empty: {e}",
                        index_path.display()
                    ));
                    return (zoo, warnings);
                }
            },
            Err(_) => return (zoo, warnings),
        };
        zoo.next_id = index.next_id.max(1);
        for m in index.models {
            let path = dir.join(format!("{}.safetensors", m.id));
            match std::fs::read(&path) {
                Ok(bytes) if weights::check_bytes(&bytes).is_ok() => zoo.models.push((m, bytes)),
                Ok(_) => warnings.push(format!(
                    "zoo {}: not a valid model file, skipped",
                    path.display()
                )),
                Err(e) => warnings.push(format!("zoo {}: {e}, skipped", path.display())),
            }
        }
        zoo.evict(None);
        (zoo, warnings)
    }

    /// Save into `dir`: the models' files (written only if absent), then the index
    /// (replaced atomically), then files of models no longer in it removed.
    pub fn save(&self, dir: &Path) -> Result<(), ZooError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ZooError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for (m, bytes) in &self.models {
            let path = dir.join(format!("{}.safetensors", m.id));
            if !path.exists() {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
                std::fs::rename(&tmp, &path).map_err(io(&path))?;
            }
        }
        let index = Index {
            next_id: self.next_id,
            models: self.models.iter().map(|(m, _)| m.clone()).collect(),
        };
        let path = dir.join("index.json");
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&index).map_err(|e| ZooError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        let entries = std::fs::read_dir(dir).map_err(io(dir))?;
        for e in entries.flatten() {
            let p = e.path();
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let ours = self.models.iter().any(|(m, _)| m.id == stem);
            if p.extension().is_some_and(|x| x == "safetensors") && !ours {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok(())
    }

    /// Add `model` (made by `origin` = (stream, window) for a scene of `signature`, scoring
    /// `accuracy` then); returns its id and the models evicted to stay within bounds.
    pub fn insert<B: Backend>(
        &mut self,
        be: &B,
        model: &Model<B>,
        origin: (&str, u32),
        signature: Vec<f64>,
        accuracy: f64,
    ) -> (String, Vec<ZooModel>) {
        let id = if origin.0 == PRETRAINED {
            PRETRAINED.to_string()
        } else {
            self.next_id += 1;
            format!("m{}", self.next_id - 1)
        };
        let bytes = weights::to_bytes(be, model);
        self.models.retain(|(m, _)| m.id != id);
        self.models.push((
            ZooModel {
                id: id.clone(),
                origin_stream: origin.0.to_string(),
                origin_window: origin.1,
                signature,
                accuracy,
                uses: 0,
                last_used_window: origin.1,
                bytes: bytes.len() as u64,
            },
            bytes,
        ));
        let evicted = self.evict(Some(&id));
        (id, evicted)
    }

    /// Evict the least useful models (by the same rule as the bounds) until at most `keep`
    /// are left, never the pretrained model (`keep` = 0 leaves only it); returns them, in
    /// eviction order. The bounds stay as they were.
    pub fn prune(&mut self, keep: usize) -> Vec<ZooModel> {
        let bound = std::mem::replace(&mut self.max_models, keep);
        let evicted = self.evict(None);
        self.max_models = bound;
        evicted
    }

    /// Evict the least useful models until within bounds, never `keep` nor the pretrained
    /// model; returns them.
    fn evict(&mut self, keep: Option<&str>) -> Vec<ZooModel> {
        let mut evicted = Vec::new();
        while self.models.len() > self.max_models || self.bytes() > self.max_bytes {
            let victim = self
                .models
                .iter()
                .enumerate()
                .filter(|(_, (m, _))| m.id != PRETRAINED && Some(m.id.as_str()) != keep)
                .min_by_key(|(_, (m, _))| (m.uses, m.last_used_window, m.origin_window))
                .map(|(i, _)| i);
            let Some(i) = victim else { break };
            evicted.push(self.models.remove(i).0);
        }
        evicted
    }

    /// Total bytes of the models' weights.
    pub fn bytes(&self) -> u64 {
        self.models.iter().map(|(m, _)| m.bytes).sum()
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The models as a selector sees them, leaving out `except` (the one serving).
    pub fn entries(&self, except: Option<&str>) -> Vec<ZooEntry> {
        self.models
            .iter()
            .filter(|(m, _)| Some(m.id.as_str()) != except)
            .map(|(m, _)| ZooEntry {
                id: m.id.clone(),
                origin_stream: m.origin_stream.clone(),
                origin_window: m.origin_window,
                signature: m.signature.clone(),
                accuracy: m.accuracy,
                uses: m.uses,
                last_used_window: m.last_used_window,
            })
            .collect()
    }

    /// The models' metadata.
    pub fn models(&self) -> impl Iterator<Item = &ZooModel> {
        self.models.iter().map(|(m, _)| m)
    }

    /// Model `id`, loaded onto `be` (`None` if the zoo has no such model or its bytes fail
    /// to load).
    pub fn load<B: Backend>(&self, be: &B, id: &str) -> Option<Model<B>> {
        let (_, bytes) = self.models.iter().find(|(m, _)| m.id == id)?;
        weights::from_bytes(be, bytes, Path::new(id), None).ok()
    }

    /// Model `id` was deployed or retrained from in window `w`.
    pub fn used(&mut self, id: &str, w: u32) {
        if let Some((m, _)) = self.models.iter_mut().find(|(m, _)| m.id == id) {
            m.uses += 1;
            m.last_used_window = m.last_used_window.max(w);
        }
    }
}

/// The zoo model a configuration offered by the host starts from, by its name: `zoo:<id>`
/// deploys `<id>` as it is (`true`), `<configuration>+zoo:<id>` retrains from it.
pub fn source(config: &str) -> Option<(&str, bool)> {
    match config.strip_prefix("zoo:") {
        Some(id) => Some((id, true)),
        None => config.split_once("+zoo:").map(|(_, id)| (id, false)),
    }
}

/// The configuration a `<configuration>+zoo:<id>` name retrains with (any other name is its
/// own configuration).
pub fn own_config(config: &str) -> &str {
    config.split_once("+zoo:").map_or(config, |(own, _)| own)
}
