//! Choosing a backend at start: wgpu where a real GPU adapter exists, the CPU otherwise.

use std::fmt;

/// Which backend runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Wgpu,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
        })
    }
}

/// What the user asked for on the command line (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// wgpu on a real (discrete or integrated) GPU if one exists, else the CPU backend.
    /// A software adapter (lavapipe, llvmpipe) does not count: it is ~50x slower than
    /// native CPU code, so it is only used when asked for by name.
    #[default]
    Auto,
    Cpu,
    Wgpu,
}
