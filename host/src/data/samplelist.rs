//! Ekya's samplelist source, for users with real footage: a CSV with one row per object,
//! `idx,class,x0,y0,x1,y1`, where `idx` names the frame image (in the CSV's folder) and the
//! box is in pixels (x1, y1 exclusive). Each box is cropped from its frame and resized to the
//! shape the models take: 28×28 grey when every frame is grey (Fashion-MNIST's shape), 32×32
//! colour otherwise (the synthetic source's), so samplelist cameras can sit beside the others.
//!
//! Frame images are binary or plain PGM/PPM (`P2`, `P3`, `P5`, `P6`, 8-bit) or PNG (8-bit
//! grey, grey+alpha, RGB or RGBA, not interlaced), decoded here with the zlib inflater the
//! project already has, so this source adds no dependency. `idx` may carry its extension; if
//! it does not, `.png`, `.ppm`, `.pgm` are tried in that order. JPEG is not supported:
//! convert frames first (e.g. `mogrify -format png *.jpg`). A header row is allowed.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, Dataset, drift};

/// A decoded frame: 8-bit samples, `c` per pixel (1 grey, 3 colour).
#[derive(Debug, Clone)]
pub struct Image {
    pub w: usize,
    pub h: usize,
    pub c: usize,
    pub pixels: Vec<u8>,
}

fn bad_row(path: &Path, line: usize, message: impl Into<String>) -> DataError {
    DataError::Samplelist {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

fn bad_image(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Image {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// One object row of the CSV.
struct Row {
    line: usize,
    frame: String,
    class: u8,
    bbox: [usize; 4],
}

/// Parse the CSV text (`path` only names it in errors).
fn parse_rows(path: &Path, text: &str) -> Result<Vec<Row>, DataError> {
    let mut rows = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let cols: Vec<&str> = raw.split(',').map(str::trim).collect();
        if line == 1 && cols.first().is_some_and(|c| c.eq_ignore_ascii_case("idx")) {
            continue;
        }
        if cols.len() != 6 {
            return Err(bad_row(
                path,
                line,
                format!("{} fields, expected 6: idx,class,x0,y0,x1,y1", cols.len()),
            ));
        }
        if cols[0].is_empty() {
            return Err(bad_row(path, line, "idx (the frame image) is empty"));
        }
        let class: u8 = cols[1].parse().map_err(|_| {
            bad_row(
                path,
                line,
                format!("class `{}` is not a class number (0-255)", cols[1]),
            )
        })?;
        let mut bbox = [0usize; 4];
        for (k, name) in ["x0", "y0", "x1", "y1"].iter().enumerate() {
            let v = cols[2 + k];
            // Boxes from detectors often come as floats: whole pixels are what is cropped.
            let x: f64 = v
                .parse()
                .map_err(|_| bad_row(path, line, format!("{name} `{v}` is not a number")))?;
            if !(x.is_finite() && x >= 0.0) {
                return Err(bad_row(
                    path,
                    line,
                    format!("{name} {v} is not a non-negative pixel coordinate"),
                ));
            }
            bbox[k] = x.round() as usize;
        }
        if bbox[2] <= bbox[0] || bbox[3] <= bbox[1] {
            return Err(bad_row(
                path,
                line,
                format!(
                    "empty box: x0,y0,x1,y1 = {},{},{},{} (need x1 > x0 and y1 > y0)",
                    bbox[0], bbox[1], bbox[2], bbox[3]
                ),
            ));
        }
        rows.push(Row {
            line,
            frame: cols[0].to_string(),
            class,
            bbox,
        });
    }
    if rows.is_empty() {
        return Err(bad_row(path, 1, "no object rows"));
    }
    Ok(rows)
}

/// The frame image file `idx` names, next to the CSV.
fn frame_path(dir: &Path, idx: &str) -> Option<PathBuf> {
    let direct = dir.join(idx);
    if direct.extension().is_some() && direct.is_file() {
        return Some(direct);
    }
    ["png", "ppm", "pgm"]
        .iter()
        .map(|ext| dir.join(format!("{idx}.{ext}")))
        .find(|p| p.is_file())
}

/// Read a samplelist: every object crop as a labelled sample, and the frame each came from.
pub fn load(csv: &Path) -> Result<(Dataset, Vec<String>), DataError> {
    let text = std::fs::read_to_string(csv).map_err(|source| DataError::Io {
        path: csv.to_owned(),
        source,
    })?;
    let rows = parse_rows(csv, &text)?;
    let dir = csv.parent().unwrap_or(Path::new("."));
    let mut frames: HashMap<String, Image> = HashMap::new();
    for r in &rows {
        if frames.contains_key(&r.frame) {
            continue;
        }
        if !super::inside_folder(Path::new(&r.frame)) {
            return Err(bad_row(
                csv,
                r.line,
                format!("frame image `{}` is outside the CSV's folder", r.frame),
            ));
        }
        let path = frame_path(dir, &r.frame).ok_or_else(|| {
            bad_row(
                csv,
                r.line,
                format!(
                    "frame image `{}` not found in {} (tried it as named and with .png, .ppm, .pgm)",
                    r.frame,
                    dir.display()
                ),
            )
        })?;
        frames.insert(r.frame.clone(), read_image(&path)?);
    }
    let colour = frames.values().any(|f| f.c == 3);
    let (side, c) = if colour { (32, 3) } else { (28, 1) };
    let classes = rows.iter().map(|r| r.class as usize + 1).max().unwrap_or(1);
    let mut out = Dataset::empty(side, side, c, classes);
    let mut from = Vec::with_capacity(rows.len());
    for r in &rows {
        let img = &frames[&r.frame];
        let [x0, y0, x1, y1] = r.bbox;
        if x1 > img.w || y1 > img.h {
            return Err(bad_row(
                csv,
                r.line,
                format!(
                    "box {x0},{y0},{x1},{y1} reaches outside frame `{}` ({}×{} pixels)",
                    r.frame, img.w, img.h
                ),
            ));
        }
        let (cw, ch) = (x1 - x0, y1 - y0);
        let mut crop = Dataset::empty(ch, cw, c, classes);
        let mut pixels = Vec::with_capacity(cw * ch * c);
        for y in y0..y1 {
            for x in x0..x1 {
                let p = &img.pixels[(y * img.w + x) * img.c..(y * img.w + x + 1) * img.c];
                // Grey frames among colour ones are replicated over the three channels.
                for k in 0..c {
                    pixels.push(p[k.min(img.c - 1)] as f32 / 255.0);
                }
            }
        }
        crop.push(&pixels, r.class);
        let resized = drift::resize(&crop, side, side);
        out.push(resized.image(0), r.class);
        from.push(r.frame.clone());
    }
    Ok((out, from))
}

/// Decode a PGM/PPM or PNG frame.
pub fn read_image(path: &Path) -> Result<Image, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(path, &bytes)
    } else if bytes.first() == Some(&b'P') {
        decode_pnm(path, &bytes)
    } else {
        Err(bad_image(
            path,
            "not a PNG, PGM or PPM image (JPEG is not supported: convert frames to PNG)",
        ))
    }
}

/// The longest side of a frame image accepted: far above any camera's, and small enough that
/// sizes never overflow and a header cannot ask for an absurd allocation.
const MAX_SIDE: usize = 16384;

fn decode_pnm(path: &Path, bytes: &[u8]) -> Result<Image, DataError> {
    let (c, binary) = match bytes.get(..2) {
        Some(b"P2") => (1, false),
        Some(b"P5") => (1, true),
        Some(b"P3") => (3, false),
        Some(b"P6") => (3, true),
        _ => return Err(bad_image(path, "not a PGM/PPM (P2, P3, P5 or P6) image")),
    };
    // Header: width, height, maxval, separated by whitespace and `#` comments.
    let mut pos = 2;
    let mut header = Vec::new();
    let token = |pos: &mut usize| -> Option<usize> {
        loop {
            match bytes.get(*pos)? {
                b'#' => {
                    while bytes.get(*pos).is_some_and(|b| *b != b'\n') {
                        *pos += 1;
                    }
                }
                b if b.is_ascii_whitespace() => *pos += 1,
                _ => break,
            }
        }
        let start = *pos;
        while bytes.get(*pos).is_some_and(|b| b.is_ascii_digit()) {
            *pos += 1;
        }
        std::str::from_utf8(&bytes[start..*pos]).ok()?.parse().ok()
    };
    for what in ["width", "height", "maxval"] {
        header.push(
            token(&mut pos)
                .ok_or_else(|| bad_image(path, format!("bad or missing {what} in the header")))?,
        );
    }
    let (w, h, max) = (header[0], header[1], header[2]);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || max == 0 || max > 255 {
        return Err(bad_image(
            path,
            format!(
                "unsupported size {w}×{h} or maxval {max} (8-bit images, at most {MAX_SIDE} pixels a side)"
            ),
        ));
    }
    let n = w * h * c;
    let scale = |v: usize| (v.min(max) * 255 / max) as u8;
    let pixels = if binary {
        // Exactly one whitespace byte separates the header from the samples.
        let data = bytes
            .get(pos + 1..pos + 1 + n)
            .ok_or_else(|| bad_image(path, format!("truncated: {n} samples expected")))?;
        data.iter().map(|&v| scale(v as usize)).collect()
    } else {
        // Each sample takes at least two bytes of text: a header cannot reserve more.
        let mut v = Vec::with_capacity(n.min(bytes.len() / 2));
        for _ in 0..n {
            let x = token(&mut pos)
                .ok_or_else(|| bad_image(path, format!("truncated: {n} samples expected")))?;
            v.push(scale(x));
        }
        v
    };
    Ok(Image { w, h, c, pixels })
}

fn decode_png(path: &Path, bytes: &[u8]) -> Result<Image, DataError> {
    let mut pos = 8;
    let mut ihdr = None;
    let mut idat = Vec::new();
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = bytes
            .get(pos + 8..pos + 8 + len)
            .ok_or_else(|| bad_image(path, "truncated PNG chunk"))?;
        match kind {
            b"IHDR" => ihdr = Some(data.to_vec()),
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        pos += 12 + len; // length, type, data, CRC
    }
    let hd = ihdr.ok_or_else(|| bad_image(path, "PNG without an IHDR chunk"))?;
    if hd.len() < 13 {
        return Err(bad_image(path, "PNG IHDR chunk too short"));
    }
    let w = u32::from_be_bytes(hd[0..4].try_into().expect("4 bytes")) as usize;
    let h = u32::from_be_bytes(hd[4..8].try_into().expect("4 bytes")) as usize;
    let (depth, colour, interlace) = (hd[8], hd[9], hd[12]);
    let channels = match colour {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => 0,
    };
    if depth != 8
        || channels == 0
        || interlace != 0
        || w == 0
        || h == 0
        || w > MAX_SIDE
        || h > MAX_SIDE
    {
        return Err(bad_image(
            path,
            format!(
                "unsupported PNG (bit depth {depth}, colour type {colour}, interlace {interlace}): 8-bit grey, grey+alpha, RGB or RGBA, not interlaced"
            ),
        ));
    }
    let stride = w * channels;
    // Inflate no more than the image holds: a small file cannot expand without bound.
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .take((h * (stride + 1)) as u64)
        .read_to_end(&mut raw)
        .map_err(|e| bad_image(path, format!("PNG image data: {e}")))?;
    if raw.len() < h * (stride + 1) {
        return Err(bad_image(path, "PNG image data is truncated"));
    }
    // Undo the per-row filters (PNG spec, section 9).
    let mut img = vec![0u8; h * stride];
    for y in 0..h {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                img[y * stride + x - channels]
            } else {
                0
            };
            let b = if y > 0 { img[(y - 1) * stride + x] } else { 0 };
            let cc = if y > 0 && x >= channels {
                img[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => paeth(a, b, cc),
                f => return Err(bad_image(path, format!("PNG row {y}: unknown filter {f}"))),
            };
            img[y * stride + x] = line[x].wrapping_add(predicted);
        }
    }
    // Alpha is dropped: a crop is classified as it looks.
    let c = if channels >= 3 { 3 } else { 1 };
    let pixels = img
        .chunks_exact(channels)
        .flat_map(|p| p[..c].to_vec())
        .collect();
    Ok(Image { w, h, c, pixels })
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = a as i16 + b as i16 - c as i16;
    let (pa, pb, pc) = (
        (p - a as i16).abs(),
        (p - b as i16).abs(),
        (p - c as i16).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
