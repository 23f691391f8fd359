//! Reading history back: runs and their windows.

use serde::Serialize;
use sqlx::Row;

use super::{History, HistoryError};

/// One run as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub comparison_id: Option<i64>,
    pub scenario: String,
    pub policy: String,
    pub status: String,
    pub windows_planned: i64,
    pub windows_done: i64,
    pub mean_accuracy: Option<f64>,
    pub started_at: String,
}

/// One window of a run.
#[derive(Debug, Clone, Serialize)]
pub struct WindowRow {
    pub window: i64,
    pub mean_accuracy: f64,
    pub gpu_utilization: f64,
    pub profiler_gpu_seconds: f64,
}

impl History {
    /// Runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT r.id, r.comparison_id, r.scenario, r.policy, r.status, r.windows_planned, r.mean_accuracy,
                    r.started_at, (SELECT COUNT(*) FROM windows w WHERE w.run_id = r.id) AS done
             FROM runs r ORDER BY r.id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RunRow {
                id: r.get("id"),
                comparison_id: r.get("comparison_id"),
                scenario: r.get("scenario"),
                policy: r.get("policy"),
                status: r.get("status"),
                windows_planned: r.get("windows_planned"),
                windows_done: r.get("done"),
                mean_accuracy: r.get("mean_accuracy"),
                started_at: r.get("started_at"),
            })
            .collect())
    }

    /// A run's windows in order.
    pub async fn windows(&self, run: i64) -> Result<Vec<WindowRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT window, mean_accuracy, gpu_utilization, profiler_gpu_seconds FROM windows WHERE run_id = ? ORDER BY window",
        )
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| WindowRow {
                window: r.get("window"),
                mean_accuracy: r.get("mean_accuracy"),
                gpu_utilization: r.get("gpu_utilization"),
                profiler_gpu_seconds: r.get("profiler_gpu_seconds"),
            })
            .collect())
    }
}

/// Which runs to list: substring of policy or scenario, and a date range (YYYY-MM-DD, inclusive).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RunFilter {
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub scenario: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub comparison: Option<i64>,
}

/// One stream in one window, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StreamWindowRow {
    pub window: i64,
    pub stream: String,
    pub accuracy: f64,
    pub start_accuracy: f64,
    pub end_accuracy: f64,
    pub infer_config: String,
    pub infer_share: f64,
    pub frames: i64,
    pub frames_processed: i64,
}

/// One policy call, as stored (input and output are JSON text).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyCallRow {
    pub id: i64,
    pub window: i64,
    pub at: f64,
    pub plugin: String,
    pub digest: String,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub micros: i64,
}

/// One allocation change, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct AllocationRow {
    pub window: i64,
    pub seq: i64,
    pub at: f64,
    pub stream: String,
    pub infer_share: f64,
    pub retrain_share: f64,
    pub infer_config: String,
    pub retrain_config: Option<String>,
}

/// One comparison, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonRow {
    pub id: i64,
    pub scenario: String,
    pub policies: Vec<String>,
    pub created_at: String,
}

fn run_row(r: &sqlx::sqlite::SqliteRow) -> RunRow {
    RunRow {
        id: r.get("id"),
        comparison_id: r.get("comparison_id"),
        scenario: r.get("scenario"),
        policy: r.get("policy"),
        status: r.get("status"),
        windows_planned: r.get("windows_planned"),
        windows_done: r.get("done"),
        mean_accuracy: r.get("mean_accuracy"),
        started_at: r.get("started_at"),
    }
}

impl History {
    /// Runs matching `f`, newest first.
    pub async fn runs_filtered(&self, f: &RunFilter) -> Result<Vec<RunRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT r.id, r.comparison_id, r.scenario, r.policy, r.status, r.windows_planned, r.mean_accuracy,
                    r.started_at, (SELECT COUNT(*) FROM windows w WHERE w.run_id = r.id) AS done
             FROM runs r
             WHERE instr(r.policy, ?) > 0 AND instr(r.scenario, ?) > 0
               AND substr(r.started_at, 1, 10) >= ? AND substr(r.started_at, 1, 10) <= ?
               AND (? IS NULL OR r.comparison_id = ?)
             ORDER BY r.id DESC",
        )
        .bind(&f.policy)
        .bind(&f.scenario)
        .bind(if f.from.is_empty() { "0000-00-00" } else { &f.from })
        .bind(if f.to.is_empty() { "9999-99-99" } else { &f.to })
        .bind(f.comparison)
        .bind(f.comparison)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// One run.
    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, HistoryError> {
        let row = sqlx::query(
            "SELECT r.id, r.comparison_id, r.scenario, r.policy, r.status, r.windows_planned, r.mean_accuracy,
                    r.started_at, (SELECT COUNT(*) FROM windows w WHERE w.run_id = r.id) AS done
             FROM runs r WHERE r.id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(run_row))
    }

    /// A run's per-stream rows, of one window or all.
    pub async fn stream_windows(
        &self,
        run: i64,
        window: Option<i64>,
    ) -> Result<Vec<StreamWindowRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT window, stream, accuracy, start_accuracy, end_accuracy, infer_config, infer_share, frames, frames_processed
             FROM stream_windows WHERE run_id = ? AND (? IS NULL OR window = ?) ORDER BY window, stream",
        )
        .bind(run)
        .bind(window)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StreamWindowRow {
                window: r.get("window"),
                stream: r.get("stream"),
                accuracy: r.get("accuracy"),
                start_accuracy: r.get("start_accuracy"),
                end_accuracy: r.get("end_accuracy"),
                infer_config: r.get("infer_config"),
                infer_share: r.get("infer_share"),
                frames: r.get("frames"),
                frames_processed: r.get("frames_processed"),
            })
            .collect())
    }

    /// A window's policy calls in order.
    pub async fn policy_calls(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Vec<PolicyCallRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT id, window, at, plugin, digest, input, output, error, micros FROM policy_calls
             WHERE run_id = ? AND window = ? ORDER BY id",
        )
        .bind(run)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PolicyCallRow {
                id: r.get("id"),
                window: r.get("window"),
                at: r.get("at"),
                plugin: r.get("plugin"),
                digest: r.get("digest"),
                input: r.get("input"),
                output: r.get("output"),
                error: r.get("error"),
                micros: r.get("micros"),
            })
            .collect())
    }

    /// A window's allocation changes in order.
    pub async fn allocations(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Vec<AllocationRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT window, seq, at, stream, infer_share, retrain_share, infer_config, retrain_config FROM allocations
             WHERE run_id = ? AND window = ? ORDER BY seq",
        )
        .bind(run)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AllocationRow {
                window: r.get("window"),
                seq: r.get("seq"),
                at: r.get("at"),
                stream: r.get("stream"),
                infer_share: r.get("infer_share"),
                retrain_share: r.get("retrain_share"),
                infer_config: r.get("infer_config"),
                retrain_config: r.get("retrain_config"),
            })
            .collect())
    }

    /// Comparisons, newest first.
    pub async fn comparisons(&self) -> Result<Vec<ComparisonRow>, HistoryError> {
        let rows = sqlx::query(
            "SELECT id, scenario, policies, created_at FROM comparisons ORDER BY id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let policies: String = r.get("policies");
                Ok(ComparisonRow {
                    id: r.get("id"),
                    scenario: r.get("scenario"),
                    policies: serde_json::from_str(&policies)?,
                    created_at: r.get("created_at"),
                })
            })
            .collect()
    }
}

impl History {
    /// The input of each window's first policy call in run `run`, as recorded (JSON), in
    /// window order: the job profiles `tandem replay --run` replays.
    pub async fn first_policy_inputs(&self, run: i64) -> Result<Vec<(i64, String)>, HistoryError> {
        let rows = sqlx::query(
            "SELECT window, input FROM policy_calls p
             WHERE run_id = ? AND id = (SELECT MIN(id) FROM policy_calls q
                                        WHERE q.run_id = p.run_id AND q.window = p.window)
             ORDER BY window",
        )
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("window"), r.get("input")))
            .collect())
    }
}
