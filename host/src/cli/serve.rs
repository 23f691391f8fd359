//! `tandem serve` and `tandem demo`: the web dashboard ([`crate::http`]) on 127.0.0.1 unless
//! told otherwise. `demo` also runs the embedded demo scenario live, forever, paced so a
//! person can watch; `serve` does the same for a scenario named in its config file.
//!
//! SIGINT or SIGTERM shuts down within [`SHUTDOWN_GRACE`] and a little: SSE streams end, the
//! server stops taking requests, engine threads stop after the window they are computing and
//! close their runs as interrupted; a run whose window is still computing when the grace
//! period ends is closed as interrupted with the windows it committed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::engine::Scenario;
use crate::http::{self, AppState, runner, security};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// A TOML config file (keys: bind, port, data_dir, admin_token, scenario, pace_seconds,
    /// examples_dir); command-line flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub port: Option<u16>,
    /// Where history, plugins, cached models and the admin token live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1: only this machine can connect).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// A host name the dashboard answers for besides localhost and the bound address
    /// (repeatable; requests naming another host are refused, which stops DNS rebinding).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Wall-clock seconds per window, at least (windows that compute slower are not slowed).
    #[arg(long, default_value_t = 4.0)]
    pub pace: f64,
}

/// The config file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    bind: Option<IpAddr>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    admin_token: Option<String>,
    /// A scenario file to run live, continuously.
    scenario: Option<PathBuf>,
    pace_seconds: Option<f64>,
    /// Scenarios offered on the Compare page (default `examples`, when it exists).
    examples_dir: Option<PathBuf>,
    /// Host names answered besides localhost and the bound address.
    #[serde(default)]
    allowed_hosts: Vec<String>,
}

/// How long engines get, after a shutdown signal, to end the window they are computing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

struct Settings {
    addr: SocketAddr,
    allowed_hosts: Vec<String>,
    data_dir: PathBuf,
    admin_token: Option<String>,
    live: Option<Scenario>,
    pace: Duration,
    examples: Option<PathBuf>,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config: Config = match &args.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("config {}", p.display()))?,
        None => Config::default(),
    };
    let base = args
        .config
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let live = config
        .scenario
        .as_ref()
        .map(|s| Scenario::load(&base.join(s)))
        .transpose()?;
    let mut allowed_hosts = config.allowed_hosts;
    allowed_hosts.extend(args.allow_hosts);
    run(
        Settings {
            addr: SocketAddr::new(
                args.bind.or(config.bind).unwrap_or([127, 0, 0, 1].into()),
                args.port.or(config.port).unwrap_or(8080),
            ),
            allowed_hosts,
            data_dir: args
                .data_dir
                .or(config.data_dir)
                .unwrap_or_else(|| ".tandem".into()),
            admin_token: config.admin_token,
            live,
            pace: Duration::from_secs_f64(config.pace_seconds.unwrap_or(4.0).max(0.0)),
            examples: config.examples_dir.or_else(default_examples),
        },
        false,
    )
}

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let scenario = Scenario::parse(http::DEMO_SCENARIO, Path::new("demo.toml"))?;
    run(
        Settings {
            addr: SocketAddr::new([127, 0, 0, 1].into(), args.port.unwrap_or(8080)),
            allowed_hosts: Vec::new(),
            data_dir: args.data_dir.unwrap_or_else(|| ".tandem".into()),
            admin_token: None,
            live: Some(scenario),
            pace: Duration::from_secs_f64(args.pace.max(0.0)),
            examples: default_examples(),
        },
        true,
    )
}

fn default_examples() -> Option<PathBuf> {
    Some(PathBuf::from("examples")).filter(|p| p.is_dir())
}

fn run(s: Settings, demo: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (token, fresh) = security::admin_token(&s.data_dir, s.admin_token)
            .with_context(|| format!("admin token under {}", s.data_dir.display()))?;
        let mut state = AppState::open(
            &s.data_dir,
            token.clone(),
            http::scenario_choices(s.examples.as_deref()),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind(s.addr)
            .await
            .with_context(|| format!("listening on {}", s.addr))?;
        let addr = listener.local_addr()?;
        state.hosts = Arc::new(security::Hosts::new(addr.ip(), &s.allowed_hosts));
        if let Some(scenario) = s.live {
            eprintln!(
                "live: scenario {} under {}, one window per {:.1} s at most",
                scenario.name,
                crate::engine::policy_label(&scenario.policy),
                s.pace.as_secs_f64()
            );
            runner::spawn_live(&state, scenario, s.pace);
        }
        println!("tandem dashboard: http://{addr}/");
        // The token is printed when it is created (and by the demo, which is for one person
        // on their own machine); afterwards it stays in its file.
        if fresh || demo {
            println!("admin token: {token}");
        } else {
            println!(
                "admin token: in {}",
                s.data_dir.join("admin-token").display()
            );
        }
        if !addr.ip().is_loopback() {
            eprintln!("note: listening on {addr}, reachable from other machines");
        }
        let shutdown = state.shutdown.clone();
        tokio::spawn(async move {
            super::stop_signal().await;
            eprintln!("shutting down: SSE streams end, engines stop after their window");
            shutdown.trigger();
        });
        let shutdown = state.shutdown.clone();
        axum::serve(listener, http::app(state.clone()))
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await?;
        // Engines end the window in progress if it ends soon; any run still open after that
        // is closed as interrupted with the windows it committed.
        if !state.shutdown.engines_stopped(SHUTDOWN_GRACE).await {
            let n = state.history.interrupt_own_runs().await?;
            eprintln!("closed {n} run(s) as interrupted mid-window");
        }
        anyhow::Ok(())
    })?;
    // Engine threads still computing are not waited for: what they committed is whole.
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
