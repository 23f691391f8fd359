//! The reliability campaign's property tests: every parser and every check the host applies to
//! outside input, fed generated and mutated inputs by proptest. Each property says what must
//! hold for every input — no panic, an error that names the file (and line or field), and
//! whatever is accepted really satisfies the format's rules — and prints how many inputs it
//! tried. Cases per property: 64 here (CI), `PROPTEST_CASES=N` for the campaign
//! (`scripts/reliability.sh`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use tandem::data::samplelist;
use tandem::engine::Scenario;
use tandem::engine::replay::{Profiles, parse_ekya};
use tandem::plugin::types::{PolicyInput, Schedule, StreamSchedule};
use tandem::plugin::validate;
use tandem_plugin_sdk::sample::policy_input;

use super::engine::TINY;
use super::plugins::{guest_bytes, host};

/// Run `property` on `cases` inputs from `strategy` (or `PROPTEST_CASES`), printing the count.
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let tried = AtomicUsize::new(0);
    let result = TestRunner::new(config).run(&strategy, |v| {
        tried.fetch_add(1, Ordering::Relaxed);
        property(v)
    });
    eprintln!(
        "fuzz {name}: {} inputs tried",
        tried.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// A value a mutation can put anywhere: wrong types, edge numbers, paths, control text.
fn odd_json(k: u64) -> Value {
    match k % 12 {
        0 => Value::Null,
        1 => Value::Bool(k & 16 != 0),
        2 => serde_json::json!(-1),
        3 => serde_json::json!(1e308),
        4 => serde_json::json!(-0.0),
        5 => serde_json::json!(u64::MAX),
        6 => serde_json::json!("../../etc/passwd"),
        7 => serde_json::json!("\u{0}\t<script>"),
        8 => serde_json::json!([]),
        9 => serde_json::json!({}),
        10 => serde_json::json!([[1, 2, 3, "x", null]]),
        _ => serde_json::json!((k >> 8) as f64 / 7.0),
    }
}

/// Mutate `v` as `ops` say: each op walks to a random node and replaces, removes or
/// duplicates something there.
fn mutate(v: &mut Value, ops: &[u64]) {
    for &op in ops {
        // Walk down a few levels, choosing children by the op's bits: a JSON pointer.
        let mut k = op;
        let mut pointer = String::new();
        let mut here = &*v;
        for _ in 0..(op % 5) {
            let (step, next) = match here {
                Value::Object(m) if !m.is_empty() => {
                    let (key, next) = m.iter().nth((k as usize) % m.len()).unwrap();
                    (key.replace('~', "~0").replace('/', "~1"), next)
                }
                Value::Array(a) if !a.is_empty() => {
                    let i = (k as usize) % a.len();
                    (i.to_string(), &a[i])
                }
                _ => break,
            };
            pointer.push('/');
            pointer.push_str(&step);
            here = next;
            k = k.rotate_right(7);
        }
        let node = v.pointer_mut(&pointer).expect("the walked path exists");
        match (op >> 40) % 4 {
            0 => *node = odd_json(k),
            1 => match node {
                Value::Object(m) if !m.is_empty() => {
                    let key = m.keys().nth((k as usize) % m.len()).cloned().unwrap();
                    m.remove(&key);
                }
                Value::Array(a) if !a.is_empty() => {
                    a.remove((k as usize) % a.len());
                }
                _ => *node = odd_json(k >> 3),
            },
            2 => match node {
                Value::Array(a) if !a.is_empty() => {
                    let item = a[(k as usize) % a.len()].clone();
                    a.push(item);
                }
                Value::Object(m) => {
                    m.insert(format!("extra{}", k % 3), odd_json(k >> 5));
                }
                _ => *node = odd_json(k >> 4),
            },
            _ => {
                if let Value::Object(m) = node {
                    m.insert(String::new(), odd_json(k));
                } else {
                    *node = odd_json(k >> 2);
                }
            }
        }
    }
}

fn fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ekya");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn scenario_files() {
    let lines: Vec<&str> = TINY.lines().collect();
    let tokens = [
        "-1",
        "0",
        "1e308",
        "nan",
        "inf",
        "-inf",
        "\"x\"",
        "[]",
        "{}",
        "true",
        "4294967296",
        "99999999999999999999",
        "\"../../etc/passwd\"",
        "\"\\u0000\"",
        "1000000000",
        "0.0",
    ];
    // Line edits: replace a value, drop, duplicate or garble a line, cut the text short.
    let edit = (0..lines.len(), 0usize..5, 0..tokens.len(), any::<u16>());
    check("scenario TOML (edited)", 64, vec(edit, 1..5), |edits| {
        let mut ls: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let mut cut = None;
        for (i, kind, t, n) in edits {
            let i = i % ls.len().max(1);
            match kind {
                0 => {
                    if let Some((k, _)) = ls[i].split_once('=') {
                        ls[i] = format!("{k}= {}", tokens[t]);
                    }
                }
                1 => {
                    ls.remove(i);
                }
                2 => {
                    let l = ls[i].clone();
                    ls.insert(i, l);
                }
                3 => ls[i] = format!("{}{}", ls[i], tokens[t]),
                _ => cut = Some(n as usize),
            }
            if ls.is_empty() {
                ls.push(String::new());
            }
        }
        let mut text = ls.join("\n");
        if let Some(n) = cut {
            let n = n % (text.len() + 1);
            text.truncate(text.floor_char_boundary(n));
        }
        match Scenario::parse(&text, Path::new("fuzz.toml")) {
            Ok(s) => {
                prop_assert!(s.windows >= 1 && (1..=1024).contains(&s.gpus));
                prop_assert!(s.window_seconds.is_finite() && s.window_seconds > 0.0);
                prop_assert!(!s.cameras.is_empty());
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("fuzz.toml:"), "{}", msg);
                let line: usize = msg["fuzz.toml:".len()..]
                    .split(':')
                    .next()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(usize::MAX);
                prop_assert!(line <= text.lines().count().max(1), "{}", msg);
            }
        }
        Ok(())
    });
    check(
        "scenario TOML (any text)",
        64,
        vec(any::<char>(), 0..400),
        |chars| {
            let text: String = chars.into_iter().collect();
            if let Err(e) = Scenario::parse(&text, Path::new("fuzz.toml")) {
                prop_assert!(e.to_string().starts_with("fuzz.toml:"));
            }
            Ok(())
        },
    );
}

#[test]
fn replay_files() {
    let ekya: Value = serde_json::from_str(&fixture("city_a.json")).unwrap();
    check(
        "Ekya meta-profile JSON (mutated)",
        64,
        vec(any::<u64>(), 1..6),
        |ops| {
            let mut v = ekya.clone();
            mutate(&mut v, &ops);
            let text = v.to_string();
            match parse_ekya("city_a.json", "city_a", &text) {
                Ok(windows) => {
                    for (_, s) in &windows {
                        for p in &s.retrain {
                            prop_assert!(p.accuracy_after.is_finite() && p.gpu_seconds.is_finite());
                        }
                    }
                }
                Err(e) => prop_assert!(e.to_string().starts_with("city_a.json"), "{}", e),
            }
            Ok(())
        },
    );
    check(
        "Ekya meta-profile (any bytes)",
        64,
        vec(any::<u8>(), 0..300),
        |bytes| {
            let text = String::from_utf8_lossy(&bytes);
            if let Err(e) = parse_ekya("x.json", "x", &text) {
                prop_assert!(e.to_string().starts_with("x.json"));
            }
            Ok(())
        },
    );
    // A `tandem run --report` file: a real one's shape, mutated.
    let report = serde_json::json!([{
        "scenario": "tiny", "policy": "thief",
        "windows": [serde_json::to_value(super::http::window()).unwrap()],
    }]);
    check(
        "tandem report JSON (mutated)",
        64,
        vec(any::<u64>(), 1..6),
        |ops| {
            let mut v = report.clone();
            mutate(&mut v, &ops);
            if let Err(e) = Profiles::from_run_reports("report.json", &v.to_string(), None) {
                let msg = e.to_string();
                prop_assert!(msg.contains("report.json"), "{}", msg);
            }
            Ok(())
        },
    );
}

/// A 40×30 PPM frame next to the CSVs, as in the samplelist tests.
fn frame(dir: &Path) {
    let mut img = b"P6 40 30 255\n".to_vec();
    img.extend(std::iter::repeat_n([120u8, 60, 200], 40 * 30).flatten());
    std::fs::write(dir.join("frame0.ppm"), img).unwrap();
}

#[test]
fn samplelist_csv() {
    let dir = super::data::tempdir();
    frame(&dir);
    let field = prop_oneof![
        (0u32..50).prop_map(|n| n.to_string()),
        Just("-3".to_string()),
        Just("99999999999".to_string()),
        Just("frame0".to_string()),
        Just("../frame0".to_string()),
        Just("/etc/passwd".to_string()),
        Just(String::new()),
        Just("1.5".to_string()),
        Just("nan".to_string()),
    ];
    let row = vec(field, 0..8);
    let n = AtomicUsize::new(0);
    check("samplelist CSV", 64, vec(row, 0..6), |rows| {
        let mut text = String::from("frame0,1,2,3,14,20\n");
        for r in &rows {
            text.push_str(&r.join(","));
            text.push('\n');
        }
        let path = dir.join(format!("fuzz{}.csv", n.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &text).unwrap();
        match samplelist::load(&path) {
            Ok((d, frames)) => {
                prop_assert_eq!(d.len(), frames.len());
                prop_assert!(d.labels.iter().all(|&l| (l as usize) < d.classes));
                prop_assert!(d.images.iter().all(|x| (0.0..=1.0).contains(x)));
            }
            Err(e) => prop_assert!(e.to_string().contains(&*path.to_string_lossy()), "{}", e),
        }
        Ok(())
    });
}

/// Image bytes: a PNM or PNG header with any dimensions, then any body.
fn image_bytes() -> impl Strategy<Value = Vec<u8>> {
    let dims = prop_oneof![
        1u64..64,
        Just(0u64),
        Just(1 << 31),
        Just(u32::MAX as u64),
        Just(1 << 40)
    ];
    let body = vec(any::<u8>(), 0..600);
    (0u8..5, dims.clone(), dims, 0u32..300, body).prop_map(|(kind, w, h, max, body)| {
        let mut out = match kind {
            0 => format!("P5 {w} {h} {max}\n").into_bytes(),
            1 => format!("P6\n# c\n{w} {h}\n{max}\n").into_bytes(),
            2 => format!("P2 {w} {h} {max}\n").into_bytes(),
            3 => {
                let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
                let mut ihdr = Vec::new();
                ihdr.extend((w as u32).to_be_bytes());
                ihdr.extend((h as u32).to_be_bytes());
                ihdr.extend([8, (max % 7) as u8, 0, 0, 0]);
                chunk(&mut png, b"IHDR", &ihdr);
                // Real zlib data of the body, so decoding gets past inflate.
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                std::io::Write::write_all(&mut z, &body).unwrap();
                chunk(&mut png, b"IDAT", &z.finish().unwrap());
                chunk(&mut png, b"IEND", &[]);
                return png;
            }
            _ => Vec::new(),
        };
        out.extend(body);
        out
    })
}

fn chunk(png: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    png.extend((data.len() as u32).to_be_bytes());
    png.extend(kind);
    png.extend(data);
    png.extend([0u8; 4]); // CRC, unchecked
}

#[test]
fn frame_images() {
    let dir = super::data::tempdir();
    let n = AtomicUsize::new(0);
    check("frame images (PNG/PGM/PPM)", 64, image_bytes(), |bytes| {
        let path: PathBuf = dir.join(format!("img{}", n.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, &bytes).unwrap();
        match samplelist::read_image(&path) {
            Ok(img) => prop_assert_eq!(img.pixels.len(), img.w * img.h * img.c),
            Err(e) => prop_assert!(e.to_string().contains(&*path.to_string_lossy())),
        }
        Ok(())
    });
}

/// A policy input and a schedule that may break any rule a schedule has.
fn input_and_schedule() -> impl Strategy<Value = (PolicyInput, Schedule)> {
    let share = prop_oneof![
        0.0..1.2f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.1),
        Just(1.0 + 1e-9),
        Just(0.0),
    ];
    let entry = (
        0usize..5,
        share.clone(),
        share,
        0usize..20,
        0usize..20,
        any::<bool>(),
    );
    let entries = prop_oneof![
        // A schedule that keeps every rule (shares a half GPU per stream at most, offered
        // configurations), then perhaps one entry replaced by an arbitrary one...
        (vec(entry.clone(), 0..2), Just(true)),
        // ...or arbitrary entries.
        (vec(entry, 0..6), Just(false)),
    ];
    (
        1usize..4,
        1u32..3,
        any::<u64>(),
        entries,
        prop::option::of(-0.5..1.5f64),
    )
        .prop_map(|(streams, gpus, seed, (entries, valid), est)| {
            let input = policy_input(streams, gpus, 6, seed);
            let ids: Vec<String> = input.streams.iter().map(|s| s.state.id.clone()).collect();
            let n = ids.len() as f64;
            let mut based: Vec<StreamSchedule> = if valid {
                input
                    .streams
                    .iter()
                    .enumerate()
                    .map(|(i, s)| StreamSchedule {
                        stream_id: s.state.id.clone(),
                        infer_share: 0.5 / n,
                        retrain_share: if i % 2 == 0 { 0.25 / n } else { 0.0 },
                        infer_config: s.infer[i % s.infer.len()].config.name.clone(),
                        retrain_config: (i % 2 == 0)
                            .then(|| s.retrain[i % s.retrain.len()].config.name.clone()),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let arbitrary: Vec<StreamSchedule> = entries
                .into_iter()
                .map(|(i, a, b, ic, rc, retrain)| {
                    let s = input.streams.get(i % (ids.len() + 1));
                    StreamSchedule {
                        stream_id: ids.get(i).cloned().unwrap_or_else(|| "ghost".into()),
                        infer_share: a,
                        retrain_share: b,
                        infer_config: s
                            .and_then(|s| s.infer.get(ic))
                            .map_or("nope".into(), |p| p.config.name.clone()),
                        retrain_config: retrain.then(|| {
                            s.and_then(|s| s.retrain.get(rc))
                                .map_or("nope".into(), |p| p.config.name.clone())
                        }),
                    }
                })
                .collect();
            let streams = if valid {
                if let Some(e) = arbitrary.into_iter().next() {
                    let i = seed as usize % based.len();
                    based[i] = e;
                }
                based
            } else {
                arbitrary
            };
            let schedule = Schedule {
                streams,
                estimated_accuracy: est,
            };
            (input, schedule)
        })
}

#[test]
fn policy_outputs() {
    let (accepted, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    check(
        "policy outputs (schedules)",
        256,
        input_and_schedule(),
        |(input, s)| {
            if validate::schedule(&input, &s).is_err() {
                refused.fetch_add(1, Ordering::Relaxed);
            } else {
                accepted.fetch_add(1, Ordering::Relaxed);
                // Accepted: every rule holds, checked here independently.
                let mut ids: Vec<&str> = s.streams.iter().map(|e| e.stream_id.as_str()).collect();
                ids.sort_unstable();
                let mut want: Vec<&str> =
                    input.streams.iter().map(|x| x.state.id.as_str()).collect();
                want.sort_unstable();
                prop_assert_eq!(ids, want);
                let mut total = 0.0;
                for e in &s.streams {
                    let st = input
                        .streams
                        .iter()
                        .find(|x| x.state.id == e.stream_id)
                        .unwrap();
                    for share in [e.infer_share, e.retrain_share] {
                        prop_assert!(share.is_finite() && (0.0..=1.0 + 1e-6).contains(&share));
                        total += share;
                    }
                    prop_assert!(st.infer.iter().any(|p| p.config.name == e.infer_config));
                    match &e.retrain_config {
                        Some(c) => prop_assert!(st.retrain.iter().any(|p| &p.config.name == c)),
                        None => prop_assert!(e.retrain_share == 0.0),
                    }
                }
                prop_assert!(total <= f64::from(input.gpus) + 1e-6);
            }
            Ok(())
        },
    );
    // Both sides of the check were exercised.
    let (a, r) = (accepted.into_inner(), refused.into_inner());
    eprintln!("fuzz policy outputs: {a} accepted, {r} refused");
    assert!(a > 0 && r > 0, "{a} accepted, {r} refused");
}

#[test]
fn plugin_uploads() {
    // A real component, mutated: flipped, cut, spliced bytes. Loading never panics, and what
    // loads still describes itself.
    let good = guest_bytes("test-misbehave");
    let op = (any::<u32>(), any::<u8>(), 0u8..3);
    check("plugin components (mutated)", 32, vec(op, 1..4), |ops| {
        let mut bytes = good.clone();
        for (at, b, kind) in ops {
            let i = at as usize % bytes.len().max(1);
            match kind {
                0 => bytes[i] ^= b | 1,
                1 => bytes.truncate(i),
                _ => bytes.splice(i..i, [b, b ^ 0x5a]).for_each(drop),
            }
            if bytes.is_empty() {
                break;
            }
        }
        if let Ok(p) = host().load("mutated.wasm", &bytes) {
            prop_assert!(!p.name().is_empty());
        }
        Ok(())
    });
    check(
        "plugin files (any bytes)",
        64,
        vec(any::<u8>(), 0..200),
        |mut bytes| {
            if bytes.len() > 8 && bytes[0] & 1 == 0 {
                bytes[..8].copy_from_slice(b"\0asm\x0d\0\x01\0");
            }
            let e = host().load("junk.wasm", &bytes).err();
            prop_assert!(e.is_some_and(|e| e.to_string().contains("junk.wasm")));
            Ok(())
        },
    );
}

#[test]
fn upload_route() {
    // The dashboard's upload, by bearer token, with any bytes (mostly near a component):
    // answered 4xx with the reason or 2xx/3xx, never a server error.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = super::data::tempdir();
    let state = rt
        .block_on(tandem::http::AppState::open(
            &dir,
            super::http::TOKEN.into(),
            tandem::http::scenario_choices(None),
        ))
        .unwrap();
    let app = tandem::http::app(state);
    let good = guest_bytes("test-misbehave");
    let body = (any::<bool>(), vec(any::<u8>(), 0..64), any::<u32>());
    check("dashboard uploads", 32, body, |(near, junk, at)| {
        let bytes = if near {
            let mut b = good.clone();
            let i = at as usize % b.len();
            b.splice(i..i, junk).for_each(drop);
            b
        } else {
            junk
        };
        let req = super::http::multipart("/plugins/upload", None, true, "", &bytes);
        let resp = rt
            .block_on(tower::ServiceExt::oneshot(app.clone(), req))
            .unwrap();
        prop_assert!(!resp.status().is_server_error(), "{}", resp.status());
        Ok(())
    });
}
