//! [`Recorder`]: the run-and-record loop shared by `tandem run`/`compare` and the dashboard.
//!
//! An engine is synchronous and CPU-heavy, so it runs on its own thread; the history is
//! async (sqlx). The recorder bridges the two: it either owns a small runtime (the CLI) or
//! borrows the server's through a [`Handle`] (the dashboard's engine threads), and
//! [`Recorder::run`] commits every window as soon as it ends, then hands it to the caller.

use std::future::Future;
use std::ops::ControlFlow;
use std::path::Path;

use tokio::runtime::{Handle, Runtime};

use super::{History, HistoryError, NewRun};
use crate::compute::Backend;
use crate::engine::{Engine, EngineError, WindowReport};

/// Why a recorded run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

enum Exec {
    Own(Runtime),
    Shared(Handle),
}

/// The history plus a way to drive it from a synchronous thread.
pub struct Recorder {
    exec: Exec,
    history: History,
}

/// What identifies a run besides its scenario.
pub struct RunMeta<'a> {
    pub policy: &'a str,
    pub backend: &'a str,
    pub comparison: Option<i64>,
}

/// How a recorded run ended.
#[derive(Debug, Clone, Copy)]
pub struct RunOutcome {
    pub run_id: i64,
    pub windows: u32,
    pub mean_accuracy: f64,
}

impl Recorder {
    /// Open `data_dir/history.sqlite` on a runtime of its own (for a thread outside tokio).
    pub fn open(data_dir: &Path) -> Result<Self, HistoryError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HistoryError::Query(sqlx::Error::Io(e)))?;
        let history = rt.block_on(History::open(&data_dir.join("history.sqlite")))?;
        Ok(Self {
            exec: Exec::Own(rt),
            history,
        })
    }

    /// Use an open history on a running (multi-thread) runtime; call from a thread that is
    /// not one of that runtime's workers.
    pub fn shared(history: History, handle: Handle) -> Self {
        Self {
            exec: Exec::Shared(handle),
            history,
        }
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        match &self.exec {
            Exec::Own(rt) => rt.block_on(f),
            Exec::Shared(h) => h.block_on(f),
        }
    }

    /// Run `engine` for `windows` windows (None: until `on_window` breaks), recording each
    /// window before handing it to `on_window` with the engine as the window left it (its
    /// zoo, to save). A failure is recorded on the run too.
    pub fn run<B: Backend>(
        &self,
        engine: &mut Engine<'_, B>,
        meta: &RunMeta<'_>,
        windows: Option<u32>,
        on_window: &mut dyn FnMut(&Engine<'_, B>, &WindowReport) -> ControlFlow<()>,
    ) -> Result<RunOutcome, RecordError> {
        let s = engine.scenario().clone();
        let run_id = self.block_on(self.history.start_run(&NewRun {
            scenario: &s.name,
            scenario_json: &serde_json::to_string(&s).map_err(HistoryError::Encode)?,
            policy: meta.policy,
            policy_digest: &engine.policy_digest(),
            backend: meta.backend,
            windows_planned: windows.unwrap_or(s.windows),
            comparison: meta.comparison,
        }))?;
        let (mut done, mut sum) = (0u32, 0.0);
        while windows.is_none_or(|n| done < n) {
            let w = match engine.run_window() {
                Ok(w) => w,
                Err(e) => {
                    self.block_on(self.history.finish_run(run_id, Err(&e.to_string())))?;
                    return Err(e.into());
                }
            };
            // Each window is committed as soon as it ends: a crash loses at most the next.
            self.block_on(self.history.record_window(run_id, &w))?;
            done += 1;
            sum += w.mean_accuracy;
            if on_window(engine, &w).is_break() {
                break;
            }
        }
        let mean_accuracy = sum / done.max(1) as f64;
        self.block_on(self.history.finish_run(run_id, Ok(mean_accuracy)))?;
        Ok(RunOutcome {
            run_id,
            windows: done,
            mean_accuracy,
        })
    }
}
