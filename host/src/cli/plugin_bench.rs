//! `tandem bench plugins`: what the plugin sandbox costs.
//!
//! Figures: `instantiate_us_p50` (fresh store + WASI context + instantiation from the cached
//! `InstancePre`, the fixed cost of every call), `call_overhead_us_p50` (one `describe` call
//! into a live instance: the smallest call every world has), `thief_decision_ms_p50`/`_p95`
//! (a full `decide` through the sandbox: fresh store, instantiation, argument conversion, the
//! thief, output checks) for 10 streams × 8 GPUs × 18 retraining configurations, and
//! `native_vs_wasm_ratio` (the WebAssembly decision's p50 over the same thief's p50 compiled
//! natively from `tandem-plugin-sdk`, same input, same run).
//!
//! Then `fair` in Rust (the built-in) beside `fair-py`, its Python port built with
//! componentize-py (`plugins/python/fair`, by `scripts/setup.sh`): per component its size,
//! compile time, load time from the compiled-component cache, instantiation, the first decision
//! and the decisions after it (p50/p95) on the same input, its linear memory after loading
//! (`describe` only) and at its peak, and its limits. Every decision of the two is checked to be identical.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use crate::plugin::registry::builtins;
use crate::plugin::types::{Param, ParamValue, PolicyInput};
use crate::plugin::{Limits, Plugin, PluginHost};
use tandem_plugin_sdk::policy::{Allocation, Policy, Thief, evaluate};

pub(super) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Where `scripts/setup.sh` puts the Python fair: `<target>/wasm32-wasip2/plugin/fair_py.wasm`,
/// found from this executable (`<target>/<profile>/tandem`).
fn default_python_fair() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?;
    Some(target.join("wasm32-wasip2/plugin/fair_py.wasm"))
}

pub fn run(as_json: bool, python_fair: Option<PathBuf>) -> anyhow::Result<()> {
    let thief_bytes = builtin("thief")?;
    let host = PluginHost::new(Limits::default())?;
    let t = Instant::now();
    let thief = host.load("thief", thief_bytes)?;
    let load_ms = ms(t);

    for _ in 0..200 {
        host.instantiate_only(&thief)?;
    }
    let mut inst: Vec<f64> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            host.instantiate_only(&thief)
                .map(|()| t.elapsed().as_secs_f64() * 1e6)
        })
        .collect::<Result<_, _>>()?;
    let mut calls = host.time_calls(&thief, 2000)?;

    let (streams, gpus, configs) = (10, 8, 18);
    let input = tandem_plugin_sdk::sample::policy_input(streams, gpus, configs, 42);
    let runs = 60;
    let mut wasm = Vec::with_capacity(runs);
    let mut native = Vec::with_capacity(runs);
    let mut estimate = None;
    for _ in 0..runs {
        let t = Instant::now();
        let s = host.decide(&thief, &input, &[], 0)?;
        wasm.push(ms(t));
        let t = Instant::now();
        let n = Thief::schedule(&input, &[]).map_err(|e| anyhow::anyhow!("native thief: {e}"))?;
        native.push(ms(t));
        anyhow::ensure!(
            n.estimated_accuracy == s.estimated_accuracy,
            "native and WebAssembly thieves disagree"
        );
        estimate = s.estimated_accuracy;
    }
    let (_, fair) = evaluate(&input, &Allocation::fair(&input), 0.0);
    let (wasm_p50, native_p50) = (percentile(&mut wasm, 0.5), percentile(&mut native, 0.5));

    let python_path = python_fair.or_else(default_python_fair);
    let rust_fair = policy_figures("fair", builtin("fair")?, &input)?;
    let python = match python_path.as_deref().filter(|p| p.is_file()) {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
            let py = policy_figures(&path.display().to_string(), &bytes, &input)?;
            let ratio = py.figures["decision_ms_p50"].as_f64().unwrap_or(f64::NAN)
                / rust_fair.figures["decision_ms_p50"]
                    .as_f64()
                    .unwrap_or(f64::NAN);
            same_decisions(&rust_fair, &py, &input)?;
            let py = py.figures;
            json!({ "file": path.display().to_string(), "python_vs_rust_decision_ratio": ratio,
                    "identical_decisions": true, "figures": py })
        }
        None => {
            eprintln!(
                "note: no Python fair component at {} (scripts/setup.sh builds it; or pass --python-fair FILE)",
                python_path.map_or("?".into(), |p| p.display().to_string())
            );
            Value::Null
        }
    };

    let out = json!({
        "instantiate_us_p50": percentile(&mut inst, 0.5),
        "call_overhead_us_p50": percentile(&mut calls, 0.5),
        "thief_decision_ms_p50": wasm_p50,
        "thief_decision_ms_p95": percentile(&mut wasm, 0.95),
        "native_thief_ms_p50": native_p50,
        "native_vs_wasm_ratio": wasm_p50 / native_p50,
        "streams": streams,
        "gpus": gpus,
        "retrain_configs": configs,
        "thief_estimated_accuracy": estimate,
        "fair_start_estimated_accuracy": fair,
        "thief_component_bytes": thief.size(),
        "thief_load_ms": load_ms,
        "fair_rust": rust_fair.figures,
        "fair_python": python,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "command": "tandem bench plugins --json",
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (k, v) in out.as_object().expect("object") {
            println!("{k:<32} {v}");
        }
    }
    Ok(())
}

pub(super) fn builtin(name: &str) -> anyhow::Result<&'static [u8]> {
    Ok(builtins()
        .into_iter()
        .find(|b| b.name == name)
        .with_context(|| {
            format!(
                "the {name} plugin is not embedded in this binary: run scripts/setup.sh, then rebuild"
            )
        })?
        .bytes)
}

/// A benchmarked policy: its figures, and the host and plugin that produced them.
struct Measured {
    figures: Value,
    host: PluginHost,
    plugin: Arc<Plugin>,
}

/// One policy component's costs on `input`: compile (a host writing the compiled-component
/// cache), load from that cache (a second host), instantiation, the first decision and 40
/// more, peak memory, limits.
fn policy_figures(name: &str, bytes: &[u8], input: &PolicyInput) -> anyhow::Result<Measured> {
    let cache = std::env::temp_dir().join(format!("tandem-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let t = Instant::now();
    PluginHost::new(Limits::default())?
        .with_cache_dir(&cache)
        .load(name, bytes)?;
    let compile_ms = ms(t);
    let host = PluginHost::new(Limits::default())?.with_cache_dir(&cache);
    let t = Instant::now();
    let plugin = host.load(name, bytes)?;
    let cached_load_ms = ms(t);
    // Loading called `describe` once: the memory of a bare instance.
    let base_memory = plugin.peak_memory_bytes();
    let _ = std::fs::remove_dir_all(&cache);

    let t = Instant::now();
    host.decide(&plugin, input, &[], 0)?;
    let first_ms = ms(t);
    let mut inst: Vec<f64> = (0..40)
        .map(|_| {
            let t = Instant::now();
            host.instantiate_only(&plugin).map(|()| ms(t))
        })
        .collect::<Result<_, _>>()?;
    let mut decide: Vec<f64> = (0..40)
        .map(|_| {
            let t = Instant::now();
            host.decide(&plugin, input, &[], 0).map(|_| ms(t))
        })
        .collect::<Result<_, _>>()?;
    let limits = plugin.limits();
    let figures = json!({
        "component_bytes": plugin.size(),
        "compile_ms": compile_ms,
        "cached_load_ms": cached_load_ms,
        "instantiate_ms_p50": percentile(&mut inst, 0.5),
        "first_decision_ms": first_ms,
        "decision_ms_p50": percentile(&mut decide, 0.5),
        "decision_ms_p95": percentile(&mut decide, 0.95),
        "base_memory_bytes": base_memory,
        "peak_memory_bytes": plugin.peak_memory_bytes(),
        "limits": { "deadline_ms": limits.deadline.as_millis(), "memory_bytes": limits.memory_bytes },
    });
    Ok(Measured {
        figures,
        host,
        plugin,
    })
}

/// The Python fair decides as the Rust one on the benchmark's input under every parameter
/// setting the paper uses (a bench that reports a faster but different decision would mislead).
fn same_decisions(rust: &Measured, py: &Measured, input: &PolicyInput) -> anyhow::Result<()> {
    for config in ["cfg1", "cfg2"] {
        for fraction in [0.3, 0.5, 0.9] {
            let params = [
                Param {
                    name: "retrain-config".into(),
                    value: ParamValue::Text(config.into()),
                },
                Param {
                    name: "infer-fraction".into(),
                    value: ParamValue::Number(fraction),
                },
            ];
            let a = rust.host.decide(&rust.plugin, input, &params, 0)?;
            let b = py.host.decide(&py.plugin, input, &params, 0)?;
            anyhow::ensure!(
                a == b,
                "fair and fair-py disagree ({config}, {fraction}):\n{a:?}\n{b:?}"
            );
        }
    }
    Ok(())
}
