//! `tandem bench ...`: benchmarks that print their figures. Alternatives are measured side
//! by side in one run (interleaved repetitions, median kept), since machines are noisy.

use std::time::Instant;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::cli::backend;
use crate::compute::{
    Backend, GemmShape, SgdStep,
    cpu::{CpuBackend, sgemm_single},
};
use crate::model::{Arch, Model};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// GEMM and CNN throughput on each backend, against single-threaded sgemm.
    Kernels {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// GEMM size (n×n×n).
        #[arg(long, default_value_t = 1024)]
        gemm_size: usize,
        /// Repetitions of each measurement (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Also run the model on the wgpu backend (on a software adapter this is slow).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        wgpu: bool,
    },
    /// Plugin host: instantiation, call overhead, thief decision time (WebAssembly vs native),
    /// and fair in Rust beside its Python port (size, compile, instantiate, decisions).
    Plugins {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// The Python fair component [default: <target>/wasm32-wasip2/plugin/fair_py.wasm
        /// beside this executable, where scripts/setup.sh builds it].
        #[arg(long)]
        python_fair: Option<std::path::PathBuf>,
    },
    /// Model zoo: selection time (signature, request, the nearest selector through the
    /// sandbox) for a zoo of 30 models, and the checks' modelled GPU cost per window.
    Zoo {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Models in the zoo.
        #[arg(long, default_value_t = 30)]
        models: usize,
        /// Selections timed (p50/p95 over them).
        #[arg(long, default_value_t = 500)]
        calls: usize,
        /// The scenario whose images, camera and GPU the figures use [default: the demo's].
        #[arg(long)]
        scenario: Option<std::path::PathBuf>,
    },
    /// Cold starts of a stream scaled to zero: time to first inference (p50, p99) with nothing
    /// prepared, from preprocessed artifacts and pre-warmed, step by step; a retraining job's
    /// time to its first batch after each.
    Coldstart(super::coldstart_bench::ColdstartArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Kernels {
            json,
            gemm_size,
            reps,
            wgpu,
        } => {
            let report = bench_kernels(gemm_size, reps.max(1), wgpu)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_table(&report);
            }
            Ok(())
        }
        BenchCommand::Plugins { json, python_fair } => super::plugin_bench::run(json, python_fair),
        BenchCommand::Zoo {
            json,
            models,
            calls,
            scenario,
        } => super::zoo_bench::run(json, models, calls, scenario),
        BenchCommand::Coldstart(args) => super::coldstart_bench::run(args),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_kernels(size: usize, reps: usize, with_wgpu: bool) -> anyhow::Result<Value> {
    let cpu = CpuBackend::default();
    let s = GemmShape {
        m: size,
        n: size,
        k: size,
        trans_a: false,
        trans_b: false,
    };
    let flops = 2.0 * (size as f64).powi(3);
    let a: Vec<f32> = (0..size * size)
        .map(|i| ((i * 7 + 3) % 101) as f32 / 101.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..size * size)
        .map(|i| ((i * 13 + 5) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let mut c = vec![0.0f32; size * size];
    // Warm up both, then interleave.
    sgemm_single(s, &a, &b, &mut c, 0.0);
    cpu.gemm(s, &a, &b, &mut c, 0.0);
    let (mut single, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        sgemm_single(s, &a, &b, &mut c, 0.0);
        single.push(flops / t.elapsed().as_secs_f64() / 1e9);
        let t = Instant::now();
        cpu.gemm(s, &a, &b, &mut c, 0.0);
        ours.push(flops / t.elapsed().as_secs_f64() / 1e9);
    }
    let sgemm_gflops = median(single);
    let cpu_gemm_gflops = median(ours);

    let cpu_model = model_bench(&cpu, reps.max(3) * 4)?;
    let mut report = json!({
        "gemm_size": size,
        "sgemm_gflops": sgemm_gflops,
        "cpu_gemm_gflops": cpu_gemm_gflops,
        "cpu_threads": cpu.threads(),
        "cpu": cpu_model,
        "model_efficiency": cpu_model["train_gflops"].as_f64().unwrap_or(0.0) / sgemm_gflops,
        "adapter": Value::Null,
        "wgpu_gemm_gflops": Value::Null,
        "wgpu": Value::Null,
    });
    if with_wgpu {
        match backend::wgpu_report(size, reps.min(2), |be| model_bench(be, 2)) {
            Ok((adapter, gflops, model)) => {
                report["adapter"] = json!(adapter);
                report["wgpu_gemm_gflops"] = json!(gflops);
                report["wgpu"] = model;
            }
            Err(e) => report["wgpu_error"] = json!(format!("{e:#}")),
        }
    }
    Ok(report)
}

/// CNN throughput at batch 64 on Fashion-MNIST-shaped input (28×28 grey, 10 classes,
/// hidden 256), training all layers.
fn model_bench<B: Backend>(be: &B, steps: usize) -> anyhow::Result<Value> {
    const BATCH: usize = 64;
    const STEP: SgdStep = SgdStep {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    let arch = Arch::new(1, 10, 256);
    let mut model = Model::new(be, arch, 1);
    let x: Vec<f32> = (0..BATCH * 28 * 28)
        .map(|i| ((i * 31 + 7) % 255) as f32 / 255.0)
        .collect();
    let y: Vec<f32> = (0..BATCH).map(|i| (i % 10) as f32).collect();
    let step = |model: &mut Model<B>| model.train_step(be, &x, &y, (BATCH, 28, 28), 5, STEP);
    step(&mut model);
    let mut train = Vec::new();
    let mut infer = Vec::new();
    for _ in 0..steps {
        let t = Instant::now();
        step(&mut model);
        train.push(BATCH as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        model.logits(be, &x, (BATCH, 28, 28));
        infer.push(BATCH as f64 / t.elapsed().as_secs_f64());
    }
    let train_sps = median(train);
    Ok(json!({
        "backend": be.describe(),
        "batch": BATCH,
        "train_samples_per_s": train_sps,
        "infer_samples_per_s": median(infer),
        "train_gflops": train_sps * arch.train_flops(28, 28, 5) / 1e9,
        "train_mflop_per_sample": arch.train_flops(28, 28, 5) / 1e6,
    }))
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    println!("GEMM {n}x{n}x{n} f32 (GFLOP/s)", n = r["gemm_size"]);
    println!(
        "  matrixmultiply sgemm, 1 thread   {}",
        f(&r["sgemm_gflops"])
    );
    println!(
        "  cpu backend ({} threads)          {}",
        r["cpu_threads"],
        f(&r["cpu_gemm_gflops"])
    );
    println!(
        "  wgpu ({})  {}",
        r["adapter"].as_str().unwrap_or("no adapter"),
        f(&r["wgpu_gemm_gflops"])
    );
    println!("CNN, batch 64, 28x28 grey, all layers trained");
    for key in ["cpu", "wgpu"] {
        let m = &r[key];
        if m.is_null() {
            continue;
        }
        println!(
            "  {key:5} train {} samples/s ({} GFLOP/s useful), infer {} samples/s",
            f(&m["train_samples_per_s"]),
            f(&m["train_gflops"]),
            f(&m["infer_samples_per_s"])
        );
    }
    println!(
        "model_efficiency (cpu train GFLOP/s / sgemm GFLOP/s): {}",
        f(&r["model_efficiency"])
    );
    if let Some(e) = r["wgpu_error"].as_str() {
        println!("wgpu: {e}");
    }
}
