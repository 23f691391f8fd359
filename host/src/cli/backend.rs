//! Running a job on the backend the user chose: the model code is generic over
//! [`Backend`], and this is the one place that picks the concrete type.

use crate::compute::{Backend, cpu::CpuBackend};
use crate::gpu::{self, GpuError, WgpuBackend};

pub use crate::compute::BackendChoice;

/// A job generic over the backend.
pub trait WithBackend {
    type Output;
    fn run<B: Backend>(self, backend: &B) -> anyhow::Result<Self::Output>;
}

/// Run `job` on the chosen backend. `auto` takes a real GPU adapter when one exists and the
/// CPU backend otherwise (software adapters are ~50x slower than native code); the reason
/// for the choice is printed to stderr.
pub fn with_backend<J: WithBackend>(choice: BackendChoice, job: J) -> anyhow::Result<J::Output> {
    match choice {
        BackendChoice::Cpu => job.run(&CpuBackend::default()),
        BackendChoice::Wgpu => job.run(&WgpuBackend::new(true)?),
        BackendChoice::Auto => match WgpuBackend::new(false) {
            Ok(be) => {
                eprintln!("backend: wgpu on a GPU adapter ({})", be.describe());
                job.run(&be)
            }
            Err(e) => {
                eprintln!("backend: cpu ({})", short_reason(&e));
                job.run(&CpuBackend::default())
            }
        },
    }
}

fn short_reason(e: &GpuError) -> String {
    match e {
        GpuError::SoftwareOnly { name } => format!("only a software GPU adapter exists: {name}"),
        other => other.to_string(),
    }
}

/// On the wgpu adapter (software ones allowed): its description, its GEMM GFLOP/s at `size`
/// with the variant it would use, and `model`'s report on it.
pub fn wgpu_report<T>(
    size: usize,
    reps: usize,
    model: impl FnOnce(&WgpuBackend) -> anyhow::Result<T>,
) -> anyhow::Result<(String, f64, T)> {
    let be = WgpuBackend::new(true)?;
    let gflops = gpu::gemm_gflops(&be, be.gemm_variant(), size, reps)?;
    let report = model(&be)?;
    Ok((be.describe(), gflops, report))
}
