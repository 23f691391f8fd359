//! Scale to zero and back (`engine::lifecycle`) on a small synthetic stream with a real
//! plugin: the same model and memory after every wake path, labels that arrive while cold
//! kept for the wake-up, corrupt or missing artifacts falling back to the slow path with a
//! warning, resident bytes counted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tandem::compute::cpu::CpuBackend;
use tandem::engine::lifecycle::{
    Cold, ColdStart, FirstBatch, Labelled, Lifecycle, LifecycleError, Replay, Resident, Step,
    StreamPlugin, WakePath,
};
use tandem::engine::memory::ExemplarMemory;
use tandem::engine::phases::{Phase, Phases, StreamTick, WakeCosts};
use tandem::engine::stream::split;
use tandem::engine::{Camera, Scenario, SourcePool};
use tandem::model::{Arch, Model, Shape};
use tandem::plugin::types::{LifecycleDecision, LifecycleInput};
use tandem::plugin::{Limits, PluginHost};

use super::plugins::guest_bytes;

const STREAM: &str = r#"
name = "lifecycle"
windows = 4
seed = 9
hidden = 32
channels = [8, 16, 16]

[memory]
capacity = 48

[[cameras]]
name = "dock"
source = "synthetic"
frame_rate = 1.0
objects_per_frame = 4
train_samples = 40

[[cameras.drift]]
window = 1
brightness = 0.6
noise = 0.1

[[cameras.drift]]
window = 2
rotation = 20.0
"#;

/// A scratch directory of its own per test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lifecycle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything a test stream needs: its scenario, camera, plugin host and component file.
struct Fixture {
    scenario: Scenario,
    camera: Camera,
    host: Arc<PluginHost>,
    component: PathBuf,
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let scenario = Scenario::parse(STREAM, Path::new("lifecycle.toml")).unwrap();
        let spec = scenario.cameras[0].clone();
        let pool = SourcePool::for_camera(&spec, scenario.seed).unwrap();
        let dir = scratch(name);
        let component = dir.join("ekya-space.wasm");
        std::fs::write(&component, guest_bytes("ekya-space")).unwrap();
        Self {
            scenario,
            camera: Camera {
                index: 0,
                spec,
                pool,
            },
            host: Arc::new(PluginHost::new(Limits::default()).unwrap()),
            component,
            dir,
        }
    }

    fn lifecycle(&self, preprocess: bool) -> Lifecycle {
        Lifecycle::new(&self.dir, self.host.clone(), preprocess)
    }

    fn replay(&self) -> Replay<'_> {
        Replay {
            scenario: &self.scenario,
            camera: 0,
        }
    }

    /// A warm stream as the window loop leaves it: a model, a memory that absorbed windows
    /// 0 and 1 as `Stream::close` does, its config-space plugin compiled for itself.
    fn resident(&self, be: &CpuBackend) -> Resident<CpuBackend> {
        let s = &self.scenario;
        let arch = Arch {
            in_channels: 3,
            channels: [8, 16, 16],
            hidden: 32,
            classes: 8,
        };
        let mut memory = ExemplarMemory::new(48, &self.camera.pool.train.empty_like());
        for w in 0..2 {
            let (mut fit, val) = split(&self.camera.labelled(s, w));
            fit.extend(&val);
            memory.absorb(&fit, w, 17 ^ w as u64);
        }
        let plugin = StreamPlugin::compile(&self.host, "config-space", &self.component).unwrap();
        Resident {
            model: Model::new(be, arch, 4),
            memory,
            pending: Vec::new(),
            plugins: vec![plugin],
        }
    }

    /// The first frames' objects: crops of the camera's frame source.
    fn first(&self) -> (Vec<f32>, Shape) {
        let crops = self.camera.pool.frames.take(6);
        (crops.images.clone(), (6, crops.h, crops.w))
    }
}

/// The model's logits on a probe batch, bit for bit.
fn logits(be: &CpuBackend, model: &mut Model<CpuBackend>, f: &Fixture) -> Vec<u32> {
    let probe = f.camera.pool.frames.take(16);
    model
        .logits(be, &probe.images, (16, probe.h, probe.w))
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

fn wake(
    f: &Fixture,
    lc: &Lifecycle,
    be: &CpuBackend,
    cold: Cold,
) -> (Resident<CpuBackend>, ColdStart) {
    let (images, shape) = f.first();
    lc.wake(
        be,
        cold,
        f.replay(),
        FirstBatch {
            images: &images,
            shape,
        },
    )
    .unwrap()
}

/// What a stream held, to compare after a wake-up.
struct Snapshot {
    logits: Vec<u32>,
    predictions: Vec<u8>,
    memory: ExemplarMemory,
    digest: String,
}

fn snapshot(be: &CpuBackend, r: &mut Resident<CpuBackend>, f: &Fixture) -> Snapshot {
    let (images, shape) = f.first();
    Snapshot {
        logits: logits(be, &mut r.model, f),
        predictions: r.model.predict(be, &images, shape),
        memory: r.memory.clone(),
        digest: r.plugins[0].plugin.digest().to_string(),
    }
}

fn assert_same(
    be: &CpuBackend,
    f: &Fixture,
    before: &Snapshot,
    after: &mut Resident<CpuBackend>,
    start: &ColdStart,
) {
    assert_eq!(
        logits(be, &mut after.model, f),
        before.logits,
        "{:?}: logits",
        start.path
    );
    assert_eq!(
        start.predictions, before.predictions,
        "{:?}: first inference",
        start.path
    );
    assert_eq!(
        after.memory.samples(),
        before.memory.samples(),
        "{:?}: memory",
        start.path
    );
    assert_eq!(
        after.memory.origins(),
        before.memory.origins(),
        "{:?}: origins",
        start.path
    );
    assert_eq!(after.plugins[0].plugin.digest(), before.digest);
    assert_eq!(after.plugins[0].role, "config-space");
}

#[test]
fn a_stream_scales_to_zero_and_back_with_the_same_model_on_every_path() {
    let f = Fixture::new("same");
    let be = CpuBackend::default();
    for preprocess in [false, true] {
        let lc = f.lifecycle(preprocess);
        let mut warm = f.resident(&be);
        assert!(
            warm.memory.samples().len() > 20,
            "the memory holds exemplars"
        );
        let before = snapshot(&be, &mut warm, &f);
        let cold = lc.scale_down(&be, "dock", warm).unwrap();
        assert_eq!(cold.preprocessed(), preprocess);
        let (mut back, start) = wake(&f, &lc, &be, cold);
        let path = if preprocess {
            WakePath::Preprocessed
        } else {
            WakePath::Slow
        };
        assert_eq!(start.path, path);
        assert!(start.warnings.is_empty(), "{:?}", start.warnings);
        assert!(start.fallbacks.is_empty());
        for step in [
            Step::Weights,
            Step::Memory,
            Step::Plugins,
            Step::FirstInference,
        ] {
            assert!(
                start.steps.iter().any(|(s, _)| *s == step),
                "{path:?}: {step:?} timed"
            );
        }
        // The slow path decodes the source; the preprocessed one never does.
        assert_eq!(
            start.steps.iter().any(|(s, _)| *s == Step::Source),
            !preprocess
        );
        assert_same(&be, &f, &before, &mut back, &start);

        // Pre-warmed: loaded into host memory ahead, then only the device part.
        let cold = lc.scale_down(&be, "dock", back).unwrap();
        let prewarmed = lc.prewarm(cold, f.replay()).unwrap();
        let (images, shape) = f.first();
        let (mut back, start) = lc
            .wake_prewarmed(
                &be,
                prewarmed,
                FirstBatch {
                    images: &images,
                    shape,
                },
            )
            .unwrap();
        assert_eq!(start.path, WakePath::Prewarmed);
        for step in [Step::Manifest, Step::Source, Step::Memory, Step::Pending] {
            assert_eq!(start.ms(step), 0.0, "pre-warmed: {step:?} was done ahead");
        }
        assert_same(&be, &f, &before, &mut back, &start);
    }
}

#[test]
fn labels_that_arrive_while_cold_are_kept_for_the_wake_up() {
    let f = Fixture::new("pending");
    let be = CpuBackend::default();
    let arrived: Vec<Labelled> = [2, 3]
        .into_iter()
        .map(|w| Labelled {
            window: w,
            samples: f.camera.labelled(&f.scenario, w),
        })
        .collect();
    for preprocess in [false, true] {
        let lc = f.lifecycle(preprocess);
        let mut cold = lc.scale_down(&be, "dock", f.resident(&be)).unwrap();
        for batch in &arrived {
            lc.receive(&mut cold, batch).unwrap();
            assert_eq!(
                cold.bytes().total(),
                0,
                "labels arriving while cold go to disk"
            );
        }
        let (back, start) = wake(&f, &lc, &be, cold);
        assert!(start.warnings.is_empty(), "{:?}", start.warnings);
        assert!(start.ms(Step::Pending) > 0.0);
        assert_eq!(back.pending, arrived, "preprocess {preprocess}");
        // Not used yet: kept again at the next scale-down.
        let cold = lc.scale_down(&be, "dock", back).unwrap();
        let (back, _) = wake(&f, &lc, &be, cold);
        assert_eq!(
            back.pending, arrived,
            "preprocess {preprocess}, second time"
        );
    }
}

/// Damage one file of a preprocessed stream and wake it.
fn damaged(
    f: &Fixture,
    lc: &Lifecycle,
    be: &CpuBackend,
    damage: impl FnOnce(&Path),
) -> (Snapshot, Resident<CpuBackend>, ColdStart) {
    let mut warm = f.resident(be);
    let before = snapshot(be, &mut warm, f);
    let mut cold = lc.scale_down(be, "dock", warm).unwrap();
    lc.receive(
        &mut cold,
        &Labelled {
            window: 2,
            samples: f.camera.labelled(&f.scenario, 2),
        },
    )
    .unwrap();
    damage(cold.dir());
    let (back, start) = wake(f, lc, be, cold);
    (before, back, start)
}

#[test]
fn a_missing_or_corrupt_artifact_falls_back_to_the_slow_path_with_a_warning() {
    let f = Fixture::new("corrupt");
    let be = CpuBackend::default();
    let lc = f.lifecycle(true);
    let flip = |path: PathBuf| {
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    };
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, Vec<Step>)> = vec![
        (
            "weights.f32",
            Box::new(move |d| flip(d.join("weights.f32"))),
            vec![Step::Weights],
        ),
        (
            "memory.f32",
            Box::new(|d| std::fs::remove_file(d.join("memory.f32")).unwrap()),
            vec![Step::Memory],
        ),
        (
            "pending-0.labels",
            Box::new(|d| std::fs::write(d.join("pending-0.labels"), b"short").unwrap()),
            vec![Step::Pending],
        ),
        (
            "plugin-config-space.cwasm",
            Box::new(move |d| flip(d.join("plugin-config-space.cwasm"))),
            vec![Step::Plugins],
        ),
        (
            "manifest.json",
            Box::new(|d| std::fs::write(d.join("manifest.json"), b"{ not json").unwrap()),
            vec![Step::Manifest],
        ),
    ];
    for (file, damage, steps) in cases {
        let (before, mut back, start) = damaged(&f, &lc, &be, damage);
        assert_eq!(start.fallbacks, steps, "{file}");
        assert!(
            start.warnings.iter().any(|w| w.contains(file)),
            "{file}: the warning names it: {:?}",
            start.warnings
        );
        assert_same(&be, &f, &before, &mut back, &start);
        assert_eq!(
            back.pending.len(),
            1,
            "{file}: the labels that arrived are kept"
        );
        assert_eq!(back.pending[0].samples, f.camera.labelled(&f.scenario, 2));
    }

    // With the recipe and the manifest both gone nothing says what the stream held: an
    // error naming the file, never a panic, and the model file is still there.
    let cold = lc.scale_down(&be, "dock", f.resident(&be)).unwrap();
    std::fs::remove_file(cold.dir().join("manifest.json")).unwrap();
    std::fs::remove_file(cold.dir().join("recipe.json")).unwrap();
    let (images, shape) = f.first();
    let first = FirstBatch {
        images: &images,
        shape,
    };
    let dir = cold.dir().to_owned();
    match lc.wake(&be, cold, f.replay(), first) {
        Err(e @ LifecycleError::Recipe { .. }) => assert!(e.to_string().contains("recipe.json")),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("woke with no recipe"),
    }
    assert!(dir.join("model.safetensors").exists());
}

#[test]
fn resident_bytes_are_counted_when_warm_and_zero_when_cold() {
    let f = Fixture::new("bytes");
    let be = CpuBackend::default();
    let lc = f.lifecycle(true);
    let mut warm = f.resident(&be);
    let (images, shape) = f.first();
    warm.model.predict(&be, &images, shape);
    warm.pending.push(Labelled {
        window: 2,
        samples: f.camera.labelled(&f.scenario, 2),
    });
    let bytes = warm.bytes(&be);
    let params = warm.model.arch().parameters() as u64;
    assert_eq!(bytes.weights, 4 * params);
    assert_eq!(bytes.optimizer, 2 * 4 * params, "gradients and momentum");
    assert!(
        bytes.workspace > 4 * (6 * 32 * 32 * 3) as u64,
        "at least the input batch"
    );
    let memory = warm.memory.samples();
    assert_eq!(
        bytes.memory,
        (memory.images.len() * 4 + memory.len()) as u64
    );
    assert_eq!(bytes.pending, (40 * 32 * 32 * 3 * 4 + 40) as u64);
    assert!(
        bytes.plugins >= 64 << 10,
        "an instance's linear memory: {}",
        bytes.plugins
    );
    assert_eq!(
        bytes.total(),
        bytes.weights
            + bytes.optimizer
            + bytes.workspace
            + bytes.memory
            + bytes.pending
            + bytes.plugins
    );

    let cold = lc.scale_down(&be, "dock", warm).unwrap();
    assert_eq!(cold.bytes().total(), 0);
    assert!(cold.disk_bytes() > bytes.weights + bytes.memory + bytes.pending);

    let prewarmed = lc.prewarm(cold, f.replay()).unwrap();
    let host = prewarmed.bytes();
    assert_eq!(
        (host.weights, host.memory, host.pending),
        (bytes.weights, bytes.memory, bytes.pending)
    );
    assert_eq!(
        (host.optimizer, host.workspace),
        (0, 0),
        "nothing on the backend yet"
    );

    let (back, _) = lc
        .wake_prewarmed(
            &be,
            prewarmed,
            FirstBatch {
                images: &images,
                shape,
            },
        )
        .unwrap();
    let again = back.bytes(&be);
    assert_eq!(
        again.weights + again.optimizer,
        bytes.weights + bytes.optimizer
    );
    assert_eq!(again.workspace, bytes.workspace, "the same batch shape");
}

/// The phase each timeline gives at `t` seconds into the window.
fn phase_at(timeline: &[(f64, Phase)], t: f64) -> Phase {
    timeline
        .iter()
        .take_while(|(at, _)| *at <= t)
        .last()
        .map_or(timeline[0].1, |(_, p)| *p)
}

/// Random streams (sizes, bursts of frames, wake costs, lifecycle decisions) under a random
/// budget between the largest stream and all of them: at every moment any stream's phase
/// changes, the streams resident then hold at most the budget, summed here from the
/// timelines alone, and the report's peak agrees.
#[test]
fn the_memory_budget_is_never_exceeded() {
    use rand::{RngExt, SeedableRng};
    const HORIZON: usize = 120;
    for seed in 0..300u64 {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let n = rng.random_range(2..7);
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let bytes: Vec<u64> = (0..n).map(|_| rng.random_range(1..10u64) << 20).collect();
        let (largest, all) = (*bytes.iter().max().unwrap(), bytes.iter().sum::<u64>());
        let budget = rng.random_range(largest..=all);
        let costs = WakeCosts {
            cold: rng.random_range(0.0..8.0),
            preprocessed: rng.random_range(0.0..2.0),
            prewarmed: rng.random_range(0.0..0.5),
            steps: vec![],
        };
        let mut phases = Phases::new(
            ids.clone(),
            (Some(budget), rng.random_bool(0.5)),
            costs,
            "random".into(),
        );
        for w in 0..4 {
            // Bursts: each second a stream flips between sending and not with some chance.
            let present: Vec<Vec<bool>> = (0..n)
                .map(|_| {
                    let mut on = rng.random_bool(0.5);
                    (0..HORIZON)
                        .map(|_| {
                            if rng.random_bool(0.08) {
                                on = !on;
                            }
                            on
                        })
                        .collect()
                })
                .collect();
            let ticks: Vec<StreamTick> = (0..n)
                .map(|i| StreamTick {
                    present: &present[i],
                    frame_rate: 1.0,
                    bytes: bytes[i],
                    accuracy: 0.5,
                })
                .collect();
            let mut decide_rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed * 31 + w);
            let mut decide = |input: &LifecycleInput| {
                Ok(input
                    .streams
                    .iter()
                    .map(|s| LifecycleDecision {
                        stream_id: s.id.clone(),
                        keep_alive_seconds: decide_rng.random_range(0.0..40.0),
                        prewarm_after_seconds: decide_rng
                            .random_bool(0.4)
                            .then(|| decide_rng.random_range(0.0..60.0)),
                    })
                    .collect())
            };
            let pw = phases.window(
                ((w * HORIZON as u64) as f64, HORIZON as f64),
                &ticks,
                &mut decide,
            );
            let mut moments: Vec<f64> = pw.phases.iter().flatten().map(|(t, _)| *t).collect();
            moments.sort_by(f64::total_cmp);
            for t in moments {
                let held: u64 = (0..n)
                    .filter(|&i| phase_at(&pw.phases[i], t).resident())
                    .map(|i| bytes[i])
                    .sum();
                assert!(
                    held <= budget,
                    "seed {seed} window {w} at {t:.2} s: {held} bytes resident, budget {budget}"
                );
            }
            assert!(
                pw.report.memory_peak_bytes <= budget,
                "seed {seed} window {w}"
            );
            assert_eq!(pw.lost.len(), n);
        }
    }
}

/// A decision with a pre-warm still ahead releases the stream at once (wit/lifecycle.wit),
/// also when it comes while the stream is resident and idle: the histogram policy, asked
/// again mid-spell, answers so.
#[test]
fn a_prewarm_decision_releases_a_warm_stream_until_then() {
    use tandem::plugin::types::StreamPhase;
    let mut phases = Phases::new(
        vec!["s".into()],
        (None, true),
        WakeCosts::default(),
        "test".into(),
    );
    // Frames for the first 10 s, then none.
    let present: Vec<bool> = (0..120).map(|t| t < 10).collect();
    let ticks = [StreamTick {
        present: &present,
        frame_rate: 1.0,
        bytes: 1 << 20,
        accuracy: 0.5,
    }];
    // Kept while active; once idle, released until 50 s after the last frame.
    let mut decide = |input: &LifecycleInput| {
        Ok(input
            .streams
            .iter()
            .map(|s| LifecycleDecision {
                stream_id: s.id.clone(),
                keep_alive_seconds: 1000.0,
                prewarm_after_seconds: (s.phase != StreamPhase::Active).then_some(50.0),
            })
            .collect())
    };
    let pw = phases.window((0.0, 120.0), &ticks, &mut decide);
    let timeline = &pw.phases[0];
    assert_eq!(phase_at(timeline, 10.0), Phase::WarmIdle, "{timeline:?}");
    assert_eq!(phase_at(timeline, 12.0), Phase::Cold, "{timeline:?}");
    assert_eq!(phase_at(timeline, 55.0), Phase::Cold, "{timeline:?}");
    assert_eq!(phase_at(timeline, 62.0), Phase::Prewarmed, "{timeline:?}");
}
