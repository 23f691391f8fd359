//! The zoo's history (migrations `0007_zoo.sql`, `0009_zoo_detections.sql`): what a window's [`ZooReport`] says, written
//! in the window's transaction, and read back as the same report, or as the events of one
//! model across runs ([`ZooEvent`]) for `tandem zoo show` and the dashboard's Zoo page.

use serde::Serialize;
use sqlx::SqliteConnection;

use super::{History, HistoryError};
use crate::engine::report::{ZooCheckRecord, ZooDetection, ZooReport, ZooUse};
use crate::engine::zoo::{PRETRAINED, ZooModel};

/// Write window `win` of run `run`'s zoo report (inside the window's transaction).
pub(super) async fn record(
    tx: &mut SqliteConnection,
    run: i64,
    win: i64,
    z: &ZooReport,
) -> Result<(), HistoryError> {
    let errors = (!z.errors.is_empty())
        .then(|| serde_json::to_string(&z.errors))
        .transpose()?;
    insert!(
        tx,
        "INSERT INTO zoo_windows (run_id, window, models, bytes, check_gpu_seconds, errors)
         VALUES (?, ?, ?, ?, ?, ?)",
        run,
        win,
        z.models as i64,
        z.bytes as i64,
        z.check_gpu_seconds,
        errors
    );
    for (seq, c) in z.checks.iter().enumerate() {
        insert!(
            tx,
            "INSERT INTO zoo_checks (run_id, window, seq, stream, model, accuracy) VALUES (?, ?, ?, ?, ?, ?)",
            run,
            win,
            seq as i64,
            &c.stream,
            &c.model,
            c.accuracy
        );
    }
    for (seq, u) in z.uses.iter().enumerate() {
        insert!(
            tx,
            "INSERT INTO zoo_uses (run_id, window, seq, stream, model, as_is) VALUES (?, ?, ?, ?, ?, ?)",
            run,
            win,
            seq as i64,
            &u.stream,
            &u.model,
            u.as_is
        );
    }
    for (seq, d) in z.detections.iter().enumerate() {
        insert!(
            tx,
            "INSERT INTO zoo_detections
             (run_id, window, seq, stream, at, changed_at, swapped_to, swapped_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run,
            win,
            seq as i64,
            &d.stream,
            d.at,
            d.changed_at,
            &d.swapped_to,
            d.swapped_at
        );
    }
    let changes =
        (z.added.iter().map(|m| (m, "added"))).chain(z.evicted.iter().map(|m| (m, "evicted")));
    for (seq, (model, change)) in changes.enumerate() {
        insert!(
            tx,
            "INSERT INTO zoo_changes (run_id, window, seq, model, change) VALUES (?, ?, ?, ?, ?)",
            run,
            win,
            seq as i64,
            model,
            change
        );
    }
    Ok(())
}

/// One thing that happened to a zoo model in a recorded window.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ZooEvent {
    pub run_id: i64,
    pub window: i64,
    pub model: String,
    /// `checked` (measured for `stream`: `accuracy`), `deployed` (served `stream` as it
    /// was), `retrained` (`stream` retrained from it), `added` or `evicted`.
    pub kind: String,
    pub stream: Option<String>,
    pub accuracy: Option<f64>,
}

/// A detection row.
#[derive(sqlx::FromRow)]
struct DetectionRow {
    window: i64,
    stream: String,
    at: f64,
    changed_at: Option<f64>,
    swapped_to: Option<String>,
    swapped_at: Option<f64>,
}

/// A window's zoo size row.
#[derive(sqlx::FromRow)]
struct SizeRow {
    window: i64,
    models: i64,
    bytes: i64,
    check_gpu_seconds: f64,
    errors: Option<String>,
}

/// Every zoo event, oldest first; a query appends its WHERE with `concat!`.
macro_rules! events {
    () => {
        "SELECT * FROM (
            SELECT run_id, window, 0 AS part, seq, model, 'checked' AS kind, stream, accuracy FROM zoo_checks
            UNION ALL
            SELECT run_id, window, 1, seq, model, CASE WHEN as_is THEN 'deployed' ELSE 'retrained' END,
                   stream, NULL FROM zoo_uses
            UNION ALL
            SELECT run_id, window, 2, seq, model, change, NULL, NULL FROM zoo_changes
        ) e"
    };
}

impl History {
    /// Run `run`'s zoo reports, by window (empty for a run without a zoo).
    pub async fn zoo_reports(&self, run: i64) -> Result<Vec<(i64, ZooReport)>, HistoryError> {
        self.zoo_windows(run, None).await
    }

    /// The zoo report of one window of run `run` (`None` without a zoo).
    pub async fn zoo_report(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Option<ZooReport>, HistoryError> {
        Ok(self
            .zoo_windows(run, Some(window))
            .await?
            .pop()
            .map(|r| r.1))
    }

    async fn zoo_windows(
        &self,
        run: i64,
        window: Option<i64>,
    ) -> Result<Vec<(i64, ZooReport)>, HistoryError> {
        let sizes: Vec<SizeRow> = sqlx::query_as(
            "SELECT window, models, bytes, check_gpu_seconds, errors FROM zoo_windows
             WHERE run_id = ? AND (? IS NULL OR window = ?) ORDER BY window",
        )
        .bind(run)
        .bind(window)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        let events: Vec<ZooEvent> = sqlx::query_as(concat!(
            events!(),
            " WHERE run_id = ? AND (? IS NULL OR window = ?) ORDER BY window, part, seq"
        ))
        .bind(run)
        .bind(window)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        let detections: Vec<DetectionRow> = sqlx::query_as(
            "SELECT window, stream, at, changed_at, swapped_to, swapped_at FROM zoo_detections
             WHERE run_id = ? AND (? IS NULL OR window = ?) ORDER BY window, seq",
        )
        .bind(run)
        .bind(window)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(sizes.len());
        for s in sizes {
            let mut report = ZooReport {
                models: s.models as usize,
                bytes: s.bytes as u64,
                check_gpu_seconds: s.check_gpu_seconds,
                errors: s
                    .errors
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()?
                    .unwrap_or_default(),
                ..ZooReport::default()
            };
            for e in events.iter().filter(|e| e.window == s.window) {
                add_event(&mut report, e.clone());
            }
            report.detections = detections
                .iter()
                .filter(|d| d.window == s.window)
                .map(|d| ZooDetection {
                    stream: d.stream.clone(),
                    at: d.at,
                    changed_at: d.changed_at,
                    swapped_to: d.swapped_to.clone(),
                    // Rows from before migration 0010 swapped at the detection.
                    swapped_at: d.swapped_at.or(d.swapped_to.as_ref().map(|_| d.at)),
                })
                .collect();
            out.push((s.window, report));
        }
        Ok(out)
    }

    /// The events of model `model` in runs that kept their zoo (not compared side by side),
    /// from run `since` on (the run that made it: a zoo started afresh gives its ids out
    /// again), oldest first.
    pub async fn zoo_model_events(
        &self,
        model: &str,
        since: Option<i64>,
    ) -> Result<Vec<ZooEvent>, HistoryError> {
        Ok(sqlx::query_as(concat!(
            events!(),
            " WHERE model = ? AND run_id >= ?
                AND run_id IN (SELECT id FROM runs WHERE comparison_id IS NULL)
              ORDER BY run_id, window, part, seq"
        ))
        .bind(model)
        .bind(since.unwrap_or(0))
        .fetch_all(self.pool())
        .await?)
    }

    /// The run that made model `model` in window `window`: the latest run not compared side
    /// by side that added a model of that id in that window.
    pub async fn zoo_model_origin(
        &self,
        model: &str,
        window: i64,
    ) -> Result<Option<i64>, HistoryError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(c.run_id) FROM zoo_changes c JOIN runs r ON r.id = c.run_id
             WHERE c.model = ? AND c.window = ? AND c.change = 'added' AND r.comparison_id IS NULL",
        )
        .bind(model)
        .bind(window)
        .fetch_one(self.pool())
        .await?)
    }

    /// What the history says model `m` of a kept zoo did: its events from the run that made
    /// it on (a zoo started afresh gives its ids out again; the pretrained model is the same
    /// one in every run).
    pub async fn zoo_model_story(&self, m: &ZooModel) -> Result<Vec<ZooEvent>, HistoryError> {
        let since = if m.id == PRETRAINED {
            None
        } else {
            self.zoo_model_origin(&m.id, m.origin_window.into()).await?
        };
        self.zoo_model_events(&m.id, since).await
    }

    /// The latest evictions from zoos that were kept (runs not compared side by side),
    /// newest first, at most `limit`.
    pub async fn zoo_evictions(&self, limit: i64) -> Result<Vec<ZooEvent>, HistoryError> {
        Ok(sqlx::query_as(concat!(
            events!(),
            " WHERE kind = 'evicted' AND run_id IN (SELECT id FROM runs WHERE comparison_id IS NULL)
              ORDER BY run_id DESC, window DESC, seq DESC LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The latest run with a zoo history that kept its zoo (`tandem run`, the live run).
    pub async fn latest_zoo_run(&self) -> Result<Option<i64>, HistoryError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(z.run_id) FROM zoo_windows z JOIN runs r ON r.id = z.run_id
             WHERE r.comparison_id IS NULL",
        )
        .fetch_one(self.pool())
        .await?)
    }
}

/// Put event `e` back into the report it came from.
fn add_event(report: &mut ZooReport, e: ZooEvent) {
    let stream = e.stream.unwrap_or_default();
    match e.kind.as_str() {
        "checked" => report.checks.push(ZooCheckRecord {
            stream,
            model: e.model,
            accuracy: e.accuracy.unwrap_or(f64::NAN),
        }),
        "deployed" | "retrained" => report.uses.push(ZooUse {
            stream,
            model: e.model,
            as_is: e.kind == "deployed",
        }),
        "added" => report.added.push(e.model),
        _ => report.evicted.push(e.model),
    }
}
