//! The `tandem` command line: one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backend;
mod bench;
mod coldstart_bench;
mod plugin;
mod plugin_bench;
mod replay;
mod run;
mod scaffold;
mod serve;
mod train;
mod zoo;
mod zoo_bench;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Continuous learning of video-analytics models on edge GPUs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the CNN on Fashion-MNIST, then show how drift hurts and retraining heals.
    Train(train::TrainArgs),
    /// Benchmarks that print their figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a scenario's windows under one policy.
    Run(run::RunArgs),
    /// Run a scenario under several policies on identical streams, side by side.
    Compare(run::CompareArgs),
    /// Run policies on recorded job profiles without training (Ekya's simulator mode).
    Replay(replay::ReplayArgs),
    /// WebAssembly plugins: validate, list, scaffold.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The model zoo a data dir keeps: list, show, prune.
    #[command(subcommand)]
    Zoo(zoo::ZooCommand),
    /// The web dashboard (127.0.0.1 by default): live streams, comparisons, history, plugins.
    Serve(serve::ServeArgs),
    /// The dashboard with the embedded demo scenario running live, continuously.
    Demo(serve::DemoArgs),
}

pub fn main() -> ExitCode {
    private_runtime_dir();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Run(args) => run::run(args),
        Command::Compare(args) => run::compare(args),
        Command::Replay(args) => replay::run(args),
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Zoo(cmd) => zoo::run(cmd),
        Command::Serve(args) => serve::serve(args),
        Command::Demo(args) => serve::demo(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Give the graphics stack a private runtime directory when the environment has none: without
/// one, enumerating GPU adapters prints `error: XDG_RUNTIME_DIR is invalid or not set` (twice),
/// which reads as a failure although nothing failed. Called first thing in `main`, before any
/// thread exists.
fn private_runtime_dir() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let usable = |p: &std::path::Path, uid: u32| {
            std::fs::metadata(p)
                .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0)
        };
        let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
            return;
        };
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| usable(d.as_ref(), uid)) {
            return;
        }
        let dir = std::env::temp_dir().join(format!("tandem-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        if usable(&dir, uid) {
            // SAFETY: no other thread exists yet (this runs first in `main`), so nothing can
            // read the environment concurrently.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
