//! Reading history back: runs and their windows.

use serde::Serialize;
use sqlx::Row;

use super::{History, HistoryError};
use crate::engine::report::{Allocation, JobReport, PredictionRecord};

/// The columns of a [`RunRow`]; a query appends its WHERE and ORDER BY with `concat!` (sqlx
/// takes only static SQL text). The status is read through the lease (a `running` run whose
/// writer stopped renewing it is `interrupted`), and a run without a closing mean (stopped
/// early) shows the mean over its committed windows.
macro_rules! runs {
    () => {
        concat!(
            "SELECT r.id, r.comparison_id, r.scenario, r.policy, ",
            status_sql!(),
            " AS status, r.windows_planned,
        COALESCE(r.mean_accuracy, (SELECT AVG(w.mean_accuracy) FROM windows w WHERE w.run_id = r.id)) AS mean_accuracy,
        r.started_at, (SELECT COUNT(*) FROM windows w WHERE w.run_id = r.id) AS done,
        (SELECT COUNT(*) FROM policy_calls c WHERE c.run_id = r.id) AS policy_calls,
        (SELECT COUNT(*) FROM policy_calls c WHERE c.run_id = r.id AND c.error IS NOT NULL) AS policy_fallbacks
 FROM runs r"
        )
    };
}

/// One run as listed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub comparison_id: Option<i64>,
    pub scenario: String,
    pub policy: String,
    pub status: String,
    pub windows_planned: i64,
    #[sqlx(rename = "done")]
    pub windows_done: i64,
    pub mean_accuracy: Option<f64>,
    pub started_at: String,
    /// Calls to the policy plugin, and how many of them failed (the fallback decided).
    pub policy_calls: i64,
    pub policy_fallbacks: i64,
}

impl RunRow {
    /// `fallback decided 3 of 12`, or empty when the policy decided every time.
    pub fn fallback_note(&self) -> String {
        if self.policy_fallbacks == 0 {
            String::new()
        } else {
            format!(
                "fallback decided {} of {}",
                self.policy_fallbacks, self.policy_calls
            )
        }
    }
}

/// One window of a run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WindowRow {
    pub window: i64,
    pub mean_accuracy: f64,
    pub gpu_utilization: f64,
    pub profiler_gpu_seconds: f64,
}

impl History {
    /// Runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunRow>, HistoryError> {
        Ok(sqlx::query_as(concat!(runs!(), " ORDER BY r.id DESC"))
            .fetch_all(self.pool())
            .await?)
    }

    /// A run's windows in order.
    pub async fn windows(&self, run: i64) -> Result<Vec<WindowRow>, HistoryError> {
        Ok(sqlx::query_as(
            "SELECT window, mean_accuracy, gpu_utilization, profiler_gpu_seconds FROM windows WHERE run_id = ? ORDER BY window",
        )
        .bind(run)
        .fetch_all(self.pool())
        .await?)
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
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
    pub infer_allocated_share: Option<f64>,
    pub infer_delivered_share: Option<f64>,
}

/// One policy call, as stored (input and output are JSON text).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

/// One allocation change, as stored: its place in the window and what the engine reported.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AllocationRow {
    pub window: i64,
    pub seq: i64,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub allocation: Allocation,
}

/// One retraining job, as stored: its stream and the report the engine wrote.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub stream: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub job: JobReport,
}

/// One comparison, as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ComparisonRow {
    pub id: i64,
    pub scenario: String,
    #[sqlx(json)]
    pub policies: Vec<String>,
    pub created_at: String,
}

impl History {
    /// Runs matching `f`, newest first.
    pub async fn runs_filtered(&self, f: &RunFilter) -> Result<Vec<RunRow>, HistoryError> {
        let sql = concat!(
            runs!(),
            " WHERE instr(r.policy, ?) > 0 AND instr(r.scenario, ?) > 0
               AND substr(r.started_at, 1, 10) >= ? AND substr(r.started_at, 1, 10) <= ?
               AND (? IS NULL OR r.comparison_id = ?)
             ORDER BY r.id DESC"
        );
        Ok(sqlx::query_as(sql)
            .bind(&f.policy)
            .bind(&f.scenario)
            .bind(if f.from.is_empty() {
                "0000-00-00"
            } else {
                &f.from
            })
            .bind(if f.to.is_empty() { "9999-99-99" } else { &f.to })
            .bind(f.comparison)
            .bind(f.comparison)
            .fetch_all(self.pool())
            .await?)
    }

    /// The scenario run `run` was recorded with, as JSON (None for no such run, or a record
    /// that is not JSON).
    pub async fn scenario_json(&self, run: i64) -> Result<Option<serde_json::Value>, HistoryError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT scenario_toml FROM runs WHERE id = ?")
                .bind(run)
                .fetch_optional(self.pool())
                .await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// One run.
    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, HistoryError> {
        Ok(sqlx::query_as(concat!(runs!(), " WHERE r.id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// A run's per-stream rows, of one window or all.
    pub async fn stream_windows(
        &self,
        run: i64,
        window: Option<i64>,
    ) -> Result<Vec<StreamWindowRow>, HistoryError> {
        Ok(sqlx::query_as(
            "SELECT window, stream, accuracy, start_accuracy, end_accuracy, infer_config, infer_share, frames, frames_processed,
             infer_allocated_share, infer_delivered_share FROM stream_windows WHERE run_id = ? AND (? IS NULL OR window = ?) ORDER BY window, stream",
        )
        .bind(run)
        .bind(window)
        .bind(window)
        .fetch_all(self.pool())
        .await?)
    }

    /// The rows of one window of run `run` that `sql` selects (its two parameters are the run
    /// and the window, in that order).
    async fn window_rows<T>(
        &self,
        sql: &'static str,
        run: i64,
        window: i64,
    ) -> Result<Vec<T>, HistoryError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        Ok(sqlx::query_as(sql)
            .bind(run)
            .bind(window)
            .fetch_all(self.pool())
            .await?)
    }

    /// A window's policy calls in order.
    pub async fn policy_calls(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Vec<PolicyCallRow>, HistoryError> {
        self.window_rows(
            "SELECT id, window, at, plugin, digest, input, output, error, micros FROM policy_calls
             WHERE run_id = ? AND window = ? ORDER BY id",
            run,
            window,
        )
        .await
    }

    /// A window's allocation changes in order.
    pub async fn allocations(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Vec<AllocationRow>, HistoryError> {
        self.window_rows(
            "SELECT window, seq, at, stream, infer_share, retrain_share, infer_config, retrain_config FROM allocations
             WHERE run_id = ? AND window = ? ORDER BY seq",
            run,
            window,
        )
        .await
    }

    /// A window's retraining jobs, by stream.
    pub async fn jobs(&self, run: i64, window: i64) -> Result<Vec<JobRow>, HistoryError> {
        self.window_rows(
            "SELECT stream, config, predicted_accuracy, actual_accuracy, predicted_gpu_seconds, actual_gpu_seconds,
                    started_at, finished_at, allocated_share, delivered_share, deployed
             FROM jobs WHERE run_id = ? AND window = ? ORDER BY stream",
            run,
            window,
        )
        .await
    }

    /// A window's profiler predictions, by stream and configuration.
    pub async fn predictions(
        &self,
        run: i64,
        window: i64,
    ) -> Result<Vec<PredictionRecord>, HistoryError> {
        self.window_rows(
            "SELECT stream, config, predicted_accuracy, predicted_gpu_seconds, actual_accuracy, actual_gpu_seconds,
                    estimator_error
             FROM predictions WHERE run_id = ? AND window = ? ORDER BY stream, config",
            run,
            window,
        )
        .await
    }

    /// Comparisons, newest first.
    pub async fn comparisons(&self) -> Result<Vec<ComparisonRow>, HistoryError> {
        Ok(sqlx::query_as(
            "SELECT id, scenario, policies, created_at FROM comparisons ORDER BY id DESC",
        )
        .fetch_all(self.pool())
        .await?)
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
