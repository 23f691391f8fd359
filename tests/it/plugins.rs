//! Real guest plugins, built for wasm32-wasip2 by the test itself (a no-op when
//! `scripts/setup.sh` already built them), loaded and run in the sandboxed host: the reference
//! plugins on inputs with known answers, and misbehaving plugins, each getting its own error
//! while the host keeps serving.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tandem::plugin::types::{
    EstimateRequest, GuestError, Observation, Param, ParamValue, PluginKind, PolicyInput,
    RetrainConfig, Schedule, StreamState, ThroughputPoint,
};
use tandem::plugin::{Limits, Plugin, PluginError, PluginHost, Registry};
use tandem_plugin_sdk::policy::{Allocation, Anchor, ThiefOptions, ThiefVariant, evaluate, thief};
use tandem_plugin_sdk::sample::policy_input;

/// Every guest crate the tests use: the reference plugins and the misbehaving fixture.
const GUESTS: &[&str] = &[
    "thief",
    "fair",
    "no-retrain",
    "fixed-res",
    "fixed-config",
    "oracle",
    "ekya-space",
    "optimus",
    "nearest",
    "check-all",
    "keep-alive",
    "always-warm",
    "scale-to-zero",
    "histogram",
    "test-misbehave",
    "test-sleep",
];

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// Build the guests once per test run (cargo makes this a no-op when they are fresh).
fn guest_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("CARGO_TARGET_DIR", &target)
            .args([
                "build",
                "--quiet",
                "--profile",
                "plugin",
                "--target",
                "wasm32-wasip2",
            ]);
        for g in GUESTS {
            cmd.args(["-p", &format!("tandem-plugin-{g}")]);
        }
        let status = cmd.status().expect("run cargo to build the guest plugins");
        assert!(
            status.success(),
            "building the guest plugins failed (is the wasm32-wasip2 target installed?)"
        );
        target.join("wasm32-wasip2").join("plugin")
    })
}

pub(crate) fn guest_bytes(name: &str) -> Vec<u8> {
    let path = guest_dir().join(format!("tandem_plugin_{}.wasm", name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One host for the whole binary (debug wasmtime compiles slowly: components are cached on disk).
pub(crate) fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        PluginHost::new(Limits::default())
            .expect("plugin host")
            .with_cache_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"))
    })
}

pub(crate) fn plugin(name: &str) -> Arc<Plugin> {
    host()
        .load(name, &guest_bytes(name))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn num(name: &str, v: f64) -> Param {
    Param {
        name: name.into(),
        value: ParamValue::Number(v),
    }
}

fn txt(name: &str, v: &str) -> Param {
    Param {
        name: name.into(),
        value: ParamValue::Text(v.into()),
    }
}

fn decide(name: &str, input: &PolicyInput, params: &[Param]) -> Schedule {
    host()
        .decide(&plugin(name), input, params, 0)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn total_share(s: &Schedule) -> f64 {
    s.streams
        .iter()
        .map(|x| x.infer_share + x.retrain_share)
        .sum()
}

#[test]
fn reference_plugins_describe_themselves() {
    for (name, kind) in [
        ("thief", PluginKind::Policy),
        ("fair", PluginKind::Policy),
        ("no-retrain", PluginKind::Policy),
        ("fixed-res", PluginKind::Policy),
        ("fixed-config", PluginKind::Policy),
        ("oracle", PluginKind::Policy),
        ("ekya-space", PluginKind::ConfigSpace),
        ("optimus", PluginKind::Estimator),
        ("nearest", PluginKind::Selector),
        ("check-all", PluginKind::Selector),
        ("keep-alive", PluginKind::Lifecycle),
        ("always-warm", PluginKind::Lifecycle),
        ("scale-to-zero", PluginKind::Lifecycle),
        ("histogram", PluginKind::Lifecycle),
    ] {
        let p = plugin(name);
        assert_eq!(p.wit_version(), "0.2.0", "{name}");
        assert_eq!(p.name(), name);
        assert_eq!(p.kind(), kind);
        assert_eq!(p.version(), env!("CARGO_PKG_VERSION"));
        assert_eq!(p.digest().len(), 64);
        assert!(!p.description().summary.is_empty(), "{name} has no summary");
    }
    let thief = plugin("thief");
    let names: Vec<_> = thief
        .description()
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "delta",
            "variant",
            "rounds",
            "spare",
            "anchor",
            "risk",
            "margin",
            "order",
            "switch",
            "min-accuracy"
        ]
    );
}

/// The thief plugin's default options, as the native search takes them.
fn thief_defaults() -> ThiefOptions {
    ThiefOptions {
        delta: 0.1,
        min_accuracy: 0.0,
        variant: ThiefVariant::Refine,
        rounds: 3,
        spare: true,
        anchor: Anchor::Uniform,
        risk: 1.0,
    }
}

#[test]
fn thief_never_worse_than_its_anchor_and_matches_native() {
    for (streams, gpus, seed) in [(2, 1, 1), (4, 1, 2), (6, 2, 3), (10, 8, 4), (10, 2, 5)] {
        let input = policy_input(streams, gpus, 18, seed);
        let s = decide("thief", &input, &[]);
        let (_, uniform) = evaluate(&input, &Allocation::split(&input, 0.5), 0.0);
        let got = s.estimated_accuracy.expect("thief reports its estimate");
        assert!(
            got >= uniform - 1e-12,
            "{streams} streams/{gpus} GPUs: thief {got} < its uniform anchor {uniform}"
        );
        let paper = decide("thief", &input, &[txt("anchor", "fair"), num("risk", 0.0)]);
        let (_, fair) = evaluate(&input, &Allocation::fair(&input), 0.0);
        assert!(paper.estimated_accuracy.unwrap() >= fair - 1e-12);
        assert!(total_share(&s) <= f64::from(gpus) + 1e-6);
        // The guest runs exactly the sdk's algorithm.
        let (_, _, native) = thief(&input, thief_defaults());
        assert!(
            (native - got).abs() < 1e-12,
            "wasm {got} vs native {native}"
        );
    }
}

/// Every retraining configuration of `input` predicted to end where its stream starts.
fn gains_nothing(input: &mut PolicyInput) {
    for s in &mut input.streams {
        for r in &mut s.retrain {
            r.accuracy_after = s.state.accuracy;
        }
    }
}

#[test]
fn refined_thief_leaves_no_share_where_it_is_useless() {
    // Four streams on one GPU whose inference needs a quarter GPU each at full rate, and
    // retraining that gains nothing: the best schedule serves every frame. The fair start
    // (1/8 per job) and Δ = 0.1 put the paper's search off that grid.
    let mut input = policy_input(4, 1, 18, 3);
    gains_nothing(&mut input);
    let full = input.streams[0].infer[0].gpu_cost;
    assert!(
        (full - 0.25).abs() < 1e-9,
        "the sample's full-rate cost is {full}"
    );
    let refined = decide("thief", &input, &[]);
    for s in &refined.streams {
        assert!(
            (s.infer_share - 0.25).abs() < 1e-6 && s.retrain_config.is_none(),
            "{s:?}"
        );
    }
    let paper = decide("thief", &input, &[txt("variant", "paper")]);
    assert!(
        refined.estimated_accuracy.unwrap() >= paper.estimated_accuracy.unwrap() - 1e-12,
        "refine {:?} < paper {:?}",
        refined.estimated_accuracy,
        paper.estimated_accuracy
    );
}

#[test]
fn thief_funds_a_job_that_needs_more_than_any_one_victim_holds() {
    // Eight streams on one GPU, a sixteenth each to inference and to retraining on the
    // uniform split. Stream 0's only configuration needs over a quarter of the GPU to finish
    // in the window and gains 40 points; the others gain nothing from retraining. No single
    // steal can fund it, so only a move taking from several jobs at once finds it.
    let mut input = policy_input(8, 1, 18, 3);
    gains_nothing(&mut input);
    let rem = input.window_seconds - input.elapsed_seconds;
    let s0 = &mut input.streams[0];
    s0.retrain.truncate(1);
    s0.retrain[0].gpu_seconds = 0.25 * rem;
    s0.retrain[0].accuracy_after = (s0.state.accuracy + 0.4).min(0.98);
    let name = s0.retrain[0].config.name.clone();
    let opts = ThiefOptions {
        risk: 0.0,
        ..thief_defaults()
    };
    let (alloc, picks, _) = thief(&input, opts);
    assert!(
        alloc.retrain[0] > 0.25 && picks[0].retrain == Some(0),
        "{alloc:?} {picks:?}"
    );
    let s = decide(
        "thief",
        &input,
        &[num("risk", 0.0), txt("order", "together")],
    );
    assert_eq!(
        s.streams[0].retrain_config.as_deref(),
        Some(name.as_str()),
        "{s:?}"
    );
}

#[test]
fn thief_funds_retraining_with_gpu_it_finds_no_use_for() {
    // Two GPUs, four streams whose inference needs a quarter GPU each, retraining that the
    // profiles say gains nothing: the search serves every frame and leaves a GPU over.
    let mut input = policy_input(4, 2, 18, 3);
    gains_nothing(&mut input);
    let together = txt("order", "together");
    let idle = decide("thief", &input, &[txt("spare", "idle"), together.clone()]);
    assert!(
        idle.streams.iter().all(|s| s.retrain_config.is_none()),
        "{idle:?}"
    );
    let s = decide("thief", &input, std::slice::from_ref(&together));
    assert!(total_share(&s) <= 2.0 + 1e-6, "{s:?}");
    for (o, i) in s.streams.iter().zip(&input.streams) {
        // Every frame still served, and the spare GPU retrains with the cheapest configuration.
        assert!((o.infer_share - 0.25).abs() < 1e-6, "{o:?}");
        let cheapest = i
            .retrain
            .iter()
            .min_by(|a, b| a.gpu_seconds.total_cmp(&b.gpu_seconds))
            .unwrap();
        assert_eq!(
            o.retrain_config.as_deref(),
            Some(cheapest.config.name.as_str()),
            "{o:?}"
        );
        assert!((o.retrain_share - 0.25).abs() < 1e-6, "{o:?}");
    }
    assert_eq!(s.estimated_accuracy, idle.estimated_accuracy);
    let e = host()
        .decide(&plugin("thief"), &input, &[txt("spare", "sometimes")], 0)
        .unwrap_err();
    assert!(e.to_string().contains("spare must be"), "{e}");
}

#[test]
fn thief_runs_its_jobs_one_after_another_best_gain_per_cost_first() {
    for (streams, gpus, seed) in [(4, 1, 2), (6, 1, 3), (6, 2, 8), (10, 2, 5)] {
        let input = policy_input(streams, gpus, 18, seed);
        let side = decide("thief", &input, &[txt("order", "together")]);
        let seq = decide("thief", &input, &[]);
        // The same GPU for retraining, now pooled: each job up to one GPU, in order, so at
        // most one runs on less than a whole GPU; inference is untouched.
        let pooled = |s: &Schedule| s.streams.iter().map(|o| o.retrain_share).sum::<f64>();
        assert!(
            (pooled(&side) - pooled(&seq)).abs() < 1e-9,
            "{side:?}\n{seq:?}"
        );
        for (a, b) in side.streams.iter().zip(&seq.streams) {
            assert_eq!(a.infer_share, b.infer_share);
            assert_eq!(a.infer_config, b.infer_config);
            // Only the side-by-side plan's jobs run, each on its configuration or not yet.
            if b.retrain_config.is_some() {
                assert_eq!(a.retrain_config, b.retrain_config);
                assert!(b.retrain_share > 0.0);
            }
        }
        let running: Vec<&_> = seq
            .streams
            .iter()
            .filter(|o| o.retrain_share > 0.0)
            .collect();
        assert!(
            running
                .iter()
                .filter(|o| o.retrain_share < 1.0 - 1e-9)
                .count()
                <= 1,
            "{seq:?}"
        );
        // The job that runs first has the best estimated gain per GPU-second of the plan
        // (the thief's default risk: one standard error off).
        let ratio = |name: &str| {
            let (st, o) = input
                .streams
                .iter()
                .zip(&side.streams)
                .find(|(_, o)| o.stream_id == name)
                .unwrap();
            let r = st
                .retrain
                .iter()
                .find(|r| Some(&r.config.name) == o.retrain_config.as_ref())
                .unwrap();
            (r.accuracy_after - r.accuracy_error - st.state.accuracy).max(0.0) / r.gpu_seconds
        };
        let best = side
            .streams
            .iter()
            .filter(|o| o.retrain_config.is_some())
            .map(|o| ratio(&o.stream_id))
            .fold(0.0, f64::max);
        let first = seq
            .streams
            .iter()
            .filter(|o| o.retrain_share > 0.0)
            .map(|o| ratio(&o.stream_id))
            .fold(0.0, f64::max);
        assert!((first - best).abs() < 1e-12, "{first} vs {best}");
    }
    // A job already running keeps going first, whatever the others promise.
    let mut input = policy_input(6, 1, 18, 3);
    let side = decide("thief", &input, &[txt("order", "together")]);
    let last = side
        .streams
        .iter()
        .rposition(|o| o.retrain_config.is_some())
        .expect("the plan retrains");
    input.streams[last].running = side.streams[last].retrain_config.clone();
    let seq = decide("thief", &input, &[]);
    assert!(seq.streams[last].retrain_share > 0.0, "{seq:?}");
    let e = host()
        .decide(&plugin("thief"), &input, &[txt("order", "random")], 0)
        .unwrap_err();
    assert!(e.to_string().contains("order must be"), "{e}");
}

#[test]
fn thief_code_variant_and_rescheduling_mid_window() {
    let input = policy_input(6, 2, 18, 7);
    let paper = decide("thief", &input, &[]).estimated_accuracy.unwrap();
    let code = decide("thief", &input, &[txt("variant", "code")])
        .estimated_accuracy
        .unwrap();
    let (_, fair) = evaluate(&input, &Allocation::fair(&input), 0.0);
    assert!(
        code >= fair - 1e-12 && paper >= fair - 1e-12,
        "paper {paper}, code {code}, fair {fair}"
    );
    // Re-scheduling at 120 s: two streams finished retraining (no candidates left), one job is
    // in progress (offered alone with its remaining cost).
    let mut later = input.clone();
    later.elapsed_seconds = 120.0;
    later.streams[0].retrain.clear();
    later.streams[1].retrain.clear();
    later.streams[2].retrain.truncate(1);
    let s = decide("thief", &later, &[]);
    assert_eq!(s.streams[0].retrain_share, 0.0);
    assert!(s.streams[0].retrain_config.is_none());
    assert!(s.streams[0].infer_share > 0.0);
    // Δ is a parameter; a bad one is the plugin's own typed error.
    let e = host()
        .decide(&plugin("thief"), &input, &[num("delta", 5.0)], 0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Guest {
                error: GuestError::InvalidParam(_),
                ..
            }
        ),
        "{e}"
    );
    let coarse = decide("thief", &input, &[num("delta", 1.0)])
        .estimated_accuracy
        .unwrap();
    assert!(
        coarse <= paper + 0.05,
        "Δ = 1 ({coarse}) should not beat Δ = 0.1 ({paper}) by much"
    );
}

#[test]
fn oracle_is_never_beaten_by_the_thief() {
    // Fair starts on the oracle's 0.05 grid: 1 GPU over 4 jobs, 2 or 3 GPUs over 4 or 6 jobs.
    for (streams, gpus, seed) in [(2, 1, 11), (2, 2, 12), (3, 3, 13), (2, 1, 14), (3, 3, 15)] {
        let input = policy_input(streams, gpus, 18, seed);
        let oracle = decide("oracle", &input, &[]).estimated_accuracy.unwrap();
        let estimate = |variant: &str| {
            decide("thief", &input, &[txt("variant", variant)])
                .estimated_accuracy
                .unwrap()
        };
        // The paper's and the code's searches stay on the Δ = 0.1 grid, inside the oracle's.
        for variant in ["paper", "code"] {
            let thief = estimate(variant);
            assert!(
                oracle >= thief - 1e-9,
                "{streams} streams/{gpus} GPUs: oracle {oracle} < {variant} thief {thief}"
            );
        }
        // The refined search starts as the code's and only improves on it (down to Δ/4, so
        // it may pass the oracle's grid).
        assert!(estimate("refine") >= estimate("code") - 1e-12);
    }
    let e = host()
        .decide(&plugin("oracle"), &policy_input(5, 2, 18, 1), &[], 0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Guest {
                error: GuestError::InvalidInput(_),
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn baselines_split_as_configured() {
    let input = policy_input(4, 2, 18, 21);
    let fair = decide("fair", &input, &[num("infer-fraction", 0.3)]);
    for (st, s) in fair.streams.iter().zip(&input.streams) {
        assert!(
            (st.infer_share - 0.15).abs() < 1e-9 && (st.retrain_share - 0.35).abs() < 1e-9,
            "{st:?}"
        );
        let best = s
            .retrain
            .iter()
            .map(|r| r.accuracy_after)
            .fold(0.0, f64::max);
        let chosen = s
            .retrain
            .iter()
            .find(|r| Some(&r.config.name) == st.retrain_config.as_ref())
            .unwrap();
        assert_eq!(
            chosen.accuracy_after, best,
            "cfg1 is the most accurate configuration"
        );
    }
    let cfg2 = decide("fair", &input, &[txt("retrain-config", "cfg2")]);
    assert_ne!(
        cfg2.streams[0].retrain_config,
        fair.streams[0].retrain_config
    );

    let none = decide("no-retrain", &input, &[]);
    assert!(
        none.streams
            .iter()
            .all(|s| s.retrain_share == 0.0 && s.retrain_config.is_none() && s.infer_share == 0.5)
    );

    let fixed_res = decide("fixed-res", &input, &[]);
    assert!(
        fixed_res
            .streams
            .iter()
            .all(|s| (s.infer_share - 0.25).abs() < 1e-9)
    );

    let fixed_config = decide("fixed-config", &input, &[]);
    for (st, s) in fixed_config.streams.iter().zip(&fair.streams) {
        assert!(st.retrain_config.is_none() || st.retrain_config == s.retrain_config);
    }
    let thief = decide("thief", &input, &[]).estimated_accuracy.unwrap();
    for s in [&fair, &cfg2, &none, &fixed_res, &fixed_config] {
        assert!(
            s.estimated_accuracy.unwrap() <= thief + 1e-9,
            "a baseline beat the thief on its own estimate"
        );
    }
}

#[test]
fn ekya_space_lists_the_grid() {
    let p = plugin("ekya-space");
    let state = StreamState {
        id: "cam0".into(),
        window: 3,
        accuracy: 0.6,
        class_mix: vec![0.5, 0.5],
        samples: 500,
    };
    let set = host().configs(&p, &state, &[], 0).unwrap();
    assert_eq!(set.retrain.len(), 18);
    assert_eq!(set.infer.len(), 24);
    assert!(
        set.retrain
            .iter()
            .any(|r| r.name == "head-d0.1-e5" && r.layers_trained == 2 && r.width == 0)
    );
    assert!(set.retrain.iter().any(|r| r.name == "all-d1.0-e30"
        && r.layers_trained == 5
        && r.width == 256
        && r.epochs == 30));
    let three = host()
        .configs(&p, &state, &[num("resolutions", 3.0)], 0)
        .unwrap();
    assert_eq!(three.infer.len(), 36);
    let empty = StreamState {
        samples: 0,
        ..state
    };
    assert!(
        host()
            .configs(&p, &empty, &[], 0)
            .unwrap()
            .retrain
            .is_empty()
    );
}

#[test]
fn optimus_recovers_a_known_curve() {
    let truth = |e: f64| 1.0 - (1.0 / (0.4 * e + 2.0) + 0.05);
    let config = RetrainConfig {
        name: "all-d1.0-e30".into(),
        epochs: 30,
        layers_trained: 4,
        data_fraction: 1.0,
        width: 256,
        batch_size: 64,
        learning_rate: 0.001,
        start_from: None,
    };
    let request = EstimateRequest {
        config,
        start_accuracy: truth(0.0),
        observations: (1..=5)
            .map(|e| Observation {
                epochs: e,
                accuracy: truth(f64::from(e)),
                gpu_seconds: 0.5 * f64::from(e),
            })
            .collect(),
        profiled_data_fraction: 0.1,
        epochs_at: vec![5, 15, 30],
        shares: vec![1.0, 0.5],
        throughput: vec![
            ThroughputPoint {
                share: 0.5,
                speed: 0.6,
            },
            ThroughputPoint {
                share: 1.0,
                speed: 1.0,
            },
        ],
    };
    let p = host()
        .predict(&plugin("optimus"), &request, &[], 0)
        .unwrap();
    for (e, a) in [5.0, 15.0, 30.0].iter().zip(&p.accuracy) {
        assert!(
            (a - truth(*e)).abs() < 0.05,
            "at {e} epochs: {a} vs {}",
            truth(*e)
        );
    }
    // 0.5 s per epoch on 10% of the data: 30 epochs on all of it take 150 GPU-seconds.
    assert!((p.gpu_seconds - 150.0).abs() < 1e-9);
    assert!((p.seconds_at[0] - 150.0).abs() < 1e-9 && (p.seconds_at[1] - 250.0).abs() < 1e-9);
}

fn misbehave(mode: &str) -> Result<Schedule, PluginError> {
    misbehave_on(&plugin("test-misbehave"), mode)
}

/// One decision of the loaded fixture in `mode` (timed tests load it first).
fn misbehave_on(p: &Plugin, mode: &str) -> Result<Schedule, PluginError> {
    host().decide(p, &policy_input(3, 1, 18, 31), &[txt("mode", mode)], 0)
}

fn assert_still_serving() {
    misbehave("ok").expect("the host keeps serving after a misbehaving call");
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    let p = plugin("test-misbehave");
    let t = Instant::now();
    let e = misbehave_on(&p, "loop").unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, PluginError::Timeout { .. }), "{e}");
    eprintln!(
        "sandbox: `loop` cut off after {:.0} ms",
        took.as_secs_f64() * 1e3
    );
    assert!(e.to_string().contains("test-misbehave"), "{e}");
    assert!(
        took < Limits::default().deadline + Duration::from_millis(800),
        "stopped after {took:?}"
    );
    assert_still_serving();
}

/// The longest a cut-off call may take past its deadline: epoch ticks, trap unwinding and a
/// busy test machine.
const MARGIN: Duration = Duration::from_millis(300);

#[test]
fn a_sleeping_plugin_is_cut_off_at_its_deadline() {
    // One long WASI sleep, and a loop of short ones: neither outlives the deadline.
    let p = plugin("test-misbehave");
    for mode in ["sleep", "naps"] {
        let t = Instant::now();
        let e = misbehave_on(&p, mode).unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e, PluginError::Timeout { .. }), "{mode}: {e}");
        eprintln!(
            "sandbox: `{mode}` cut off after {:.0} ms (deadline {} ms)",
            took.as_secs_f64() * 1e3,
            Limits::default().deadline.as_millis()
        );
        assert!(
            took < Limits::default().deadline + MARGIN,
            "{mode}: stopped after {took:?}"
        );
        assert_still_serving();
    }
}

#[test]
fn validation_cuts_off_a_plugin_that_sleeps_in_its_sample_run() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registry-sleep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reg = Registry::open(&dir).unwrap();
    let bytes = guest_bytes("test-sleep");
    // It loads (describing itself is quick), then sleeps in the sample decision.
    host().load("test-sleep.wasm", &bytes).unwrap();
    let t = Instant::now();
    let e = reg
        .add_validated(host(), "test-sleep.wasm", &bytes)
        .unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, PluginError::Timeout { .. }), "{e}");
    eprintln!(
        "sandbox: validation of a sleeping plugin refused after {:.0} ms",
        took.as_secs_f64() * 1e3
    );
    assert!(
        took < Limits::default().deadline + MARGIN,
        "validation took {took:?}"
    );
    assert!(reg.list().unwrap().is_empty(), "nothing is stored");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wasi_random_is_seeded_per_call_from_the_run_seed() {
    let p = plugin("test-misbehave");
    let random = |input: &PolicyInput, seed: u64| {
        host()
            .decide(&p, input, &[txt("mode", "random")], seed)
            .unwrap()
            .estimated_accuracy
            .unwrap()
    };
    let (a, b) = (policy_input(3, 1, 18, 31), policy_input(3, 1, 18, 32));
    let first = random(&a, 7);
    assert_eq!(first, random(&a, 7), "the same call draws the same numbers");
    assert_ne!(first, random(&a, 8), "another run seed, other numbers");
    assert_ne!(first, random(&b, 7), "another input, other numbers");
}

#[test]
fn a_component_over_the_per_component_caps_is_refused() {
    // Five instances of a module with one memory each: over the cap of four memories.
    let module = "(core module $m (memory 1))";
    let instances: String = (0..5).map(|_| "(core instance (instantiate $m))").collect();
    let bytes = wat::parse_str(format!("(component {module} {instances})")).unwrap();
    let e = host().load("memories.wasm", &bytes).err().unwrap();
    assert!(matches!(e, PluginError::NotComponent { .. }), "{e}");
    assert!(e.to_string().contains("5 Wasm linear memories"), "{e}");
    assert_still_serving();
}

#[test]
fn an_oversized_plugin_file_is_refused_before_it_is_read() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("huge-{}.wasm", std::process::id()));
    // A sparse file: its size is all that is looked at.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(300 << 20).unwrap();
    let e = host().load_file(&path).err().unwrap();
    assert!(matches!(e, PluginError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("huge-"), "{e}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn memory_bomb_is_capped() {
    // A generous deadline, so the cap (not the clock of a loaded test machine) stops it.
    let host = PluginHost::new(Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    })
    .unwrap()
    .with_cache_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    let p = host
        .load("test-misbehave", &guest_bytes("test-misbehave"))
        .unwrap();
    let e = host
        .decide(&p, &policy_input(3, 1, 18, 31), &[txt("mode", "memory")], 0)
        .unwrap_err();
    assert!(
        matches!(e, PluginError::MemoryLimit { limit_bytes, .. } if limit_bytes == 64 << 20),
        "{e}"
    );
    assert_still_serving();
}

#[test]
fn panic_is_a_trap_with_its_message() {
    let e = misbehave("panic").unwrap_err();
    assert!(matches!(e, PluginError::Trap { .. }), "{e}");
    assert!(e.to_string().contains("misbehaving on purpose"), "{e}");
    assert_still_serving();
}

#[test]
fn bad_outputs_are_refused_with_the_reason() {
    for (mode, needle) in [
        ("nan", "not a finite non-negative number"),
        ("over-budget", "more than the 1 available"),
        ("over-one", "exceeds one GPU"),
        ("unknown-stream", "unknown stream `no-such-stream`"),
        ("unoffered-config", "`no-such-config` was not offered"),
    ] {
        let e = misbehave(mode).unwrap_err();
        assert!(
            matches!(e, PluginError::InvalidOutput { .. }),
            "{mode}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(needle) && msg.contains("test-misbehave 0.1.0"),
            "{mode}: {msg}"
        );
        assert_still_serving();
    }
    let e = misbehave("error").unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Guest {
                error: GuestError::Infeasible(_),
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn wrong_world_and_non_components_are_refused() {
    let space = plugin("ekya-space");
    let e = host()
        .decide(&space, &policy_input(2, 1, 18, 1), &[], 0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::WrongWorld {
                expected: PluginKind::Policy,
                found: PluginKind::ConfigSpace,
                ..
            }
        ),
        "{e}"
    );
    let e = host()
        .load("notes.txt", b"this is not WebAssembly")
        .err()
        .unwrap();
    assert!(matches!(e, PluginError::NotWasm { .. }), "{e}");
    let e = host().load("core.wasm", b"\0asm\x01\0\0\0").err().unwrap();
    assert!(matches!(e, PluginError::NotComponent { .. }), "{e}");
    // A component of no tandem world: the smallest valid component.
    let e = host()
        .load("empty.wasm", b"\0asm\x0d\0\x01\0")
        .err()
        .unwrap();
    assert!(matches!(e, PluginError::UnknownWorld { .. }), "{e}");
    assert_still_serving();
}

#[test]
fn registry_stores_by_digest() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reg = Registry::open(&dir).unwrap();
    let bytes = guest_bytes("thief");
    // As the host registers its built-ins (a built-in's name finds only built-ins).
    let a = reg.add(host(), "thief.wasm", &bytes, true).unwrap();
    let b = reg.add(host(), "again.wasm", &bytes, false).unwrap();
    assert_eq!(a, b, "adding the same bytes twice is a no-op");
    assert_eq!(a.digest, tandem::plugin::runtime::sha256_hex(&bytes));
    // Digests are lower-case hex sha256 (FIPS 180-2's "abc" vector).
    assert_eq!(
        tandem::plugin::runtime::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    reg.add(host(), "fair.wasm", &guest_bytes("fair"), false)
        .unwrap();
    let list = reg.list().unwrap();
    assert_eq!(
        list.iter()
            .map(|e| e.description.name.as_str())
            .collect::<Vec<_>>(),
        ["fair", "thief"]
    );
    assert_eq!(reg.find("thief").unwrap().unwrap().digest, a.digest);
    assert_eq!(reg.load(host(), &a.digest[..12]).unwrap().name(), "thief");
    assert!(reg.add(host(), "junk", b"junk", false).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plugin_named_like_a_built_in_is_refused() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registry-reserved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reg = Registry::open(&dir).unwrap();
    reg.register_builtins(host()).unwrap();
    let builtin = reg.find("thief").unwrap().expect("thief is built in");
    // The built-in thief's own code (as embedded: a guest rebuilt with other features can
    // differ) with a custom section appended: other bytes, same name.
    let embedded = tandem::plugin::registry::builtins()
        .into_iter()
        .find(|b| b.name == "thief")
        .expect("thief is embedded")
        .bytes;
    let mut bytes = embedded.to_vec();
    bytes.extend_from_slice(&[0, 6, 5, b'n', b'o', b't', b'e', b's']);
    let e = reg.add_validated(host(), "thief.wasm", &bytes).unwrap_err();
    assert!(matches!(e, PluginError::ReservedName { .. }), "{e}");
    assert!(e.to_string().contains("`thief`"), "{e}");
    let found = reg.find("thief").unwrap().unwrap();
    assert_eq!(
        found.digest, builtin.digest,
        "the built-in still answers to its name"
    );
    // The built-in's own bytes are no impostor.
    reg.add_validated(host(), "thief.wasm", embedded).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn limits_are_configurable() {
    let limits = Limits {
        // Long enough for a debug build's call on a loaded machine, far below the default.
        deadline: Duration::from_millis(100),
        memory_bytes: 16 << 20,
    };
    let strict = PluginHost::new(limits)
        .unwrap()
        .with_cache_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    let p = strict
        .load("test-misbehave", &guest_bytes("test-misbehave"))
        .unwrap();
    let input = policy_input(2, 1, 18, 41);
    let t = Instant::now();
    let e = strict
        .decide(&p, &input, &[txt("mode", "loop")], 0)
        .unwrap_err();
    assert!(
        matches!(e, PluginError::Timeout { deadline, .. } if deadline == limits.deadline),
        "{e}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(100 + 500),
        "stopped after {:?}",
        t.elapsed()
    );
    let e = strict
        .decide(&p, &input, &[txt("mode", "memory")], 0)
        .unwrap_err();
    assert!(
        matches!(e, PluginError::MemoryLimit { limit_bytes, .. } if limit_bytes == 16 << 20),
        "{e}"
    );
    strict.decide(&p, &input, &[txt("mode", "ok")], 0).unwrap();
}

#[test]
fn a_finished_job_hands_its_share_back_to_its_stream_in_the_estimate() {
    use tandem_plugin_sdk::estimate::{infer_factor_at, pick_configs};
    // One stream, inference starved to a fifth of its full-rate need while it retrains: once
    // the job ends the engine asks the policy again, and the stream serves at the sum.
    let input = policy_input(1, 1, 18, 3);
    let s = &input.streams[0];
    let full = s.infer[0].gpu_cost;
    let (infer, retrain, rem) = (full / 5.0, full * 4.0 / 5.0, 400.0);
    let p = pick_configs(s, infer, retrain, rem, 0.0);
    let j = p.retrain.expect("a job that finishes in time");
    let job = &s.retrain[j];
    let t = job.gpu_seconds / retrain;
    assert!(t < rem, "{t}");
    let before = infer_factor_at(&s.infer, p.infer.unwrap(), infer);
    let after = (0..s.infer.len())
        .map(|i| infer_factor_at(&s.infer, i, infer + retrain))
        .fold(0.0, f64::max);
    assert!(after > before + 0.1, "{before} {after}");
    let expected = (s.state.accuracy * before * t + job.accuracy_after * after * (rem - t)) / rem;
    assert!((p.accuracy - expected).abs() < 1e-9, "{p:?} vs {expected}");
}

/// A reference plugin exactly as it was built against the released `tandem:plugin@0.1.0`.
fn plugin_0_1_0(name: &str) -> Arc<Plugin> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/plugins-0.1.0")
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    host()
        .load(&path.display().to_string(), &bytes)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

#[test]
fn components_built_against_0_1_0_keep_loading_and_deciding_as_before() {
    for (name, kind) in [
        ("fair", PluginKind::Policy),
        ("thief", PluginKind::Policy),
        ("ekya-space", PluginKind::ConfigSpace),
        ("optimus", PluginKind::Estimator),
    ] {
        let old = plugin_0_1_0(name);
        assert_eq!((old.wit_version(), old.kind()), ("0.1.0", kind), "{name}");
        assert_eq!(old.name(), name);
        let summary = tandem::plugin::check::sample_run(host(), &old)
            .unwrap_or_else(|e| panic!("{name} 0.1.0: {e}"));
        assert!(!summary.is_empty());
    }
    // The same algorithm behind either interface decides the same: what 0.2.0 added (errors,
    // progress, zoo starts) is absent from these inputs, and the host converts both ways.
    // The thief is compared on its search alone (`spare=idle`, its jobs side by side): how
    // it hands out the GPU the search leaves, and in what order its jobs run, have changed in
    // the SDK since these components were built (the old ones know neither parameter).
    let idle = [txt("spare", "idle")];
    let idle_together = [txt("spare", "idle"), txt("order", "together")];
    for seed in 1..4 {
        let input = policy_input(4, 1, 18, seed);
        for (name, old_params, new_params) in [
            ("fair", &[][..], &[][..]),
            ("thief", &idle[..], &idle_together[..]),
        ] {
            let (old, new) = (plugin_0_1_0(name), plugin(name));
            assert_eq!(
                host().decide(&old, &input, old_params, 0).unwrap(),
                host().decide(&new, &input, new_params, 0).unwrap(),
                "{name}, seed {seed}"
            );
        }
    }
    // A job in progress is offered to a 0.1.0 policy alone, as 0.1.0 promised, while a 0.2.0
    // policy also sees what it could switch to; a configuration starting from the zoo is never
    // offered to a 0.1.0 policy.
    let mut input = policy_input(2, 1, 18, 7);
    let running = input.streams[0].retrain[3].config.name.clone();
    input.streams[0].running = Some(running.clone());
    input.streams[0].retrain[3].progress = 0.5;
    let mut zoo = input.streams[1].retrain[0].clone();
    zoo.config.name = "zoo-m1".into();
    zoo.config.epochs = 0;
    zoo.config.start_from = Some("m1".into());
    zoo.accuracy_after = 0.99;
    zoo.gpu_seconds = 1e-3;
    input.streams[1].retrain.push(zoo);
    let old = host().decide(
        &plugin_0_1_0("fair"),
        &input,
        &[txt("retrain-config", &running)],
        0,
    );
    let s = old.unwrap();
    assert_eq!(
        s.streams[0].retrain_config.as_deref(),
        Some(running.as_str())
    );
    assert_ne!(s.streams[1].retrain_config.as_deref(), Some("zoo-m1"));
}

#[test]
fn selectors_short_list_nearest_or_everything_within_the_limit() {
    let request = tandem_plugin_sdk::sample::selection_request(30, 16, 3);
    let ids = host()
        .select(&plugin("nearest"), &request, &[num("k", 3.0)])
        .unwrap();
    assert_eq!(ids.len(), 3);
    // The request's signature is near scene 0, which models m0, m4, m8, ... saw.
    for id in &ids {
        let i: usize = id[1..].parse().unwrap();
        assert_eq!(i % 4, 0, "{id} is not of the stream's scene: {ids:?}");
    }
    let all = host().select(&plugin("check-all"), &request, &[]).unwrap();
    assert_eq!(all.len(), request.max_candidates as usize);
    let e = host()
        .select(&plugin("nearest"), &request, &[num("k", 0.5)])
        .unwrap_err();
    assert!(e.to_string().contains("positive integer"), "{e}");
}

/// The histogram policy moves from mode to mode of a stream's idle times: pre-warmed ahead
/// of the short gaps between bursts (kept warm when they start at once), released past them
/// and pre-warmed ahead of the long quiet spell, back at once if cold inside it, released
/// past every mode; a spread history is unpredictable and released at once (a short one gets
/// the fixed keep-alive); a wide mode is held no longer than the keep-alive, where its idle
/// times are densest.
#[test]
fn the_histogram_policy_keeps_warm_for_short_gaps_and_prewarms_for_long_ones() {
    use tandem::plugin::types::{LifecycleInput, StreamActivity, StreamPhase};
    let bimodal: Vec<f64> = [8.0, 10.0, 12.0, 9.0, 11.0, 10.0, 190.0, 200.0, 210.0, 205.0].to_vec();
    let stream = |phase, idle: f64, history: &[f64]| StreamActivity {
        id: "s".into(),
        phase,
        idle_seconds: idle,
        idle_history: history.to_vec(),
        resident_bytes: 1 << 20,
        cold_start_seconds: 0.01,
        accuracy: 0.7,
    };
    let decide = |s: StreamActivity| {
        let input = LifecycleInput {
            now_seconds: 1000.0,
            streams: vec![s],
            memory_budget_bytes: None,
        };
        let d = host()
            .plan_lifecycle(&plugin("histogram"), &input, &[])
            .unwrap();
        (d[0].keep_alive_seconds, d[0].prewarm_after_seconds)
    };
    // Active: for the short mode (8-12 s), released when idle and back a little before 8 s
    // (the pre-warm costs milliseconds), kept past 12 s.
    let (keep, prewarm) = decide(stream(StreamPhase::Active, 0.0, &bimodal));
    let prewarm = prewarm.expect("pre-warmed ahead of the short mode");
    assert!(
        (5.0..8.0).contains(&prewarm) && (12.0..17.0).contains(&keep),
        "{keep} {prewarm}"
    );
    // A mode that starts at once (2-3 s gaps): simply kept warm.
    let (keep, prewarm) = decide(stream(StreamPhase::Active, 0.0, &[2.0, 2.5, 3.0, 2.2, 2.8]));
    assert!(
        prewarm.is_none() && (3.0..6.0).contains(&keep),
        "{keep} {prewarm:?}"
    );
    // Idle past the short mode: released, back a little before 190 s, kept past 210 s.
    let (keep, prewarm) = decide(stream(StreamPhase::WarmIdle, 20.0, &bimodal));
    let prewarm = prewarm.expect("pre-warmed ahead of the long mode");
    assert!((180.0..190.0).contains(&prewarm), "{prewarm}");
    assert!((210.0..220.0).contains(&keep), "{keep}");
    // Cold inside the long mode: back ahead of the idle times still to come (200-210 s), or
    // at once if they are close.
    let (_, prewarm) = decide(stream(StreamPhase::Cold, 195.0, &bimodal));
    assert!(
        prewarm.is_some_and(|p| (195.0..200.0).contains(&p)),
        "{prewarm:?}"
    );
    let (_, prewarm) = decide(stream(StreamPhase::Cold, 199.0, &bimodal));
    assert_eq!(prewarm, Some(199.0));
    // Past every mode: released now.
    assert_eq!(
        decide(stream(StreamPhase::WarmIdle, 400.0, &bimodal)),
        (400.0, None)
    );
    // A short mode that is not the likely end (one idle time in five): released as soon as
    // the frames stop, and asked again at the next phase change.
    assert_eq!(
        decide(stream(
            StreamPhase::Active,
            0.0,
            &[17.0, 132.0, 180.0, 196.0, 210.0]
        )),
        (0.0, None)
    );
    // A mode spread by random arrivals (130-190 s): resident no longer than a keep-alive's
    // 30 s, where its idle times are densest (175-190 s), not from 130 s.
    let spread_mode = [
        130.0, 150.0, 175.0, 180.0, 182.0, 185.0, 190.0, 200.0, 210.0,
    ];
    let (keep, prewarm) = decide(stream(StreamPhase::WarmIdle, 20.0, &spread_mode));
    let prewarm = prewarm.expect("pre-warmed ahead of the dense part");
    assert!(
        (170.0..175.0).contains(&prewarm) && (190.0..195.0).contains(&keep),
        "{keep} {prewarm}"
    );
    assert!(keep - prewarm <= 30.0, "{keep} {prewarm}");
    // Exponential-like idle times form no predictable mode: released at once; a history
    // shorter than `min-samples` gets the fixed 30 s keep-alive.
    let spread = [3.0, 7.0, 15.0, 40.0, 90.0, 200.0, 450.0, 1000.0];
    assert_eq!(
        decide(stream(StreamPhase::Active, 0.0, &spread)),
        (0.0, None)
    );
    assert_eq!(
        decide(stream(StreamPhase::Active, 0.0, &spread[..3])),
        (30.0, None)
    );
}

#[test]
fn lifecycle_policies_keep_alive_prewarm_or_scale_to_zero() {
    let input = tandem_plugin_sdk::sample::lifecycle_input(8, 2);
    let plan = |name: &str, params: &[Param]| {
        host()
            .plan_lifecycle(&plugin(name), &input, params)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert!(
        plan("always-warm", &[])
            .iter()
            .all(|d| d.keep_alive_seconds > 1e300)
    );
    assert!(
        plan("scale-to-zero", &[])
            .iter()
            .all(|d| d.keep_alive_seconds == 0.0 && d.prewarm_after_seconds.is_none())
    );
    assert!(
        plan("keep-alive", &[num("seconds", 45.0)])
            .iter()
            .all(|d| d.keep_alive_seconds == 45.0)
    );
    // Idle times of 55-65 s: released at once, back before the shortest, kept past the
    // longest (the 5th and 99th percentiles of 12 samples), within a margin.
    for (d, s) in plan("histogram", &[]).iter().zip(&input.streams) {
        let (lo, hi) = s
            .idle_history
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
        let prewarm = d
            .prewarm_after_seconds
            .expect("a predictable stream is pre-warmed");
        assert!(prewarm < lo && prewarm > lo - 5.0, "{d:?} for {lo}..{hi}");
        assert!(
            d.keep_alive_seconds >= hi && d.keep_alive_seconds < hi + 5.0,
            "{d:?}"
        );
    }
}
