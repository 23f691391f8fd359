//! Ekya's samplelist source, for users with real footage: a CSV with one row per object,
//! `idx,class,x0,y0,x1,y1`, where `idx` names the frame image (in the CSV's folder) and the
//! box is in pixels (x1, y1 exclusive). Each box is cropped from its frame and resized to the
//! shape the models take: 28×28 grey when every frame is grey (Fashion-MNIST's shape), 32×32
//! colour otherwise (the synthetic source's), so samplelist cameras can sit beside the others.
//!
//! Frame images are binary or plain PGM/PPM (`P2`, `P3`, `P5`, `P6`, 8-bit, read here) or PNG
//! (any colour type, bit depth and interlacing, decoded by the `png` crate to 8-bit samples).
//! `idx` may carry its extension; if it does not, `.png`, `.ppm`, `.pgm` are tried in that
//! order. JPEG is not supported: convert frames first (e.g. `mogrify -format png *.jpg`). The
//! CSV is read by the `csv` crate: fields may be quoted, and a header row is allowed.

use std::collections::HashMap;
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

/// Parse the CSV text (`path` only names it in errors). Fields may be quoted (a frame name
/// with a comma in it); blank rows are skipped; a first row starting `idx` is a header.
fn parse_rows(path: &Path, text: &str) -> Result<Vec<Row>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter {
        text: text.as_bytes(),
        at: 0,
        line: 1,
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.line_at(p));
            bad_row(path, line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| lines.line_at(p));
        if record.iter().all(str::is_empty) {
            continue;
        }
        if line == 1 && record[0].eq_ignore_ascii_case("idx") {
            continue;
        }
        rows.push(parse_row(path, line, &record)?);
    }
    if rows.is_empty() {
        return Err(bad_row(path, 1, "no object rows"));
    }
    Ok(rows)
}

/// The file line each record starts on. The csv reader's positions start where the record
/// before ended, so they fall short by the blank lines in between (csv 1.4 counts neither
/// their lines nor their bytes): the line breaks at a position are skipped and counted here.
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl LineCounter<'_> {
    /// Records must come in order.
    fn line_at(&mut self, pos: &csv::Position) -> usize {
        let mut start = (pos.byte() as usize).max(self.at);
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        self.line += self.text[self.at..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.at = start;
        self.line
    }
}

/// One object row: `idx,class,x0,y0,x1,y1`.
fn parse_row(path: &Path, line: usize, cols: &csv::StringRecord) -> Result<Row, DataError> {
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
            format!("class `{}` is not a class number (0-255)", &cols[1]),
        )
    })?;
    let mut bbox = [0usize; 4];
    for (k, name) in ["x0", "y0", "x1", "y1"].iter().enumerate() {
        let v = &cols[2 + k];
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
    Ok(Row {
        line,
        frame: cols[0].to_string(),
        class,
        bbox,
    })
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
    let bad = |e: png::DecodingError| bad_image(path, format!("PNG: {e}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // Palettes and bit depths below 8 expand to 8-bit samples; 16-bit samples keep their high
    // byte: the models see 8-bit pixels.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(bad)?;
    let (w, h) = (reader.info().width, reader.info().height);
    if w as usize > MAX_SIDE || h as usize > MAX_SIDE {
        return Err(bad_image(
            path,
            format!("unsupported size {w}×{h} (at most {MAX_SIDE} pixels a side)"),
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad_image(path, "PNG too large to decode"))?;
    let mut img = vec![0u8; size];
    let frame = reader.next_frame(&mut img).map_err(bad)?;
    img.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    // Alpha is dropped: a crop is classified as it looks.
    let c = if channels >= 3 { 3 } else { 1 };
    let pixels = img
        .chunks_exact(channels)
        .flat_map(|p| p[..c].to_vec())
        .collect();
    Ok(Image {
        w: frame.width as usize,
        h: frame.height as usize,
        c,
        pixels,
    })
}
