//! The streams' lives in the history (migration `0008_lifecycle.sql`): what a window's
//! [`LifecycleReport`] says, written in the window's transaction and read back as the same
//! report for the dashboard's window page.

use sqlx::SqliteConnection;

use super::{History, HistoryError};
use crate::engine::report::{ColdStartRecord, LifecycleReport, StreamLife};

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
}
