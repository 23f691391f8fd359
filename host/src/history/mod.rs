//! [`History`]: every run in SQLite (sqlx, migrations in `migrations/`, WAL journal).
//!
//! A run is recorded as it goes: [`History::start_run`] when it starts, one transaction per
//! window in [`History::record_window`], [`History::finish_run`] at the end. A crash therefore
//! loses at most the window in progress; runs left `running` by a crash are marked
//! `interrupted` the next time the history is opened. [`Recorder`] drives an engine and
//! records it, for the CLI and the dashboard alike. The zoo's part of a window (checks, uses,
//! models added and evicted) and the streams' lives (phases, cold starts, resident memory) have
//! their own tables and reads (`zoo`, `lifecycle`).

mod read;
pub mod recorder;

pub use read::{
    AllocationRow, ComparisonRow, JobRow, PolicyCallRow, RunFilter, RunRow, StreamWindowRow,
    WindowRow,
};
pub use recorder::{RecordError, Recorder, RunMeta, RunOutcome};

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::engine::WindowReport;

/// What can go wrong with the history database.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("history database {path}: migrating: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("history: {0}")]
    Query(#[from] sqlx::Error),
    #[error("history: encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One INSERT in a transaction, its values bound in order.
macro_rules! insert {
    ($tx:expr, $sql:expr, $($value:expr),+ $(,)?) => {
        sqlx::query($sql)$(.bind($value))+.execute(&mut *$tx).await?
    };
}

// After `insert!`, which it uses.
mod lifecycle;
mod zoo;
pub use zoo::ZooEvent;

/// The run history.
#[derive(Clone, Debug)]
pub struct History {
    pool: SqlitePool,
}

/// What is known when a run starts.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub scenario: &'a str,
    pub scenario_json: &'a str,
    pub policy: &'a str,
    pub policy_digest: &'a str,
    pub backend: &'a str,
    pub windows_planned: u32,
    pub comparison: Option<i64>,
}

impl History {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<History, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| HistoryError::Open {
                path: path.to_owned(),
                source: e.into(),
            })?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|source| HistoryError::Open {
                path: path.to_owned(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| HistoryError::Open {
                path: path.to_owned(),
                source,
            })?;
        sqlx::migrate!("../migrations")
            .run(&pool)
            .await
            .map_err(|source| HistoryError::Migrate {
                path: path.to_owned(),
                source,
            })?;
        // Runs a crash left behind keep their windows; say what happened to them. A run
        // another live process is still writing is left alone (this process has no run of
        // its own open yet: it opens its history once).
        let running: Vec<(i64, Option<i64>)> =
            sqlx::query_as("SELECT id, owner_pid FROM runs WHERE status = 'running'")
                .fetch_all(&pool)
                .await?;
        for (id, owner) in running {
            if owner.is_some_and(|pid| pid != i64::from(std::process::id()) && alive(pid)) {
                continue;
            }
            sqlx::query("UPDATE runs SET status = 'interrupted' WHERE id = ?")
                .bind(id)
                .execute(&pool)
                .await?;
        }
        Ok(History { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Record a comparison of several policies on one scenario.
    pub async fn start_comparison(
        &self,
        scenario: &str,
        policies: &[String],
    ) -> Result<i64, HistoryError> {
        let id = sqlx::query("INSERT INTO comparisons (scenario, policies) VALUES (?, ?)")
            .bind(scenario)
            .bind(serde_json::to_string(policies)?)
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(id)
    }

    /// Record a run's start; returns its id.
    pub async fn start_run(&self, run: &NewRun<'_>) -> Result<i64, HistoryError> {
        let id = sqlx::query(
            "INSERT INTO runs (comparison_id, scenario, scenario_toml, policy, policy_digest, backend, status, windows_planned, owner_pid)
             VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
        )
        .bind(run.comparison)
        .bind(run.scenario)
        .bind(run.scenario_json)
        .bind(run.policy)
        .bind(run.policy_digest)
        .bind(run.backend)
        .bind(run.windows_planned as i64)
        .bind(i64::from(std::process::id()))
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// Record one finished window, all of it in one transaction.
    pub async fn record_window(&self, run: i64, w: &WindowReport) -> Result<(), HistoryError> {
        let mut tx = self.pool.begin().await?;
        let win = w.window as i64;
        insert!(tx, "INSERT INTO windows (run_id, window, mean_accuracy, gpu_utilization, profiler_gpu_seconds, decision_at)
             VALUES (?, ?, ?, ?, ?, ?)", run, win, w.mean_accuracy, w.gpu_utilization, w.profiler_gpu_seconds, w.decision_at);
        for s in &w.streams {
            insert!(tx, "INSERT INTO stream_windows (run_id, window, stream, accuracy, start_accuracy, end_accuracy,
                 infer_config, infer_share, frames, frames_processed, infer_allocated_share,
                 infer_delivered_share) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run, win, &s.stream, s.accuracy, s.start_accuracy, s.end_accuracy, &s.infer_config, s.infer_share, s.frames as i64, s.frames_processed as i64, s.infer_allocated_share, s.infer_delivered_share);
            for (c, a) in s.chunks.iter().enumerate() {
                insert!(
                    tx,
                    "INSERT INTO accuracy_samples (run_id, window, stream, chunk, accuracy) VALUES (?, ?, ?, ?, ?)",
                    run,
                    win,
                    &s.stream,
                    c as i64,
                    a
                );
            }
            if let Some(j) = &s.retrain {
                insert!(tx, "INSERT INTO jobs (run_id, window, stream, config, predicted_accuracy, actual_accuracy,
                     predicted_gpu_seconds, actual_gpu_seconds, started_at, finished_at, allocated_share, delivered_share, deployed)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run, win, &s.stream, &j.config, j.predicted_accuracy, j.actual_accuracy, j.predicted_gpu_seconds, j.actual_gpu_seconds, j.started_at, j.finished_at, j.allocated_share, j.delivered_share, j.deployed);
            }
        }
        for c in &w.policy_calls {
            insert!(tx, "INSERT INTO policy_calls (run_id, window, at, plugin, digest, input, output, error, micros)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", run, win, c.at, &c.plugin, &c.digest, serde_json::to_string(&c.input)?, c.output.as_ref().map(serde_json::to_string).transpose()?, &c.error, c.micros as i64);
        }
        for (seq, a) in w.allocations.iter().enumerate() {
            insert!(tx, "INSERT INTO allocations (run_id, window, seq, at, stream, infer_share, retrain_share, infer_config, retrain_config)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", run, win, seq as i64, a.at, &a.stream, a.infer_share, a.retrain_share, &a.infer_config, &a.retrain_config);
        }
        for p in &w.predictions {
            insert!(tx, "INSERT INTO predictions (run_id, window, stream, config, predicted_accuracy, predicted_gpu_seconds,
                 actual_accuracy, actual_gpu_seconds, estimator_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", run, win, &p.stream, &p.config, p.predicted_accuracy, p.predicted_gpu_seconds, p.actual_accuracy, p.actual_gpu_seconds, &p.estimator_error);
        }
        if let Some(z) = &w.zoo {
            zoo::record(&mut tx, run, win, z).await?;
        }
        if let Some(l) = &w.lifecycle {
            lifecycle::record(&mut tx, run, win, l).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Close a run: `finished` with its mean accuracy, or `failed` with the error.
    pub async fn finish_run(
        &self,
        run: i64,
        outcome: Result<f64, &str>,
    ) -> Result<(), HistoryError> {
        let (status, mean, error) = match outcome {
            Ok(m) => ("finished", Some(m), None),
            Err(e) => ("failed", None, Some(e)),
        };
        sqlx::query(
            "UPDATE runs SET status = ?, mean_accuracy = ?, error = ?,
             finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
        )
        .bind(status)
        .bind(mean)
        .bind(error)
        .bind(run)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Whether process `pid` is alive. Where `/proc` does not exist, every process counts as gone
/// (a run left `running` is then marked interrupted, as a crash would leave it).
fn alive(pid: i64) -> bool {
    let proc = std::path::Path::new("/proc");
    proc.exists() && proc.join(pid.to_string()).exists()
}
