//! The model zoo outside the window loop: its history rows (every check, use, addition and
//! eviction, read back as recorded).

use tandem::engine::WindowReport;
use tandem::engine::report::{ZooCheckRecord, ZooReport, ZooUse};
use tandem::history::{History, ZooEvent};

use super::support::{new_run, runtime};

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
        // an eviction, and a selector that failed for a stream.
        let w1 = ZooReport {
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
