//! Engine threads and the state the pages read.
//!
//! Engines are synchronous and CPU-heavy, so each runs on a dedicated OS thread with its own
//! single-threaded [`CpuBackend`] (several run side by side without fighting over one pool).
//! After every window the thread records it (through [`Recorder`] on the server's runtime),
//! updates the shared state and bumps a [`broadcast`] channel; the SSE handlers wake up and
//! send the new state, so no page ever polls.
//!
//! - [`LiveHub`]: the one continuously running scenario (`tandem demo`, or `serve` with a
//!   scenario), paced so windows roll on at a pace a person can watch.
//! - [`Arenas`]: comparisons, each policy in its own arena on identical streams.

use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::broadcast;

use super::{AppError, AppState, ScenarioChoice};
use crate::compute::Backend;
use crate::compute::cpu::CpuBackend;
use crate::engine::report::Fallbacks;
use crate::engine::scenario::PluginRef;
use crate::engine::{
    Scenario, Session, WindowReport, host_options, params_from_toml, policy_label,
};
use crate::history::{Recorder, RunMeta};
use crate::plugin::types::PluginKind;
use crate::plugin::validate;

/// Windows the live page keeps for its charts.
pub const LIVE_KEEP: usize = 30;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicked engine thread must not take the dashboard down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the live page shows.
#[derive(Clone, Default)]
pub struct LiveState {
    /// None while nothing runs live.
    pub scenario: Option<Scenario>,
    pub policy: String,
    /// `starting`, `pretraining ...`, `running`, or the error that stopped it.
    pub status: String,
    /// The last windows, oldest first.
    pub windows: VecDeque<WindowReport>,
    /// When the window now computing started.
    pub window_started: Option<Instant>,
    /// The pace: at most one window per this much wall time.
    pub pace: Duration,
    /// How long the last window took to compute.
    pub last_compute: Option<Duration>,
    /// Bumped on every change.
    pub version: u64,
}

impl LiveState {
    /// Fraction of the window now computing, estimated from the pace and the last window.
    pub fn progress(&self) -> f64 {
        let Some(start) = self.window_started else {
            return 0.0;
        };
        let expected = self.last_compute.unwrap_or(self.pace).max(self.pace);
        (start.elapsed().as_secs_f64() / expected.as_secs_f64().max(1e-3)).min(0.99)
    }

    /// The number of the window now computing.
    pub fn current_window(&self) -> u32 {
        self.windows.back().map_or(0, |w| w.window + 1)
    }
}

/// The live run's state and its change notifications.
pub struct LiveHub {
    state: Mutex<LiveState>,
    tx: broadcast::Sender<u64>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            tx: broadcast::channel(16).0,
        }
    }
}

impl LiveHub {
    pub fn snapshot(&self) -> LiveState {
        lock(&self.state).clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Change the state and tell every subscriber.
    pub fn update(&self, f: impl FnOnce(&mut LiveState)) {
        let version = {
            let mut s = lock(&self.state);
            f(&mut s);
            s.version += 1;
            s.version
        };
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(version);
    }
}

/// Run `scenario` live forever on its own thread: windows roll on past the scenario's last
/// one (the scene stays at the last drift point), each recorded, at most one per `pace`.
pub fn spawn_live(state: &AppState, scenario: Scenario, pace: Duration) {
    let (live, history, metrics) = (
        state.live.clone(),
        state.history.clone(),
        state.metrics.clone(),
    );
    let data_dir = state.data_dir.clone();
    let handle = Handle::current();
    let shutdown = state.shutdown.clone();
    let policy = policy_label(&scenario.policy);
    live.update(|s| {
        s.scenario = Some(scenario.clone());
        s.policy = policy.clone();
        s.status = "starting".into();
        s.pace = pace;
    });
    let spawned = std::thread::Builder::new()
        .name("live-engine".into())
        .spawn(move || {
            let _running = shutdown.engine();
            let be = CpuBackend::new(1);
            let result = (|| -> anyhow::Result<()> {
                let session = Session::new(&be, &scenario, &data_dir, &mut |d, t| {
                    live.update(|s| {
                        s.status = format!("pretraining the starting model: {d}/{t} samples")
                    });
                })?;
                let mut engine = session.engine(&be, &scenario, &scenario.policy)?;
                let recorder = Recorder::shared(history, handle);
                let meta = RunMeta {
                    policy: &policy,
                    backend: &be.describe(),
                    comparison: None,
                };
                live.update(|s| {
                    s.status = "running".into();
                    s.window_started = Some(Instant::now());
                });
                let mut started = Instant::now();
                let mut fallbacks = Fallbacks::default();
                recorder.run(&mut engine, &meta, None, &mut |w| {
                    let compute = started.elapsed();
                    metrics.observe("live", &policy, w);
                    for c in &w.policy_calls {
                        fallbacks.add(c.error.as_deref());
                    }
                    live.update(|s| {
                        s.windows.push_back(w.clone());
                        while s.windows.len() > LIVE_KEEP {
                            s.windows.pop_front();
                        }
                        s.last_compute = Some(compute);
                        // A policy that fails is never shown as plainly running.
                        s.status = if fallbacks.failed == 0 {
                            "running".into()
                        } else {
                            format!("running; {}", fallbacks.describe())
                        };
                    });
                    // Pace without busy work: sleep only what is left of this window's tick
                    // (woken by a shutdown, which ends the run after this window).
                    shutdown.sleep(pace.saturating_sub(compute));
                    if shutdown.is_set() {
                        return ControlFlow::Break(());
                    }
                    started = Instant::now();
                    live.update(|s| s.window_started = Some(started));
                    ControlFlow::Continue(())
                })?;
                Ok(())
            })();
            if let Err(e) = result {
                eprintln!("live engine stopped: {e:#}");
                live.update(|s| {
                    s.status = format!("stopped: {e:#}");
                    s.window_started = None;
                });
            }
        });
    if let Err(e) = spawned {
        state
            .live
            .update(|s| s.status = format!("could not start the engine thread: {e}"));
    }
}

/// One policy's lane in a comparison.
#[derive(Clone, Debug)]
pub struct Lane {
    pub policy: String,
    /// `waiting`, `running`, `finished`, `stopped` or the error.
    pub status: String,
    pub windows: Vec<WindowReport>,
    pub run_id: Option<i64>,
}

/// A comparison's state.
#[derive(Clone, Debug, Default)]
pub struct CompareState {
    pub lanes: Vec<Lane>,
    /// Setup status (pretraining) until the lanes start.
    pub status: String,
    pub done: bool,
    pub version: u64,
}

/// One running (or finished) comparison.
pub struct Comparison {
    /// Its id in the history.
    pub id: i64,
    pub key: String,
    pub scenario: Scenario,
    state: Mutex<CompareState>,
    tx: broadcast::Sender<u64>,
    cancel: AtomicBool,
}

impl Comparison {
    pub fn snapshot(&self) -> CompareState {
        lock(&self.state).clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.tx.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut CompareState)) {
        let version = {
            let mut s = lock(&self.state);
            f(&mut s);
            s.version += 1;
            s.version
        };
        let _ = self.tx.send(version);
    }

    /// Ask every lane to stop after its current window.
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The comparisons started since the server started, by history id.
#[derive(Default)]
pub struct Arenas {
    map: Mutex<BTreeMap<i64, Arc<Comparison>>>,
}

impl Arenas {
    pub fn get(&self, id: i64) -> Option<Arc<Comparison>> {
        lock(&self.map).get(&id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Comparison>> {
        lock(&self.map).values().rev().cloned().collect()
    }

    fn running(&self) -> usize {
        lock(&self.map)
            .values()
            .filter(|c| !lock(&c.state).done)
            .count()
    }
}

/// At most this many comparisons compute at once (each takes a core per policy).
pub const MAX_RUNNING: usize = 2;
/// The most windows a comparison started from the dashboard may run.
pub const MAX_WINDOWS: u32 = 50;

/// Check `policies` against the registry (enabled policy plugins only; no file paths from the
/// web), record the comparison and start it: a setup thread pretrains (or loads) the starting
/// model once, then each policy runs in its own arena on its own thread.
pub async fn start_comparison(
    state: &AppState,
    choice: &ScenarioChoice,
    policies: Vec<PluginRef>,
    windows: Option<u32>,
) -> Result<Arc<Comparison>, AppError> {
    if policies.is_empty() {
        return Err(AppError::BadRequest("pick at least one policy".into()));
    }
    if policies.len() > 6 {
        return Err(AppError::BadRequest("at most 6 policies at once".into()));
    }
    for p in &policies {
        let entry = state
            .registry
            .find(&p.name)?
            .ok_or_else(|| AppError::BadRequest(format!("no enabled plugin named `{}`", p.name)))?;
        if entry.description.kind != PluginKind::Policy {
            return Err(AppError::BadRequest(format!(
                "`{}` is a {} plugin, not a policy",
                p.name,
                entry.description.kind.world()
            )));
        }
        // Parameters are checked before anything runs, against what the plugin declares.
        let (plugin_ref, _) = host_options(p).map_err(|e| AppError::BadRequest(e.to_string()))?;
        let params = params_from_toml(&plugin_ref.params)
            .map_err(|e| AppError::BadRequest(format!("policy `{}`: {e}", p.name)))?;
        validate::params(&entry.description, &params).map_err(AppError::BadRequest)?;
    }
    if state.arenas.running() >= MAX_RUNNING {
        return Err(AppError::BadRequest(format!(
            "{MAX_RUNNING} comparisons are already running: wait for one or stop it"
        )));
    }
    let mut scenario = choice.scenario.clone();
    if let Some(w) = windows {
        if !(1..=MAX_WINDOWS).contains(&w) {
            return Err(AppError::BadRequest(format!(
                "windows: {w} is not from 1 to {MAX_WINDOWS}"
            )));
        }
        scenario.windows = w;
    }
    let labels: Vec<String> = policies.iter().map(policy_label).collect();
    let id = state
        .history
        .start_comparison(&scenario.name, &labels)
        .await?;
    let cmp = Arc::new(Comparison {
        id,
        key: choice.key.clone(),
        scenario: scenario.clone(),
        state: Mutex::new(CompareState {
            lanes: labels
                .iter()
                .map(|l| Lane {
                    policy: l.clone(),
                    status: "waiting".into(),
                    windows: Vec::new(),
                    run_id: None,
                })
                .collect(),
            status: "starting".into(),
            done: false,
            version: 0,
        }),
        tx: broadcast::channel(16).0,
        cancel: AtomicBool::new(false),
    });
    lock(&state.arenas.map).insert(id, cmp.clone());
    let (history, metrics, data_dir) = (
        state.history.clone(),
        state.metrics.clone(),
        state.data_dir.clone(),
    );
    let handle = Handle::current();
    let c = cmp.clone();
    let shutdown = state.shutdown.clone();
    std::thread::Builder::new()
        .name(format!("compare-{id}"))
        .spawn(move || {
            let _running = shutdown.engine();
            let be = CpuBackend::new(1);
            let session = Session::new(&be, &scenario, &data_dir, &mut |d, t| {
                c.update(|s| s.status = format!("pretraining the starting model: {d}/{t} samples"));
            });
            let session = match session {
                Ok(s) => s,
                Err(e) => {
                    c.update(|s| {
                        s.status = format!("failed: {e}");
                        s.done = true;
                    });
                    return;
                }
            };
            c.update(|s| s.status = "running".into());
            // Every arena shares the session (sources, pretrained model, plugins) read-only
            // and owns its backend, engine and models: identical streams, separate state.
            std::thread::scope(|scope| {
                for (lane, policy) in policies.iter().enumerate() {
                    let (c, session, scenario, history, metrics, handle, shutdown) = (
                        &c,
                        &session,
                        &scenario,
                        history.clone(),
                        &metrics,
                        handle.clone(),
                        &shutdown,
                    );
                    scope.spawn(move || {
                        let be = CpuBackend::new(1);
                        let label = policy_label(policy);
                        c.update(|s| s.lanes[lane].status = "running".into());
                        let result = (|| -> anyhow::Result<()> {
                            let mut engine = session.engine(&be, scenario, policy)?;
                            let recorder = Recorder::shared(history, handle);
                            let meta = RunMeta {
                                policy: &label,
                                backend: &be.describe(),
                                comparison: Some(id),
                            };
                            let outcome = recorder.run(
                                &mut engine,
                                &meta,
                                Some(scenario.windows),
                                &mut |w| {
                                    metrics.observe(&format!("comparison-{id}"), &label, w);
                                    c.update(|s| s.lanes[lane].windows.push(w.clone()));
                                    if c.cancel.load(Ordering::Relaxed) || shutdown.is_set() {
                                        ControlFlow::Break(())
                                    } else {
                                        ControlFlow::Continue(())
                                    }
                                },
                            )?;
                            let stopped = outcome.windows < scenario.windows;
                            c.update(|s| {
                                let l = &mut s.lanes[lane];
                                l.run_id = Some(outcome.run_id);
                                let end = if stopped { "stopped" } else { "finished" };
                                // A policy that failed is never shown as a clean finish.
                                let fallbacks = Fallbacks::count(
                                    l.windows
                                        .iter()
                                        .flat_map(|w| &w.policy_calls)
                                        .map(|c| c.error.as_deref()),
                                );
                                l.status = if fallbacks.failed == 0 {
                                    end.into()
                                } else {
                                    format!("{end}; {}", fallbacks.describe())
                                };
                            });
                            Ok(())
                        })();
                        if let Err(e) = result {
                            c.update(|s| s.lanes[lane].status = format!("failed: {e:#}"));
                        }
                    });
                }
            });
            c.update(|s| {
                s.done = true;
                s.status = "done".into();
            });
        })
        .map_err(|e| AppError::Internal(format!("could not start a comparison thread: {e}")))?;
    Ok(cmp)
}
