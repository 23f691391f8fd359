//! Reading history back: runs, their windows, and recorded policy inputs.

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
