//! Helpers shared by the test modules: a seeded generator, closeness checks, one wgpu
//! backend for the whole binary (opening a device per test is slow on lavapipe), and what the
//! history tests need to drive it from a synchronous test.

use std::sync::OnceLock;

use tandem::gpu::WgpuBackend;
use tandem::history::NewRun;

/// Held by every test that runs the `tandem` binary: each such process takes every core, so
/// they run one at a time, and the timing tests beside them keep their margins.
pub fn one_binary_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A single-threaded tokio runtime for a test that opens the history.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A run of `scenario` under the thief, as `tandem run` would start it (three windows).
pub fn new_run(scenario: &str) -> NewRun<'_> {
    NewRun {
        scenario,
        scenario_json: "{}",
        policy: "thief",
        policy_digest: "x",
        backend: "cpu",
        windows_planned: 3,
        comparison: None,
    }
}

/// The shared wgpu backend, software adapters allowed; `None` (after printing why) when
/// this machine has no adapter, so GPU tests can return early.
pub fn gpu() -> Option<&'static WgpuBackend> {
    static GPU: OnceLock<Result<WgpuBackend, String>> = OnceLock::new();
    match GPU.get_or_init(|| WgpuBackend::new(true).map_err(|e| e.to_string())) {
        Ok(backend) => Some(backend),
        Err(reason) => {
            eprintln!("skipping: no wgpu adapter: {reason}");
            None
        }
    }
}

/// A small deterministic generator (xorshift32), so failures reproduce.
pub struct Rng(u32);

impl Rng {
    pub fn new(seed: u32) -> Self {
        Self(seed.max(1))
    }

    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.next_u32() as usize % n
    }

    /// `len` values uniform in `[-1, 1)`.
    pub fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.uniform(-1.0, 1.0)).collect()
    }

    /// `len` distinct values at least `gap` apart, shuffled: no ties, so max pooling's
    /// choice is unambiguous and survives perturbations smaller than `gap / 2`.
    pub fn distinct(&mut self, len: usize, gap: f32) -> Vec<f32> {
        let mut v: Vec<f32> = (0..len)
            .map(|i| (i as f32 - len as f32 / 2.0) * gap)
            .collect();
        for i in (1..len).rev() {
            v.swap(i, self.below(i + 1));
        }
        v
    }
}

/// Asserts `|got - want| <= atol + rtol·|want|` element-wise, naming the first failure.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}: element {i} of {}: got {g}, want {w}",
            got.len()
        );
    }
}
