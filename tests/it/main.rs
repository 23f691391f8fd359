//! tandem's integration tests: one binary, one module per area.
//!
//! Run with `cargo test --test it` (from the repository root or `host/`). The GPU tests use
//! whichever wgpu adapter exists, software ones included, and skip with a printed reason
//! when there is none.

mod campaign; // SIGKILL at random moments: history intact, committed windows whole, resume to the same result
mod cli; // the real binary: bad arguments, failing policies, Ctrl-C and resume, serve's shutdown
mod data; // IDX reader, Fashion-MNIST loader, synthetic source, drift and resizing
mod engine; // the window loop on a tiny scenario: determinism, fallback, re-scheduling, history, one plugin host for every run
mod fuzz; // property tests over every parser and output check (proptest; PROPTEST_CASES scales them)
mod gradcheck; // the CPU backend's backward ops against central finite differences
mod http; // the dashboard's router with oneshot: pages, API, metrics, token, CSRF, uploads, escaping
mod lifecycle; // scale to zero and back: the same model on every wake path, labels kept while cold, corrupt artifacts, resident bytes
mod model; // the CNN: learning, layer freezing, resolutions, weights on disk
mod ops; // every WGSL kernel on the wgpu adapter against the CPU backend
mod plugins; // real guest plugins built and run: sandbox limits, output checks, registry
mod python; // Python plugins (componentize-py): the Python fair decides as the Rust one; limits
mod replay; // the simulator mode on Ekya-format and recorded profiles, with real guest policies
mod samplelist; // Ekya's samplelist source: PNG/PGM/PPM frames written by the test, crops, bad rows
mod scaffold; // `tandem plugin new` outside the repository: Rust and Python, scaffold, build, validate
mod shaders; // naga parses and validates every .wgsl file (no adapter needed)
mod slicer; // the real clock's time slicer: delivered vs allocated share on real training steps
mod support; // seeded inputs, tolerance checks, the shared wgpu backend, history helpers
mod zoo; // the model zoo: its history rows, `tandem zoo`, its bound under overflow, restarts, corrupt files
