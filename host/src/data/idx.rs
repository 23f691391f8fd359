//! Reader for IDX files (the format of MNIST and Fashion-MNIST), plain or gzip-compressed.

use std::io::Read;
use std::path::Path;

use super::DataError;

/// The contents of an IDX file of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Read an IDX file of unsigned bytes with `expected_dims` dimensions. Files ending in `.gz`
/// are decompressed.
pub fn read(path: &Path, expected_dims: u8) -> Result<IdxArray, DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse(path, &bytes, expected_dims)
}

/// Parse IDX bytes (already decompressed); `path` is only used in errors.
pub fn parse(path: &Path, bytes: &[u8], expected_dims: u8) -> Result<IdxArray, DataError> {
    let expected_magic = 0x0000_0800 | expected_dims as u32;
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected: 4,
            found: bytes.len(),
        });
    }
    let magic = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    if magic != expected_magic {
        return Err(DataError::BadMagic {
            path: path.to_owned(),
            found: magic,
            expected: expected_magic,
            dims: expected_dims,
        });
    }
    let header = 4 + 4 * expected_dims as usize;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = (0..expected_dims as usize)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::Dimensions {
            path: path.to_owned(),
            what: format!("{dims:?} overflows"),
        })?;
    let body = &bytes[header..];
    if body.len() < len {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected: len,
            found: body.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: body[..len].to_vec(),
    })
}
