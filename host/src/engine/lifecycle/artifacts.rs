//! The files of a stream scaled to zero, in its directory `<data dir>/streams/<id>/`.
//!
//! Always written (the slow path's sources, and what keeps the model from ever being lost):
//! - `model.safetensors`: the weights in tandem's model format (decoded on the slow path);
//! - `recipe.json` ([`Recipe`]): the architecture, where each exemplar came from, the windows
//!   whose labels arrived while cold, the plugin components, with checksums of what the
//!   data path must give back.
//!
//! Written with preprocessing (load-ready: read without decoding anything), then
//! `manifest.json` ([`Manifest`]: the recipe again and each file's length and CRC-32) last,
//! so a manifest never names a file half written:
//! - `weights.f32`: the flat parameter layout (`model::weights::to_flat`) as raw little-endian
//!   `f32`, read straight into the vector that is uploaded;
//! - `memory.f32` and `memory.labels`, `pending-<k>.f32` and `pending-<k>.labels`: the exemplar
//!   memory and the labelled samples that arrived while cold, already decoded, drifted and
//!   normalised (NHWC `f32`, one byte per label);
//! - `plugin-<role>.cwasm`: each plugin's compiled code (wasmtime's serialized component).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LifecycleError;
use crate::data::Dataset;
use crate::engine::memory::Origin;
use crate::model::Arch;

pub const MODEL: &str = "model.safetensors";
pub const RECIPE: &str = "recipe.json";
pub const MANIFEST: &str = "manifest.json";
pub const WEIGHTS: &str = "weights.f32";
pub const MEMORY: &str = "memory";

/// Version of the recipe and manifest formats.
const FORMAT: u32 = 1;

/// What the slow path needs to bring a stream back, beside `model.safetensors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub format: u32,
    pub arch: Arch,
    /// Shape of every labelled sample (memory and pending alike).
    pub sample: SampleShape,
    pub memory: MemoryRecipe,
    /// The labelled samples that arrived while cold, in arrival order.
    pub pending: Vec<PendingRecipe>,
    pub plugins: Vec<PluginRecipe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleShape {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub classes: usize,
}

impl SampleShape {
    pub fn of(d: &Dataset) -> Self {
        Self {
            h: d.h,
            w: d.w,
            c: d.c,
            classes: d.classes,
        }
    }

    pub fn empty(&self) -> Dataset {
        Dataset::empty(self.h, self.w, self.c, self.classes)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRecipe {
    pub capacity: usize,
    /// Where each exemplar came from, in memory order.
    pub origins: Vec<Origin>,
    /// CRC-32 of the exemplars ([`crc`]): what the data path must give back.
    pub crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRecipe {
    /// The window whose golden labels these are.
    pub window: u32,
    pub len: usize,
    pub crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecipe {
    /// What the stream uses it for (e.g. `config-space`); names its compiled-code file.
    pub role: String,
    /// The component (`.wasm`) the slow path compiles.
    pub component: PathBuf,
    /// Its sha256 and size.
    pub digest: String,
    pub size: usize,
}

/// The load-ready artifacts: the recipe they were made from, and each file's length and
/// CRC-32 (a file that disagrees is not used: its step falls back to the slow path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub recipe: Recipe,
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub bytes: u64,
    pub crc32: u32,
}

impl Recipe {
    pub fn new(arch: Arch, sample: SampleShape, memory: MemoryRecipe) -> Self {
        Self {
            format: FORMAT,
            arch,
            sample,
            memory,
            pending: Vec::new(),
            plugins: Vec::new(),
        }
    }
}

impl Manifest {
    pub fn new(recipe: Recipe) -> Self {
        Self {
            format: FORMAT,
            recipe,
            files: BTreeMap::new(),
        }
    }
}

/// The file names of pending batch `k`.
pub fn pending_stem(k: usize) -> String {
    format!("pending-{k}")
}

/// The compiled-code file of the plugin used as `role`.
pub fn plugin_file(role: &str) -> String {
    let safe: String = role
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("plugin-{safe}.cwasm")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LifecycleError + '_ {
    move |source| LifecycleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// CRC-32 of a dataset's images (as little-endian `f32` bytes) and labels.
pub fn crc(d: &Dataset) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytemuck::cast_slice(&d.images));
    h.update(&d.labels);
    h.finalize()
}

/// Write `bytes` to `path` through a temporary file and a rename, so a reader never sees it
/// half written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<FileEntry, LifecycleError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(FileEntry {
        bytes: bytes.len() as u64,
        crc32: crc32fast::hash(bytes),
    })
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), LifecycleError> {
    let text = serde_json::to_vec(value).expect("recipes serialize");
    write_atomic(path, &text).map(drop)
}

/// `dir/stem.f32` and `dir/stem.labels` for `d`, entered in `files`.
pub fn write_dataset(
    dir: &Path,
    stem: &str,
    d: &Dataset,
    files: &mut BTreeMap<String, FileEntry>,
) -> Result<(), LifecycleError> {
    let (images, labels) = (format!("{stem}.f32"), format!("{stem}.labels"));
    files.insert(images.clone(), write_f32(&dir.join(&images), &d.images)?);
    files.insert(labels.clone(), write_atomic(&dir.join(&labels), &d.labels)?);
    Ok(())
}

/// Raw little-endian `f32`.
pub fn write_f32(path: &Path, v: &[f32]) -> Result<FileEntry, LifecycleError> {
    if cfg!(target_endian = "little") {
        write_atomic(path, bytemuck::cast_slice(v))
    } else {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        write_atomic(path, &bytes)
    }
}

/// A file entered in the manifest, read and checked against its entry; the error says what
/// is wrong with it (its step then falls back to the slow path).
pub fn read_checked(dir: &Path, name: &str, manifest: &Manifest) -> Result<Vec<u8>, String> {
    let entry = entry(name, manifest)?;
    let path = dir.join(name);
    let mut bytes = Vec::with_capacity(entry.bytes as usize);
    open(&path, entry)?
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    check(&path, &bytes, entry)?;
    Ok(bytes)
}

/// A raw `f32` file of the manifest, read straight into the vector (no decoding: the bytes
/// are the values), then checked.
pub fn read_f32(dir: &Path, name: &str, manifest: &Manifest) -> Result<Vec<f32>, String> {
    let entry = entry(name, manifest)?;
    let path = dir.join(name);
    if entry.bytes % 4 != 0 {
        return Err(format!(
            "{}: {} bytes is not whole f32s",
            path.display(),
            entry.bytes
        ));
    }
    let mut v = vec![0f32; entry.bytes as usize / 4];
    open(&path, entry)?
        .read_exact(bytemuck::cast_slice_mut(&mut v))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    check(&path, bytemuck::cast_slice(&v), entry)?;
    if cfg!(target_endian = "big") {
        for x in &mut v {
            *x = f32::from_bits(u32::from_le(x.to_bits()));
        }
    }
    Ok(v)
}

/// `dir/stem.f32` and `dir/stem.labels` as a dataset of `shape`.
pub fn read_dataset(
    dir: &Path,
    stem: &str,
    shape: SampleShape,
    manifest: &Manifest,
) -> Result<Dataset, String> {
    let images = read_f32(dir, &format!("{stem}.f32"), manifest)?;
    let labels = read_checked(dir, &format!("{stem}.labels"), manifest)?;
    let mut d = shape.empty();
    if images.len() != labels.len() * d.sample_len() {
        return Err(format!(
            "{}: {} values for {} labels of {}x{}x{}",
            dir.join(stem).display(),
            images.len(),
            labels.len(),
            shape.h,
            shape.w,
            shape.c
        ));
    }
    if let Some(l) = labels.iter().find(|&&l| l as usize >= shape.classes) {
        return Err(format!(
            "{}.labels: label {l} is not below the {} classes",
            dir.join(stem).display(),
            shape.classes
        ));
    }
    (d.images, d.labels) = (images, labels);
    Ok(d)
}

fn entry<'m>(name: &str, manifest: &'m Manifest) -> Result<&'m FileEntry, String> {
    manifest
        .files
        .get(name)
        .ok_or_else(|| format!("{MANIFEST}: no entry for {name}"))
}

fn open(path: &Path, entry: &FileEntry) -> Result<std::fs::File, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len != entry.bytes {
        return Err(format!(
            "{}: {len} bytes, the manifest says {}",
            path.display(),
            entry.bytes
        ));
    }
    Ok(f)
}

fn check(path: &Path, bytes: &[u8], entry: &FileEntry) -> Result<(), String> {
    let got = crc32fast::hash(bytes);
    if got != entry.crc32 {
        return Err(format!(
            "{}: CRC-32 {got:08x}, the manifest says {:08x} (corrupt)",
            path.display(),
            entry.crc32
        ));
    }
    Ok(())
}

/// A JSON file of the stream's directory (`None` when absent; the error says what is wrong).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let value: T = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(value))
}

/// Remove the load-ready artifacts (everything but the model and the recipe), the manifest
/// first so that no manifest ever names a file that is gone.
pub fn remove_artifacts(dir: &Path) -> Result<(), LifecycleError> {
    remove(&dir.join(MANIFEST))?;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name != MODEL && name != RECIPE {
            remove(&e.path())?;
        }
    }
    Ok(())
}

pub fn remove(path: &Path) -> Result<(), LifecycleError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// Bytes of the files in `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
