//! Running a job on the backend the user chose: the model code is generic over
//! [`Backend`], and this is the one place that picks the concrete type.

use crate::compute::{Backend, cpu::CpuBackend};

pub use crate::compute::BackendChoice;

/// A job generic over the backend.
pub trait WithBackend {
    type Output;
    fn run<B: Backend>(self, backend: &B) -> anyhow::Result<Self::Output>;
}

/// Run `job` on the chosen backend.
pub fn with_backend<J: WithBackend>(choice: BackendChoice, job: J) -> anyhow::Result<J::Output> {
    match choice {
        BackendChoice::Auto | BackendChoice::Cpu => job.run(&CpuBackend::default()),
        BackendChoice::Wgpu => anyhow::bail!("the wgpu backend is not built into this binary yet"),
    }
}

/// The wgpu adapter's name, its GEMM GFLOP/s at `size`, and `model`'s report on it.
pub fn wgpu_report(
    _size: usize,
    _reps: usize,
    _model: impl FnOnce(&CpuBackend) -> anyhow::Result<serde_json::Value>,
) -> anyhow::Result<(String, f64, serde_json::Value)> {
    anyhow::bail!("the wgpu backend is not built into this binary yet")
}
