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

/// A state the pages read, and its change notifications: every update bumps the state's
/// version and wakes the SSE handlers subscribed to it.
pub struct Watched<T> {
    state: Mutex<T>,
    tx: broadcast::Sender<u64>,
}

/// A state with a version that every change bumps.
pub trait Versioned {
    fn version_mut(&mut self) -> &mut u64;
}

impl<T: Default + Clone + Versioned> Default for Watched<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Clone + Versioned> Watched<T> {
    pub fn new(state: T) -> Self {
        Self {
            state: Mutex::new(state),
            tx: broadcast::channel(16).0,
        }
    }

    pub fn snapshot(&self) -> T {
        lock(&self.state).clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Change the state and tell every subscriber.
    pub fn update(&self, f: impl FnOnce(&mut T)) {
        let version = {
            let mut s = lock(&self.state);
            f(&mut s);
            let v = s.version_mut();
            *v += 1;
            *v
        };
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(version);
    }
}

/// The live run's state and its change notifications.
pub type LiveHub = Watched<LiveState>;

impl Versioned for LiveState {
    fn version_mut(&mut self) -> &mut u64 {
        &mut self.version
    }
}

/// Run `scenario` live forever on its own thread: windows roll on past the scenario's last
/// one (the scene stays at the last drift point), each recorded, at most one per `pace`.
pub fn spawn_live(state: &AppState, scenario: Scenario, pace: Duration) {
    let policy = policy_label(&scenario.policy);
    state.live.update(|s| {
        s.scenario = Some(scenario.clone());
        s.policy = policy.clone();
        s.status = "starting".into();
        s.pace = pace;
    });
    let (app, handle) = (state.clone(), Handle::current());
    let spawned = std::thread::Builder::new()
        .name("live-engine".into())
        .spawn(move || {
            let _running = app.shutdown.engine();
            if let Err(e) = run_live(&app, &scenario, &policy, pace, handle) {
                eprintln!("live engine stopped: {e}");
                app.live.update(|s| {
                    s.status = format!("stopped: {e}");
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

/// The live engine thread's work, until its run fails.
fn run_live(
    app: &AppState,
    scenario: &Scenario,
    policy: &str,
    pace: Duration,
    handle: Handle,
) -> Result<(), AppError> {
    let live = &app.live;
    let be = CpuBackend::new(1);
    let session = Session::new(
        &be,
        scenario,
        &app.data_dir,
        app.catalog.clone(),
        &mut |d, t| {
            live.update(|s| s.status = format!("pretraining the starting model: {d}/{t} samples"));
        },
    )?;
    let mut engine = session.engine(&be, scenario, &scenario.policy)?;
    let recorder = Recorder::shared(app.history.clone(), handle);
    let meta = RunMeta {
        policy,
        backend: &be.describe(),
        comparison: None,
    };
    live.update(|s| {
        s.status = "running".into();
        s.window_started = Some(Instant::now());
    });
    let mut started = Instant::now();
    let mut fallbacks = Fallbacks::default();
    recorder.run(&mut engine, &meta, None, &mut |engine, w| {
        let compute = started.elapsed();
        app.metrics.observe("live", policy, w);
        for c in &w.policy_calls {
            fallbacks.add(c.error.as_deref());
        }
        // The live run keeps its zoo in the data dir window by window, where the Zoo page
        // and the next run find it; a failed save costs this window's models, not the run.
        if let Some(zoo) = engine.zoo()
            && let Err(e) = zoo.save(&session.zoo_dir)
        {
            eprintln!("live engine: saving the zoo: {e}");
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
        // Pace without busy work: sleep only what is left of this window's tick (woken by a
        // shutdown, which ends the run after this window).
        app.shutdown.sleep(pace.saturating_sub(compute));
        if app.shutdown.is_set() {
            return ControlFlow::Break(());
        }
        started = Instant::now();
        live.update(|s| s.window_started = Some(started));
        ControlFlow::Continue(())
    })?;
    Ok(())
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
    state: Watched<CompareState>,
    cancel: AtomicBool,
}

impl Versioned for CompareState {
    fn version_mut(&mut self) -> &mut u64 {
        &mut self.version
    }
}

impl Comparison {
    pub fn snapshot(&self) -> CompareState {
        self.state.snapshot()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.state.subscribe()
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
            .filter(|c| !lock(&c.state.state).done)
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
    check_policies(state, &policies)?;
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
    let lanes = labels
        .into_iter()
        .map(|policy| Lane {
            policy,
            status: "waiting".into(),
            windows: Vec::new(),
            run_id: None,
        })
        .collect();
    let cmp = Arc::new(Comparison {
        id,
        key: choice.key.clone(),
        scenario,
        state: Watched::new(CompareState {
            lanes,
            status: "starting".into(),
            ..CompareState::default()
        }),
        cancel: AtomicBool::new(false),
    });
    lock(&state.arenas.map).insert(id, cmp.clone());
    let (app, c, handle) = (state.clone(), cmp.clone(), Handle::current());
    std::thread::Builder::new()
        .name(format!("compare-{id}"))
        .spawn(move || run_comparison(&app, &c, &policies, &handle))
        .map_err(|e| AppError::Internal(format!("could not start a comparison thread: {e}")))?;
    Ok(cmp)
}

/// One to six enabled policy plugins from the registry, each given only parameters it
/// declares (checked before anything runs).
fn check_policies(state: &AppState, policies: &[PluginRef]) -> Result<(), AppError> {
    if policies.is_empty() {
        return Err(AppError::BadRequest("pick at least one policy".into()));
    }
    if policies.len() > 6 {
        return Err(AppError::BadRequest("at most 6 policies at once".into()));
    }
    for p in policies {
        let entry =
            state.catalog.registry.find(&p.name)?.ok_or_else(|| {
                AppError::BadRequest(format!("no enabled plugin named `{}`", p.name))
            })?;
        if entry.description.kind != PluginKind::Policy {
            return Err(AppError::BadRequest(format!(
                "`{}` is a {} plugin, not a policy",
                p.name,
                entry.description.kind.world()
            )));
        }
        let (plugin_ref, _) = host_options(p).map_err(|e| AppError::BadRequest(e.to_string()))?;
        let params = params_from_toml(&plugin_ref.params)
            .map_err(|e| AppError::BadRequest(format!("policy `{}`: {e}", p.name)))?;
        validate::params(&entry.description, &params).map_err(AppError::BadRequest)?;
    }
    Ok(())
}

/// The comparison thread's work: the session once, then every lane on its own thread.
fn run_comparison(app: &AppState, c: &Comparison, policies: &[PluginRef], handle: &Handle) {
    let _running = app.shutdown.engine();
    let be = CpuBackend::new(1);
    let session = Session::new(
        &be,
        &c.scenario,
        &app.data_dir,
        app.catalog.clone(),
        &mut |d, t| {
            c.state
                .update(|s| s.status = format!("pretraining the starting model: {d}/{t} samples"));
        },
    );
    match session {
        Ok(session) => {
            c.state.update(|s| s.status = "running".into());
            // Every arena shares the session (sources, pretrained model, plugin host)
            // read-only and owns its backend, engine and models: identical streams, separate
            // state.
            std::thread::scope(|scope| {
                for (lane, policy) in policies.iter().enumerate() {
                    let session = &session;
                    scope.spawn(move || {
                        c.state.update(|s| s.lanes[lane].status = "running".into());
                        if let Err(e) = run_lane(app, c, session, lane, policy, handle.clone()) {
                            c.state
                                .update(|s| s.lanes[lane].status = format!("failed: {e}"));
                        }
                    });
                }
            });
            c.state.update(|s| {
                s.done = true;
                s.status = "done".into();
            });
        }
        Err(e) => c.state.update(|s| {
            s.status = format!("failed: {e}");
            s.done = true;
        }),
    }
}

/// One policy's arena: its own backend and engine, every window recorded and shown.
fn run_lane(
    app: &AppState,
    c: &Comparison,
    session: &Session<CpuBackend>,
    lane: usize,
    policy: &PluginRef,
    handle: Handle,
) -> Result<(), AppError> {
    let be = CpuBackend::new(1);
    let label = policy_label(policy);
    let mut engine = session.engine(&be, &c.scenario, policy)?;
    let recorder = Recorder::shared(app.history.clone(), handle);
    let meta = RunMeta {
        policy: &label,
        backend: &be.describe(),
        comparison: Some(c.id),
    };
    let planned = c.scenario.windows;
    // Compared runs keep no zoo: each works on its own copy, so none sees another's.
    let outcome = recorder.run(&mut engine, &meta, Some(planned), &mut |_, w| {
        app.metrics
            .observe(&format!("comparison-{}", c.id), &label, w);
        c.state.update(|s| s.lanes[lane].windows.push(w.clone()));
        if c.cancel.load(Ordering::Relaxed) || app.shutdown.is_set() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    c.state.update(|s| {
        let l = &mut s.lanes[lane];
        l.run_id = Some(outcome.run_id);
        let end = if outcome.windows < planned {
            "stopped"
        } else {
            "finished"
        };
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
}
