//! Ekya's samplelist source on frames written here: PNG (every row filter; 16-bit and palette
//! ones too) and PGM/PPM decoding, crops resized to the models' shapes, the source pool's split
//! by frame, a scenario camera using it, quoted CSV fields, and errors naming the file and line.

use std::io::Write;
use std::path::Path;

use tandem::data::samplelist;
use tandem::engine::{Scenario, SourcePool};

use super::support::Rng;

/// A PNG of `c`-channel 8-bit pixels, cycling through the five row filters so the decoder
/// meets each one.
fn png(w: usize, h: usize, c: usize, pixels: &[u8]) -> Vec<u8> {
    let stride = w * c;
    let mut raw = Vec::new();
    for y in 0..h {
        let filter = (y % 5) as u8;
        raw.push(filter);
        for x in 0..stride {
            let at = |yy: usize, xx: usize| pixels[yy * stride + xx] as i16;
            let a = if x >= c { at(y, x - c) } else { 0 };
            let b = if y > 0 { at(y - 1, x) } else { 0 };
            let cc = if y > 0 && x >= c { at(y - 1, x - c) } else { 0 };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                _ => {
                    let p = a + b - cc;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - cc).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        cc
                    }
                }
            };
            raw.push((at(y, x) - predicted) as u8);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, if c == 3 { 2 } else { 0 }, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    out
}

fn pnm(w: usize, h: usize, c: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "P{}\n# written by the test\n{w} {h}\n255\n",
        if c == 3 { 6 } else { 5 }
    )
    .into_bytes();
    out.extend_from_slice(pixels);
    out
}

fn random_pixels(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.below(256) as u8).collect()
}

#[test]
fn png_and_pnm_frames_decode_exactly() {
    let dir = super::data::tempdir();
    let mut rng = Rng::new(3);
    for c in [1, 3] {
        let (w, h) = (7, 11);
        let px = random_pixels(&mut rng, w * h * c);
        let plain = {
            let head = format!("P{}\n{w} {h}\n255\n", if c == 3 { 3 } else { 2 });
            let body: Vec<String> = px.iter().map(u8::to_string).collect();
            (head + &body.join(" ")).into_bytes()
        };
        for (name, bytes) in [
            ("f.png", png(w, h, c, &px)),
            ("f.pnm", pnm(w, h, c, &px)),
            ("f.txt", plain),
        ] {
            let path = dir.join(format!("{c}-{name}"));
            std::fs::write(&path, bytes).unwrap();
            let img = samplelist::read_image(&path).unwrap();
            assert_eq!((img.w, img.h, img.c), (w, h, c), "{name}");
            assert_eq!(img.pixels, px, "{name} with {c} channel(s)");
        }
    }
    let jpeg = dir.join("f.jpg");
    std::fs::write(&jpeg, [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
    let e = samplelist::read_image(&jpeg).unwrap_err().to_string();
    assert!(
        e.contains("f.jpg") && e.contains("JPEG is not supported"),
        "{e}"
    );
}

/// Six 40×30 frames on a dark background, each with two boxes filled with their class's
/// colour (class k: red = 80k); frames alternate PNG and PPM. Returns the CSV path.
fn colour_fixture(dir: &Path) -> std::path::PathBuf {
    let (w, h) = (40, 30);
    let mut csv = String::from("idx,class,x0,y0,x1,y1\n");
    for f in 0..6 {
        let mut px = vec![10u8; w * h * 3];
        let boxes = [(f % 3, [2, 3, 14, 20]), ((f + 1) % 3, [20, 5, 38, 29])];
        for (class, [x0, y0, x1, y1]) in boxes {
            for y in y0..y1 {
                for x in x0..x1 {
                    px[(y * w + x) * 3] = 80 * class as u8;
                    px[(y * w + x) * 3 + 1] = 200;
                }
            }
            csv.push_str(&format!("frame{f},{class},{x0},{y0},{x1},{y1}\n"));
        }
        let (name, bytes) = if f % 2 == 0 {
            (format!("frame{f}.png"), png(w, h, 3, &px))
        } else {
            (format!("frame{f}.ppm"), pnm(w, h, 3, &px))
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let path = dir.join("list.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn samplelist_crops_make_a_source_pool_split_by_frame() {
    let dir = super::data::tempdir();
    let csv = colour_fixture(&dir);
    let (crops, frame_of) = samplelist::load(&csv).unwrap();
    assert_eq!((crops.h, crops.w, crops.c, crops.classes), (32, 32, 3, 3));
    assert_eq!(crops.len(), 12);
    for i in 0..crops.len() {
        let img = crops.image(i);
        let red = 80.0 * crops.labels[i] as f32 / 255.0;
        // The box is uniform, so the resized crop is too.
        assert!(
            img.chunks(3)
                .all(|p| (p[0] - red).abs() < 1e-4 && (p[1] - 200.0 / 255.0).abs() < 1e-4)
        );
    }
    assert_eq!(frame_of[0], "frame0");

    let pool = SourcePool::samplelist(&csv).unwrap();
    // Frames 2 and 5 feed the camera, the other four the labelled samples.
    assert_eq!((pool.train.len(), pool.frames.len()), (8, 4));

    // A scenario camera reads it, relative to the scenario file.
    let toml = r#"
name = "footage"
windows = 1
[[cameras]]
name = "street"
source = "samplelist"
samplelist = "list.csv"
train_samples = 8
"#;
    let scenario_path = dir.join("footage.toml");
    std::fs::write(&scenario_path, toml).unwrap();
    let s = Scenario::load(&scenario_path).unwrap();
    let pool = SourcePool::for_camera(&s.cameras[0], s.seed).unwrap();
    assert_eq!(pool.train.len(), 8);
}

#[test]
fn grey_frames_give_28_by_28_grey_crops() {
    let dir = super::data::tempdir();
    let mut csv = String::new();
    for f in 0..3 {
        std::fs::write(
            dir.join(format!("{f}.pgm")),
            pnm(50, 50, 1, &[f as u8 * 50; 2500]),
        )
        .unwrap();
        csv.push_str(&format!("{f}.pgm,{f},0,0,50,50\n"));
    }
    let path = dir.join("grey.csv");
    std::fs::write(&path, csv).unwrap();
    let (crops, _) = samplelist::load(&path).unwrap();
    assert_eq!((crops.h, crops.w, crops.c, crops.classes), (28, 28, 1, 3));
    assert!((crops.image(2)[0] - 100.0 / 255.0).abs() < 1e-6);
}

#[test]
fn bad_rows_name_the_file_and_line() {
    let dir = super::data::tempdir();
    colour_fixture(&dir);
    let cases = [
        ("frame0,1,2,3,4\n", "short.csv:2: 5 fields, expected 6"),
        (
            "frame0,car,2,3,4,5\n",
            "class.csv:2: class `car` is not a class number",
        ),
        ("frame0,1,2,3,x,5\n", "coord.csv:2: x1 `x` is not a number"),
        ("frame0,1,5,3,5,9\n", "empty.csv:2: empty box"),
        (
            "frame0,1,2,3,41,9\n",
            "outside.csv:2: box 2,3,41,9 reaches outside frame `frame0` (40×30 pixels)",
        ),
        (
            "nowhere,1,2,3,4,5\n",
            "missing.csv:2: frame image `nowhere` not found",
        ),
        // A frame outside the CSV's folder is never opened.
        (
            "../frame0,1,2,3,4,5\n",
            "escape.csv:2: frame image `../frame0` is outside the CSV's folder",
        ),
        // An unterminated quote runs to the end of the file: one field.
        ("\"frame0,1,2,3,4,5\n", "quote.csv:2: 1 fields, expected 6"),
    ];
    for (row, want) in cases {
        let name = want.split(':').next().unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("frame1,0,2,3,14,20\n{row}")).unwrap();
        let e = samplelist::load(&path).unwrap_err().to_string();
        assert!(e.contains(want), "got `{e}`, want `{want}`");
    }
}

#[test]
fn quoted_fields_header_and_blank_rows() {
    let dir = super::data::tempdir();
    let px = vec![90u8; 20 * 20];
    for name in ["frame 0, left", "say \"hi\"", "say"] {
        std::fs::write(dir.join(format!("{name}.pgm")), pnm(20, 20, 1, &px)).unwrap();
    }
    // A header in any case, blank rows, spaces around fields, quoted names with a comma and
    // with a doubled quote.
    let csv = "IDX, class, x0, y0, x1, y1\n\n\"frame 0, left\", 1, 0, 0, 10, 10\n  \n\"say \"\"hi\"\"\",0,2,2,12.4,19.6\n";
    let path = dir.join("quoted.csv");
    std::fs::write(&path, csv).unwrap();
    let (crops, from) = samplelist::load(&path).unwrap();
    assert_eq!(from, ["frame 0, left", "say \"hi\""]);
    assert_eq!(crops.labels, [1, 0]);
    // A bad row after the blank ones is named by its line in the file, whatever the line
    // ends, and after a quoted field that spans two lines.
    let bad = format!("{csv}\n\"frame 0, left\",1,0,0,30,10\n");
    let spanning = bad.replacen("\"say \"\"hi\"\"\"", "\"say\n\"", 1);
    for (text, line) in [
        (bad.clone(), 7),
        (bad.replace('\n', "\r\n"), 7),
        (spanning, 8),
    ] {
        std::fs::write(&path, &text).unwrap();
        let e = samplelist::load(&path).unwrap_err().to_string();
        let want = format!("quoted.csv:{line}: ");
        assert!(e.contains(&want), "{text:?}: {e}");
    }
}

/// PNGs the old in-tree decoder refused: 16-bit grey (the high byte of each sample is kept)
/// and a 2-bit palette (expanded to its RGB colours), written by the `png` crate's encoder.
#[test]
fn sixteen_bit_and_palette_pngs_decode_to_8_bit() {
    let dir = super::data::tempdir();
    let write = |name: &str, colour, depth, palette: Option<&[u8]>, data: &[u8]| {
        let path = dir.join(name);
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, 3, 2);
        e.set_color(colour);
        e.set_depth(depth);
        if let Some(p) = palette {
            e.set_palette(p.to_vec());
        }
        e.write_header().unwrap().write_image_data(data).unwrap();
        std::fs::write(&path, out).unwrap();
        samplelist::read_image(&path).unwrap()
    };
    let samples: [u16; 6] = [0, 0x1234, 0xFFFF, 0x8000, 0x00FF, 0xABCD];
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_be_bytes()).collect();
    let img = write(
        "g16.png",
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        None,
        &bytes,
    );
    assert_eq!((img.w, img.h, img.c), (3, 2, 1));
    assert_eq!(img.pixels, [0x00, 0x12, 0xFF, 0x80, 0x00, 0xAB]);

    let palette = [10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220];
    // Indices 0 1 2 / 3 2 1, two bits each, rows padded to a byte.
    let rows = [0b0001_1000, 0b1110_0100];
    let img = write(
        "p2.png",
        png::ColorType::Indexed,
        png::BitDepth::Two,
        Some(&palette),
        &rows,
    );
    assert_eq!((img.w, img.h, img.c), (3, 2, 3));
    let want: Vec<u8> = [0, 1, 2, 3, 2, 1]
        .iter()
        .flat_map(|&i| palette[3 * i..3 * i + 3].to_vec())
        .collect();
    assert_eq!(img.pixels, want);
}
