//! `tandem bench ...`: benchmarks that print their figures.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// GEMM and CNN throughput on each backend.
    Kernels {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Plugin host: instantiation, call overhead, thief decision time (WebAssembly vs native).
    Plugins {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Kernels { json } => {
            let _ = json;
            anyhow::bail!("bench kernels: in progress")
        }
        BenchCommand::Plugins { json } => super::plugin_bench::run(json),
    }
}
