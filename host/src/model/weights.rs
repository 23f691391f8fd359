//! Saving and loading a [`Model`]'s weights as safetensors, with the [`Arch`] recorded in the
//! file's metadata so a cached model can be reloaded (and a mismatched one refused).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::arch::{Arch, LAYER_GROUPS};
use super::net::{Layer, Model};
use crate::compute::Backend;

/// Metadata key holding the architecture as JSON.
const ARCH_KEY: &str = "tandem.arch";

/// What can go wrong with a weights file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a safetensors file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: no `{ARCH_KEY}` metadata: not a tandem model")]
    NoArch { path: PathBuf },
    #[error("{path}: architecture mismatch: file has {found:?}, expected {expected:?}")]
    ArchMismatch {
        path: PathBuf,
        found: Arch,
        expected: Arch,
    },
    #[error("{path}: tensor `{name}`: {reason}")]
    Tensor {
        path: PathBuf,
        name: String,
        reason: String,
    },
}

/// Serialize `model` (weights and biases, f32 little-endian) to safetensors bytes.
pub fn to_bytes<B: Backend>(backend: &B, model: &Model<B>) -> Vec<u8> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, l) in LAYER_GROUPS.iter().zip(&model.layers) {
        owned.push((
            format!("{name}.weight"),
            vec![l.fan_in, l.fan_out],
            le_bytes(&backend.read(&l.w)),
        ));
        owned.push((
            format!("{name}.bias"),
            vec![l.fan_out],
            le_bytes(&backend.read(&l.b)),
        ));
    }
    let views = owned.iter().map(|(n, shape, bytes)| {
        (
            n.as_str(),
            TensorView::new(Dtype::F32, shape.clone(), bytes).expect("shape matches data"),
        )
    });
    let meta = HashMap::from([(
        ARCH_KEY.to_string(),
        serde_json::to_string(&model.arch()).expect("arch serializes"),
    )]);
    safetensors::serialize(views, Some(meta)).expect("serializing in memory")
}

/// Save `model` to `path`.
pub fn save<B: Backend>(backend: &B, model: &Model<B>, path: &Path) -> Result<(), WeightsError> {
    let io = |source| WeightsError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Write then rename, so a crash never leaves a half-written model behind.
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, to_bytes(backend, model)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Load a model from `path`; with `expected` set, refuse a file of another architecture.
pub fn load<B: Backend>(
    backend: &B,
    path: &Path,
    expected: Option<Arch>,
) -> Result<Model<B>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.to_owned(),
        source,
    })?;
    from_bytes(backend, &bytes, path, expected)
}

/// Check that `bytes` hold a tandem model (safetensors with its architecture and tensors
/// that parse) without building it; returns its architecture.
pub fn check_bytes(bytes: &[u8]) -> Result<Arch, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let arch_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(ARCH_KEY))
        .ok_or_else(|| format!("no `{ARCH_KEY}` metadata"))?;
    let arch: Arch = serde_json::from_str(arch_json).map_err(|e| e.to_string())?;
    SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    Ok(arch)
}

/// Load a model from safetensors bytes (`path` is only used in errors).
pub fn from_bytes<B: Backend>(
    backend: &B,
    bytes: &[u8],
    path: &Path,
    expected: Option<Arch>,
) -> Result<Model<B>, WeightsError> {
    let (arch, flat) = flat_from_bytes(bytes, path, expected)?;
    from_flat(backend, arch, &flat, path)
}

/// `model`'s parameters in the flat layout: every layer group's weight then bias, in
/// [`LAYER_GROUPS`] order, one `f32` vector ([`flat_len`] long). Written as raw
/// little-endian bytes it is a file a model loads from without decoding anything.
pub fn to_flat<B: Backend>(backend: &B, model: &Model<B>) -> Vec<f32> {
    let mut flat = Vec::with_capacity(model.arch().parameters());
    for l in &model.layers {
        flat.extend(backend.read(&l.w));
        flat.extend(backend.read(&l.b));
    }
    flat
}

/// Length of `arch`'s flat layout ([`to_flat`]).
pub fn flat_len(arch: &Arch) -> usize {
    arch.parameters()
}

/// A model of `arch` from its flat layout ([`to_flat`]), uploaded as it is (`path` is only
/// used in errors).
pub fn from_flat<B: Backend>(
    backend: &B,
    arch: Arch,
    flat: &[f32],
    path: &Path,
) -> Result<Model<B>, WeightsError> {
    if flat.len() != flat_len(&arch) {
        return Err(WeightsError::Format {
            path: path.to_owned(),
            reason: format!(
                "{} parameters, the architecture has {}",
                flat.len(),
                flat_len(&arch)
            ),
        });
    }
    let mut at = 0;
    let layers = arch
        .weight_shapes()
        .iter()
        .map(|&(fan_in, fan_out)| {
            let w = &flat[at..at + fan_in * fan_out];
            let b = &flat[at + fan_in * fan_out..at + fan_in * fan_out + fan_out];
            at += fan_in * fan_out + fan_out;
            Layer::from_host(backend, fan_in, fan_out, w, b)
        })
        .collect();
    Ok(Model::from_layers(arch, layers))
}

/// Decode safetensors bytes into the architecture and the flat layout ([`to_flat`]): parse
/// the header and metadata, check every tensor, convert each value from its bytes.
pub fn flat_from_bytes(
    bytes: &[u8],
    path: &Path,
    expected: Option<Arch>,
) -> Result<(Arch, Vec<f32>), WeightsError> {
    let format = |e: safetensors::SafeTensorError| WeightsError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(format)?;
    let arch_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(ARCH_KEY))
        .ok_or_else(|| WeightsError::NoArch {
            path: path.to_owned(),
        })?;
    let arch: Arch = serde_json::from_str(arch_json).map_err(|e| WeightsError::Format {
        path: path.to_owned(),
        reason: format!("`{ARCH_KEY}` metadata: {e}"),
    })?;
    if let Some(expected) = expected.filter(|e| *e != arch) {
        return Err(WeightsError::ArchMismatch {
            path: path.to_owned(),
            found: arch,
            expected,
        });
    }
    let tensors = SafeTensors::deserialize(bytes).map_err(format)?;
    let read = |name: String, shape: &[usize]| -> Result<Vec<f32>, WeightsError> {
        let err = |reason: String| WeightsError::Tensor {
            path: path.to_owned(),
            name: name.clone(),
            reason,
        };
        let t = tensors.tensor(&name).map_err(|e| err(e.to_string()))?;
        if t.dtype() != Dtype::F32 {
            return Err(err(format!("dtype {:?}, expected F32", t.dtype())));
        }
        if t.shape() != shape {
            return Err(err(format!("shape {:?}, expected {shape:?}", t.shape())));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
    };
    let mut flat = Vec::with_capacity(flat_len(&arch));
    for (name, &(fan_in, fan_out)) in LAYER_GROUPS.iter().zip(&arch.weight_shapes()) {
        flat.extend(read(format!("{name}.weight"), &[fan_in, fan_out])?);
        flat.extend(read(format!("{name}.bias"), &[fan_out])?);
    }
    Ok((arch, flat))
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
