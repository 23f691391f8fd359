//! The sandboxed runtime: [`PluginHost`], [`Plugin`] and [`PluginState`].
//!
//! [`PluginHost`] owns the wasmtime `Engine` (pooling allocator, epoch interruption), the
//! component `Linker` with WASI p2, the [`Limits`] and an epoch ticker thread. Loading bytes
//! yields a [`Plugin`]: the compiled component, its world, its self-description, its sha256
//! digest and a cached `InstancePre`, so a call only allocates a store and instantiates.
//!
//! Every call gets a fresh `Store<PluginState>`: a trapped instance is dead, and nothing a call
//! does can leak into the next. The store has an epoch deadline (interrupted after
//! [`Limits::deadline`]), a memory cap through a resource limiter ([`Limits::memory_bytes`]),
//! and a WASI context with no preopened directories, no environment, no arguments, no network,
//! stdin closed, frozen clocks (both read 0), random numbers from a generator seeded per call
//! ([`call_seed`]: the run's seed mixed with the call's input, so decisions reproduce), and
//! stderr captured into a small buffer so a panic message can be reported. The limits are per
//! plugin: compiled plugins keep the tight default, components that carry an interpreter
//! ([`INTERPRETER_MIN_BYTES`] and up) get [`Limits::interpreter`]. Compiled components are kept
//! in memory by digest and, with a cache directory, on disk (an 18 MB Python component: 4–8 s
//! to compile, 14–26 ms to load from the cache, release build).
//!
//! Calls always end: the epoch deadline interrupts guest code, and the only host calls a guest
//! can block in (`wasi:clocks/monotonic-clock`'s subscriptions, which `wasi:io/poll` and a
//! guest's `sleep` wait on) are replaced by [`BoundedClocks`]: a timer that would fire after
//! the call's deadline is refused on the spot (the call ends as a timeout), so no wait
//! outlives the deadline. Per wasmtime's guidance a component may hold at most
//! [`MAX_MEMORIES`] memories, [`MAX_TABLES`] tables and [`MAX_CORE_INSTANCES`] core
//! instances, and the memory cap counts all of a store's memories together, so one crafted
//! component cannot take over the shared pool.
//!
//! The per-kind wrappers [`PluginHost::decide`], [`PluginHost::configs`] and
//! [`PluginHost::predict`] convert to and from domain types and validate the output
//! ([`super::validate`]) before returning it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasData, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{v1, v2};
use super::types::{
    ConfigSet, Description, EstimateRequest, LifecycleDecision, LifecycleInput, Param, PluginKind,
    PolicyInput, Prediction, Schedule, SelectionRequest, StreamState,
};
use super::{PluginError, validate};

/// Sandbox limits applied to every call of a plugin. A host has two sets: the tight default
/// for compiled plugins, and [`Limits::interpreter`] for components that carry an interpreter
/// (chosen per plugin at load, see [`INTERPRETER_MIN_BYTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall time a call (instantiation included) may take before it is interrupted.
    pub deadline: Duration,
    /// Largest linear memory a plugin may grow to, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(200),
            memory_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The limits of a component carrying an interpreter (a Python plugin built with
    /// componentize-py: CPython 3.14 and its pre-initialized heap, about 18 MB). From
    /// `tandem bench plugins` (release) on the Python `fair`, 10 streams × 8 GPUs × 18
    /// configurations: its instance holds 12.3 MiB of linear memory (the interpreter's heap; the
    /// decision grows it no further), and 10× that is the cap, leaving 115 MiB for a policy's
    /// own data; instantiation takes 0.52 ms and a decision 3.9 ms (p95 4.2 ms), 34× the Rust
    /// `fair`'s. At that ratio a Python port of the thief (Rust: p95 33–40 ms, 48 ms on a busier
    /// machine) would need up to 1.7 s, so the deadline is 2 s: a runaway Python plugin holds a
    /// decision at most that long before the fallback decides.
    pub fn interpreter() -> Self {
        Limits {
            deadline: Duration::from_millis(2000),
            memory_bytes: 128 << 20,
        }
    }
}

/// Components at least this large are taken to carry an interpreter and get
/// [`Limits::interpreter`]: compiled plugins are far smaller (tandem's Rust policies are
/// 40–200 KB), componentize-py's are about 18 MB. Padding a component to this size buys no
/// more than the interpreter limits, which bound any plugin.
pub const INTERPRETER_MIN_BYTES: usize = 4 << 20;

/// How often the ticker advances the engine's epoch: the resolution of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Bytes of a guest's stderr kept for error messages.
const STDERR_CAPACITY: usize = 4096;
/// Linear memories one component (and one store) may hold. A Rust wasip2 component has one;
/// interpreters bundle a few modules, each possibly with its own.
pub const MAX_MEMORIES: u32 = 4;
/// Tables one component (and one store) may hold.
pub const MAX_TABLES: u32 = 16;
/// Core instances one component may hold, and instances one store may create.
pub const MAX_CORE_INSTANCES: u32 = 32;
/// Elements one table may grow to.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// Largest component file the host reads (bigger files are refused before reading them).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// The memory cap: refuses (and traps on) growth past the limit, counting every memory of
/// the store together, and remembers that it did, so the error says "memory cap" rather than
/// a vague trap. It also caps how many instances, memories and tables a store may create.
struct MemoryCap {
    limit: usize,
    /// Bytes of all the store's memories.
    total: usize,
    exceeded: bool,
    /// The most memory the store held at once, in bytes.
    peak: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.exceeded = true;
            wasmtime::bail!(
                "memory cap of {} bytes reached (asked for {desired}, {total} in all)",
                self.limit
            );
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }
}

/// Clocks that always read zero: plugins get no time source (their decisions must depend on
/// their input only).
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A timer a guest waits on, which fires at its time or at the call's deadline, whichever
/// comes first.
struct Nap(tokio::time::Instant);

impl Pollable for Nap {
    fn ready<'a, 'b>(
        &'a mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(tokio::time::sleep_until(self.0))
    }
}

/// `wasi:clocks/monotonic-clock` with the frozen clock and timers bounded by the call's
/// deadline: the one place a guest could otherwise block the host for as long as it likes.
/// A timer past the deadline traps at once and marks the call as overslept (a timeout).
struct BoundedClocks;

impl HasData for BoundedClocks {
    type Data<'a> = BoundedClockView<'a>;
}

struct BoundedClockView<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
    overslept: &'a mut bool,
}

impl BoundedClockView<'_> {
    fn nap(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let now = Instant::now();
        let wanted = now.checked_add(Duration::from_nanos(nanos));
        if wanted.is_none_or(|w| w > self.deadline) {
            *self.overslept = true;
            wasmtime::bail!("asked to wait {nanos} ns, past the call's deadline");
        }
        let at = wanted.map_or(self.deadline, |w| w.min(self.deadline));
        let nap = self.table.push(Nap(tokio::time::Instant::from_std(at)))?;
        wasmtime_wasi::p2::subscribe(self.table, nap)
    }
}

impl monotonic_clock::Host for BoundedClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(HostMonotonicClock::now(&FrozenClock))
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(HostMonotonicClock::resolution(&FrozenClock))
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        // The clock reads 0, so an instant is that many nanoseconds from now.
        self.nap(when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.nap(duration)
    }
}

/// A call's random seed: the run's seed mixed with what identifies the call (its kind and
/// input), so a run's decisions reproduce while different calls draw different numbers.
pub fn call_seed(run_seed: u64, kind: PluginKind, key: &[u64]) -> u64 {
    // splitmix64 steps over the parts: cheap (no serialization of the input) and well mixed.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut h = mix(run_seed ^ (kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for k in key {
        h = mix(h.wrapping_add(0x9e37_79b9_7f4a_7c15) ^ k);
    }
    h
}

/// FNV-1a of a string, for [`call_seed`] keys.
fn text_key(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn policy_key(input: &PolicyInput) -> Vec<u64> {
    let mut key = vec![
        u64::from(input.gpus),
        input.window_seconds.to_bits(),
        input.elapsed_seconds.to_bits(),
    ];
    for s in &input.streams {
        key.extend([
            text_key(&s.state.id),
            u64::from(s.state.window),
            s.state.accuracy.to_bits(),
            s.retrain.len() as u64,
            s.infer.len() as u64,
        ]);
    }
    key
}

fn state_key(state: &StreamState) -> Vec<u64> {
    vec![
        text_key(&state.id),
        u64::from(state.window),
        state.accuracy.to_bits(),
        u64::from(state.samples),
    ]
}

fn request_key(r: &EstimateRequest) -> Vec<u64> {
    let mut key = vec![
        text_key(&r.config.name),
        r.start_accuracy.to_bits(),
        r.profiled_data_fraction.to_bits(),
    ];
    key.extend(r.observations.iter().map(|o| o.accuracy.to_bits()));
    key
}

/// The state of one store (one call): WASI context, resource table, memory cap, captured
/// stderr, and the call's deadline (for [`BoundedClocks`]).
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    cap: MemoryCap,
    stderr: MemoryOutputPipe,
    deadline: Instant,
    /// Whether the guest asked to wait past its deadline (the call is then a timeout).
    overslept: bool,
}

impl PluginState {
    fn new(limits: &Limits, seed: u64) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let rng = |salt: u64| rand_pcg::Pcg64::seed_from_u64(seed ^ salt);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(rng(0))
            .insecure_random(rng(0x5eed))
            .insecure_random_seed(u128::from(seed) << 64 | u128::from(!seed))
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        PluginState {
            wasi,
            table: ResourceTable::new(),
            cap: MemoryCap {
                limit: limits.memory_bytes,
                total: 0,
                exceeded: false,
                peak: 0,
            },
            stderr,
            deadline: Instant::now() + limits.deadline,
            overslept: false,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A compiled component of a known world and WIT version, ready to instantiate.
enum Pre {
    Policy(v2::policy::PolicyPre<PluginState>),
    ConfigSpace(v2::config_space::ConfigSpacePre<PluginState>),
    Estimator(v2::estimator::EstimatorPre<PluginState>),
    Selector(v2::selector::SelectorPre<PluginState>),
    Lifecycle(v2::lifecycle::LifecyclePre<PluginState>),
    PolicyV1(v1::policy::PolicyPre<PluginState>),
    ConfigSpaceV1(v1::config_space::ConfigSpacePre<PluginState>),
    EstimatorV1(v1::estimator::EstimatorPre<PluginState>),
}

/// `$body` with `$pre` bound to whichever world `$e` holds (each arm has its own types).
macro_rules! each_pre {
    ($e:expr, $pre:ident => $body:expr) => {
        match $e {
            Pre::Policy($pre) => $body,
            Pre::ConfigSpace($pre) => $body,
            Pre::Estimator($pre) => $body,
            Pre::Selector($pre) => $body,
            Pre::Lifecycle($pre) => $body,
            Pre::PolicyV1($pre) => $body,
            Pre::ConfigSpaceV1($pre) => $body,
            Pre::EstimatorV1($pre) => $body,
        }
    };
}

impl Pre {
    /// The world a component implements, tried newest version first; the error says why it
    /// is not a policy of the newest version (the likeliest intent).
    fn new(pre: InstancePre<PluginState>) -> Result<Self, String> {
        let first = match v2::policy::PolicyPre::new(pre.clone()) {
            Ok(p) => return Ok(Pre::Policy(p)),
            Err(e) => chain(&e),
        };
        type Try = fn(&InstancePre<PluginState>) -> Option<Pre>;
        let tries: [Try; 7] = [
            |p| {
                v2::config_space::ConfigSpacePre::new(p.clone())
                    .ok()
                    .map(Pre::ConfigSpace)
            },
            |p| {
                v2::estimator::EstimatorPre::new(p.clone())
                    .ok()
                    .map(Pre::Estimator)
            },
            |p| {
                v2::selector::SelectorPre::new(p.clone())
                    .ok()
                    .map(Pre::Selector)
            },
            |p| {
                v2::lifecycle::LifecyclePre::new(p.clone())
                    .ok()
                    .map(Pre::Lifecycle)
            },
            |p| {
                v1::policy::PolicyPre::new(p.clone())
                    .ok()
                    .map(Pre::PolicyV1)
            },
            |p| {
                v1::config_space::ConfigSpacePre::new(p.clone())
                    .ok()
                    .map(Pre::ConfigSpaceV1)
            },
            |p| {
                v1::estimator::EstimatorPre::new(p.clone())
                    .ok()
                    .map(Pre::EstimatorV1)
            },
        ];
        tries.iter().find_map(|t| t(&pre)).ok_or(first)
    }

    fn kind(&self) -> PluginKind {
        match self {
            Pre::Policy(_) | Pre::PolicyV1(_) => PluginKind::Policy,
            Pre::ConfigSpace(_) | Pre::ConfigSpaceV1(_) => PluginKind::ConfigSpace,
            Pre::Estimator(_) | Pre::EstimatorV1(_) => PluginKind::Estimator,
            Pre::Selector(_) => PluginKind::Selector,
            Pre::Lifecycle(_) => PluginKind::Lifecycle,
        }
    }

    fn wit_version(&self) -> &'static str {
        match self {
            Pre::PolicyV1(_) | Pre::ConfigSpaceV1(_) | Pre::EstimatorV1(_) => "0.1.0",
            _ => "0.2.0",
        }
    }
}

/// One loaded plugin: compiled component, world, self-description, content digest, and the
/// limits its calls run under.
pub struct Plugin {
    description: Description,
    digest: String,
    size: usize,
    limits: Limits,
    /// The largest linear memory any of its calls reached, in bytes.
    peak_memory: AtomicUsize,
    pre: Pre,
}

impl Plugin {
    /// The plugin's self-description.
    pub fn description(&self) -> &Description {
        &self.description
    }
    /// Its name (from the description).
    pub fn name(&self) -> &str {
        &self.description.name
    }
    /// Its version (from the description).
    pub fn version(&self) -> &str {
        &self.description.version
    }
    /// The world it implements.
    pub fn kind(&self) -> PluginKind {
        self.description.kind
    }
    /// Lower-case hex sha256 of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// The version of the WIT package it was built against (`0.2.0`, `0.1.0`).
    pub fn wit_version(&self) -> &'static str {
        self.pre.wit_version()
    }
    /// The limits its calls run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// The largest linear memory any of its calls so far reached, in bytes (instantiation
    /// included: for an interpreter that is its pre-initialized heap).
    pub fn peak_memory_bytes(&self) -> usize {
        self.peak_memory.load(Ordering::Relaxed)
    }
}

/// Stops and joins the epoch ticker when the host is dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The plugin host: engine, linker, limits, ticker, and the loaded plugins by digest.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<PluginState>,
    limits: Limits,
    interpreter_limits: Limits,
    cache_dir: Option<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    _ticker: Ticker,
}

fn host_err(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::Host(format!("{what}: {e}"))
}

fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl PluginHost {
    /// A host with the given limits for compiled plugins and [`Limits::interpreter`] for
    /// components carrying an interpreter.
    pub fn new(limits: Limits) -> Result<Self, PluginError> {
        Self::with_limits(limits, Limits::interpreter())
    }

    /// A host with limits for compiled plugins and for components carrying an interpreter.
    pub fn with_limits(limits: Limits, interpreter_limits: Limits) -> Result<Self, PluginError> {
        let mut pool = PoolingAllocationConfig::new();
        // Enough slots for many concurrent calls; a Rust wasip2 component has a few core
        // instances and one memory. Memory slots are capped at the plugin memory limit, and
        // each component at a few memories, tables and core instances, so one component
        // cannot take most of the pool's slots.
        pool.total_component_instances(64)
            .total_core_instances(512)
            .total_memories(128)
            .total_tables(512)
            .max_memory_size(limits.memory_bytes.max(interpreter_limits.memory_bytes))
            .max_memories_per_component(MAX_MEMORIES)
            .max_tables_per_component(MAX_TABLES)
            .max_core_instances_per_component(MAX_CORE_INSTANCES);
        let mut config = Config::new();
        // Epoch interruption rather than fuel: a cheap check at loop heads and function entries,
        // and deadlines in wall time, which is what the window engine budgets.
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| host_err("engine", chain(&e)))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| host_err("linker", chain(&e)))?;
        // The monotonic clock's timers are the only WASI calls a guest can block in: replace
        // them with timers bounded by the call's deadline.
        linker.allow_shadowing(true);
        monotonic_clock::add_to_linker::<PluginState, BoundedClocks>(&mut linker, |s| {
            BoundedClockView {
                table: &mut s.table,
                deadline: s.deadline,
                overslept: &mut s.overslept,
            }
        })
        .map_err(|e| host_err("linker", chain(&e)))?;
        linker.allow_shadowing(false);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::Builder::new()
                .name("plugin-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| host_err("epoch ticker", e))?
        };
        Ok(PluginHost {
            engine,
            linker,
            limits,
            interpreter_limits,
            cache_dir: None,
            loaded: Mutex::new(HashMap::new()),
            _ticker: Ticker {
                stop,
                handle: Some(handle),
            },
        })
    }

    /// Keep compiled components in `dir` (keyed by digest and engine), so a restart or a test
    /// run does not compile them again.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Whether `other` runs its plugins on this host's wasmtime engine (and so shares its
    /// epoch thread and compiled code).
    pub fn same_engine(&self, other: &PluginHost) -> bool {
        Engine::same(&self.engine, &other.engine)
    }

    /// The limits applied to each call of a compiled plugin.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The limits a component of `size` bytes gets: [`Limits::interpreter`]'s (as configured)
    /// from [`INTERPRETER_MIN_BYTES`] up, the compiled plugins' below.
    pub fn limits_for(&self, size: usize) -> Limits {
        if size >= INTERPRETER_MIN_BYTES {
            self.interpreter_limits
        } else {
            self.limits
        }
    }

    /// Load a plugin from a file (at most [`MAX_COMPONENT_BYTES`], checked before reading).
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let name = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|e| host_err(&name, e))?
            .len();
        if size > MAX_COMPONENT_BYTES {
            return Err(PluginError::TooLarge {
                source_name: name,
                bytes: size,
                limit: MAX_COMPONENT_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| host_err(&name, e))?;
        self.load(&name, &bytes)
    }

    /// Load a plugin from bytes: check it is a component of a known world, compile it (or
    /// reuse a cached compile), call its `describe`. `source_name` names it in errors until its
    /// description is known.
    pub fn load(&self, source_name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let digest = sha256_hex(bytes);
        if let Some(p) = self.loaded.lock().expect("plugin map").get(&digest) {
            return Ok(p.clone());
        }
        check_component(source_name, bytes)?;
        let component = self
            .compile(&digest, bytes)
            .map_err(|e| PluginError::NotComponent {
                source_name: source_name.to_string(),
                reason: chain(&e),
            })?;
        let plugin = Arc::new(self.prepare(source_name, component, digest.clone(), bytes.len())?);
        self.loaded
            .lock()
            .expect("plugin map")
            .insert(digest, plugin.clone());
        Ok(plugin)
    }

    /// Compile `bytes` into a plugin of the caller's own: neither taken from nor kept in this
    /// host's loaded plugins or its compiled-component cache, so the caller pays (and can
    /// time) the whole compile, as a stream waking up with nothing prepared does.
    pub fn compile_private(&self, source_name: &str, bytes: &[u8]) -> Result<Plugin, PluginError> {
        check_component(source_name, bytes)?;
        let component =
            Component::new(&self.engine, bytes).map_err(|e| PluginError::NotComponent {
                source_name: source_name.to_string(),
                reason: chain(&e),
            })?;
        self.prepare(source_name, component, sha256_hex(bytes), bytes.len())
    }

    /// `plugin`'s compiled code, serialized for [`PluginHost::load_precompiled`] (wasmtime's
    /// `Component::serialize`).
    pub fn precompiled(&self, plugin: &Plugin) -> Result<Vec<u8>, PluginError> {
        each_pre!(&plugin.pre, pre => pre.instance_pre().component().serialize())
            .map_err(|e| host_err(&format!("serializing {}", plugin.name()), chain(&e)))
    }

    /// A plugin of the caller's own from compiled code that [`PluginHost::precompiled`] wrote
    /// (no compile: the code is mapped in), its component's `digest` and `size` carried over.
    /// wasmtime refuses code compiled for another engine configuration or version.
    ///
    /// # Safety
    ///
    /// `compiled` must be exactly what [`PluginHost::precompiled`] returned: wasmtime runs the
    /// machine code in it as it is, so altered bytes are undefined behaviour, not an error.
    pub unsafe fn load_precompiled(
        &self,
        source_name: &str,
        compiled: &[u8],
        (digest, size): (&str, usize),
    ) -> Result<Plugin, PluginError> {
        // SAFETY: the caller guarantees the bytes came from `precompiled` unaltered.
        let component = unsafe { Component::deserialize(&self.engine, compiled) }.map_err(|e| {
            PluginError::NotComponent {
                source_name: source_name.to_string(),
                reason: chain(&e),
            }
        })?;
        self.prepare(source_name, component, digest.to_string(), size)
    }

    /// A compiled component made ready: its world found, its `InstancePre` built, its
    /// self-description asked for and checked.
    fn prepare(
        &self,
        source_name: &str,
        component: Component,
        digest: String,
        size: usize,
    ) -> Result<Plugin, PluginError> {
        let source = || source_name.to_string();
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::UnknownWorld {
                    source_name: source(),
                    reason: format!(
                        "it imports what the sandbox does not provide: {}",
                        chain(&e)
                    ),
                })?;
        let pre = Pre::new(instance_pre).map_err(|reason| PluginError::UnknownWorld {
            source_name: source(),
            reason,
        })?;
        let world = pre.kind();
        let mut plugin = Plugin {
            description: Description {
                name: source_name.to_string(),
                version: "?".into(),
                kind: world,
                summary: String::new(),
                params: Vec::new(),
            },
            digest,
            size,
            limits: self.limits_for(size),
            peak_memory: AtomicUsize::new(0),
            pre,
        };
        let description = self.describe(&plugin)?;
        validate::description(&description, world).map_err(|reason| {
            PluginError::BadDescription {
                source_name: source(),
                reason,
            }
        })?;
        plugin.description = description;
        Ok(plugin)
    }

    fn compile(&self, digest: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes);
        };
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let path = dir.join(format!("{digest}-{:016x}.cwasm", h.finish()));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash, into a cache directory that only this host writes.
            if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok(c);
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            let _ = std::fs::create_dir_all(dir);
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, serialized).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        Ok(component)
    }

    fn store(&self, limits: &Limits, seed: u64) -> Store<PluginState> {
        let mut store = Store::new(&self.engine, PluginState::new(limits, seed));
        store.limiter(|s| &mut s.cap);
        let ticks = limits
            .deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos())
            .max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store
    }

    /// Run `f` in a fresh store whose random numbers come from `seed`, turning traps,
    /// timeouts and the memory cap into typed errors.
    fn call<R>(
        &self,
        plugin: &Plugin,
        seed: u64,
        f: impl FnOnce(&mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut store = self.store(&plugin.limits, seed);
        let result = f(&mut store);
        plugin
            .peak_memory
            .fetch_max(store.data().cap.peak, Ordering::Relaxed);
        result.map_err(|e| {
            let (name, version) = (plugin.name().to_string(), plugin.version().to_string());
            if store.data().cap.exceeded {
                PluginError::MemoryLimit {
                    plugin: name,
                    version,
                    limit_bytes: plugin.limits.memory_bytes,
                }
            } else if store.data().overslept || e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                PluginError::Timeout {
                    plugin: name,
                    version,
                    deadline: plugin.limits.deadline,
                }
            } else {
                let stderr = store.data().stderr.contents();
                let stderr = String::from_utf8_lossy(&stderr);
                let mut reason = chain(&e);
                if !stderr.trim().is_empty() {
                    reason.push_str(&format!("; guest stderr: {}", stderr.trim()));
                }
                PluginError::Trap {
                    plugin: name,
                    version,
                    reason,
                }
            }
        })
    }

    fn guest_err(plugin: &Plugin, error: super::types::GuestError) -> PluginError {
        PluginError::Guest {
            plugin: plugin.name().into(),
            version: plugin.version().into(),
            error,
        }
    }

    /// Ask the plugin to describe itself (a fresh call).
    pub fn describe(&self, plugin: &Plugin) -> Result<Description, PluginError> {
        macro_rules! describe {
            ($pre:ident, $m:path) => {{
                use $m as m;
                self.call(plugin, 0, |s| {
                    let b = $pre.instantiate(&mut *s)?;
                    Ok(m::description(
                        b.tandem_plugin_meta().call_describe(&mut *s)?,
                    ))
                })
            }};
        }
        match &plugin.pre {
            Pre::Policy(pre) => describe!(pre, v2::policy),
            Pre::ConfigSpace(pre) => describe!(pre, v2::config_space),
            Pre::Estimator(pre) => describe!(pre, v2::estimator),
            Pre::Selector(pre) => describe!(pre, v2::selector),
            Pre::Lifecycle(pre) => describe!(pre, v2::lifecycle),
            Pre::PolicyV1(pre) => describe!(pre, v1::policy),
            Pre::ConfigSpaceV1(pre) => describe!(pre, v1::config_space),
            Pre::EstimatorV1(pre) => describe!(pre, v1::estimator),
        }
    }

    fn wrong_world(plugin: &Plugin, expected: PluginKind) -> PluginError {
        PluginError::WrongWorld {
            plugin: plugin.name().into(),
            version: plugin.version().into(),
            expected,
            found: plugin.kind(),
        }
    }

    /// Instantiate only (no call beyond instantiation): what a decision pays before its call.
    pub fn instantiate_only(&self, plugin: &Plugin) -> Result<(), PluginError> {
        each_pre!(&plugin.pre, pre => self.call(plugin, 0, |s| pre.instantiate(s).map(drop)))
    }

    /// An output that failed its check.
    fn invalid(plugin: &Plugin, reason: String) -> PluginError {
        PluginError::InvalidOutput {
            plugin: plugin.name().into(),
            version: plugin.version().into(),
            reason,
        }
    }

    /// A policy's decision, validated against the input ([`validate::schedule`]).
    pub fn decide(
        &self,
        plugin: &Plugin,
        input: &PolicyInput,
        params: &[Param],
        run_seed: u64,
    ) -> Result<Schedule, PluginError> {
        let seed = call_seed(run_seed, PluginKind::Policy, &policy_key(input));
        macro_rules! decide {
            ($pre:ident, $m:path) => {{
                use $m as m;
                let (winput, wparams) = (m::input(input), m::params(params));
                self.call(plugin, seed, |s| {
                    let b = $pre.instantiate(&mut *s)?;
                    b.tandem_plugin_scheduler()
                        .call_decide(&mut *s, &winput, &wparams)
                })?
                .map(m::schedule)
                .map_err(|e| Self::guest_err(plugin, m::error(e)))?
            }};
        }
        let schedule = match &plugin.pre {
            Pre::Policy(pre) => decide!(pre, v2::policy),
            Pre::PolicyV1(pre) => decide!(pre, v1::policy),
            _ => return Err(Self::wrong_world(plugin, PluginKind::Policy)),
        };
        validate::schedule(input, &schedule).map_err(|r| Self::invalid(plugin, r))?;
        Ok(schedule)
    }

    /// A configuration space's candidates for one stream, validated ([`validate::config_set`]).
    pub fn configs(
        &self,
        plugin: &Plugin,
        state: &StreamState,
        params: &[Param],
        run_seed: u64,
    ) -> Result<ConfigSet, PluginError> {
        let seed = call_seed(run_seed, PluginKind::ConfigSpace, &state_key(state));
        macro_rules! configs {
            ($pre:ident, $m:path) => {{
                use $m as m;
                let (wstate, wparams) = (m::state(state), m::params(params));
                self.call(plugin, seed, |s| {
                    let b = $pre.instantiate(&mut *s)?;
                    b.tandem_plugin_configurations()
                        .call_configs(&mut *s, &wstate, &wparams)
                })?
                .map(m::config_set)
                .map_err(|e| Self::guest_err(plugin, m::error(e)))?
            }};
        }
        let set = match &plugin.pre {
            Pre::ConfigSpace(pre) => configs!(pre, v2::config_space),
            Pre::ConfigSpaceV1(pre) => configs!(pre, v1::config_space),
            _ => return Err(Self::wrong_world(plugin, PluginKind::ConfigSpace)),
        };
        validate::config_set(&set).map_err(|r| Self::invalid(plugin, r))?;
        Ok(set)
    }

    /// An estimator's prediction, validated ([`validate::prediction`]).
    pub fn predict(
        &self,
        plugin: &Plugin,
        request: &EstimateRequest,
        params: &[Param],
        run_seed: u64,
    ) -> Result<Prediction, PluginError> {
        let seed = call_seed(run_seed, PluginKind::Estimator, &request_key(request));
        macro_rules! predict {
            ($pre:ident, $m:path) => {{
                use $m as m;
                let (wreq, wparams) = (m::request(request), m::params(params));
                self.call(plugin, seed, |s| {
                    let b = $pre.instantiate(&mut *s)?;
                    b.tandem_plugin_estimate()
                        .call_predict(&mut *s, &wreq, &wparams)
                })?
                .map(m::prediction)
                .map_err(|e| Self::guest_err(plugin, m::error(e)))?
            }};
        }
        let p = match &plugin.pre {
            Pre::Estimator(pre) => predict!(pre, v2::estimator),
            Pre::EstimatorV1(pre) => predict!(pre, v1::estimator),
            _ => return Err(Self::wrong_world(plugin, PluginKind::Estimator)),
        };
        validate::prediction(request, &p).map_err(|r| Self::invalid(plugin, r))?;
        Ok(p)
    }

    /// A selector's short list, validated against the request ([`validate::selection`]).
    pub fn select(
        &self,
        plugin: &Plugin,
        request: &SelectionRequest,
        params: &[Param],
    ) -> Result<Vec<String>, PluginError> {
        let Pre::Selector(pre) = &plugin.pre else {
            return Err(Self::wrong_world(plugin, PluginKind::Selector));
        };
        let m = v2::selector::request(request);
        let wparams = v2::selector::params(params);
        let ids = self
            .call(plugin, 0, |s| {
                let b = pre.instantiate(&mut *s)?;
                b.tandem_plugin_select().call_select(&mut *s, &m, &wparams)
            })?
            .map_err(|e| Self::guest_err(plugin, v2::selector::error(e)))?;
        validate::selection(request, &ids).map_err(|r| Self::invalid(plugin, r))?;
        Ok(ids)
    }

    /// A lifecycle policy's decisions, validated against the input ([`validate::lifecycle`]).
    pub fn plan_lifecycle(
        &self,
        plugin: &Plugin,
        input: &LifecycleInput,
        params: &[Param],
    ) -> Result<Vec<LifecycleDecision>, PluginError> {
        let Pre::Lifecycle(pre) = &plugin.pre else {
            return Err(Self::wrong_world(plugin, PluginKind::Lifecycle));
        };
        let (winput, wparams) = (v2::lifecycle::input(input), v2::lifecycle::params(params));
        let decisions = self
            .call(plugin, 0, |s| {
                let b = pre.instantiate(&mut *s)?;
                b.tandem_plugin_scaling()
                    .call_plan(&mut *s, &winput, &wparams)
            })?
            .map(v2::lifecycle::decisions)
            .map_err(|e| Self::guest_err(plugin, v2::lifecycle::error(e)))?;
        validate::lifecycle(input, &decisions).map_err(|r| Self::invalid(plugin, r))?;
        Ok(decisions)
    }

    /// Benchmark helper: instantiate once, then time `n` calls of `describe` in that one
    /// store (the smallest call every world has), in microseconds each.
    pub fn time_calls(&self, plugin: &Plugin, n: usize) -> Result<Vec<f64>, PluginError> {
        each_pre!(&plugin.pre, pre => self.call(plugin, 0, |s| {
            let b = pre.instantiate(&mut *s)?;
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                b.tandem_plugin_meta().call_describe(&mut *s)?;
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            Ok(times)
        }))
    }
}

/// That `bytes` look like a component: WebAssembly, and not a core module.
fn check_component(source_name: &str, bytes: &[u8]) -> Result<(), PluginError> {
    let source = || source_name.to_string();
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(PluginError::NotWasm {
            source_name: source(),
        });
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(PluginError::NotComponent {
            source_name: source(),
            reason: "a core WebAssembly module; plugins are components (build for wasm32-wasip2)"
                .into(),
        });
    }
    Ok(())
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
