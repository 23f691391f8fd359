//! tandem's integration tests: one binary, one module per area.

/// IDX reader, Fashion-MNIST loader, synthetic source, drift and resizing.
mod data;
/// The CNN: learning, layer freezing, resolution, weights on disk.
mod model;
