//! The streams' lives in the history (migration `0008_lifecycle.sql`): what a window's
//! [`LifecycleReport`] says, written in the window's transaction and read back as the same
//! report for the dashboard's window page; and a run's [`LifecycleSummary`], summed in SQL,
//! for its page and the runs list.

use std::collections::BTreeMap;

use sqlx::SqliteConnection;

use super::{History, HistoryError};
use crate::engine::report::{ColdStartRecord, LifecycleReport, LifecycleSummary, StreamLife};

/// Write window `win` of run `run`'s lifecycle report (inside the window's transaction).
pub(super) async fn record(
    tx: &mut SqliteConnection,
    run: i64,
    win: i64,
    l: &LifecycleReport,
) -> Result<(), HistoryError> {
    let errors = (!l.errors.is_empty())
        .then(|| serde_json::to_string(&l.errors))
        .transpose()?;
    insert!(
        tx,
        "INSERT INTO lifecycle_windows (run_id, window, policy, memory_budget_bytes,
         memory_mean_bytes, memory_peak_bytes, calls, errors, wake_costs)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run,
        win,
        &l.policy,
        l.memory_budget_bytes.map(|b| b as i64),
        l.memory_mean_bytes,
        l.memory_peak_bytes as i64,
        l.calls as i64,
        errors,
        serde_json::to_string(&l.wake_costs)?
    );
    for s in &l.streams {
        insert!(
            tx,
            "INSERT INTO stream_lives (run_id, window, stream, phases, end_phase, frames_lost,
             resident_bytes, resident_mean_bytes, evictions, memory_wait_seconds)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run,
            win,
            &s.stream,
            serde_json::to_string(&s.phases)?,
            s.end_phase.name(),
            s.frames_lost as i64,
            s.resident_bytes as i64,
            s.resident_mean_bytes,
            s.evictions as i64,
            s.memory_wait_seconds as i64
        );
    }
    for (seq, c) in l.cold_starts.iter().enumerate() {
        insert!(
            tx,
            "INSERT INTO cold_starts (run_id, window, seq, stream, at, path, seconds)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            run,
            win,
            seq as i64,
            &c.stream,
            c.at,
            serde_json::to_value(c.path)?.as_str().unwrap_or_default(),
            c.seconds
        );
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct WindowRow {
    policy: String,
    memory_budget_bytes: Option<i64>,
    memory_mean_bytes: f64,
    memory_peak_bytes: i64,
    calls: i64,
    errors: Option<String>,
    wake_costs: String,
}

#[derive(sqlx::FromRow)]
struct LifeRow {
    stream: String,
    phases: String,
    end_phase: String,
    frames_lost: i64,
    resident_bytes: i64,
    resident_mean_bytes: f64,
    evictions: i64,
    memory_wait_seconds: i64,
}

#[derive(sqlx::FromRow)]
struct WakeRow {
    stream: String,
    at: f64,
    path: String,
    seconds: f64,
}

/// One run's lifecycle figures, as [`RunReport::lifecycle`](crate::engine::RunReport::lifecycle)
/// sums them from the run's reports.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    run_id: i64,
    policy: String,
    memory_budget_bytes: Option<i64>,
    memory_mean_bytes: f64,
    memory_peak_bytes: i64,
    plugin_errors: i64,
    frames_lost: i64,
    frames: i64,
    cold_starts: i64,
    prewarmed_starts: i64,
    cold_start_p50_seconds: Option<f64>,
}

/// A JSON string's enum value (`"cold"` → `WakeKind::Cold`).
fn named<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, HistoryError> {
    Ok(serde_json::from_value(serde_json::Value::String(
        name.to_string(),
    ))?)
}

impl History {
    /// Window `window` of run `run`'s lifecycle report (`None` when its streams never came
    /// and went).
    pub async fn lifecycle_report(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Option<LifecycleReport>, HistoryError> {
        let row: Option<WindowRow> = sqlx::query_as(
            "SELECT policy, memory_budget_bytes, memory_mean_bytes, memory_peak_bytes, calls,
             errors, wake_costs FROM lifecycle_windows WHERE run_id = ? AND window = ?",
        )
        .bind(run)
        .bind(window)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let lives: Vec<LifeRow> = sqlx::query_as(
            "SELECT stream, phases, end_phase, frames_lost, resident_bytes, resident_mean_bytes,
             evictions, memory_wait_seconds FROM stream_lives
             WHERE run_id = ? AND window = ? ORDER BY rowid",
        )
        .bind(run)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        let wakes: Vec<WakeRow> = sqlx::query_as(
            "SELECT stream, at, path, seconds FROM cold_starts
             WHERE run_id = ? AND window = ? ORDER BY seq",
        )
        .bind(run)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        let mut streams = Vec::with_capacity(lives.len());
        for l in lives {
            streams.push(StreamLife {
                stream: l.stream,
                phases: serde_json::from_str(&l.phases)?,
                end_phase: named(&l.end_phase)?,
                frames_lost: l.frames_lost as usize,
                resident_bytes: l.resident_bytes as u64,
                resident_mean_bytes: l.resident_mean_bytes,
                evictions: l.evictions as u32,
                memory_wait_seconds: l.memory_wait_seconds as u32,
            });
        }
        let mut cold_starts = Vec::with_capacity(wakes.len());
        for w in wakes {
            cold_starts.push(ColdStartRecord {
                stream: w.stream,
                at: w.at,
                path: named(&w.path)?,
                seconds: w.seconds,
            });
        }
        Ok(Some(LifecycleReport {
            policy: row.policy,
            memory_budget_bytes: row.memory_budget_bytes.map(|b| b as u64),
            memory_mean_bytes: row.memory_mean_bytes,
            memory_peak_bytes: row.memory_peak_bytes as u64,
            cold_starts,
            streams,
            calls: row.calls as u32,
            errors: row
                .errors
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?
                .unwrap_or_default(),
            wake_costs: serde_json::from_str(&row.wake_costs)?,
        }))
    }

    /// The lifecycle summaries of those of `runs` that have lifecycle windows, by run id: the
    /// same figures [`RunReport::lifecycle`](crate::engine::RunReport::lifecycle) gives a run
    /// as it ends, summed here in one query so a list of runs costs one round trip. The
    /// policy and budget are the first lifecycle window's; the median cold start is the
    /// upper median of the wake-ups from cold, as there.
    pub async fn lifecycle_summaries(
        &self,
        runs: &[i64],
    ) -> Result<BTreeMap<i64, LifecycleSummary>, HistoryError> {
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT l.run_id,
              (SELECT f.policy FROM lifecycle_windows f WHERE f.run_id = l.run_id
               ORDER BY f.window LIMIT 1) AS policy,
              (SELECT f.memory_budget_bytes FROM lifecycle_windows f WHERE f.run_id = l.run_id
               ORDER BY f.window LIMIT 1) AS memory_budget_bytes,
              AVG(l.memory_mean_bytes) AS memory_mean_bytes,
              MAX(l.memory_peak_bytes) AS memory_peak_bytes,
              COALESCE(SUM(json_array_length(l.errors)), 0) AS plugin_errors,
              (SELECT COALESCE(SUM(s.frames_lost), 0) FROM stream_lives s
               WHERE s.run_id = l.run_id) AS frames_lost,
              (SELECT COALESCE(SUM(w.frames), 0) FROM stream_windows w
               JOIN lifecycle_windows x ON x.run_id = w.run_id AND x.window = w.window
               WHERE w.run_id = l.run_id) AS frames,
              (SELECT COUNT(*) FROM cold_starts c
               WHERE c.run_id = l.run_id AND c.path != 'prewarmed') AS cold_starts,
              (SELECT COUNT(*) FROM cold_starts c
               WHERE c.run_id = l.run_id AND c.path = 'prewarmed') AS prewarmed_starts,
              (SELECT seconds FROM (
                 SELECT c.seconds, ROW_NUMBER() OVER (ORDER BY c.seconds) AS k,
                        COUNT(*) OVER () AS n
                 FROM cold_starts c WHERE c.run_id = l.run_id AND c.path != 'prewarmed')
               WHERE k = n / 2 + 1) AS cold_start_p50_seconds
             FROM lifecycle_windows l
             WHERE l.run_id IN (SELECT value FROM json_each(?))
             GROUP BY l.run_id",
        )
        .bind(serde_json::to_string(runs)?)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let summary = LifecycleSummary {
                    policy: r.policy,
                    cold_starts: r.cold_starts as usize,
                    cold_start_p50_seconds: r.cold_start_p50_seconds,
                    prewarmed_starts: r.prewarmed_starts as usize,
                    frames_lost: r.frames_lost as usize,
                    frames: r.frames as usize,
                    memory_mean_bytes: r.memory_mean_bytes,
                    memory_peak_bytes: r.memory_peak_bytes as u64,
                    memory_budget_bytes: r.memory_budget_bytes.map(|b| b as u64),
                    plugin_errors: r.plugin_errors as usize,
                };
                (r.run_id, summary)
            })
            .collect())
    }
}
