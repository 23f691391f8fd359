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
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Kernels { json } => {
            let _ = json;
            anyhow::bail!("bench kernels: in progress")
        }
    }
}
