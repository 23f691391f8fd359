//! Integration tests, one binary.

/// Plugins: real guests built and run, sandbox limits, output checks, registry.
mod plugins;
