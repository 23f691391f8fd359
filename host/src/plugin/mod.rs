//! Plugins: sandboxed WebAssembly components that make tandem's decisions.
//!
//! - [`bindings`]: the only `bindgen!` calls (every world of `tandem:plugin@0.2.0` in `wit/`,
//!   and of the frozen 0.1.0 in `wit/0.1.0/`), with conversions to the domain types of [`types`].
//! - [`runtime`]: [`PluginHost`] (engine with pooling allocator and epoch ticker, linker, limits),
//!   [`Plugin`] (one compiled component, its description and sha256 digest, its cached
//!   `InstancePre`, its [`Limits`]) and [`PluginState`] (one store's WASI context, table and
//!   limits). Every call gets a fresh store, an epoch deadline and a memory cap; a component
//!   carrying an interpreter (a Python plugin) gets larger ones than a compiled plugin.
//! - [`validate`]: checks on every output before the engine may use it.
//! - [`registry`]: the content-addressed plugin store on disk, the built-in plugins, and the
//!   [`Catalog`] (one host and its registry) that a process shares across its runs.
//! - [`check`]: the sample run a plugin must pass before it is stored (CLI and dashboard).
//!
//! Every failure (a guest error, a trap, a timeout, the memory cap, a failed check) is a
//! [`PluginError`] naming the plugin and its version; callers fall back (the engine uses the
//! `fair` policy for that window and records why).

pub mod bindings;
pub mod check;
pub mod registry;
pub mod runtime;
pub mod types;
pub mod validate;

pub use registry::{BuiltIn, Catalog, Registry, RegistryEntry};
pub use runtime::{Limits, Plugin, PluginHost, PluginState};

use std::time::Duration;

/// Everything that can go wrong loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file is larger than any plugin the host accepts (refused before reading it).
    #[error("{source_name}: {bytes} bytes, more than the {limit} a plugin may have")]
    TooLarge {
        source_name: String,
        bytes: u64,
        limit: u64,
    },
    /// The bytes are not WebAssembly at all.
    #[error("{source_name}: not a WebAssembly file")]
    NotWasm { source_name: String },
    /// WebAssembly, but a core module or an invalid component.
    #[error("{source_name}: not a valid WebAssembly component: {reason}")]
    NotComponent { source_name: String, reason: String },
    /// A component that implements none of the worlds this host accepts.
    #[error(
        "{source_name}: implements no world of tandem:plugin@{} (policy, config-space, estimator, selector, lifecycle) or 0.1.0: {reason}",
        bindings::WIT_VERSIONS[0]
    )]
    UnknownWorld { source_name: String, reason: String },
    /// A plugin of one kind used where another kind is needed.
    #[error("plugin {plugin} {version}: is a {found:?} plugin, a {expected:?} plugin is needed")]
    WrongWorld {
        plugin: String,
        version: String,
        expected: types::PluginKind,
        found: types::PluginKind,
    },
    /// A plugin that is not built in calls itself by a built-in's name.
    #[error(
        "{source_name}: calls itself `{name}`, the name of a built-in plugin (names of built-ins are reserved: rename it in its describe)"
    )]
    ReservedName { source_name: String, name: String },
    /// The plugin's self-description is unusable.
    #[error("{source_name}: bad self-description: {reason}")]
    BadDescription { source_name: String, reason: String },
    /// The plugin returned its own error.
    #[error("plugin {plugin} {version}: returned an error: {error}")]
    Guest {
        plugin: String,
        version: String,
        error: types::GuestError,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("plugin {plugin} {version}: interrupted after its {deadline:?} deadline")]
    Timeout {
        plugin: String,
        version: String,
        deadline: Duration,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("plugin {plugin} {version}: exceeded its memory cap of {limit_bytes} bytes")]
    MemoryLimit {
        plugin: String,
        version: String,
        limit_bytes: usize,
    },
    /// The guest trapped (a panic, an out-of-bounds access, ...).
    #[error("plugin {plugin} {version}: trapped: {reason}")]
    Trap {
        plugin: String,
        version: String,
        reason: String,
    },
    /// The output failed a check.
    #[error("plugin {plugin} {version}: invalid output: {reason}")]
    InvalidOutput {
        plugin: String,
        version: String,
        reason: String,
    },
    /// No enabled plugin is registered under the name.
    #[error(
        "no plugin named `{name}` (see `tandem plugin list`; the built-ins are built by scripts/setup.sh)"
    )]
    NotRegistered { name: String },
    /// The host itself failed (engine setup, registry I/O).
    #[error("plugin host: {0}")]
    Host(String),
}

impl PluginError {
    /// A short machine-readable reason, for the engine's record of why it fell back.
    pub fn reason_code(&self) -> &'static str {
        match self {
            PluginError::TooLarge { .. } => "too-large",
            PluginError::NotWasm { .. } => "not-wasm",
            PluginError::NotComponent { .. } => "not-component",
            PluginError::UnknownWorld { .. } => "unknown-world",
            PluginError::WrongWorld { .. } => "wrong-world",
            PluginError::ReservedName { .. } => "reserved-name",
            PluginError::BadDescription { .. } => "bad-description",
            PluginError::Guest { .. } => "guest-error",
            PluginError::Timeout { .. } => "timeout",
            PluginError::MemoryLimit { .. } => "memory-limit",
            PluginError::Trap { .. } => "trap",
            PluginError::InvalidOutput { .. } => "invalid-output",
            PluginError::NotRegistered { .. } => "not-registered",
            PluginError::Host(_) => "host",
        }
    }
}
