//! The model zoo outside the window loop: its history rows (every check, use, addition and
//! eviction, read back as recorded); its bound over a long run (the eviction rule checked
//! against one written out here, the files on disk after each save, a restart); corrupt and
//! missing files; `tandem zoo list|show|prune` on a saved zoo; the live run saving it.

use std::path::Path;

use tandem::compute::cpu::CpuBackend;
use tandem::engine::report::{ZooCheckRecord, ZooDetection, ZooReport, ZooUse};
use tandem::engine::zoo::{PRETRAINED, Zoo, ZooModel};
use tandem::engine::{Scenario, WindowReport};
use tandem::history::{History, ZooEvent};
use tandem::http::{AppState, runner};
use tandem::model::{Arch, Model, weights};

use super::support::{Rng, new_run, runtime};

/// A window report with no streams and `zoo` as its zoo part.
fn window(w: u32, zoo: Option<ZooReport>) -> WindowReport {
    WindowReport {
        window: w,
        mean_accuracy: 0.5,
        streams: vec![],
        profiler_gpu_seconds: 0.0,
        profiler_saved_gpu_seconds: 0.0,
        decision_at: 0.0,
        policy_calls: vec![],
        allocations: vec![],
        predictions: vec![],
        gpu_utilization: 0.0,
        zoo,
        lifecycle: None,
        gpus: 1,
        window_seconds: 200.0,
    }
}

fn check(stream: &str, model: &str, accuracy: f64) -> ZooCheckRecord {
    ZooCheckRecord {
        stream: stream.into(),
        model: model.into(),
        accuracy,
    }
}

fn used(stream: &str, model: &str, as_is: bool) -> ZooUse {
    ZooUse {
        stream: stream.into(),
        model: model.into(),
        as_is,
    }
}

fn json(r: &ZooReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

#[test]
fn history_keeps_every_zoo_check_use_and_change() {
    let dir = super::data::tempdir();
    let rt = runtime();
    rt.block_on(async {
        let h = History::open(&dir.join("history.sqlite")).await.unwrap();
        let run = h.start_run(&new_run("zoo")).await.unwrap();
        let w0 = ZooReport {
            detections: Vec::new(),
            checks: vec![
                check("a", "pretrained", 0.61),
                check("b", "pretrained", 0.4),
            ],
            uses: vec![],
            added: vec!["m1".into(), "m2".into()],
            evicted: vec![],
            models: 3,
            bytes: 3 * 1000,
            check_gpu_seconds: 0.25,
            errors: vec![],
        };
        // A model checked twice for one stream, one deployed as it is and one retrained from,
        // an eviction, a selector that failed for a stream, a scene change seen and swapped
        // and a false alarm.
        let w1 = ZooReport {
            detections: vec![
                ZooDetection {
                    stream: "a".into(),
                    at: 112.0,
                    changed_at: Some(100.0),
                    swapped_to: Some("m2".into()),
                    swapped_at: Some(118.0),
                },
                ZooDetection {
                    stream: "b".into(),
                    at: 250.5,
                    changed_at: None,
                    swapped_to: None,
                    swapped_at: None,
                },
            ],
            checks: vec![
                check("a", "m2", 0.9),
                check("a", "m2", 0.88),
                check("b", "m1", 0.7),
            ],
            uses: vec![used("a", "m2", true), used("b", "m1", false)],
            added: vec!["m3".into()],
            evicted: vec!["m1".into()],
            models: 3,
            bytes: 3 * 1000,
            check_gpu_seconds: 0.5,
            errors: vec!["selector `nearest`: <trap>".into()],
        };
        h.record_window(run, &window(0, Some(w0.clone())))
            .await
            .unwrap();
        h.record_window(run, &window(1, Some(w1.clone())))
            .await
            .unwrap();
        // Read back as recorded, in the same order.
        let back = h.zoo_reports(run).await.unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].0, json(&back[0].1)), (0, json(&w0)));
        assert_eq!((back[1].0, json(&back[1].1)), (1, json(&w1)));
        let one = h.zoo_report(run, 1).await.unwrap().unwrap();
        assert_eq!(json(&one), json(&w1));
        assert!(h.zoo_report(run, 7).await.unwrap().is_none());
        assert_eq!(h.latest_zoo_run().await.unwrap(), Some(run));

        // A run without a zoo writes no zoo rows; its windows still record.
        let plain = h.start_run(&new_run("plain")).await.unwrap();
        h.record_window(plain, &window(0, None)).await.unwrap();
        assert!(h.zoo_reports(plain).await.unwrap().is_empty());
        assert_eq!(h.windows(plain).await.unwrap().len(), 1);
        assert_eq!(h.latest_zoo_run().await.unwrap(), Some(run));

        // One model's story across the runs that kept their zoo, oldest first.
        let events = h.zoo_model_events("m1", None).await.unwrap();
        let kinds: Vec<(i64, &str, Option<&str>)> = events
            .iter()
            .map(|e| (e.window, e.kind.as_str(), e.stream.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                (0, "added", None),
                (1, "checked", Some("b")),
                (1, "retrained", Some("b")),
                (1, "evicted", None)
            ]
        );
        assert_eq!(events[1].accuracy, Some(0.7));
        assert_eq!(h.zoo_model_origin("m1", 0).await.unwrap(), Some(run));
        assert_eq!(h.zoo_model_origin("m1", 1).await.unwrap(), None);
        let evictions = h.zoo_evictions(10).await.unwrap();
        assert_eq!(
            evictions,
            [ZooEvent {
                run_id: run,
                window: 1,
                model: "m1".into(),
                kind: "evicted".into(),
                stream: None,
                accuracy: None,
            }]
        );

        // A run compared side by side works on its own copy of the zoo: its ids name other
        // models, so a model's story and the evictions leave it out (its own report keeps it).
        let cmp = h.start_comparison("zoo", &["thief".into()]).await.unwrap();
        let mut compared = new_run("zoo");
        compared.comparison = Some(cmp);
        let other = h.start_run(&compared).await.unwrap();
        h.record_window(other, &window(0, Some(w1.clone())))
            .await
            .unwrap();
        assert_eq!(h.zoo_model_events("m1", None).await.unwrap().len(), 4);
        assert_eq!(h.zoo_evictions(10).await.unwrap().len(), 1);
        assert_eq!(h.latest_zoo_run().await.unwrap(), Some(run));
        assert_eq!(h.zoo_reports(other).await.unwrap().len(), 1);
        // A later run that started its zoo afresh gives `m1` out again: its story starts there.
        let fresh = h.start_run(&new_run("zoo")).await.unwrap();
        h.record_window(fresh, &window(0, Some(w0.clone())))
            .await
            .unwrap();
        assert_eq!(h.zoo_model_origin("m1", 0).await.unwrap(), Some(fresh));
        let since = h.zoo_model_events("m1", Some(fresh)).await.unwrap();
        assert_eq!(since.len(), 1, "{since:?}");
        // Deleting a run takes its zoo rows with it.
        sqlx::query("DELETE FROM runs WHERE id = ?")
            .bind(fresh)
            .execute(h.pool())
            .await
            .unwrap();
        assert!(h.zoo_reports(fresh).await.unwrap().is_empty());
        assert_eq!(h.zoo_model_events("m1", None).await.unwrap().len(), 4);
    });
}

/// A small model (weights of about 3 KiB), distinct per `seed`.
fn small(be: &CpuBackend, seed: u64) -> Model<CpuBackend> {
    let arch = Arch {
        in_channels: 1,
        channels: [4, 4, 4],
        hidden: 8,
        classes: 4,
    };
    Model::new(be, arch, seed)
}

/// The metadata of `zoo`'s models, in order.
fn metas(zoo: &Zoo) -> Vec<ZooModel> {
    zoo.models().cloned().collect()
}

/// The files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a saved zoo's directory must hold: the index and one file per model, nothing else.
fn assert_on_disk(dir: &Path, zoo: &Zoo) {
    let mut want: Vec<String> = zoo
        .models()
        .map(|m| format!("{}.safetensors", m.id))
        .chain(["index.json".to_string()])
        .collect();
    want.sort();
    assert_eq!(files(dir), want);
    for m in zoo.models() {
        let len = std::fs::metadata(dir.join(format!("{}.safetensors", m.id)))
            .unwrap()
            .len();
        assert_eq!(len, m.bytes, "{}", m.id);
    }
}

/// The model the rule evicts first from `models` (never the pretrained one nor `keep`): the
/// fewest uses, then the longest unused, then the oldest; written out apart from the zoo's.
fn least_useful(models: &[ZooModel], keep: &str) -> Option<String> {
    let mut candidates: Vec<&ZooModel> = models
        .iter()
        .filter(|m| m.id != PRETRAINED && m.id != keep)
        .collect();
    candidates.sort_by(|a, b| {
        a.uses
            .cmp(&b.uses)
            .then(a.last_used_window.cmp(&b.last_used_window))
            .then(a.origin_window.cmp(&b.origin_window))
    });
    candidates.first().map(|m| m.id.clone())
}

#[test]
fn the_zoo_bound_holds_over_a_long_run_and_a_restart_keeps_it() {
    let be = CpuBackend::new(1);
    let dir = super::data::tempdir().join("zoo");
    let size = weights::to_bytes(&be, &small(&be, 0)).len() as u64;
    // Five models by count; bytes for 4.5 models in the second zoo, so bytes bind there.
    for (max_models, max_bytes, bound) in [(5, u64::MAX, 5), (50, size * 9 / 2, 4)] {
        let mut zoo = Zoo::new(max_models, max_bytes);
        let mut rng = Rng::new(max_models as u32);
        zoo.insert(&be, &small(&be, 0), (PRETRAINED, 0), vec![0.5; 18], 0.6);
        let mut added = Vec::new();
        for w in 1..=120u32 {
            // Streams use zero to two models a window, drawn at random: uses tie often, and
            // old models get used late, so every part of the rule decides some evictions.
            let ids: Vec<String> = zoo.models().map(|m| m.id.clone()).collect();
            for _ in 0..rng.below(3) {
                zoo.used(&ids[rng.below(ids.len())], w);
            }
            let before = metas(&zoo);
            let full = before.len() >= bound;
            let stream = format!("cam-{}", w % 3);
            let signature = vec![w as f64 / 120.0; 18];
            let (id, evicted) =
                zoo.insert(&be, &small(&be, w.into()), (&stream, w), signature, 0.7);
            assert!(
                !before.iter().any(|m| m.id == id),
                "window {w}: id {id} given out again"
            );
            added.push(id.clone());
            // Within bounds; the pretrained model and the newcomer always stay.
            assert!(zoo.len() <= bound && zoo.bytes() <= max_bytes, "window {w}");
            assert!(zoo.models().any(|m| m.id == PRETRAINED));
            assert!(zoo.models().any(|m| m.id == id));
            // Exactly the least useful one went, once full.
            let evicted: Vec<String> = evicted.into_iter().map(|m| m.id).collect();
            let want: Vec<String> = least_useful(&before, &id)
                .filter(|_| full)
                .into_iter()
                .collect();
            assert_eq!(evicted, want, "window {w}: {before:?}");
            if w % 20 == 0 {
                zoo.save(&dir).unwrap();
                assert_on_disk(&dir, &zoo);
                // A restart keeps it as it was, and gives out no id twice.
                let (again, warnings) = Zoo::open(&dir, max_models, max_bytes);
                assert!(warnings.is_empty(), "{warnings:?}");
                assert_eq!(metas(&again), metas(&zoo));
                zoo = again;
            }
        }
        assert_eq!(added.len(), 120);
        let kept = metas(&zoo);
        assert_eq!(kept.len(), bound);
        // Opened under tighter bounds, the least useful go first; saved, the files follow.
        let (mut tight, _) = Zoo::open(&dir, 2, u64::MAX);
        assert_eq!(tight.len(), 2);
        let survivor = tight.models().find(|m| m.id != PRETRAINED).unwrap().clone();
        let mut rest: Vec<ZooModel> = kept.clone();
        while rest.len() > 2 {
            let victim = least_useful(&rest, "").unwrap();
            rest.retain(|m| m.id != victim);
        }
        assert!(
            rest.iter().any(|m| m.id == survivor.id),
            "{rest:?} vs {survivor:?}"
        );
        tight.save(&dir).unwrap();
        assert_on_disk(&dir, &tight);
        // Pruning to nothing leaves the pretrained model alone.
        let evicted = tight.prune(0);
        assert_eq!(evicted.len(), 1);
        assert_eq!(
            metas(&tight)
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>(),
            [PRETRAINED]
        );
        tight.save(&dir).unwrap();
        assert_on_disk(&dir, &tight);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_newcomer_is_kept_even_when_it_is_the_least_used() {
    let be = CpuBackend::new(1);
    let mut zoo = Zoo::new(3, u64::MAX);
    zoo.insert(&be, &small(&be, 0), (PRETRAINED, 0), vec![0.0; 18], 0.5);
    let (a, _) = zoo.insert(&be, &small(&be, 1), ("cam", 1), vec![0.1; 18], 0.5);
    let (b, _) = zoo.insert(&be, &small(&be, 2), ("cam", 2), vec![0.2; 18], 0.5);
    zoo.used(&a, 3);
    zoo.used(&b, 3);
    zoo.used(&b, 4);
    // Full: the newcomer has no use yet, but the next least useful goes (a: one use).
    let (c, evicted) = zoo.insert(&be, &small(&be, 3), ("cam", 5), vec![0.3; 18], 0.5);
    assert_eq!(
        evicted.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [a.as_str()]
    );
    let ids: Vec<&str> = zoo.models().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [PRETRAINED, b.as_str(), c.as_str()]);
    // Equal uses: the longest unused goes, however old (x, made before y, used after it)...
    let evicted_by = |zoo: &mut Zoo, w: u32| -> Vec<String> {
        let (_, out) = zoo.insert(&be, &small(&be, w.into()), ("cam", w), vec![0.4; 18], 0.5);
        out.into_iter().map(|m| m.id).collect()
    };
    let mut zoo = Zoo::new(3, u64::MAX);
    zoo.insert(&be, &small(&be, 0), (PRETRAINED, 0), vec![0.0; 18], 0.5);
    let (x, _) = zoo.insert(&be, &small(&be, 1), ("cam", 1), vec![0.1; 18], 0.5);
    let (y, _) = zoo.insert(&be, &small(&be, 2), ("cam", 2), vec![0.2; 18], 0.5);
    zoo.used(&x, 5);
    zoo.used(&y, 4);
    assert_eq!(evicted_by(&mut zoo, 6), [y]);
    // ...and among models used as often and as lately, the oldest.
    let z = zoo.models().last().unwrap().id.clone();
    zoo.used(&x, 8);
    zoo.used(&z, 8);
    zoo.used(&z, 8);
    assert_eq!(evicted_by(&mut zoo, 9), [x]);
    // Among equals (no uses), the longest unused goes; the pretrained model never.
    let mut zoo = Zoo::new(1, u64::MAX);
    zoo.insert(&be, &small(&be, 0), (PRETRAINED, 0), vec![0.0; 18], 0.5);
    let (d, evicted) = zoo.insert(&be, &small(&be, 4), ("cam", 6), vec![0.0; 18], 0.5);
    assert!(
        evicted.is_empty(),
        "neither the pretrained model nor the newcomer goes"
    );
    let (e, evicted) = zoo.insert(&be, &small(&be, 5), ("cam", 7), vec![0.0; 18], 0.5);
    assert_eq!(
        evicted.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [d.as_str()]
    );
    assert_eq!(
        zoo.len(),
        2,
        "over the bound only by the two it never evicts"
    );
    assert!(zoo.load(&be, &e).is_some());
}

#[test]
fn corrupt_or_missing_zoo_files_are_skipped_with_a_warning() {
    let be = CpuBackend::new(1);
    let dir = super::data::tempdir().join("zoo");
    let mut zoo = Zoo::new(10, u64::MAX);
    zoo.insert(&be, &small(&be, 0), (PRETRAINED, 0), vec![0.0; 18], 0.5);
    let ids: Vec<String> = (1..=4)
        .map(|w| {
            zoo.insert(&be, &small(&be, w), ("cam", w as u32), vec![0.1; 18], 0.5)
                .0
        })
        .collect();
    zoo.save(&dir).unwrap();
    let file = |id: &str| dir.join(format!("{id}.safetensors"));
    // One file cut short, one overwritten with junk, one gone.
    let bytes = std::fs::read(file(&ids[0])).unwrap();
    std::fs::write(file(&ids[0]), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(file(&ids[1]), b"not a model").unwrap();
    std::fs::remove_file(file(&ids[2])).unwrap();
    let (opened, warnings) = Zoo::open(&dir, 10, u64::MAX);
    let kept: Vec<&str> = opened.models().map(|m| m.id.as_str()).collect();
    assert_eq!(kept, [PRETRAINED, ids[3].as_str()]);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for (w, id) in warnings.iter().zip(&ids) {
        assert!(w.contains(&format!("{id}.safetensors")), "{w}");
    }
    assert!(
        warnings[0].contains("not a valid model file"),
        "{warnings:?}"
    );
    assert!(warnings[2].contains("No such file"), "{warnings:?}");
    assert!(opened.load(&be, &ids[3]).is_some());
    // Saved again, the index and the files agree.
    opened.save(&dir).unwrap();
    assert_on_disk(&dir, &opened);
    // A corrupt index: an empty zoo and a warning that names it, no crash.
    for junk in ["{\"next_id\": 7, \"models\": [", "[]", "\u{0}\u{1}binary"] {
        std::fs::write(dir.join("index.json"), junk).unwrap();
        let (opened, warnings) = Zoo::open(&dir, 10, u64::MAX);
        assert!(opened.is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("index.json") && warnings[0].contains("unreadable index"),
            "{warnings:?}"
        );
    }
    // No directory at all: an empty zoo, no warning.
    let (none, warnings) = Zoo::open(&dir.join("absent"), 10, u64::MAX);
    assert!(none.is_empty() && warnings.is_empty());
}

/// `tandem zoo ARGS...`: its exit status, stdout and stderr.
fn tandem_zoo(args: &[&str], data_dir: &Path) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("zoo")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tandem_zoo_lists_shows_and_prunes_a_saved_zoo() {
    let be = CpuBackend::new(1);
    let data = super::data::tempdir();
    let dir = data.join("zoo");
    // A zoo as a run leaves it: the pretrained model, four retrained ones, some used.
    let mut zoo = Zoo::new(24, u64::MAX);
    zoo.insert(&be, &small(&be, 0), (PRETRAINED, 0), vec![0.3; 18], 0.61);
    let ids: Vec<String> = (1..=4u32)
        .map(|w| {
            let stream = format!("cam-{w}");
            let sig = vec![0.1 * w as f64; 18];
            zoo.insert(&be, &small(&be, w.into()), (&stream, w), sig, 0.8)
                .0
        })
        .collect();
    zoo.used(&ids[1], 5);
    zoo.used(&ids[1], 6);
    zoo.used(&ids[3], 6);
    zoo.save(&dir).unwrap();
    // Its story in the history: checked and deployed in a run, and a compared run's model of
    // the same id, which is another model.
    runtime().block_on(async {
        let h = History::open(&data.join("history.sqlite")).await.unwrap();
        let run = h.start_run(&new_run("zoo")).await.unwrap();
        let added = ZooReport {
            detections: Vec::new(),
            added: vec![ids[1].clone()],
            ..ZooReport::default()
        };
        h.record_window(run, &window(2, Some(added))).await.unwrap();
        let checked = ZooReport {
            detections: Vec::new(),
            checks: vec![check("<cam>", &ids[1], 0.875)],
            uses: vec![used("<cam>", &ids[1], true)],
            ..ZooReport::default()
        };
        h.record_window(run, &window(5, Some(checked.clone())))
            .await
            .unwrap();
        let cmp = h.start_comparison("zoo", &["thief".into()]).await.unwrap();
        let mut compared = new_run("zoo");
        compared.comparison = Some(cmp);
        let other = h.start_run(&compared).await.unwrap();
        h.record_window(other, &window(5, Some(checked)))
            .await
            .unwrap();
    });

    // list: every model with its origin, uses and a signature summary.
    let (ok, out, err) = tandem_zoo(&["list", "--json"], &data);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [PRETRAINED, "m1", "m2", "m3", "m4"]);
    assert_eq!(v["models"][2]["uses"], 2);
    assert_eq!(v["models"][2]["origin_stream"], "cam-2");
    assert_eq!(
        v["models"][2]["signature_summary"],
        "brightness 0.20, contrast 0.20, grid 0.20-0.20"
    );
    let (ok, out, _) = tandem_zoo(&["list"], &data);
    assert!(ok);
    assert!(out.contains("cam-4/4") && out.contains("5 models"), "{out}");

    // show: the model and its story from the runs that kept their zoo.
    let (ok, out, err) = tandem_zoo(&["show", "m2", "--json"], &data);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"]["id"], "m2");
    let story: Vec<(i64, &str)> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["window"].as_i64().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(story, [(2, "added"), (5, "checked"), (5, "deployed")]);
    let (ok, out, _) = tandem_zoo(&["show", "m2"], &data);
    assert!(ok);
    assert!(out.contains("checked for <cam>: accuracy 0.875"), "{out}");
    assert!(out.contains("deployed as it is for <cam>"), "{out}");

    // Clear errors: an unknown id, a data dir that does not exist, prune without a bound.
    let (ok, _, err) = tandem_zoo(&["show", "m9"], &data);
    assert!(!ok);
    assert!(
        err.contains("no model `m9`") && err.contains("pretrained, m1, m2, m3, m4"),
        "{err}"
    );
    let absent = data.join("absent");
    let (ok, _, err) = tandem_zoo(&["list"], &absent);
    assert!(!ok);
    assert!(
        err.contains("does not exist") && err.contains("absent"),
        "{err}"
    );
    let (ok, _, err) = tandem_zoo(&["prune"], &data);
    assert!(!ok && err.contains("--keep"), "{err}");

    // A corrupt file: listed without it, with a warning that names it.
    let bytes = std::fs::read(dir.join("m1.safetensors")).unwrap();
    std::fs::write(dir.join("m1.safetensors"), &bytes[..100]).unwrap();
    let (ok, out, err) = tandem_zoo(&["list"], &data);
    assert!(ok, "{err}");
    assert!(
        err.contains("m1.safetensors") && err.contains("warning"),
        "{err}"
    );
    assert!(!out.contains("\nm1 "), "{out}");

    // prune --keep 3: m1, unreadable, is left out; of the rest the least useful goes (m3,
    // never used); the files follow the index.
    let (ok, out, err) = tandem_zoo(&["prune", "--keep", "3", "--json"], &data);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let evicted: Vec<&str> = v["evicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(evicted, ["m3"]);
    let (again, warnings) = Zoo::open(&dir, usize::MAX, u64::MAX);
    assert!(warnings.is_empty(), "{warnings:?}");
    let left: Vec<&str> = again.models().map(|m| m.id.as_str()).collect();
    assert_eq!(left, [PRETRAINED, "m2", "m4"]);
    assert_on_disk(&dir, &again);
    // prune --all: only the pretrained model stays.
    let (ok, out, _) = tandem_zoo(&["prune", "--all"], &data);
    assert!(ok);
    assert!(out.contains("2 evicted; 1 models"), "{out}");
    let (again, _) = Zoo::open(&dir, usize::MAX, u64::MAX);
    assert_eq!(again.len(), 1);
    assert_on_disk(&dir, &again);
}

/// A scenario small enough for a live window in a debug build.
const LIVE: &str = r#"
name = "live-zoo"
windows = 1
seed = 7
hidden = 32
channels = [8, 16, 16]

[pretrain]
samples = 300
epochs = 1

[profiler]
epochs = 2

[config_space]
name = "ekya-space"
params = { learning-rate = 0.02, head-width = 32, wide-width = 32, model-layers = 5 }

[[cameras]]
name = "a"
source = "synthetic"
frame_rate = 1.0
objects_per_frame = 2
train_samples = 64
"#;

#[test]
fn the_live_run_saves_its_zoo_after_every_window() {
    let data = super::data::tempdir();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = rt
        .block_on(AppState::open(&data, "token".into(), vec![]))
        .unwrap();
    let scenario = Scenario::parse(LIVE, Path::new("live-zoo.toml")).unwrap();
    // A long pace: after its first window the live thread sleeps until the test is over.
    rt.block_on(async {
        runner::spawn_live(&state, scenario, std::time::Duration::from_secs(3600))
    });
    let started = std::time::Instant::now();
    while state.live.snapshot().windows.is_empty() {
        let status = state.live.snapshot().status;
        assert!(!status.starts_with("stopped"), "{status}");
        assert!(
            started.elapsed().as_secs() < 600,
            "no live window in 10 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (saved, warnings) = Zoo::open(&data.join("zoo"), usize::MAX, u64::MAX);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(saved.models().any(|m| m.id == PRETRAINED));
    assert_on_disk(&data.join("zoo"), &saved);
    // What the window recorded about the zoo is what was saved.
    let w = state.live.snapshot().windows[0].clone();
    let z = w.zoo.expect("the live run has a zoo");
    assert_eq!((z.models, z.bytes), (saved.len(), saved.bytes()));
    for id in &z.added {
        assert!(saved.models().any(|m| &m.id == id), "{id} not saved");
    }
    let run = rt
        .block_on(state.history.latest_zoo_run())
        .unwrap()
        .unwrap();
    let recorded = rt.block_on(state.history.zoo_report(run, 0)).unwrap();
    assert_eq!(recorded.map(|r| r.models), Some(saved.len()));
}

#[test]
fn bench_zoo_prints_its_figures() {
    // Figures only (a bench, not a timed test): the parts, the short list, the checks' cost.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["bench", "zoo", "--json", "--calls", "20", "--models", "12"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["zoo_models"], 12);
    let sel = &v["selection"];
    for key in [
        "selection_ms",
        "signature_ms",
        "plugin_call_ms",
        "native_select_ms",
    ] {
        let (p50, p95) = (
            sel[key]["p50"].as_f64().unwrap(),
            sel[key]["p95"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p95 >= p50, "{key}: {sel}");
    }
    // The demo's default selector: the 3 nearest of the 12.
    assert_eq!(sel["short_list"].as_array().unwrap().len(), 3, "{sel}");
    // 3 cameras x 3 candidates x 50 validation images on a 200 s window of one GPU.
    let c = &v["checks"];
    assert_eq!(
        (c["streams"].as_u64(), c["candidates_per_stream"].as_u64()),
        (Some(3), Some(3))
    );
    let per_check = c["modelled_gpu_seconds_per_check"].as_f64().unwrap();
    let fraction = c["fraction_of_window"].as_f64().unwrap();
    assert!((fraction - 9.0 * per_check / 200.0).abs() < 1e-12, "{c}");
}
