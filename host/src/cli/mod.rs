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
    /// The web dashboard (127.0.0.1 by default): live streams, comparisons, history, plugins.
    Serve(serve::ServeArgs),
    /// The dashboard with the embedded demo scenario running live, continuously.
    Demo(serve::DemoArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Run(args) => run::run(args),
        Command::Compare(args) => run::compare(args),
        Command::Replay(args) => replay::run(args),
        Command::Plugin(cmd) => plugin::run(cmd),
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
