//! Replay (the simulator mode) with real guest policies on the Ekya-format fixture in
//! `tests/fixtures/ekya/`: policies run, results are deterministic, thief beats the uniform
//! baseline, recorded tandem inputs replay like Ekya's, and bad files get errors naming the
//! file and the field.

use std::path::{Path, PathBuf};

use tandem::engine::replay::{
    self, Profiles, ReplayError, ReplayOptions, ReplayWindow, sampling_factor,
};
use tandem::engine::report::PolicyCall;
use tandem::engine::{RunReport, WindowReport};
use tandem::history::History;
use tandem::plugin::PluginError;
use tandem::plugin::types::{PolicyInput, Schedule};

use super::plugins::{host, plugin};
use super::support::{new_run, runtime};

fn fixture() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ekya");
    ["city_a", "city_b", "city_c"]
        .iter()
        .map(|c| dir.join(format!("{c}.json")))
        .collect()
}

fn run_policy(profiles: &Profiles, name: &str) -> Vec<ReplayWindow> {
    let p = plugin(name);
    replay::replay(profiles, &ReplayOptions::default(), &mut |input| {
        host().decide(&p, input, &[], 0)
    })
}

#[test]
fn policies_replay_the_fixture_deterministically_and_thief_beats_fair() {
    let profiles = Profiles::load(&fixture()).unwrap();
    assert_eq!(profiles.windows.len(), 3);
    assert_eq!(profiles.streams(), 3);
    // Tasks are windows in numeric order: "10" comes after "2".
    let labels: Vec<&str> = profiles.windows.iter().map(|w| w.label.as_str()).collect();
    assert_eq!(labels, ["task 1", "task 2", "task 10"]);

    let mut means = Vec::new();
    for name in ["thief", "fair", "no-retrain"] {
        let a = run_policy(&profiles, name);
        let b = run_policy(&profiles, name);
        let key = |ws: &[ReplayWindow]| serde_json::to_string(ws).unwrap();
        assert_eq!(key(&a), key(&b), "{name}: two replays differ");
        for w in &a {
            assert!(
                w.policy_failures.is_empty(),
                "{name}: {:?}",
                w.policy_failures
            );
            assert!((0.0..=1.0).contains(&w.mean_accuracy));
        }
        means.push((name, replay::mean_accuracy(&a)));
        if name == "thief" {
            // Thief retrains, and is asked again after each completion.
            let finished: usize = a.iter().map(ReplayWindow::jobs_finished).sum();
            assert!(finished > 0);
            assert_eq!(
                a.iter().map(|w| w.policy_calls).sum::<usize>(),
                a.len() + finished
            );
        }
        if name == "no-retrain" {
            assert!(a.iter().all(|w| w.jobs_finished() == 0));
        }
    }
    eprintln!("replay means on the fixture: {means:?}");
    let (thief, fair, none) = (means[0].1, means[1].1, means[2].1);
    assert!(thief >= fair, "thief {thief} < fair {fair}");
    assert!(thief > none, "thief {thief} <= no-retrain {none}");
}

#[test]
fn sampling_curve_interpolates_and_drops_to_zero_past_its_end() {
    let curve: Vec<(f64, f64)> = replay::EKYA_SAMPLING
        .iter()
        .map(|&(k, f)| (k as f64, f))
        .collect();
    assert_eq!(sampling_factor(&curve, 0.5), 1.0);
    assert_eq!(sampling_factor(&curve, 1.0), 1.0);
    assert!((sampling_factor(&curve, 1.5) - 0.89).abs() < 1e-12);
    assert!((sampling_factor(&curve, 12.5) - 0.135).abs() < 1e-12);
    assert!((sampling_factor(&curve, 20.0) - 0.04).abs() < 1e-12);
    assert_eq!(sampling_factor(&curve, 20.5), 0.0);
}

#[test]
fn a_failing_policy_falls_back_and_is_recorded() {
    let profiles = Profiles::load(&fixture()).unwrap();
    let ws = replay::replay(
        &profiles,
        &ReplayOptions::default(),
        &mut |_: &PolicyInput| Err::<Schedule, _>(PluginError::Host("refuses".into())),
    );
    let fair = run_policy(&profiles, "fair");
    for (w, f) in ws.iter().zip(&fair) {
        assert_eq!(w.policy_failures.len(), w.policy_calls);
        assert!(w.policy_failures[0].contains("refuses"));
        // The fallback at the window start is the native fair policy.
        assert!((w.mean_accuracy - f.mean_accuracy).abs() < 1e-12);
    }
}

/// The fixture's first policy inputs, as `tandem run --report` would have recorded them.
fn as_recorded(profiles: &Profiles) -> Vec<RunReport> {
    let windows = profiles
        .windows
        .iter()
        .enumerate()
        .map(|(w, p)| WindowReport {
            window: w as u32,
            mean_accuracy: 0.0,
            streams: vec![],
            profiler_gpu_seconds: 0.0,
            profiler_saved_gpu_seconds: 0.0,
            zoo: None,
            lifecycle: None,
            gpus: 1,
            window_seconds: 200.0,
            decision_at: 2.0,
            policy_calls: vec![PolicyCall {
                at: 2.0,
                plugin: "thief@1".into(),
                digest: "x".into(),
                input: PolicyInput {
                    streams: p.streams.clone(),
                    gpus: 1,
                    window_seconds: 200.0,
                    elapsed_seconds: 2.0,
                },
                output: None,
                error: None,
                micros: 0,
            }],
            allocations: vec![],
            predictions: vec![],
            gpu_utilization: 0.0,
        })
        .collect();
    vec![RunReport {
        scenario: "fixture".into(),
        policy: "thief".into(),
        windows,
    }]
}

#[test]
fn recorded_tandem_inputs_replay_like_the_ekya_files() {
    let ekya = Profiles::load(&fixture()).unwrap();
    let reports = as_recorded(&ekya);
    let dir = super::data::tempdir();

    // From a `tandem run --report` file.
    let file = dir.join("report.json");
    std::fs::write(&file, serde_json::to_vec(&reports).unwrap()).unwrap();
    let recorded = Profiles::load(std::slice::from_ref(&file)).unwrap();
    let want: Vec<f64> = run_policy(&ekya, "thief")
        .iter()
        .map(|w| w.mean_accuracy)
        .collect();
    let got: Vec<f64> = run_policy(&recorded, "thief")
        .iter()
        .map(|w| w.mean_accuracy)
        .collect();
    assert_eq!(got, want);

    // From history: each window's first policy call.
    let rt = runtime();
    let rows = rt.block_on(async {
        let h = History::open(&dir.join("history.sqlite")).await.unwrap();
        let id = h.start_run(&new_run("fixture")).await.unwrap();
        for w in &reports[0].windows {
            h.record_window(id, w).await.unwrap();
        }
        h.first_policy_inputs(id).await.unwrap()
    });
    let inputs = rows
        .into_iter()
        .map(|(w, json)| (w as u32, serde_json::from_str(&json).unwrap()))
        .collect();
    let from_history = Profiles::from_policy_inputs("history".into(), inputs).unwrap();
    let got: Vec<f64> = run_policy(&from_history, "thief")
        .iter()
        .map(|w| w.mean_accuracy)
        .collect();
    assert_eq!(got, want);
}

/// Write `text` as `name` in a fresh directory and load it as an Ekya profile.
fn load_bad(name: &str, text: &str) -> String {
    let dir = super::data::tempdir();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let err: ReplayError = Profiles::load(&[path]).unwrap_err();
    err.to_string()
}

#[test]
fn bad_profiles_are_reported_with_file_and_field() {
    let e = load_bad(
        "short_row.json",
        r#"{"taskwise_train_profiles": {"1": [["0_0", 0.5, 0.7, 9.0, "r18"], ["0_1", 0.5, 0.7, 9.0]]}}"#,
    );
    assert!(e.contains("short_row.json"), "{e}");
    assert!(e.contains(r#"taskwise_train_profiles["1"][1]"#), "{e}");
    assert!(e.contains("4 entries, expected 5"), "{e}");

    let e = load_bad(
        "text_acc.json",
        r#"{"taskwise_train_profiles": {"3": [["0_0", "high", 0.7, 9.0, "r18"]]}}"#,
    );
    assert!(e.contains("text_acc.json"), "{e}");
    assert!(e.contains(r#"taskwise_train_profiles["3"][0][1]"#), "{e}");
    assert!(e.contains("start accuracy \"high\" is not a number"), "{e}");

    let e = load_bad(
        "percent.json",
        r#"{"taskwise_train_profiles": {"1": [["0_0", 0.5, 87.0, 9.0, "r18"]]}}"#,
    );
    assert!(e.contains("[2]: end accuracy 87 is outside [0, 1]"), "{e}");

    let e = load_bad(
        "free.json",
        r#"{"taskwise_train_profiles": {"1": [["0_0", 0.5, 0.7, 0, "r18"]]}}"#,
    );
    assert!(e.contains("[3]: resource time 0 must be positive"), "{e}");

    let e = load_bad(
        "name.json",
        r#"{"taskwise_train_profiles": {"1": [["cfg", 0.5, 0.7, 3, "r18"]]}}"#,
    );
    assert!(
        e.contains("name `cfg` is not `<hp id>_<epoch index>`"),
        "{e}"
    );

    let e = load_bad(
        "task.json",
        r#"{"taskwise_train_profiles": {"morning": [["0_0", 0.5, 0.7, 3, "r18"]]}}"#,
    );
    assert!(
        e.contains(r#"taskwise_train_profiles["morning"]: task ids must be numbers"#),
        "{e}"
    );

    let e = load_bad(
        "infer.json",
        r#"{"taskwise_train_profiles": {}, "taskwise_infer_profiles": {"1": {"0": [0.5]}}}"#,
    );
    assert!(
        e.contains(r#"taskwise_infer_profiles["1"]["0"]: an inference profile has 1 entries"#),
        "{e}"
    );

    let e = load_bad("other.json", r#"{"profiles": []}"#);
    assert!(
        e.contains("other.json: taskwise_train_profiles: missing"),
        "{e}"
    );

    let e = load_bad("broken.json", "{\"taskwise_train_profiles\": ");
    assert!(e.contains("broken.json: not valid JSON"), "{e}");
}
