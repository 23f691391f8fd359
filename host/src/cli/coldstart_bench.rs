//! `tandem bench coldstart`: time to first inference of a stream brought back from zero,
//! over `--n` cold starts of each kind, interleaved: (a) cold with nothing prepared (the
//! slow path), (b) cold from the preprocessed artifacts, (c) pre-warmed; with the per-step
//! breakdown, and a retraining job's time to its first batch after each kind of wake-up.
//!
//! The stream is a camera of the scenario (default: `fashion-4cam-traffic`'s first camera,
//! its model's size, its memory capacity filled from its windows, one window of labels that
//! arrived while cold, the scenario's policy, configuration-space and estimator plugins; the
//! synthetic source when Fashion-MNIST is not installed). Its weights are freshly
//! initialised: no step's time depends on their values. The stream's files stay in the OS page
//! cache between scale-down and wake-up unless `--from-disk` evicts them (and, for the slow
//! path, the source images and plugin components) before every wake-up.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::cli::backend::{self, BackendChoice, WithBackend};
use crate::compute::Backend;
use crate::data::{Dataset, fashion};
use crate::engine::lifecycle::{
    Bytes, ColdStart, FirstBatch, Lifecycle, Replay, Resident, Step, measure,
};
use crate::engine::scenario::{Scenario, SourceKind};
use crate::engine::stream::split;
use crate::engine::{Camera, SourcePool};
use crate::model::{Arch, Model, TrainConfig, Trainer};
use crate::plugin::Catalog;

/// The default stream's scenario, embedded so the bench runs from any directory.
const DEFAULT_SCENARIO: &str = include_str!("../../../examples/fashion-4cam-traffic.toml");

#[derive(clap::Args, Clone)]
pub struct ColdstartArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    backend: BackendChoice,
    /// Cold starts of each kind.
    #[arg(long, default_value_t = 30)]
    n: usize,
    /// The scenario whose camera is the stream [default: examples/fashion-4cam-traffic.toml].
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Which camera of it (by position).
    #[arg(long, default_value_t = 0)]
    camera: usize,
    /// Where plugins live (the stream's files go to a temporary directory).
    #[arg(long, default_value = ".tandem")]
    data_dir: PathBuf,
    /// Evict the files a wake-up reads from the OS page cache before each one (Linux).
    #[arg(long)]
    from_disk: bool,
}

pub fn run(args: ColdstartArgs) -> anyhow::Result<()> {
    let (json, choice) = (args.json, args.backend);
    let report = backend::with_backend(choice, Bench(args))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

struct Bench(ColdstartArgs);

/// The stream every cold start brings back, and what it needs.
struct Stream<B: Backend> {
    scenario: Scenario,
    camera: Camera,
    resident: Resident<B>,
    first: Dataset,
    /// Files the slow path reads besides the stream's own (evicted with `--from-disk`).
    sources: Vec<PathBuf>,
}

/// One kind of cold start's samples.
#[derive(Default)]
struct Samples {
    total: Vec<f64>,
    steps: Vec<Vec<(Step, f64)>>,
    retrain: Vec<f64>,
    scale_down: Vec<f64>,
    disk: u64,
}

impl WithBackend for Bench {
    type Output = Value;

    fn run<B: Backend>(self, be: &B) -> anyhow::Result<Value> {
        let args = self.0;
        anyhow::ensure!(args.n >= 1, "--n: at least one cold start");
        let catalog = Catalog::open(&args.data_dir)?;
        let stream = stream(be, &args, &catalog)?;
        let root = std::env::temp_dir().join(format!("tandem-coldstart-{}", std::process::id()));
        let slow = Lifecycle::new(&root, catalog.host.clone(), false);
        let fast = Lifecycle::new(&root, catalog.host.clone(), true);
        let expected = stream.resident.model.duplicate(be).predict(
            be,
            &stream.first.images,
            shape(&stream.first),
        );
        let bar = progress(args.n, args.json);
        let (mut a, mut b, mut c) = (Samples::default(), Samples::default(), Samples::default());
        let mut prewarm_load = Vec::new();
        let mut warnings = Vec::new();
        for _ in 0..args.n {
            for (lc, id, samples) in [(&slow, "slow", &mut a), (&fast, "preprocessed", &mut b)] {
                let start = cold_start(be, &stream, lc, id, samples, args.from_disk)?;
                check(&start, &expected, &mut warnings)?;
            }
            let (start, load) = prewarmed(be, &stream, &fast, &mut c, args.from_disk)?;
            check(&start, &expected, &mut warnings)?;
            prewarm_load.push(load);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let _ = std::fs::remove_dir_all(&root);
        let bytes = warm_bytes(be, &stream)?;
        let kernels = fresh_context(be, &stream)?;
        Ok(report(
            be,
            &args,
            &stream,
            [&a, &b, &c],
            (prewarm_load, bytes, kernels, warnings),
        ))
    }
}

/// The stream: the camera's memory filled from its windows as the window loop fills it,
/// one window of labels that arrived while it was cold, its plugins compiled for itself.
fn stream<B: Backend>(
    be: &B,
    args: &ColdstartArgs,
    catalog: &Catalog,
) -> anyhow::Result<Stream<B>> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::parse(DEFAULT_SCENARIO, Path::new("fashion-4cam-traffic.toml"))?,
    };
    if !fashion::is_installed() {
        eprintln!("Fashion-MNIST is not installed: the cameras use the synthetic source");
        for cam in &mut scenario.cameras {
            if cam.source == SourceKind::FashionMnist {
                cam.source = SourceKind::Synthetic;
            }
        }
    }
    let spec = scenario
        .cameras
        .get(args.camera)
        .with_context(|| {
            format!(
                "--camera {}: the scenario has {}",
                args.camera,
                scenario.cameras.len()
            )
        })?
        .clone();
    let mut sources = Vec::new();
    if spec.source == SourceKind::FashionMnist {
        for f in [
            "train-images-idx3",
            "train-labels-idx1",
            "t10k-images-idx3",
            "t10k-labels-idx1",
        ] {
            sources.push(fashion::data_dir().join(format!("{f}-ubyte.gz")));
        }
    }
    let pool = SourcePool::for_camera(&spec, scenario.seed)?;
    let arch = Arch {
        in_channels: pool.train.c,
        channels: scenario.channels.map(|c| c as usize),
        hidden: scenario.hidden as usize,
        classes: pool.train.classes,
    };
    let camera = Camera {
        index: args.camera,
        spec,
        pool,
    };
    let plugins = measure::stream_plugins(catalog, &scenario)?;
    sources.extend(plugins.iter().map(|p| p.component.clone()));
    let first = measure::first_objects(&camera);
    Ok(Stream {
        resident: measure::late_resident(
            &scenario,
            &camera,
            Model::new(be, arch, scenario.seed),
            plugins,
        ),
        scenario,
        camera,
        first,
        sources,
    })
}

fn shape(d: &Dataset) -> (usize, usize, usize) {
    (d.len(), d.h, d.w)
}

fn first<B: Backend>(s: &Stream<B>) -> FirstBatch<'_> {
    FirstBatch {
        images: &s.first.images,
        shape: shape(&s.first),
    }
}

fn replay<B: Backend>(s: &Stream<B>) -> Replay<'_> {
    Replay {
        scenario: &s.scenario,
        camera: s.camera.index,
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Scale the stream down with `lc` and wake it cold; then its retraining job's first batch.
fn cold_start<B: Backend>(
    be: &B,
    s: &Stream<B>,
    lc: &Lifecycle,
    id: &str,
    samples: &mut Samples,
    from_disk: bool,
) -> anyhow::Result<ColdStart> {
    let t = Instant::now();
    let cold = lc.scale_down(be, id, measure::duplicate(be, &s.resident))?;
    samples.scale_down.push(ms(t));
    samples.disk = cold.disk_bytes();
    if from_disk {
        evict(cold.dir(), &s.sources)?;
    }
    let t = Instant::now();
    let (mut resident, start) = lc.wake(be, cold, replay(s), first(s))?;
    first_batch(be, &mut resident);
    samples.retrain.push(ms(t));
    samples.total.push(start.total_ms());
    samples.steps.push(start.steps.clone());
    Ok(start)
}

/// Scale down with preprocessing, pre-warm (timed apart: ahead of activity), wake.
fn prewarmed<B: Backend>(
    be: &B,
    s: &Stream<B>,
    lc: &Lifecycle,
    samples: &mut Samples,
    from_disk: bool,
) -> anyhow::Result<(ColdStart, f64)> {
    let t = Instant::now();
    let cold = lc.scale_down(be, "prewarmed", measure::duplicate(be, &s.resident))?;
    samples.scale_down.push(ms(t));
    samples.disk = cold.disk_bytes();
    if from_disk {
        evict(cold.dir(), &s.sources)?;
    }
    let p = lc.prewarm(cold, replay(s))?;
    let load = p.load.total_ms();
    let t = Instant::now();
    let (mut resident, start) = lc.wake_prewarmed(be, p, first(s))?;
    first_batch(be, &mut resident);
    samples.retrain.push(ms(t));
    samples.total.push(start.total_ms());
    samples.steps.push(start.steps.clone());
    Ok((start, load))
}

/// A retraining job's first batch after wake-up: the labels that arrived while cold (the
/// part to retrain on) with the memory, the default configuration (all layers, batch 64).
fn first_batch<B: Backend>(be: &B, r: &mut Resident<B>) {
    let mut data = split(&r.pending[0].samples).0;
    data.extend(r.memory.samples());
    let mut trainer = Trainer::new(&data, &TrainConfig::default());
    trainer.step(be, &mut r.model, &data);
}

/// Every wake-up serves the stream's model: its first inference predicts what the model
/// scaled down would have; warnings (there should be none) are kept for the report.
fn check(start: &ColdStart, expected: &[u8], warnings: &mut Vec<String>) -> anyhow::Result<()> {
    anyhow::ensure!(
        start.predictions == expected,
        "{:?} wake-up: the first inference differs from the model scaled down",
        start.path
    );
    for w in &start.warnings {
        if !warnings.contains(w) {
            warnings.push(w.clone());
        }
    }
    Ok(())
}

/// Drop `dir`'s files and `sources` from the OS page cache, so the next read goes to disk.
#[cfg(target_os = "linux")]
fn evict(dir: &Path, sources: &[PathBuf]) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let own = std::fs::read_dir(dir)?.flatten().map(|e| e.path());
    for path in own.chain(sources.iter().cloned()) {
        let f = std::fs::File::open(&path).with_context(|| path.display().to_string())?;
        // Dirty pages are not dropped: write them back first.
        let _ = f.sync_data();
        // SAFETY: a plain system call on an open descriptor; it only advises the kernel.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        anyhow::ensure!(rc == 0, "{}: posix_fadvise failed ({rc})", path.display());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn evict(_: &Path, _: &[PathBuf]) -> anyhow::Result<()> {
    anyhow::bail!("--from-disk needs Linux (posix_fadvise)")
}

/// The warm stream's resident bytes after a first inference and a first training batch.
fn warm_bytes<B: Backend>(be: &B, s: &Stream<B>) -> anyhow::Result<Bytes> {
    let mut r = measure::duplicate(be, &s.resident);
    r.model.predict(be, &s.first.images, shape(&s.first));
    first_batch(be, &mut r);
    r.model.predict(be, &s.first.images, shape(&s.first));
    Ok(r.bytes(be))
}

/// On wgpu: the first inference of a process (a fresh device: every kernel pipeline compiled)
/// against one in a running process. `None` on other backends.
fn fresh_context<B: Backend>(be: &B, s: &Stream<B>) -> anyhow::Result<Option<Value>> {
    if be.kind() != crate::compute::BackendKind::Wgpu {
        return Ok(None);
    }
    let flat = crate::model::weights::to_flat(be, &s.resident.model);
    let arch = s.resident.model.arch();
    let run = |be: &crate::gpu::WgpuBackend| -> anyhow::Result<f64> {
        let mut m = crate::model::weights::from_flat(be, arch, &flat, Path::new("bench"))?;
        let t = Instant::now();
        m.predict(be, &s.first.images, shape(&s.first));
        Ok(ms(t))
    };
    let mut fresh = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..3 {
        let be = crate::gpu::WgpuBackend::new(true)?;
        fresh.push(run(&be)?);
        warm.push(run(&be)?);
    }
    Ok(Some(json!({
        "fresh_device_first_inference_ms": median(fresh),
        "warm_device_first_inference_ms": median(warm),
    })))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nearest-rank percentile (p99 of 30 samples is the largest).
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Each step's median over the samples (0 where it did not run).
fn steps(s: &Samples) -> Value {
    let mut out = serde_json::Map::new();
    for step in Step::ALL {
        let per: Vec<f64> = s
            .steps
            .iter()
            .map(|steps| {
                steps
                    .iter()
                    .filter(|(x, _)| *x == step)
                    .fold(0.0, |sum, (_, ms)| sum + ms)
            })
            .collect();
        out.insert(step.name().to_string(), json!(median(per)));
    }
    Value::Object(out)
}

fn progress(n: usize, hidden: bool) -> ProgressBar {
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(n as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("cold starts (3 kinds each) [{bar:30}] {pos}/{len} {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar
}

fn report<B: Backend>(
    be: &B,
    args: &ColdstartArgs,
    s: &Stream<B>,
    [a, b, c]: [&Samples; 3],
    (prewarm_load, bytes, kernels, warnings): (Vec<f64>, Bytes, Option<Value>, Vec<String>),
) -> Value {
    let p50 = |x: &Samples| percentile(&x.total, 0.5);
    let r = &s.resident;
    json!({
        "backend": be.describe(),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "n": args.n,
        "from_disk": args.from_disk,
        "scenario": s.scenario.name,
        "camera": s.camera.spec.name,
        "source": format!("{:?}", s.camera.spec.source),
        "stream": {
            "parameters": r.model.arch().parameters(),
            "memory_exemplars": r.memory.samples().len(),
            "pending_samples": r.pending[0].samples.len(),
            "sample_shape": [s.first.h, s.first.w, s.first.c],
            "first_batch_objects": s.first.len(),
            "plugins": r.plugins.iter().map(|p| format!("{} ({})", p.plugin.name(), p.role)).collect::<Vec<_>>(),
        },
        "cold_p50_ms": p50(a),
        "cold_p99_ms": percentile(&a.total, 0.99),
        "preprocessed_p50_ms": p50(b),
        "preprocessed_p99_ms": percentile(&b.total, 0.99),
        "prewarmed_p50_ms": p50(c),
        "prewarmed_p99_ms": percentile(&c.total, 0.99),
        "speedup_preprocessed_p50": p50(a) / p50(b),
        "speedup_prewarmed_p50": p50(a) / p50(c),
        "goal_met": p50(a) / p50(b) >= 10.0 && p50(b) <= 50.0,
        "steps_p50_ms": { "cold": steps(a), "preprocessed": steps(b), "prewarmed": steps(c) },
        "prewarm_load_p50_ms": median(prewarm_load),
        "retrain_first_batch_p50_ms": {
            "cold": percentile(&a.retrain, 0.5),
            "preprocessed": percentile(&b.retrain, 0.5),
            "prewarmed": percentile(&c.retrain, 0.5),
        },
        "scale_down_p50_ms": {
            "slow": percentile(&a.scale_down, 0.5),
            "preprocessed": percentile(&b.scale_down, 0.5),
        },
        "disk_bytes": { "slow": a.disk, "preprocessed": b.disk },
        "resident_bytes": {
            "weights": bytes.weights,
            "optimizer": bytes.optimizer,
            "workspace": bytes.workspace,
            "memory": bytes.memory,
            "pending": bytes.pending,
            "plugins": bytes.plugins,
            "total": bytes.total(),
        },
        "kernels": kernels,
        "warnings": warnings,
    })
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2}"));
    println!(
        "cold starts of `{}` camera `{}` ({} source) on {}, n = {}{}",
        r["scenario"].as_str().unwrap_or("?"),
        r["camera"].as_str().unwrap_or("?"),
        r["source"].as_str().unwrap_or("?"),
        r["backend"].as_str().unwrap_or("?"),
        r["n"],
        if r["from_disk"] == true {
            ", files evicted from the page cache"
        } else {
            ""
        }
    );
    let st = &r["stream"];
    println!(
        "stream: {} parameters, {} exemplars, {} labels arrived while cold, {} objects in the first batch, plugins {}",
        st["parameters"],
        st["memory_exemplars"],
        st["pending_samples"],
        st["first_batch_objects"],
        st["plugins"]
    );
    println!(
        "{:22} {:>12} {:>14} {:>12}",
        "ms (p50 per step)", "cold", "preprocessed", "prewarmed"
    );
    let steps = &r["steps_p50_ms"];
    for step in Step::ALL {
        let n = step.name();
        println!(
            "  {n:20} {:>12} {:>14} {:>12}",
            f(&steps["cold"][n]),
            f(&steps["preprocessed"][n]),
            f(&steps["prewarmed"][n])
        );
    }
    println!(
        "  {:20} {:>12} {:>14} {:>12}",
        "first inference p50",
        f(&r["cold_p50_ms"]),
        f(&r["preprocessed_p50_ms"]),
        f(&r["prewarmed_p50_ms"])
    );
    println!(
        "  {:20} {:>12} {:>14} {:>12}",
        "first inference p99",
        f(&r["cold_p99_ms"]),
        f(&r["preprocessed_p99_ms"]),
        f(&r["prewarmed_p99_ms"])
    );
    let rt = &r["retrain_first_batch_p50_ms"];
    println!(
        "  {:20} {:>12} {:>14} {:>12}",
        "first batch p50",
        f(&rt["cold"]),
        f(&rt["preprocessed"]),
        f(&rt["prewarmed"])
    );
    println!(
        "speed-up p50: preprocessed {}x, pre-warmed {}x (goal: >= 10x and <= 50 ms p50: {}); pre-warm load {} ms ahead",
        f(&r["speedup_preprocessed_p50"]),
        f(&r["speedup_prewarmed_p50"]),
        if r["goal_met"] == true {
            "met"
        } else {
            "not met"
        },
        f(&r["prewarm_load_p50_ms"])
    );
    let sd = &r["scale_down_p50_ms"];
    println!(
        "scale-down p50: {} ms writing {} bytes (nothing prepared), {} ms writing {} bytes (preprocessed)",
        f(&sd["slow"]),
        r["disk_bytes"]["slow"],
        f(&sd["preprocessed"]),
        r["disk_bytes"]["preprocessed"]
    );
    println!("resident bytes when warm: {}", r["resident_bytes"]);
    if !r["kernels"].is_null() {
        println!("wgpu kernels: {}", r["kernels"]);
    }
    for w in r["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", w.as_str().unwrap_or_default());
    }
}
