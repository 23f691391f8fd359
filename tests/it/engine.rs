//! The window engine on a tiny synthetic scenario with real guest plugins: scenario errors,
//! determinism, fallback on a failing policy, re-scheduling on completion, history, a
//! crash mid-run and a killed `tandem run` process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tandem::compute::cpu::CpuBackend;
use tandem::engine::scenario::ScenarioError;
use tandem::engine::{
    Camera, CostModel, Engine, Plugins, Scenario, Session, SourcePool, WindowReport, checkpoint,
    parse_policy,
};
use tandem::history::{History, LEASE, RunEnd};
use tandem::model::{self, Arch, Model, TrainConfig};
use tandem::plugin::types::{Param, ParamValue};
use tandem::plugin::{Catalog, Limits, PluginHost, Registry};

use super::plugins::guest_bytes;
use super::support::{new_run, runtime};

pub(crate) const TINY: &str = r#"
name = "tiny"
windows = 2
seed = 5
hidden = 32
channels = [8, 16, 16]

[pretrain]
samples = 300
epochs = 1

[profiler]
epochs = 3

[memory]
capacity = 32

[config_space]
name = "ekya-space"
params = { learning-rate = 0.02, head-width = 32, wide-width = 32, model-layers = 5 }

[[cameras]]
name = "a"
source = "synthetic"
frame_rate = 1.0
objects_per_frame = 2
train_samples = 64

[[cameras]]
name = "b"
source = "synthetic"
frame_rate = 1.0
objects_per_frame = 2
train_samples = 64

[[cameras.drift]]
window = 1
brightness = 0.5
"#;

fn tiny() -> Scenario {
    Scenario::parse(TINY, Path::new("tiny.toml")).unwrap()
}

/// `s` with the profile before the first decision (Ekya's timing): every policy call then
/// comes at the decision or at a completion.
fn before(mut s: Scenario) -> Scenario {
    s.profiler.timing = tandem::engine::scenario::ProfileTiming::Before;
    s
}

/// `s` with every stream profiled every window (`estimate = "profile"`, Ekya's), for the
/// tests of the profile itself.
fn profiling(mut s: Scenario) -> Scenario {
    s.profiler.estimate = tandem::engine::scenario::EstimateSource::Profile;
    s
}

fn engine_host() -> Arc<PluginHost> {
    static HOST: OnceLock<Arc<PluginHost>> = OnceLock::new();
    HOST.get_or_init(|| {
        Arc::new(
            PluginHost::new(Limits::default())
                .unwrap()
                .with_cache_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        )
    })
    .clone()
}

fn plugins(s: &Scenario, policy: &str, params: Vec<Param>) -> Plugins {
    let host = engine_host();
    let load = |n: &str| host.load(n, &guest_bytes(n)).unwrap();
    let space_params = tandem::engine::params_from_toml(&s.config_space.params).unwrap();
    Plugins {
        policy: load(policy),
        policy_params: params,
        space: load("ekya-space"),
        space_params,
        estimator: load("optimus"),
        estimator_params: vec![],
        selector: None,
        zoo_candidates: 0,
        lifecycle: None,
        host,
        seed: s.seed,
    }
}

/// Run every window of `s` under `policy` on a fresh engine.
fn run(be: &CpuBackend, s: &Scenario, policy: &str, params: Vec<Param>) -> Vec<WindowReport> {
    let pool = SourcePool::load(&s.cameras[0].source, s.seed).unwrap();
    let pre = pretrained(be, &pool, (300, 1));
    engine(be, s, (policy, params), &pool, &pre).run_all()
}

/// Run every window of `s` under `policy` with a zoo (its selector `nearest`) holding a
/// model pretrained well enough for scenes to matter (1500 samples, 2 epochs).
fn run_with_zoo(
    be: &CpuBackend,
    s: &Scenario,
    policy: &str,
    params: Vec<Param>,
) -> Vec<WindowReport> {
    run_with_zoo_of(be, s, (policy, params), &mut |_, _, _| {})
}

/// As [`run_with_zoo`], `more` adding models to the zoo first (given the pool and the
/// pretrained model).
fn run_with_zoo_of(
    be: &CpuBackend,
    s: &Scenario,
    (policy, params): (&str, Vec<Param>),
    more: &mut dyn FnMut(&mut tandem::engine::zoo::Zoo, &SourcePool, &Model<CpuBackend>),
) -> Vec<WindowReport> {
    use tandem::data::Look;
    use tandem::engine::zoo::{PRETRAINED, Zoo};
    let pool = SourcePool::load(&s.cameras[0].source, s.seed).unwrap();
    let pre = pretrained(be, &pool, (1500, 2));
    let mut zoo = Zoo::new(8, 1 << 24);
    let look = Look::of(&pool.train.take(1500)).mean;
    zoo.insert(be, &pre, (PRETRAINED, 0), look, 0.5);
    more(&mut zoo, &pool, &pre);
    let mut plugins = plugins(s, policy, params);
    plugins.selector = Some((
        engine_host()
            .load("nearest", &guest_bytes("nearest"))
            .unwrap(),
        vec![],
    ));
    plugins.zoo_candidates = s.zoo.max_candidates;
    let mut e = engine(be, s, (policy, vec![]), &pool, &pre).with_zoo(Some(zoo));
    e.set_plugins(plugins);
    e.run_all()
}

/// A model of the tiny architecture trained on `samples` of `pool` for `epochs`.
fn pretrained(
    be: &CpuBackend,
    pool: &SourcePool,
    (samples, epochs): (usize, usize),
) -> Model<CpuBackend> {
    let arch = Arch {
        in_channels: 3,
        channels: [8, 16, 16],
        hidden: 32,
        classes: 8,
    };
    let mut pre = Model::new(be, arch, 1);
    let cfg = TrainConfig {
        epochs,
        batch_size: 32,
        ..TrainConfig::default()
    };
    model::train(
        be,
        &mut pre,
        &pool.train.take(samples),
        &cfg,
        &mut |_, _| {},
    );
    pre
}

/// An engine for `s` under `policy`, every camera drawing from `pool`, starting from `pre`.
fn engine<'a>(
    be: &'a CpuBackend,
    s: &Scenario,
    (policy, params): (&str, Vec<Param>),
    pool: &std::sync::Arc<SourcePool>,
    pre: &Model<CpuBackend>,
) -> Engine<'a, CpuBackend> {
    let arch = pre.arch();
    let cameras = s
        .cameras
        .iter()
        .enumerate()
        .map(|(index, spec)| Camera {
            index,
            spec: spec.clone(),
            pool: pool.clone(),
        })
        .collect();
    let cost = CostModel {
        arch,
        gpu_flops: s
            .gpu_gflops
            .map_or(4.0 * 2.0 * arch.forward_flops(32, 32), |g| g * 1e9),
    };
    Engine::new(
        be,
        s.clone(),
        plugins(s, policy, params),
        cameras,
        pre,
        cost,
    )
}

#[test]
fn a_resumed_engine_continues_exactly_as_an_uninterrupted_one() {
    // The checkpoint after window 0 holds all that window 1 and 2 depend on: models, exemplar
    // memories, inference choices, sampling factors and the calibration.
    let be = CpuBackend::new(2);
    let mut s = tiny();
    s.windows = 3;
    let whole = run(&be, &s, "thief", vec![]);
    let dir = super::data::tempdir();
    let pool = SourcePool::load(&s.cameras[0].source, s.seed).unwrap();
    let pre = pretrained(&be, &pool, (300, 1));
    let mut first = engine(&be, &s, ("thief", vec![]), &pool, &pre);
    let mut parts = vec![first.run_window().unwrap()];
    let saved = checkpoint::save(&first.checkpoint_state(), &dir, 7).unwrap();
    assert_eq!(saved, checkpoint::relative_dir(7, 1));
    drop(first);
    let mut second = engine(&be, &s, ("thief", vec![]), &pool, &pre);
    checkpoint::restore(&mut second, &dir.join(&saved)).unwrap();
    assert_eq!(second.windows_done(), 1);
    parts.extend((1..3).map(|_| second.run_window().unwrap()));
    assert_eq!(comparable(parts), comparable(whole));
    // A checkpoint of other streams is refused with the reason.
    let mut other = s.clone();
    other.cameras[1].name = "c".into();
    let mut third = engine(&be, &other, ("thief", vec![]), &pool, &pre);
    let e = checkpoint::restore(&mut third, &dir.join(&saved))
        .err()
        .unwrap();
    assert!(e.to_string().contains("streams"), "{e}");
}

/// Every window of an engine's scenario.
trait RunAll {
    fn run_all(self) -> Vec<WindowReport>;
}

impl RunAll for Engine<'_, CpuBackend> {
    fn run_all(mut self) -> Vec<WindowReport> {
        (0..self.scenario().windows)
            .map(|_| self.run_window().unwrap())
            .collect()
    }
}

/// Reports with the timing fields (the only non-deterministic ones) zeroed, and the policy's
/// digest left out (a rebuilt plugin deciding the same is the same result).
fn comparable(mut ws: Vec<WindowReport>) -> String {
    for w in &mut ws {
        for c in &mut w.policy_calls {
            c.micros = 0;
            c.digest.clear();
        }
    }
    serde_json::to_string(&ws).unwrap()
}

#[test]
fn same_seed_same_results() {
    let be = CpuBackend::new(2);
    let s = tiny();
    let a = run(&be, &s, "thief", vec![]);
    let b = run(&be, &s, "thief", vec![]);
    assert_eq!(comparable(a.clone()), comparable(b));
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|w| (0.0..=1.0).contains(&w.mean_accuracy)));
}

#[test]
fn thief_retrains_and_reschedules_on_completion() {
    let be = CpuBackend::new(2);
    let ws = run(&be, &before(tiny()), "thief", vec![]);
    let finished: Vec<_> = ws
        .iter()
        .flat_map(|w| w.streams.iter().filter_map(|s| s.retrain.as_ref()))
        .filter(|j| j.finished_at.is_some())
        .collect();
    assert!(
        !finished.is_empty(),
        "no retraining job finished: {:#?}",
        ws[0].policy_calls
    );
    // Every completion inside the window triggers another policy call at that time.
    for w in &ws {
        for j in w.streams.iter().filter_map(|s| s.retrain.as_ref()) {
            if let Some(t) = j.finished_at {
                assert!(
                    w.policy_calls.iter().any(|c| (c.at - t).abs() < 1e-9),
                    "no call at completion {t}"
                );
                // Virtual clock: a job gets exactly what it was allocated.
                assert!((j.delivered_share - j.allocated_share).abs() < 1e-9);
                assert!(j.actual_accuracy.is_some());
            }
        }
        for c in &w.policy_calls {
            assert!(c.error.is_none(), "{:?}", c.error);
        }
    }
    // A deployed model's inference factors are its own: the call at its completion does not
    // repeat the factors measured with the model the window started with.
    let factors = |c: &tandem::engine::report::PolicyCall, stream: &str| -> Vec<f64> {
        let s = c
            .input
            .streams
            .iter()
            .find(|s| s.state.id == stream)
            .unwrap();
        s.infer.iter().map(|p| p.accuracy_factor).collect()
    };
    let mut remeasured = 0;
    for w in &ws {
        for s in &w.streams {
            let Some(t) = s
                .retrain
                .as_ref()
                .filter(|j| j.deployed)
                .and_then(|j| j.finished_at)
            else {
                continue;
            };
            let at = w
                .policy_calls
                .iter()
                .find(|c| (c.at - t).abs() < 1e-9)
                .unwrap();
            if factors(at, &s.stream) != factors(&w.policy_calls[0], &s.stream) {
                remeasured += 1;
            }
        }
    }
    assert!(
        remeasured > 0,
        "no deployed model's factors were re-measured"
    );
}

#[test]
fn failing_policy_falls_back_to_fair_and_is_recorded() {
    let be = CpuBackend::new(2);
    let mut s = before(tiny());
    s.windows = 1;
    let mode = |m: &str| {
        vec![Param {
            name: "mode".into(),
            value: ParamValue::Text(m.into()),
        }]
    };
    for m in ["panic", "nan", "over-budget"] {
        let ws = run(&be, &s, "test-misbehave", mode(m));
        let call = &ws[0].policy_calls[0];
        let err = call
            .error
            .as_deref()
            .unwrap_or_else(|| panic!("mode {m}: no error recorded"));
        assert!(err.contains("test-misbehave"), "mode {m}: {err}");
        assert!(call.output.is_none());
        // The fair fallback still served and (on this scenario) retrained.
        assert!(ws[0].mean_accuracy > 0.0);
        assert!(!ws[0].allocations.is_empty());
    }
}

#[test]
fn scenario_errors_name_key_and_line() {
    let p = Path::new("s.toml");
    let err = Scenario::parse(&TINY.replace("windows = 2", "windows = 0"), p).unwrap_err();
    match &err {
        ScenarioError::Invalid { key, line, .. } => {
            assert_eq!(key, "windows");
            assert_eq!(*line, 3);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().starts_with("s.toml:3: `windows`"), "{err}");

    // A compare list is policy specs, each checked where the file names it.
    let ok = Scenario::parse(
        &TINY.replace(
            "seed = 5",
            "seed = 5\ncompare = [\"thief\", \"fair:infer-fraction=0.3\"]",
        ),
        p,
    )
    .unwrap();
    assert_eq!(ok.compare.len(), 2);
    let err = Scenario::parse(
        &TINY.replace("seed = 5", "seed = 5\ncompare = [\"thief\", \"fair:0.3\"]"),
        p,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Invalid { key, line: 5, .. } if key == "compare")
            && err.to_string().contains("`0.3` is not key=value"),
        "{err}"
    );

    let err = Scenario::parse(
        &TINY.replace(
            "frame_rate = 1.0\nobjects_per_frame = 2\ntrain_samples = 64\n\n[[cameras.drift]]",
            "frame_rate = -1.0\nobjects_per_frame = 2\ntrain_samples = 64\n\n[[cameras.drift]]",
        ),
        p,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Invalid { key, line: 30.., .. } if key == "cameras[1].frame_rate"),
        "{err}"
    );

    let err =
        Scenario::parse(&TINY.replace("seed = 5", "seed = 5\nwindow_secs = 3"), p).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Syntax { line: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("window_secs"), "{err}");

    let err = Scenario::parse(
        &TINY.replace("brightness = 0.5", "brightness = \"dark\""),
        p,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Syntax { .. }) && err.to_string().contains("brightness"),
        "{err}"
    );

    let drift = TINY.replace(
        "window = 1\nbrightness = 0.5",
        "window = 1\nbrightness = 0.5\n\n[[cameras.drift]]\nwindow = 0",
    );
    let err = Scenario::parse(&drift, p).unwrap_err();
    assert!(
        matches!(&err, ScenarioError::Invalid { key, .. } if key == "cameras[1].drift[1].window"),
        "{err}"
    );

    let missing = Scenario::load(Path::new("/nonexistent/scenario.toml")).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/scenario.toml"));
}

/// Fair's parameters for one fixed retraining configuration on every stream.
fn fixed() -> Vec<Param> {
    vec![Param {
        name: "retrain-config".into(),
        value: ParamValue::Text("head-d1.0-e5".into()),
    }]
}

#[test]
fn examples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[test]
fn history_keeps_every_window_and_survives_a_crash() {
    let be = CpuBackend::new(2);
    let dir = super::data::tempdir();
    let db = dir.join("history.sqlite");
    let rt = runtime();
    let ws = run(&be, &tiny(), "thief", vec![]);
    let run_id = rt.block_on(async {
        let h = History::open(&db).await.unwrap();
        let id = h.start_run(&new_run("tiny")).await.unwrap();
        for w in &ws {
            h.record_window(id, w).await.unwrap();
        }
        // Dropped without finish_run: as if the process died before window 3, a minute ago
        // (its lease lapsed).
        age_lease(&h, id, 60.0).await;
        id
    });
    rt.block_on(async {
        let h = History::open(&db).await.unwrap();
        let runs = h.runs().await.unwrap();
        let r = runs.iter().find(|r| r.id == run_id).unwrap();
        assert_eq!(r.status, "interrupted");
        assert_eq!(r.windows_done, 2);
        // Its mean accuracy is the mean over the windows it committed.
        let mean = (ws[0].mean_accuracy + ws[1].mean_accuracy) / 2.0;
        assert!((r.mean_accuracy.unwrap() - mean).abs() < 1e-12, "{r:?}");
        let rows = h.windows(run_id).await.unwrap();
        assert_eq!(rows.len(), 2);
        let policies = vec!["thief".to_string(), "fair:profile=false".to_string()];
        let cid = h.start_comparison("tiny", &policies).await.unwrap();
        let stored = h.comparisons().await.unwrap();
        assert_eq!((stored[0].id, &stored[0].policies), (cid, &policies));
        assert!((rows[1].mean_accuracy - ws[1].mean_accuracy).abs() < 1e-12);
        let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM policy_calls WHERE run_id = ?")
            .bind(run_id)
            .fetch_one(h.pool())
            .await
            .unwrap();
        assert_eq!(
            calls as usize,
            ws.iter().map(|w| w.policy_calls.len()).sum::<usize>()
        );
    });
}

#[test]
fn a_model_that_validates_worse_is_not_deployed() {
    // Every configuration trains at a step size that wrecks the model.
    let be = CpuBackend::new(2);
    let mut s = tiny();
    s.windows = 1;
    // Long enough for the jobs to finish after the profiler on the tiny model's slow GPU.
    s.window_seconds = 2000.0;
    s.config_space
        .params
        .insert("learning-rate".into(), toml::Value::Float(50.0));
    let policy = fixed();
    let gated = run(&be, &s, "fair", policy.clone());
    s.validate_before_deploy = false;
    let ungated = run(&be, &s, "fair", policy);
    let mut refused = 0;
    for (g, u) in gated[0].streams.iter().zip(&ungated[0].streams) {
        let (jg, ju) = (g.retrain.as_ref().unwrap(), u.retrain.as_ref().unwrap());
        let (Some(ag), Some(au)) = (jg.actual_accuracy, ju.actual_accuracy) else {
            panic!("{}: the jobs did not finish", g.stream);
        };
        assert_eq!(ag, au);
        assert!(ju.deployed && u.end_accuracy == au);
        if ag < g.start_accuracy {
            // Gated: the old model still serves at the end; ungated: the wrecked one does.
            refused += 1;
            assert!(!jg.deployed);
            assert_eq!(g.end_accuracy, g.start_accuracy);
        } else {
            assert!(jg.deployed && g.end_accuracy == ag);
        }
    }
    assert!(refused > 0, "no job made its model worse");
}

#[test]
fn a_killed_run_keeps_its_committed_windows() {
    let _one = super::support::one_binary_at_a_time();
    // The real thing: a `tandem run` process killed (SIGKILL) mid-run. Every window it
    // committed is whole; the run reads as interrupted once its lease lapses, and resumes
    // from its last committed window to the end.
    let data = super::cli::data_dir();
    let scenario = super::cli::tiny_scenario(&data, 5);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--json",
            "--backend",
            "cpu",
        ])
        .arg("--data-dir")
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = data.join("history.sqlite");
    let rt = runtime();
    let started = std::time::Instant::now();
    while super::cli::committed(&data) < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "tandem run exited early"
        );
        assert!(
            started.elapsed().as_secs() < 600,
            "no window committed in 10 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    rt.block_on(async {
        let h = History::open(&db).await.unwrap();
        // Running until its lease lapses, then interrupted, with no restart of the reader.
        let started = std::time::Instant::now();
        let r = loop {
            let r = h.runs().await.unwrap().remove(0);
            if r.status != "running" {
                break r;
            }
            assert!(started.elapsed() < LEASE + Duration::from_secs(10), "{r:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(r.status, "interrupted");
        assert!(r.mean_accuracy.is_some(), "{r:?}");
        assert!(r.windows_done >= 2 && r.windows_done < 5, "{r:?}");
        let rows = h.windows(r.id).await.unwrap();
        assert_eq!(rows.len() as i64, r.windows_done);
        for (i, w) in rows.iter().enumerate() {
            assert_eq!(w.window, i as i64);
            // A committed window has all of its parts.
            assert_eq!(
                h.stream_windows(r.id, Some(w.window)).await.unwrap().len(),
                2
            );
            // Its predictions: at least each camera's safe configuration (history stands in
            // for the profile by default), with the zoo models checked from window 1 on.
            let predictions = h.predictions(r.id, w.window).await.unwrap();
            assert!(
                predictions.len() >= 2,
                "window {}: {}",
                w.window,
                predictions.len()
            );
        }
    });
    let out = super::cli::tandem(&["run", "--resume", "1", "--backend", "cpu"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.block_on(async {
        let h = History::open(&db).await.unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(h.pool())
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let r = h.runs().await.unwrap().remove(0);
        assert_eq!((r.status.as_str(), r.windows_done), ("finished", 5));
        let rows = h.windows(r.id).await.unwrap();
        assert_eq!(
            rows.iter().map(|w| w.window).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    });
}

/// Move run `id`'s lease `seconds` into the past, as if its writer had stopped then.
async fn age_lease(h: &History, id: i64, seconds: f64) {
    sqlx::query("UPDATE runs SET heartbeat_at = heartbeat_at - ? WHERE id = ?")
        .bind(seconds)
        .bind(id)
        .execute(h.pool())
        .await
        .unwrap();
}

#[test]
fn a_run_reads_as_interrupted_once_its_lease_lapses() {
    // No restart and no process-id guess: any reader sees the lease.
    let dir = super::data::tempdir();
    let db = dir.join("history.sqlite");
    let rt = runtime();
    rt.block_on(async {
        let h = History::open(&db).await.unwrap();
        let other = History::open(&db).await.unwrap();
        let status = || async { other.runs().await.unwrap()[0].status.clone() };
        let id = h.start_run(&new_run("tiny")).await.unwrap();
        assert_eq!(status().await, "running");
        age_lease(&h, id, LEASE.as_secs_f64() - 3.0).await;
        assert_eq!(status().await, "running", "the lease still holds");
        age_lease(&h, id, 6.0).await;
        assert_eq!(status().await, "interrupted", "the lease lapsed");
        // A writer that was only slow renews it and is running again.
        h.heartbeat(id).await.unwrap();
        assert_eq!(status().await, "running");
        h.finish_run(id, RunEnd::Interrupted(0.5)).await.unwrap();
        let r = other.run(id).await.unwrap().unwrap();
        assert_eq!(
            (r.status.as_str(), r.mean_accuracy),
            ("interrupted", Some(0.5))
        );
        // A closed run's lease is not renewed any more.
        h.heartbeat(id).await.unwrap();
        assert_eq!(status().await, "interrupted");
    });
}

#[test]
fn two_gpus_are_used_and_never_exceeded() {
    let be = CpuBackend::new(2);
    let mut s = before(tiny());
    s.gpus = 2;
    s.windows = 1;
    let ws = run(&be, &s, "thief", vec![]);
    let w = &ws[0];
    assert_eq!(w.gpus, 2);
    // Shares at each decision: within 2 GPUs, and more than one GPU's worth handed out.
    let mut most: f64 = 0.0;
    for call in &w.policy_calls {
        let out = call.output.as_ref().expect("thief decided");
        let total: f64 = out
            .streams
            .iter()
            .map(|d| d.infer_share + d.retrain_share)
            .sum();
        assert!(total <= 2.0 + 1e-9, "{total}");
        assert!(
            out.streams
                .iter()
                .all(|d| d.infer_share <= 1.0 + 1e-9 && d.retrain_share <= 1.0 + 1e-9)
        );
        most = most.max(total);
    }
    assert!(most > 1.0, "at most {most} GPUs allocated");
    assert!(w.gpu_utilization <= 1.0 + 1e-9);
}

#[test]
fn real_clock_time_slices_jobs_by_their_shares() {
    let be = CpuBackend::new(1);
    let mut s = profiling(tiny());
    s.windows = 1;
    s.clock = tandem::engine::scenario::ClockKind::Real;
    // A 200 s window in 10 s of wall time.
    s.real_time_scale = 20.0;
    // Jobs of many batches (the slicer's unit): the tiny scenario's smallest would be two.
    let ws = run(
        &be,
        &s,
        "fair",
        vec![Param {
            name: "retrain-config".into(),
            value: ParamValue::Text("head-d1.0-e15".into()),
        }],
    );
    // The micro-profile ran on the device beside inference, after the labels, and decided
    // when it was done: its device time is charged and its predictions recorded.
    let w = &ws[0];
    assert!(
        w.decision_at > s.golden_delay_seconds,
        "decided at {}",
        w.decision_at
    );
    assert!(w.profiler_gpu_seconds > 0.0);
    assert!(w.predictions.len() >= 2 && w.predictions.iter().all(|p| p.predicted_accuracy > 0.0));
    for x in &w.streams {
        let (a, d) = (
            x.infer_allocated_share.unwrap(),
            x.infer_delivered_share.unwrap(),
        );
        assert!(
            d <= a * 1.05 && x.frames_processed > 0,
            "{}: {d} of {a}",
            x.stream
        );
    }
    let jobs: Vec<_> = ws[0]
        .streams
        .iter()
        .filter_map(|st| st.retrain.as_ref())
        .collect();
    assert!(!jobs.is_empty(), "no job ran on the real clock");
    for j in &jobs {
        assert!(j.allocated_share > 0.0);
        let deviation = (j.delivered_share / j.allocated_share - 1.0).abs();
        eprintln!(
            "{}: allocated {:.3} delivered {:.3} finished {:?}",
            j.config, j.allocated_share, j.delivered_share, j.finished_at
        );
        // A job can be short by at most about one batch against its allocation.
        assert!(
            deviation < 0.10,
            "{} delivered {} of {}",
            j.config,
            j.delivered_share,
            j.allocated_share
        );
        if let Some(t) = j.finished_at {
            assert!(t <= s.window_seconds && j.actual_accuracy.is_some());
        }
    }
}

#[test]
fn real_clock_inference_serves_the_frames_its_share_buys() {
    let be = CpuBackend::new(1);
    let mut s = tiny();
    s.windows = 1;
    s.clock = tandem::engine::scenario::ClockKind::Real;
    s.real_time_scale = 20.0;
    // Decide at once: inference alone runs on the device until the first retraining.
    s.golden_delay_seconds = 0.0;
    s.profiler.enabled = false;
    // More frames than this device can classify in the window's 10 s of wall time, the
    // second camera twice as many as the first, on a modelled GPU so strong that the
    // policy serves every frame at full resolution: what this device gets through is
    // what its share of the device's time buys.
    s.gpu_gflops = Some(1000.0);
    s.cameras[0].frame_rate = 200.0;
    s.cameras[1].frame_rate = 400.0;
    let ws = run(&be, &s, "no-retrain", vec![]);
    let st = &ws[0].streams;
    for x in st {
        eprintln!(
            "{}: {} of {} frames, accuracy {:.3}, share {:.3}, {}",
            x.stream, x.frames_processed, x.frames, x.accuracy, x.infer_share, x.infer_config
        );
        assert!(x.frames_processed > 100, "{} served nothing", x.stream);
        // Always behind, the job uses all of its share and no more.
        let (a, d) = (
            x.infer_allocated_share.unwrap(),
            x.infer_delivered_share.unwrap(),
        );
        assert!(
            (d / a - 1.0).abs() < 0.05,
            "{}: delivered {d} of {a}",
            x.stream
        );
        assert!(
            (x.frames_processed as f64) < 0.9 * x.frames as f64,
            "the device kept up with every frame: the test needs a heavier load"
        );
    }
    // Equal shares buy equal device time, so about as many frames whatever the frame rate
    // (the modelled GPU would have served every frame of both).
    let ratio = st[1].frames_processed as f64 / st[0].frames_processed as f64;
    assert!((0.8..1.25).contains(&ratio), "frames processed {ratio:.2}x");
}

#[test]
fn calibration_corrects_by_earlier_errors_of_the_same_kind_and_scales_their_spread() {
    use tandem::engine::calibrate::{Calibration, Raw};
    let raw = |kind, predicted, stated| Raw {
        config: "c".into(),
        kind,
        predicted,
        stated,
    };
    let mut c = Calibration::default();
    assert_eq!(c.correction((1, 15)), 0.0);
    // With no outcome yet, the stated error stands.
    assert!((c.error(0.05) - 0.05).abs() < 1e-12);
    // One outcome moves the correction half-way to its error; others follow with more.
    c.observe(&raw((1, 15), 0.9, 0.05), 0.7);
    assert!((c.correction((1, 15)) + 0.1).abs() < 1e-12);
    c.observe(&raw((1, 15), 0.8, 0.05), 0.6);
    assert!((c.correction((1, 15)) + 0.4 / 3.0).abs() < 1e-12);
    // Other layer groups or lengths are not corrected by it.
    assert_eq!(c.correction((3, 15)), 0.0);
    assert_eq!(c.correction((1, 5)), 0.0);
    // Misses of 0.2 - 0.133 = 0.067 each, against stated errors of 0.05: the error widens
    // by sqrt((1 + 2 * (0.067 / 0.05)^2) / 3).
    let miss = (0.2 - 0.4 / 3.0) / 0.05;
    let scale = ((1.0 + 2.0 * miss * miss) / 3.0f64).sqrt();
    assert!(
        (c.error(0.05) - 0.05 * scale).abs() < 1e-12,
        "{}",
        c.error(0.05)
    );
    assert!(scale > 1.0);
    // Outcomes well inside their stated errors narrow it.
    let mut tight = Calibration::default();
    for _ in 0..5 {
        tight.observe(&raw((2, 5), 0.7, 0.1), 0.7);
    }
    assert!(tight.error(0.1) < 0.1 * 0.5);
}

#[test]
fn a_policy_run_without_the_profiler_decides_at_once_and_predicts_nothing() {
    let be = CpuBackend::new(2);
    let profiled = run(&be, &profiling(tiny()), "fair", fixed());
    let mut s = tiny();
    s.profiler.enabled = false;
    let bare = run(&be, &s, "fair", fixed());
    for (p, b) in profiled.iter().zip(&bare) {
        assert!(b.predictions.is_empty(), "{:?}", b.predictions);
        assert!(!p.predictions.is_empty());
        // Only the resolution factors are measured: the first decision follows the labels.
        let wait = |w: &WindowReport| w.decision_at - s.golden_delay_seconds;
        assert!(
            wait(b) < wait(p) / 5.0,
            "{} vs {}",
            b.decision_at,
            p.decision_at
        );
        assert!(b.profiler_gpu_seconds < p.profiler_gpu_seconds);
        // The fixed configuration still retrains every stream.
        for st in &b.streams {
            let job = st.retrain.as_ref().expect("a job");
            assert_eq!(job.config, "head-d1.0-e5");
        }
    }
}

#[test]
fn host_options_are_taken_out_of_a_policy_spec_and_checked() {
    use tandem::engine::scenario::ProfileTiming;
    use tandem::engine::{HostOptions, host_options, parse_policy, policy_label};
    let spec =
        parse_policy("fair:retrain-config=head-d0.5-e5:profile=false:timing=before").unwrap();
    let (plugin, options) = host_options(&spec).unwrap();
    assert_eq!(options.profile, Some(false));
    assert_eq!(options.timing, Some(ProfileTiming::Before));
    assert_eq!(policy_label(&plugin), "fair:retrain-config=head-d0.5-e5");
    assert_eq!(
        host_options(&parse_policy("thief").unwrap()).unwrap().1,
        HostOptions::default()
    );
    let e = host_options(&parse_policy("thief:timing=later").unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("timing must be before or beside"),
        "{e}"
    );
    let (_, options) = host_options(&parse_policy("thief:estimate=history").unwrap()).unwrap();
    assert_eq!(
        options.estimate,
        Some(tandem::engine::scenario::EstimateSource::History)
    );
    let e = host_options(&parse_policy("thief:estimate=guess").unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("estimate must be profile, history or history-only"),
        "{e}"
    );
    let e = host_options(&parse_policy("fair:profile=maybe").unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("profile must be true or false"),
        "{e}"
    );
}

/// The virtual clock's results on `examples/tiny-synthetic.toml`, to the byte (policy-call
/// timings aside), against the report checked in beside the fixtures: a change that moves
/// any result fails here. `TANDEM_BLESS=1` rewrites the report (say why in the commit).
#[test]
fn tiny_synthetic_matches_its_checked_in_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let s = Scenario::load(&root.join("examples/tiny-synthetic.toml")).unwrap();
    let be = CpuBackend::new(2);
    let dir = super::data::tempdir();
    let catalog = Catalog::open(&dir).unwrap();
    let session = Session::new(&be, &s, &dir, catalog, &mut |_, _| {}).unwrap();
    let mut reports = Vec::new();
    for spec in ["thief", "fair:profile=false"] {
        let mut e = session
            .engine(&be, &s, &parse_policy(spec).unwrap())
            .unwrap();
        let ws = (0..s.windows).map(|_| e.run_window().unwrap()).collect();
        reports.push(serde_json::from_str::<serde_json::Value>(&comparable(ws)).unwrap());
    }
    let got = serde_json::to_string_pretty(&reports).unwrap() + "\n";
    let fixture = root.join("tests/fixtures/tiny-synthetic.report.json");
    if std::env::var_os("TANDEM_BLESS").is_some() {
        std::fs::write(&fixture, &got).unwrap();
    }
    let want = std::fs::read_to_string(&fixture).unwrap();
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "virtual-clock results differ from {} from line {}: got `{}`, want `{}`",
            fixture.display(),
            line + 1,
            got.lines().nth(line).unwrap_or(""),
            want.lines().nth(line).unwrap_or("")
        );
    }
}

/// The dashboard's live run and each of its comparisons build their session from the app's one
/// catalog: every run of every session calls its plugins on that one wasmtime engine (one
/// epoch thread, components compiled once), where a host of its own would have another.
#[test]
fn runs_share_the_apps_plugin_host() {
    let dir = super::data::tempdir();
    let registry = Registry::open(&dir).unwrap();
    for name in ["thief", "fair", "ekya-space", "optimus", "nearest"] {
        registry
            .add(&engine_host(), name, &guest_bytes(name), true)
            .unwrap();
    }
    let catalog = Catalog {
        host: engine_host(),
        registry: Arc::new(registry),
    };
    let (be, s) = (CpuBackend::new(1), tiny());
    let live = Session::new(&be, &s, &dir, catalog.clone(), &mut |_, _| {}).unwrap();
    let comparison = Session::new(&be, &s, &dir, catalog.clone(), &mut |_, _| {}).unwrap();
    let separate = PluginHost::new(Limits::default()).unwrap();
    for (session, policy) in [
        (&live, "thief"),
        (&comparison, "thief"),
        (&comparison, "fair"),
    ] {
        let run = session.plugins(&s, &parse_policy(policy).unwrap()).unwrap();
        assert!(run.host.same_engine(&catalog.host), "{policy}");
        assert!(!run.host.same_engine(&separate), "{policy}");
        assert!(Arc::ptr_eq(&run.policy, &catalog.load(policy).unwrap()));
    }
}

#[test]
fn the_profile_runs_beside_a_safe_start_and_the_policy_replans_once_it_is_in() {
    let be = CpuBackend::new(2);
    let mut s = profiling(tiny());
    s.windows = 1;
    s.profiler.timing = tandem::engine::scenario::ProfileTiming::Beside;
    // Long enough for the profile to come in on the tiny model's slow GPU.
    s.window_seconds = 2000.0;
    // Inference at full rate needs more than the safe start gives it.
    for c in &mut s.cameras {
        c.frame_rate = 10.0;
    }
    let ws = run(&be, &s, "thief", vec![]);
    let w = &ws[0];
    let golden = s.golden_delay_seconds;
    // At the labels' delay every stream starts retraining its safe configuration, on the
    // GPUs the profile leaves, before any policy call.
    let start: Vec<_> = w.allocations.iter().filter(|a| a.at == golden).collect();
    assert_eq!(start.len(), s.cameras.len(), "{:#?}", w.allocations);
    assert!(start.iter().all(|a| a.retrain_config.is_some()));
    let total: f64 = start.iter().map(|a| a.infer_share + a.retrain_share).sum();
    assert!(
        total <= s.gpus as f64 * (1.0 - s.profiler.share) + 1e-9,
        "{total}"
    );
    // The policy first decides once the profile is in, with the running jobs' progress and
    // what each could switch to.
    let first = &w.policy_calls[0];
    assert!(first.at > golden && (first.at - w.decision_at).abs() < 1e-9);
    assert!(w.profiler_gpu_seconds > 0.0);
    let running: Vec<_> = first
        .input
        .streams
        .iter()
        .filter(|st| st.running.is_some())
        .collect();
    for st in &running {
        let name = st.running.as_deref().unwrap();
        let job = st.retrain.iter().find(|r| r.config.name == name).unwrap();
        assert!(job.progress > 0.0 && job.progress < 1.0, "{job:?}");
        assert!(
            st.retrain.len() > 1,
            "no alternative offered to {}",
            st.state.id
        );
    }
    // A safe job that finished before the profile handed its share out, and a stream whose
    // inference share grew serves the best configuration the larger share runs.
    let handed: Vec<_> = w
        .allocations
        .iter()
        .filter(|a| a.at > golden && a.at < first.at && a.retrain_config.is_none())
        .collect();
    assert!(!handed.is_empty(), "{:#?}", w.allocations);
    for a in handed {
        let st = first
            .input
            .streams
            .iter()
            .find(|st| st.state.id == a.stream);
        let infer = &st.unwrap().infer;
        let factor = |name: &str| {
            infer
                .iter()
                .find(|p| p.config.name == name)
                .map_or(0.0, |p| p.accuracy_factor)
        };
        let best = infer
            .iter()
            .filter(|p| p.gpu_cost <= a.infer_share + 1e-9)
            .map(|p| p.accuracy_factor)
            .fold(0.0, f64::max);
        assert!(factor(&a.infer_config) >= best - 1e-9, "{a:?} {infer:?}");
    }
    // A stream whose safe job finished before the profile is offered nothing more.
    for st in first.input.streams.iter().filter(|st| st.running.is_none()) {
        assert!(st.retrain.is_empty(), "{} offered again", st.state.id);
    }
    // The profiled predictions come with their standard errors.
    assert!(
        first
            .input
            .streams
            .iter()
            .flat_map(|st| &st.retrain)
            .all(|r| r.accuracy_error > 0.0)
    );
}

#[test]
fn a_stream_whose_scene_is_unchanged_reuses_its_last_profile() {
    let be = CpuBackend::new(2);
    // Camera a never drifts; camera b drifts hard in window 1. Enough labels that a measured
    // accuracy moves by a few points, not six, between two windows of one scene.
    let mut s = profiling(tiny());
    (s.profiler.timing, s.profiler.lean) = (tandem::engine::scenario::ProfileTiming::Before, false);
    for c in &mut s.cameras {
        c.train_samples = 400;
    }
    let b = &mut s.cameras[1].drift[0];
    (b.brightness, b.noise, b.rotation) = (0.3, 0.3, 40.0);
    let reused = run(&be, &s, "thief", vec![]);
    s.profiler.reuse = false;
    let fresh = run(&be, &s, "thief", vec![]);
    assert_eq!(reused[0].profiler_saved_gpu_seconds, 0.0);
    let (r, f) = (&reused[1], &fresh[1]);
    assert!(r.profiler_saved_gpu_seconds > 0.0, "nothing reused");
    assert!(r.profiler_gpu_seconds < f.profiler_gpu_seconds);
    assert!(r.decision_at < f.decision_at);
    // Camera a's predictions in window 1 are window 0's, re-anchored on its serving model,
    // and still offered (as predictions, with their errors) to the policy.
    let offered = |w: &WindowReport, cam: &str| -> Vec<(String, f64)> {
        w.predictions
            .iter()
            .filter(|p| p.stream == cam)
            .map(|p| (p.config.clone(), p.predicted_accuracy))
            .collect()
    };
    let (a0, a1) = (offered(&reused[0], "a"), offered(r, "a"));
    assert_eq!(a0.len(), a1.len());
    let start = r
        .streams
        .iter()
        .find(|st| st.stream == "a")
        .unwrap()
        .start_accuracy;
    for ((c0, p0), (c1, p1)) in a0.iter().zip(&a1) {
        assert_eq!(c0, c1);
        assert!((p1 - p0.max(start)).abs() < 1e-12, "{c1}: {p1} from {p0}");
    }
    // Camera b's scene changed: profiled afresh.
    assert_ne!(offered(&reused[0], "b"), offered(r, "b"));
}

#[test]
fn history_stands_in_for_the_profile_until_the_scene_moves_or_a_prediction_misses() {
    use tandem::engine::scenario::EstimateSource;
    let be = CpuBackend::new(2);
    let mut s = before(tiny());
    s.windows = 2;
    // A prior error so small that any job's measured accuracy misses the prediction.
    (s.profiler.estimate, s.profiler.prior_error) = (EstimateSource::History, 0.001);
    let w = run(&be, &s, "thief", vec![]);
    let offered = |w: &WindowReport, cam: &str| -> Vec<tandem::engine::report::PredictionRecord> {
        w.predictions
            .iter()
            .filter(|p| p.stream == cam)
            .cloned()
            .collect()
    };
    // Window 0 profiles nothing: each stream is offered its safe configuration alone, at a
    // gain of the prior error over where it starts.
    assert!(w[0].profiler_saved_gpu_seconds > 0.0);
    let mut missed = 0;
    for st in &w[0].streams {
        let p0 = offered(&w[0], &st.stream);
        assert_eq!(p0.len(), 1, "{p0:?}");
        assert!((p0[0].predicted_accuracy - (st.start_accuracy + 0.001)).abs() < 1e-12);
        // Window 1: a stream whose job missed that prediction is profiled again (several
        // configurations offered); the others are offered the level they ended window 0 at.
        let p1 = offered(&w[1], &st.stream);
        let start1 = w[1].streams.iter().find(|x| x.stream == st.stream).unwrap();
        match p0[0].actual_accuracy {
            Some(a) if (a - p0[0].predicted_accuracy).abs() > 0.002 => {
                missed += 1;
                assert!(p1.len() > 1, "{}: not profiled after a miss", st.stream);
            }
            _ => {
                assert_eq!(p1.len(), 1, "{p1:?}");
                let level = st.end_accuracy.max(start1.start_accuracy);
                assert!((p1[0].predicted_accuracy - level).abs() < 1e-12);
            }
        }
    }
    assert!(missed > 0, "no job ran to miss its prediction");
    assert!(w[1].profiler_gpu_seconds > w[0].profiler_gpu_seconds);
    // A prior error so large that no prediction misses: only a stream whose scene moved is
    // profiled (camera b, darkened in window 1); camera a keeps its history.
    s.profiler.prior_error = 0.5;
    let w = run(&be, &s, "thief", vec![]);
    assert_eq!(offered(&w[1], "a").len(), 1, "{:?}", offered(&w[1], "a"));
    assert!(
        offered(&w[1], "b").len() > 1,
        "b's scene moved and was not profiled"
    );
}

#[test]
fn a_scene_that_returns_mid_window_is_seen_on_the_frames_and_served_by_its_zoo_model() {
    use tandem::engine::scenario::DriftPoint;
    let be = CpuBackend::new(2);
    let mut s = tiny();
    s.windows = 2;
    // A GPU fast enough that every job finishes early in its window.
    s.gpu_gflops = Some(5.0);
    for c in &mut s.cameras {
        c.train_samples = 400;
        // Busy enough that the detector has its objects within a few seconds.
        c.frame_rate = 10.0;
        c.objects_per_frame = 4;
    }
    // Camera a: a dark scene in window 0; back to normal at window 1's start, and dark
    // again from 100 s into it. Camera b never changes.
    let point = |w: u32, at: f64, brightness: f32| {
        let mut p: DriftPoint = toml::from_str(&format!("window = {w}")).unwrap();
        (p.at_seconds, p.brightness) = (at, brightness);
        p
    };
    s.cameras[0].drift = vec![point(0, 0.0, 0.4), point(1, 0.0, 1.0), point(1, 100.0, 0.4)];
    s.cameras[1].drift = vec![];
    let with = |detect: bool| {
        let mut s = s.clone();
        s.profiler.enabled = false;
        s.zoo.detect = detect;
        run_with_zoo(&be, &s, "fair", fixed())
    };
    let (on, off) = (with(true), with(false));
    let zoo0 = on[0].zoo.as_ref().unwrap();
    let zoo1 = on[1].zoo.as_ref().unwrap();
    // No change inside window 0: no alarm. Window 1: camera a's change seen within seconds,
    // and window 0's model for the dark scene swapped in; camera b quiet.
    assert!(zoo0.detections.is_empty(), "{:?}", zoo0.detections);
    let d = zoo1
        .detections
        .iter()
        .find(|d| d.stream == "a")
        .expect("the change was seen");
    assert_eq!(d.changed_at, Some(100.0));
    assert!(d.at > 100.0 && d.at <= 120.0, "seen at {}", d.at);
    let dark = zoo0
        .added
        .first()
        .expect("window 0 retrained camera a's model into the zoo");
    assert_eq!(d.swapped_to.as_ref(), Some(dark));
    // Swapped once the newest objects fit it: at the detection or within 30 s after.
    let swapped_at = d.swapped_at.expect("a swap has its time");
    assert!(
        swapped_at >= d.at && swapped_at <= d.at + 30.0,
        "{swapped_at}"
    );
    assert!(zoo1.detections.iter().all(|d| d.stream != "b"));
    // The run's summary counts it: one change seen, swapped, no false alarm.
    let summary = tandem::engine::report::RunReport {
        scenario: s.name.clone(),
        policy: "fair".into(),
        windows: on.clone(),
    }
    .zoo()
    .unwrap();
    assert_eq!(
        (summary.changes_seen, summary.swaps, summary.false_alarms),
        (1, 1, 0)
    );
    assert_eq!(summary.stream_windows, 4);
    assert_eq!(summary.detection_delay_max_seconds, Some(d.at - 100.0));
    assert_eq!(summary.swap_delay_max_seconds, Some(swapped_at - 100.0));
    // Served accuracy after the change is higher with the swap than without it.
    let after = |ws: &[WindowReport]| -> f64 {
        let a = ws[1].streams.iter().find(|st| st.stream == "a").unwrap();
        a.chunks[6..].iter().sum::<f64>() / 4.0
    };
    assert!(
        after(&on) > after(&off) + 0.02,
        "{} vs {}",
        after(&on),
        after(&off)
    );
}

/// One window of the tiny scenario, every camera in a dark scene, with a model that learnt
/// that scene earlier in the zoo (as `m1`, under the scene's signature), run by `policy`.
fn dark_scene_with_its_zoo_model(
    be: &CpuBackend,
    detect: bool,
    policy: (&str, Vec<Param>),
) -> Vec<WindowReport> {
    use tandem::data::{Drift, Look};
    let mut s = tiny();
    s.windows = 1;
    s.gpu_gflops = Some(5.0);
    s.profiler.enabled = false;
    s.zoo.detect = detect;
    let dark = Drift {
        brightness: 0.4,
        ..Drift::default()
    };
    for c in &mut s.cameras {
        c.train_samples = 400;
        c.drift = vec![toml::from_str("window = 0\nbrightness = 0.4").unwrap()];
    }
    run_with_zoo_of(be, &s, policy, &mut |zoo, pool, pre| {
        let data = dark.apply(&pool.train.take(1200), 9);
        let mut m = pre.duplicate(be);
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 32,
            ..TrainConfig::default()
        };
        model::train(be, &mut m, &data, &cfg, &mut |_, _| {});
        zoo.insert(be, &m, ("earlier", 0), Look::of(&data).mean, 0.0);
    })
}

/// The policy's path (the host's own swap at the labels off with `detect`): "reuse only"
/// deploys the checked zoo model as it is.
#[test]
fn a_checked_zoo_model_deployed_as_it_is_serves_what_its_check_measured() {
    let be = CpuBackend::new(2);
    let reuse = vec![Param {
        name: "retrain-config".into(),
        value: ParamValue::Text("zoo".into()),
    }];
    let ws = dark_scene_with_its_zoo_model(&be, false, ("fair", reuse));
    let w = &ws[0];
    let zoo = w.zoo.as_ref().unwrap();
    for st in &w.streams {
        let check = zoo
            .checks
            .iter()
            .find(|c| c.stream == st.stream && c.model == "m1")
            .expect("the dark model was short-listed and checked");
        let job = st.retrain.as_ref().expect("reuse deployed it");
        assert_eq!(job.config, "zoo:m1");
        // The model deployed is the zoo's: measured again on the same split, it scores what
        // its check did, and it serves from the decision, not after a retraining.
        assert_eq!(job.actual_accuracy, Some(check.accuracy));
        assert!(job.deployed && check.accuracy > st.start_accuracy);
        assert!(job.finished_at.unwrap() - job.started_at < 1.0);
        assert_eq!(st.end_accuracy, check.accuracy);
    }
    assert_eq!(zoo.uses.len(), 2);
}

/// With `detect` on, the host itself swaps in a zoo model that checks clearly better than the
/// serving one on the window's labels, as they come: no policy decision needed (here the
/// policy never retrains), it serves to the window's end and counts as a use as it is; the
/// frames before the labels came are served by the old model.
#[test]
fn a_zoo_model_that_checks_better_at_the_labels_is_swapped_in_then() {
    let be = CpuBackend::new(2);
    let ws = dark_scene_with_its_zoo_model(&be, true, ("no-retrain", vec![]));
    let off = dark_scene_with_its_zoo_model(&be, false, ("no-retrain", vec![]));
    let (zoo, zoo_off) = (ws[0].zoo.as_ref().unwrap(), off[0].zoo.as_ref().unwrap());
    for (st, st_off) in ws[0].streams.iter().zip(&off[0].streams) {
        let check = zoo
            .checks
            .iter()
            .find(|c| c.stream == st.stream && c.model == "m1")
            .expect("the dark model was checked");
        assert!(check.accuracy > st_off.start_accuracy + 0.1, "{check:?}");
        assert!(st.retrain.is_none());
        assert_eq!(st.end_accuracy, check.accuracy);
        assert_eq!(st_off.end_accuracy, st_off.start_accuracy);
        assert!(
            st.accuracy > st_off.accuracy + 0.05,
            "served {} against {} without the swap",
            st.accuracy,
            st_off.accuracy
        );
    }
    assert!(zoo.uses.iter().all(|u| u.model == "m1" && u.as_is));
    assert_eq!(zoo.uses.len(), 2);
    assert!(zoo_off.uses.is_empty() && zoo.detections.is_empty());
}

/// A zoo model swapped in at the labels serves, but the window's own job trains from the
/// stream's own model: the same job (configuration, data, seed) reaches exactly what it
/// reaches without the swap, and deploys only if it beats the zoo model now serving.
#[test]
fn own_jobs_train_from_the_streams_model_even_when_a_zoo_model_serves() {
    let be = CpuBackend::new(2);
    let on = dark_scene_with_its_zoo_model(&be, true, ("fair", fixed()));
    let off = dark_scene_with_its_zoo_model(&be, false, ("fair", fixed()));
    let zoo = on[0].zoo.as_ref().unwrap();
    assert!(
        zoo.uses.iter().any(|u| u.model == "m1" && u.as_is),
        "swapped at the labels"
    );
    for (st, st_off) in on[0].streams.iter().zip(&off[0].streams) {
        let (job, job_off) = (
            st.retrain.as_ref().unwrap(),
            st_off.retrain.as_ref().unwrap(),
        );
        assert_eq!(job.config, "head-d1.0-e5");
        assert_eq!(
            job.actual_accuracy, job_off.actual_accuracy,
            "{}",
            st.stream
        );
        assert!(
            st.start_accuracy > st_off.start_accuracy,
            "the zoo model serves"
        );
        assert_eq!(
            job.deployed,
            job.actual_accuracy.unwrap() >= st.start_accuracy,
            "{}",
            st.stream
        );
    }
}

/// Camera `b` sees frames only in the second half of every window (200 s), under the
/// scale-to-zero lifecycle with a 5 s cold start: it goes cold at once, starts when its
/// frames come back, loses the frames of its cold start and no others, and its retraining job
/// on the window's labels (delivered while it was cold) still runs and finishes after the
/// wake-up; camera `a`, always busy, never scales down.
#[test]
fn a_cold_stream_wakes_for_its_frames_and_retrains_on_the_labels_it_got_while_cold() {
    use tandem::engine::phases::Phase;
    let be = CpuBackend::new(2);
    let mut s = before(tiny());
    s.cameras[1].activity =
        Some(toml::from_str("cycle = { period = 200.0, busy = [[100.0, 200.0]] }").unwrap());
    s.lifecycle.policy = tandem::engine::scenario::PluginRef {
        name: "scale-to-zero".into(),
        params: Default::default(),
    };
    assert!(s.serverless());
    let pool = SourcePool::load(&s.cameras[0].source, s.seed).unwrap();
    let pre = pretrained(&be, &pool, (300, 1));
    let windows = serverless_engine(&be, &s, &pool, &pre).run_all();
    for w in &windows {
        let life = w
            .lifecycle
            .as_ref()
            .expect("a serverless window reports its lifecycle");
        assert_eq!(life.policy, "scale-to-zero");
        let (a, b) = (&life.streams[0], &life.streams[1]);
        assert!(
            a.phases.iter().all(|(_, p)| *p == Phase::Active),
            "{:?}",
            a.phases
        );
        assert_eq!(a.frames_lost, 0);
        // Cold in its idle half, starting when its frames return at 100 s, active after.
        let wake = life
            .cold_starts
            .iter()
            .find(|c| c.stream == "b")
            .expect("b cold-starts");
        assert!(
            (wake.at - 100.0).abs() < 1.0 && wake.seconds == 5.0,
            "{wake:?}"
        );
        assert!(
            b.phases.contains(&(wake.at, Phase::Starting)),
            "{:?}",
            b.phases
        );
        assert!(
            b.phases
                .iter()
                .any(|(t, p)| *p == Phase::Cold && *t < wake.at)
        );
        assert_eq!(b.end_phase, Phase::Active);
        // 1 frame a second: the 5 frames of its cold start are lost, no more.
        assert_eq!(b.frames_lost, 5, "{b:?}");
        let sb = &w.streams[1];
        assert_eq!(sb.frames, 100, "only the frames the camera sent count");
        let job = sb
            .retrain
            .as_ref()
            .expect("b retrains on its window's labels");
        let done = job.finished_at.expect("b's job finishes after its wake-up");
        assert!(done > wake.at + wake.seconds, "{done} vs wake-up {wake:?}");
    }
}

/// An engine for `s` (whose cameras have an activity) under the thief and `s`'s lifecycle
/// plugin, cold starts charged at 5 s (0.5 s pre-warmed).
fn serverless_engine<'a>(
    be: &'a CpuBackend,
    s: &Scenario,
    pool: &std::sync::Arc<SourcePool>,
    pre: &Model<CpuBackend>,
) -> Engine<'a, CpuBackend> {
    let name = s.lifecycle.policy.name.as_str();
    let mut p = plugins(s, "thief", vec![]);
    p.lifecycle = Some((
        engine_host().load(name, &guest_bytes(name)).unwrap(),
        vec![],
    ));
    let costs = tandem::engine::phases::WakeCosts {
        cold: 5.0,
        preprocessed: 5.0,
        prewarmed: 0.5,
        steps: vec![],
    };
    let mut e = engine(be, s, ("thief", vec![]), pool, pre).with_wake_costs(costs);
    e.set_plugins(p);
    e
}

/// Serverless streams resume exactly too: the checkpoint keeps each stream's phase, idle
/// history and the policy's decision (camera `a`, busy the first half of every 300 s, ends
/// window 0 cold, 50 s into an idle spell a fresh engine would start warm).
#[test]
fn a_resumed_serverless_engine_continues_exactly_as_an_uninterrupted_one() {
    let be = CpuBackend::new(2);
    let mut s = before(tiny());
    s.windows = 3;
    s.cameras[0].activity =
        Some(toml::from_str("cycle = { period = 300.0, busy = [[0.0, 150.0]] }").unwrap());
    s.cameras[1].activity =
        Some(toml::from_str("cycle = { period = 200.0, busy = [[100.0, 200.0]] }").unwrap());
    s.lifecycle.policy.name = "keep-alive".into();
    let pool = SourcePool::load(&s.cameras[0].source, s.seed).unwrap();
    let pre = pretrained(&be, &pool, (300, 1));
    let whole = serverless_engine(&be, &s, &pool, &pre).run_all();
    let ends: Vec<_> = whole
        .iter()
        .map(|w| w.lifecycle.as_ref().unwrap().streams[0].end_phase)
        .collect();
    assert!(ends.windows(2).any(|p| p[0] != p[1]), "{ends:?}");
    let dir = super::data::tempdir();
    let mut first = serverless_engine(&be, &s, &pool, &pre);
    let mut parts = vec![first.run_window().unwrap()];
    let saved = checkpoint::save(&first.checkpoint_state(), &dir, 3).unwrap();
    drop(first);
    let mut second = serverless_engine(&be, &s, &pool, &pre);
    checkpoint::restore(&mut second, &dir.join(&saved)).unwrap();
    parts.extend((1..3).map(|_| second.run_window().unwrap()));
    assert_eq!(comparable(parts), comparable(whole));
    // Restored into an engine whose streams never idle: refused with the reason.
    let mut plain = engine(&be, &before(tiny()), ("thief", vec![]), &pool, &pre);
    let e = checkpoint::restore(&mut plain, &dir.join(&saved))
        .err()
        .unwrap();
    assert!(e.to_string().contains("lifecycle"), "{e}");
}

/// The safe start follows the retraining configuration that last deployed: a zoo model
/// deployed as it is trains nothing and leaves it as it was; a job that did not deploy, or no
/// job, leaves none.
#[test]
fn a_zoo_deploy_keeps_the_configuration_that_last_retrained() {
    use tandem::engine::stream::Recent;
    let after = Recent::retrained_after;
    assert_eq!(
        after(None, Some(("head-d0.1-e5", true))).as_deref(),
        Some("head-d0.1-e5")
    );
    assert_eq!(
        after(Some("head-d0.1-e5"), Some(("zoo:m2", true))).as_deref(),
        Some("head-d0.1-e5")
    );
    // Retrained from a zoo model: its configuration is what worked.
    assert_eq!(
        after(Some("head-d0.1-e5"), Some(("head-d0.5-e5+zoo:m2", true))).as_deref(),
        Some("head-d0.5-e5")
    );
    assert_eq!(
        after(Some("head-d0.1-e5"), Some(("all-d0.5-e5", false))),
        None
    );
    assert_eq!(after(Some("head-d0.1-e5"), None), None);
}
