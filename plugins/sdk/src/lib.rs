//! tandem's plugin SDK: what every plugin needs, computed the same way everywhere.
//!
//! - [`types`]: the plain domain types mirroring `wit/types.wit` (the host re-exports them,
//!   with serde, as its scheduling types);
//! - [`params`]: reading call parameters against declared defaults;
//! - [`estimate`]: the window-averaged accuracy estimate and PickConfigs;
//! - [`policy`]: the reference policies (thief, fair, fixed-res, fixed-config, no-retrain, oracle);
//! - [`space`]: configuration spaces (Ekya's grid); [`optimus`]: the curve-fit estimator;
//! - [`zoo`]: zoo selectors (nearest signature, check everything); [`lifecycle`]: when idle
//!   streams scale to zero and are pre-warmed (fixed keep-alive, always warm, scale to zero, the
//!   hybrid histogram);
//! - [`sample`]: deterministic Ekya-shaped inputs for tests, validation and benchmarks;
//! - [`glue`]: macros exporting any of these as a WebAssembly component.
//!
//! Everything here is plain Rust with no dependencies, so the host can run the same algorithms
//! natively (the benchmark compares native and WebAssembly runs of the same thief).

// Checks written `!(x > 0.0)` reject NaN as well; that is why they are negated.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod estimate;
pub mod glue;
pub mod lifecycle;
pub mod optimus;
pub mod params;
pub mod policy;
pub mod sample;
pub mod space;
pub mod types;
pub mod zoo;
