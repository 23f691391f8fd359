//! The web dashboard: axum routes over the engine, the history and the plugin registry.
//!
//! [`AppState`] holds the shared handles; [`app`] assembles one router per area, so tests
//! can call it with `oneshot` and no socket. Areas:
//! - [`live`]: the continuously running scenario, pushed by server-sent events.
//! - [`compare`]: several policies, each in its own arena on identical streams.
//! - [`history`]: runs and comparisons from SQLite, drill-down and export.
//! - [`plugins`]: the registry: list, upload (validated), disable, delete.
//! - [`zoo`]: the model zoo the data dir keeps, and its checks and uses window by window.
//! - [`metrics`]: Prometheus text format.
//!
//! Support: [`runner`] (engine threads and their shared state), [`security`] (admin token,
//! sessions, CSRF, security headers, Host allow-list), [`charts`] (server-rendered SVG),
//! [`lifecycle`] (the serverless streams' views for the live, window and run pages),
//! [`error`] (the one [`AppError`]). [`Shutdown`] is the server's stop signal: on SIGINT or
//! SIGTERM every SSE stream ends and the engines stop after their window.

pub mod charts;
pub mod compare;
pub mod error;
pub mod history;
pub mod lifecycle;
pub mod live;
pub mod metrics;
pub mod plugins;
pub mod runner;
pub mod security;
pub mod zoo;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

pub use error::AppError;

use crate::engine::Scenario;
use crate::history::History;
use crate::plugin::Catalog;

/// The demo's scenario, embedded so `tandem demo` needs no file.
pub const DEMO_SCENARIO: &str = include_str!("../../../examples/demo.toml");

/// A scenario the dashboard can run: its name and parsed contents.
#[derive(Clone)]
pub struct ScenarioChoice {
    pub key: String,
    pub scenario: Scenario,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub history: History,
    pub data_dir: PathBuf,
    pub token: Arc<str>,
    /// The one plugin host and registry: the plugins pages, the live run and every
    /// comparison use it (one wasmtime engine and epoch thread for the whole server).
    pub catalog: Catalog,
    pub live: Arc<runner::LiveHub>,
    pub arenas: Arc<runner::Arenas>,
    pub metrics: Arc<metrics::Metrics>,
    pub scenarios: Arc<Vec<ScenarioChoice>>,
    pub sessions: Arc<security::Sessions>,
    /// The Host headers answered (loopback only until the server sets its bound address).
    pub hosts: Arc<security::Hosts>,
    pub shutdown: Arc<Shutdown>,
}

/// The server's stop signal, set once: SSE streams end when it is set, and engine threads
/// (each holding an [`EngineGuard`]) stop after the window they are computing.
pub struct Shutdown {
    signal: tokio::sync::watch::Sender<bool>,
    engines: Arc<AtomicUsize>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            signal: tokio::sync::watch::channel(false).0,
            engines: Arc::default(),
        }
    }
}

/// Held by an engine thread while it runs; counts it as running for [`Shutdown`].
pub struct EngineGuard(Arc<AtomicUsize>);

impl Drop for EngineGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shutdown {
    /// Set the signal.
    pub fn trigger(&self) {
        self.signal.send_replace(true);
    }

    pub fn is_set(&self) -> bool {
        *self.signal.borrow()
    }

    /// Resolves once the signal is set.
    pub async fn wait(&self) {
        let mut rx = self.signal.subscribe();
        let _ = rx.wait_for(|set| *set).await;
    }

    /// Count an engine thread as running until the guard is dropped.
    pub fn engine(&self) -> EngineGuard {
        self.engines.fetch_add(1, Ordering::SeqCst);
        EngineGuard(self.engines.clone())
    }

    /// Engine threads still running.
    pub fn engines(&self) -> usize {
        self.engines.load(Ordering::SeqCst)
    }

    /// Wait until no engine thread runs, or `within` has passed; whether they all ended.
    pub async fn engines_stopped(&self, within: std::time::Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        while self.engines() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        self.engines() == 0
    }

    /// Sleep `d` on an engine thread, waking early when the signal is set.
    pub fn sleep(&self, d: std::time::Duration) {
        let until = std::time::Instant::now() + d;
        while !self.is_set() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(std::time::Duration::from_millis(25)));
        }
    }
}

impl AppState {
    /// Open the history and the registry under `data_dir` (built-ins registered), with
    /// `scenarios` offered on the Compare page.
    pub async fn open(
        data_dir: &Path,
        token: String,
        scenarios: Vec<ScenarioChoice>,
    ) -> Result<Self, AppError> {
        std::fs::create_dir_all(data_dir).map_err(|source| AppError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let history = History::open(&data_dir.join("history.sqlite")).await?;
        Ok(Self {
            history,
            data_dir: data_dir.to_path_buf(),
            token: token.into(),
            catalog: Catalog::open(data_dir)?,
            live: Arc::new(runner::LiveHub::default()),
            arenas: Arc::new(runner::Arenas::default()),
            metrics: Arc::new(metrics::Metrics::default()),
            scenarios: Arc::new(scenarios),
            sessions: Arc::default(),
            hosts: Arc::default(),
            shutdown: Arc::default(),
        })
    }

    pub fn scenario(&self, key: &str) -> Option<&ScenarioChoice> {
        self.scenarios.iter().find(|s| s.key == key)
    }
}

/// The embedded demo scenario plus every `*.toml` in `dir` that parses (others are skipped
/// with a note on stderr).
pub fn scenario_choices(dir: Option<&Path>) -> Vec<ScenarioChoice> {
    let mut out = vec![ScenarioChoice {
        key: "demo".into(),
        scenario: Scenario::parse(DEMO_SCENARIO, Path::new("demo.toml"))
            .expect("the embedded demo scenario parses"),
    }];
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for p in paths {
        let key = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if out.iter().any(|c| c.key == key) {
            continue;
        }
        match Scenario::load(&p) {
            Ok(scenario) => out.push(ScenarioChoice { key, scenario }),
            Err(e) => eprintln!("note: scenario {} skipped: {e}", p.display()),
        }
    }
    out
}

/// What the page header needs: which page, the CSRF value for its forms, whether the
/// browser is signed in, and where to come back to after signing in.
pub struct Nav {
    pub page: &'static str,
    pub csrf: String,
    pub admin: bool,
    pub path: String,
}

/// The request's side of a page header, taken from any page request: the CSRF value the
/// middleware set, whether the browser is signed in, and the page's path. A handler turns it
/// into its [`Nav`] with [`Visitor::nav`].
pub struct Visitor {
    csrf: String,
    admin: bool,
    path: String,
}

impl Visitor {
    fn new(
        state: &AppState,
        headers: &axum::http::HeaderMap,
        csrf: &security::Csrf,
        path: &str,
    ) -> Self {
        Visitor {
            csrf: csrf.0.clone(),
            admin: security::is_admin(state, headers),
            path: security::local_path(path).to_string(),
        }
    }

    pub fn nav(self, page: &'static str) -> Nav {
        Nav {
            page,
            csrf: self.csrf,
            admin: self.admin,
            path: self.path,
        }
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let csrf = parts.extensions.get::<security::Csrf>().ok_or_else(|| {
            AppError::Internal("no CSRF value: the cookie middleware is not on this route".into())
        })?;
        Ok(Visitor::new(state, &parts.headers, csrf, parts.uri.path()))
    }
}

impl Nav {
    pub fn new(
        state: &AppState,
        headers: &axum::http::HeaderMap,
        csrf: &security::Csrf,
        page: &'static str,
        path: &str,
    ) -> Self {
        Visitor::new(state, headers, csrf, path).nav(page)
    }
}

/// A number shown to people: fixed decimals.
pub fn f3(x: f64) -> String {
    format!("{x:.3}")
}

/// A fraction shown as a percentage.
pub fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// The whole dashboard.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/live") }))
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
        .merge(live::router())
        .merge(compare::router())
        .merge(history::router())
        .merge(plugins::router())
        .merge(zoo::router())
        .merge(metrics::router())
        .merge(security::router())
        .layer(axum::middleware::from_fn(security::csrf_cookie))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}

// Static files are embedded: the binary serves the dashboard from anywhere, with no build step.
async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../web/static/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../web/static/app.js"),
    )
}
