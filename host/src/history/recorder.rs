//! [`Recorder`]: the run-and-record loop shared by `tandem run`/`compare` and the dashboard.
//!
//! An engine is synchronous and CPU-heavy, so it runs on its own thread; the history is
//! async (sqlx). The recorder bridges the two: it either owns a small runtime (the CLI) or
//! borrows the server's through a [`Handle`] (the dashboard's engine threads), and
//! [`Recorder::run`] commits every window as soon as it ends, then hands it to the caller.
//! While a run is open a task on that runtime renews its lease ([`super::HEARTBEAT`]), so a
//! run whose process died reads as interrupted within [`super::LEASE`].

use std::future::Future;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use tokio::runtime::{Handle, Runtime};

use super::{HEARTBEAT, History, HistoryError, NewRun, RunEnd};
use crate::compute::Backend;
use crate::engine::{Engine, EngineError, WindowReport, checkpoint};

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
    /// The data directory checkpoints are kept under, when they are.
    checkpoints: Option<PathBuf>,
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
        // One worker thread, so the lease is renewed while the engine computes a window.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| HistoryError::Query(sqlx::Error::Io(e)))?;
        let history = rt.block_on(History::open(&data_dir.join("history.sqlite")))?;
        Ok(Self {
            exec: Exec::Own(rt),
            history,
            checkpoints: None,
        })
    }

    /// Use an open history on a running (multi-thread) runtime; call from a thread that is
    /// not one of that runtime's workers.
    pub fn shared(history: History, handle: Handle) -> Self {
        Self {
            exec: Exec::Shared(handle),
            history,
            checkpoints: None,
        }
    }

    /// The data directory checkpoints are kept under, when they are.
    pub fn checkpoints(&self) -> Option<&Path> {
        self.checkpoints.as_deref()
    }

    /// Keep a checkpoint of the engine after every committed window under `data_dir`, so the
    /// run can be resumed (`tandem run --resume`).
    pub fn with_checkpoints(mut self, data_dir: &Path) -> Self {
        self.checkpoints = Some(data_dir.to_path_buf());
        self
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

    /// The runtime the history runs on (for tasks beside a run, such as a signal handler).
    pub fn handle(&self) -> Handle {
        match &self.exec {
            Exec::Own(rt) => rt.handle().clone(),
            Exec::Shared(h) => h.clone(),
        }
    }

    /// Renew run `run_id`'s lease until the returned guard is dropped.
    fn hold_lease(&self, run_id: i64) -> Lease {
        let history = self.history.clone();
        Lease(self.handle().spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                // A missed beat is retried at the next tick; the lease outlasts several.
                let _ = history.heartbeat(run_id).await;
            }
        }))
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
        self.drive(engine, run_id, windows, (0, 0.0), on_window)
    }

    /// Continue run `run_id`, whose engine was restored from its checkpoint
    /// ([`crate::engine::checkpoint::restore`]), up to `windows` windows in all; `committed`
    /// is what the history holds already (windows, sum of their mean accuracies).
    pub fn resume<B: Backend>(
        &self,
        engine: &mut Engine<'_, B>,
        run_id: i64,
        windows: u32,
        committed: (u32, f64),
        on_window: &mut dyn FnMut(&Engine<'_, B>, &WindowReport) -> ControlFlow<()>,
    ) -> Result<RunOutcome, RecordError> {
        self.block_on(self.history.reopen_run(run_id))?;
        self.drive(engine, run_id, Some(windows), committed, on_window)
    }

    fn drive<B: Backend>(
        &self,
        engine: &mut Engine<'_, B>,
        run_id: i64,
        windows: Option<u32>,
        (mut done, mut sum): (u32, f64),
        on_window: &mut dyn FnMut(&Engine<'_, B>, &WindowReport) -> ControlFlow<()>,
    ) -> Result<RunOutcome, RecordError> {
        let _lease = self.hold_lease(run_id);
        let planned = windows.unwrap_or(engine.scenario().windows);
        while windows.is_none_or(|n| done < n) {
            let w = match self.next_window(engine, run_id) {
                Ok(w) => w,
                Err(e) => {
                    let error = e.to_string();
                    self.block_on(self.history.finish_run(run_id, RunEnd::Failed(&error)))?;
                    return Err(e);
                }
            };
            done += 1;
            sum += w.mean_accuracy;
            if on_window(engine, &w).is_break() {
                break;
            }
        }
        let mean_accuracy = sum / done.max(1) as f64;
        // Stopped before its planned windows (a signal, a stop button), or a run without an
        // end (the live one) stopped: interrupted, with the mean over what it committed.
        let finished = windows.is_some() && done >= planned;
        let end = if finished {
            RunEnd::Finished(mean_accuracy)
        } else {
            RunEnd::Interrupted(mean_accuracy)
        };
        self.block_on(self.history.finish_run(run_id, end))?;
        if finished && let Some(dir) = &self.checkpoints {
            // A finished run cannot be resumed: its checkpoints are of no more use.
            checkpoint::remove(dir, run_id);
        }
        Ok(RunOutcome {
            run_id,
            windows: done,
            mean_accuracy,
        })
    }

    /// Run one window and commit it (with its checkpoint, when kept): a crash loses at most
    /// the window in progress.
    fn next_window<B: Backend>(
        &self,
        engine: &mut Engine<'_, B>,
        run_id: i64,
    ) -> Result<WindowReport, RecordError> {
        let w = engine.run_window()?;
        let Some(dir) = &self.checkpoints else {
            self.block_on(self.history.record_window(run_id, &w))?;
            return Ok(w);
        };
        let saved = checkpoint::save(&engine.checkpoint_state(), dir, run_id)?;
        let rel = saved.to_string_lossy();
        self.block_on(self.history.commit_window(run_id, &w, Some(&rel)))?;
        checkpoint::prune(dir, run_id, &saved);
        Ok(w)
    }
}

/// Renews a run's lease while it lives (the heartbeat task, aborted on drop).
struct Lease(tokio::task::JoinHandle<()>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.abort();
    }
}
