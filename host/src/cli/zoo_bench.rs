//! `tandem bench zoo`: what choosing zoo models costs a stream at a window start.
//!
//! One selection is what the host does in `Stream::open` for a zoo of `--models` entries: the
//! stream's scene signature (`Look::of` the window's labelled images), the selection request
//! (the zoo's entries and that signature), and the `nearest` selector's call through the
//! sandbox (fresh store, instantiation, conversions, the guest, the output checks). Figures:
//! p50/p95 of each part and of the whole (`selection_ms_*`, the goal is 10 ms), and the same
//! selector compiled natively for the ratio. The zoo's signatures come from disjoint windows
//! of the scenario's first camera's images, so distances are those a run sees.
//!
//! Then the checks the short list costs: modelled GPU-seconds (the engine's own formula: one
//! forward pass of the validation split per candidate) as a fraction of a window's GPU time for
//! the scenario (`--scenario`, default the demo), and on this CPU the wall time of one check
//! (loading the model from the zoo, evaluating it on the validation split).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use super::plugin_bench::{builtin, percentile};
use crate::compute::cpu::CpuBackend;
use crate::data::{Dataset, Look};
use crate::engine::zoo::{PRETRAINED, Zoo};
use crate::engine::{CostModel, Scenario, SourcePool, params_from_toml};
use crate::model::{self, Arch, Model};
use crate::plugin::types::SelectionRequest;
use crate::plugin::{Limits, PluginHost};
use tandem_plugin_sdk::zoo::{Nearest, Selector};

/// Goal for one selection (issue 13), milliseconds.
const GOAL_MS: f64 = 10.0;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// p50 and p95 of `samples` as JSON.
fn spread(samples: &mut [f64]) -> Value {
    json!({ "p50": percentile(samples, 0.5), "p95": percentile(samples, 0.95) })
}

pub fn run(
    as_json: bool,
    models: usize,
    calls: usize,
    scenario: Option<PathBuf>,
) -> anyhow::Result<()> {
    let s = match &scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::parse(
            crate::http::DEMO_SCENARIO,
            std::path::Path::new("demo.toml"),
        )?,
    };
    let cam = &s.cameras[0];
    let pool = SourcePool::for_camera(cam, s.seed).context("loading the scenario's images")?;
    let arch = Arch {
        in_channels: pool.train.c,
        channels: s.channels.map(|c| c as usize),
        hidden: s.hidden as usize,
        classes: pool.train.classes,
    };
    let n = cam.train_samples as usize;
    // The labelled images of the camera's `i`-th window, taken from disjoint stretches of
    // its images (cycling over a short pool).
    let window = |i: usize| -> Dataset {
        let idx: Vec<usize> = (i * n..(i + 1) * n).map(|j| j % pool.train.len()).collect();
        pool.train.select(&idx)
    };
    let be = CpuBackend::new(1);
    let model = Model::new(&be, arch, s.seed);
    let models = models.max(1);
    let mut zoo = Zoo::new(models, u64::MAX);
    zoo.insert(&be, &model, (PRETRAINED, 0), Look::of(&window(0)).mean, 0.6);
    for i in 1..models {
        let origin = format!("cam-{}", i % 4);
        let look = Look::of(&window(i)).mean;
        zoo.insert(&be, &model, (&origin, i as u32), look, 0.7);
    }
    let now = window(models);
    let selection = time_selection(&zoo, &now, &s, calls.max(20))?;
    let checks = check_cost(&be, &zoo, &now, &s, arch)?;
    let report = json!({
        "scenario": s.name,
        "zoo_models": zoo.len(),
        "signature_values": zoo.models().next().map_or(0, |m| m.signature.len()),
        "window_images": n,
        "calls": calls.max(20),
        "selection": selection,
        "checks": checks,
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Time `calls` selections for a stream whose window is `now` against `zoo`, each part apart;
/// the native selector's short list must be the plugin's.
fn time_selection(zoo: &Zoo, now: &Dataset, s: &Scenario, calls: usize) -> anyhow::Result<Value> {
    let host = PluginHost::new(Limits::default())?;
    let nearest = host.load("nearest", builtin("nearest")?)?;
    let params = if s.zoo.selector.name == "nearest" {
        params_from_toml(&s.zoo.selector.params).map_err(anyhow::Error::msg)?
    } else {
        Vec::new()
    };
    let (mut sig, mut req, mut call, mut total, mut native) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut picked = Vec::new();
    for i in 0..calls + 10 {
        let t = Instant::now();
        let look = Look::of(now);
        let t_sig = ms(t);
        let t1 = Instant::now();
        let request = SelectionRequest {
            stream_id: "cam-0".into(),
            window: zoo.len() as u32,
            signature: look.mean,
            entries: zoo.entries(None),
            max_candidates: s.zoo.max_candidates,
        };
        let t_req = ms(t1);
        let t2 = Instant::now();
        picked = host.select(&nearest, &request, &params)?;
        let t_call = ms(t2);
        let t_total = ms(t);
        let t3 = Instant::now();
        let natively = Nearest::select(&request, &params)
            .map_err(|e| anyhow::anyhow!("native nearest: {e}"))?;
        let t_native = ms(t3);
        anyhow::ensure!(
            natively == picked,
            "native and WebAssembly nearest disagree"
        );
        // The first calls warm caches and the allocator; they are not kept.
        if i >= 10 {
            sig.push(t_sig);
            req.push(t_req);
            call.push(t_call);
            total.push(t_total);
            native.push(t_native);
        }
    }
    let p95 = percentile(&mut total, 0.95);
    let ratio = percentile(&mut call, 0.5) / percentile(&mut native, 0.5);
    Ok(json!({
        "selection_ms": spread(&mut total),
        "signature_ms": spread(&mut sig),
        "request_ms": spread(&mut req),
        "plugin_call_ms": spread(&mut call),
        "native_select_ms": spread(&mut native),
        "plugin_vs_native_ratio": ratio,
        "goal_ms": GOAL_MS,
        "meets_goal": p95 <= GOAL_MS,
        "short_list": picked,
    }))
}

/// What the short list costs to check: modelled GPU-seconds per window as a fraction of the
/// window's GPU time for scenario `s` (every stream checking as many candidates as the zoo
/// and the limits allow), and the wall time of one check on this CPU.
fn check_cost(
    be: &CpuBackend,
    zoo: &Zoo,
    now: &Dataset,
    s: &Scenario,
    arch: Arch,
) -> anyhow::Result<Value> {
    // As in `Stream::open`: every 4th labelled sample is the validation split.
    let val_idx: Vec<usize> = (0..now.len()).filter(|j| j % 4 == 3).collect();
    let val = now.select(&val_idx);
    let cost = CostModel::of(s, arch, val.h, val.w);
    let k = s
        .zoo
        .selector
        .params
        .get("k")
        .and_then(|v| v.as_integer().map(|i| i as f64).or(v.as_float()))
        .unwrap_or(3.0) as usize;
    let per_stream = k.min(s.zoo.max_candidates as usize).min(zoo.len());
    let check_gpu = cost.infer_seconds(val.h, val.w, val.len());
    let window_gpu = s.gpus as f64 * s.window_seconds;
    let per_window = check_gpu * (per_stream * s.cameras.len()) as f64;
    let (mut load, mut eval) = (Vec::new(), Vec::new());
    let ids: Vec<String> = zoo.models().map(|m| m.id.clone()).collect();
    for id in ids.iter().cycle().take(20) {
        let t = Instant::now();
        let mut m = zoo.load(be, id).context("a zoo model failed to load")?;
        load.push(ms(t));
        let t = Instant::now();
        model::evaluate(be, &mut m, &val, 256);
        eval.push(ms(t));
    }
    Ok(json!({
        "streams": s.cameras.len(),
        "candidates_per_stream": per_stream,
        "validation_images": val.len(),
        "modelled_gpu_seconds_per_check": check_gpu,
        "modelled_gpu_seconds_per_window": per_window,
        "window_gpu_seconds": window_gpu,
        "fraction_of_window": per_window / window_gpu,
        "cpu_load_ms": spread(&mut load),
        "cpu_evaluate_ms": spread(&mut eval),
    }))
}

fn print_report(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.3}"));
    let sel = &r["selection"];
    println!(
        "selection for a zoo of {} models ({} signature values, {} labelled images), {} calls",
        r["zoo_models"], r["signature_values"], r["window_images"], r["calls"]
    );
    for (label, key) in [
        ("signature (Look of the window)", "signature_ms"),
        ("selection request", "request_ms"),
        ("nearest, through the sandbox", "plugin_call_ms"),
        ("all of it", "selection_ms"),
        ("nearest, native (for the ratio)", "native_select_ms"),
    ] {
        println!(
            "  {label:34} p50 {} ms  p95 {} ms",
            f(&sel[key]["p50"]),
            f(&sel[key]["p95"])
        );
    }
    println!(
        "  goal: p95 <= {} ms: {}",
        sel["goal_ms"],
        if sel["meets_goal"] == true {
            "met"
        } else {
            "NOT met"
        }
    );
    let c = &r["checks"];
    println!(
        "checks on {}: {} streams x {} candidates x {} validation images = {} modelled GPU-s per window, {:.2}% of the window's GPU time",
        r["scenario"],
        c["streams"],
        c["candidates_per_stream"],
        c["validation_images"],
        f(&c["modelled_gpu_seconds_per_window"]),
        100.0 * c["fraction_of_window"].as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "  one check on this CPU: load p50 {} ms, evaluate p50 {} ms",
        f(&c["cpu_load_ms"]["p50"]),
        f(&c["cpu_evaluate_ms"]["p50"])
    );
}
