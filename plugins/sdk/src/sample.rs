//! Deterministic sample inputs shaped like Ekya's profiles, for tests, `tandem plugin
//! validate` and the benchmark: per stream, 18 retraining profiles whose GPU cost spans about
//! 200× and whose accuracy gain saturates, and inference profiles from the brief's
//! frame-sampling curve at two resolutions; a zoo for selectors and streams for lifecycle
//! policies.

use crate::space::FRAME_SAMPLING;
use crate::types::{
    InferConfig, InferProfile, LifecycleInput, PolicyInput, RetrainConfig, RetrainProfile,
    SelectionRequest, StreamActivity, StreamInput, StreamPhase, StreamState, ZooEntry,
};

/// Accuracy factor when keeping 1 frame in k, for k in [`FRAME_SAMPLING`] (Ekya, one stream).
pub const SAMPLING_FACTOR: [f64; 12] = [
    1.0, 0.78, 0.64, 0.60, 0.44, 0.42, 0.41, 0.33, 0.28, 0.15, 0.12, 0.04,
];

/// GPU share an inference job needs to keep up at full frame rate and full resolution.
pub const FULL_RATE_COST: f64 = 0.25;

/// A small deterministic generator (PCG-like LCG), so samples need no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
}

/// Inference profiles: frame sampling × resolutions 28 and 14 px (the lower resolution costs a
/// quarter and loses 10% accuracy).
pub fn infer_profiles() -> Vec<InferProfile> {
    let mut out = Vec::new();
    for (res, cost_scale, acc_scale) in [(28u32, 1.0, 1.0), (14, 0.25, 0.9)] {
        for (k, f) in FRAME_SAMPLING.iter().zip(SAMPLING_FACTOR) {
            out.push(InferProfile {
                config: InferConfig {
                    name: format!("k{k}-r{res}"),
                    frame_sampling: *k,
                    resolution: res,
                },
                accuracy_factor: f * acc_scale,
                gpu_cost: FULL_RATE_COST * cost_scale / f64::from(*k),
            });
        }
    }
    out
}

/// A policy input with `streams` streams of `configs` retraining configurations each (up to 18,
/// named as in Ekya's grid), `gpus` GPUs and a 200 s window.
pub fn policy_input(streams: usize, gpus: u32, configs: usize, seed: u64) -> PolicyInput {
    let mut rng = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
    let streams = (0..streams)
        .map(|i| {
            let a0 = 0.45 + 0.3 * rng.next();
            let potential = 0.15 + 0.25 * rng.next();
            let mut retrain = Vec::new();
            'grid: for (kind, layers, width, cost_scale, gain_scale) in
                [("head", 1, 64, 1.0, 0.75), ("all", 4, 256, 6.0, 1.0)]
            {
                for fraction in [0.1, 0.5, 1.0] {
                    for epochs in [5u32, 15, 30] {
                        if retrain.len() == configs {
                            break 'grid;
                        }
                        let work = f64::from(epochs) * fraction;
                        let gain = potential
                            * gain_scale
                            * (1.0 - (-work / 6.0).exp())
                            * (0.9 + 0.2 * rng.next());
                        retrain.push(RetrainProfile {
                            config: RetrainConfig {
                                name: format!("{kind}-d{fraction:.1}-e{epochs}"),
                                epochs,
                                layers_trained: layers,
                                data_fraction: fraction,
                                width,
                                batch_size: 64,
                                learning_rate: 0.001,
                                start_from: None,
                            },
                            accuracy_after: (a0 + gain).min(0.98),
                            gpu_seconds: 1.2 * work * cost_scale * (0.8 + 0.4 * rng.next()),
                            accuracy_error: 0.0,
                            progress: 0.0,
                        });
                    }
                }
            }
            StreamInput {
                state: StreamState {
                    id: format!("cam{i}"),
                    window: 0,
                    accuracy: a0,
                    class_mix: vec![0.1; 10],
                    samples: 2000,
                },
                retrain,
                infer: infer_profiles(),
                running: None,
            }
        })
        .collect();
    PolicyInput {
        streams,
        gpus,
        window_seconds: 200.0,
        elapsed_seconds: 0.0,
    }
}

/// A zoo of `entries` models over a few recurring scenes, and a stream whose signature is near
/// one of them: what a selector is checked and timed on.
pub fn selection_request(entries: usize, signature_len: usize, seed: u64) -> SelectionRequest {
    let mut rng = Lcg(seed);
    let scenes: Vec<Vec<f64>> = (0..4)
        .map(|_| (0..signature_len).map(|_| rng.next()).collect())
        .collect();
    let near = |scene: &[f64], rng: &mut Lcg| -> Vec<f64> {
        scene
            .iter()
            .map(|x| x + 0.05 * (rng.next() - 0.5))
            .collect()
    };
    SelectionRequest {
        stream_id: "cam0".into(),
        window: entries as u32,
        signature: near(&scenes[0], &mut rng),
        entries: (0..entries)
            .map(|i| ZooEntry {
                id: format!("m{i}"),
                origin_stream: format!("cam{}", i % 3),
                origin_window: i as u32,
                signature: near(&scenes[i % scenes.len()], &mut rng),
                accuracy: 0.6 + 0.3 * rng.next(),
                uses: (rng.next() * 5.0) as u32,
                last_used_window: i as u32,
            })
            .collect(),
        max_candidates: 8,
    }
}

/// `streams` streams in every phase, with idle histories that repeat roughly every 60 s.
pub fn lifecycle_input(streams: usize, seed: u64) -> LifecycleInput {
    let mut rng = Lcg(seed);
    let phases = [
        StreamPhase::Active,
        StreamPhase::WarmIdle,
        StreamPhase::Cold,
        StreamPhase::Starting,
    ];
    LifecycleInput {
        now_seconds: 3600.0,
        streams: (0..streams)
            .map(|i| StreamActivity {
                id: format!("cam{i}"),
                phase: phases[i % phases.len()],
                idle_seconds: if i % 4 == 0 { 0.0 } else { 30.0 * rng.next() },
                idle_history: (0..12).map(|_| 55.0 + 10.0 * rng.next()).collect(),
                resident_bytes: 4 << 20,
                cold_start_seconds: 0.05,
                accuracy: 0.7,
            })
            .collect(),
        memory_budget_bytes: Some(16 << 20),
    }
}
