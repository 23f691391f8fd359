//! `tandem bench plugins`: what the plugin sandbox costs.
//!
//! Figures: `instantiate_us_p50` (fresh store + WASI context + instantiation from the cached
//! `InstancePre`, the fixed cost of every call), `call_overhead_us_p50` (one `describe` call
//! into a live instance: the smallest call every world has), `thief_decision_ms_p50`/`_p95`
//! (a full `decide` through the sandbox: fresh store, instantiation, argument conversion, the
//! thief, output checks) for 10 streams × 8 GPUs × 18 retraining configurations, and
//! `native_vs_wasm_ratio` (the WebAssembly decision's p50 over the same thief's p50 compiled
//! natively from `tandem-plugin-sdk`, same input, same run).

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use crate::plugin::registry::builtins;
use crate::plugin::{Limits, PluginHost};
use tandem_plugin_sdk::policy::{Allocation, Policy, Thief, evaluate};

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i]
}

pub fn run(as_json: bool) -> anyhow::Result<()> {
    let thief_bytes = builtins()
        .into_iter()
        .find(|b| b.name == "thief")
        .context(
            "the thief plugin is not embedded in this binary: run scripts/setup.sh, then rebuild",
        )?
        .bytes;
    let host = PluginHost::new(Limits::default())?;
    let t = Instant::now();
    let thief = host.load("thief", thief_bytes)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

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
        wasm.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let n = Thief::schedule(&input, &[]).map_err(|e| anyhow::anyhow!("native thief: {e}"))?;
        native.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            n.estimated_accuracy == s.estimated_accuracy,
            "native and WebAssembly thieves disagree"
        );
        estimate = s.estimated_accuracy;
    }
    let (_, fair) = evaluate(&input, &Allocation::fair(&input), 0.0);
    let (wasm_p50, native_p50) = (percentile(&mut wasm, 0.5), percentile(&mut native, 0.5));
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
