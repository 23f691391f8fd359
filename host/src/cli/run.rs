//! `tandem run` and `tandem compare`: a scenario's windows under one policy, or under
//! several policies on identical streams, side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cli::backend::{self, BackendChoice, WithBackend};
use crate::compute::Backend;
use crate::engine::scenario::{PluginRef, SourceKind};
use crate::engine::{self, Camera, CostModel, Engine, Plugins, RunReport, Scenario, SourcePool};
use crate::history::{History, NewRun};
use crate::model::{self, Arch, Model, TrainConfig, weights};
use crate::plugin::{Limits, Plugin, PluginHost, Registry};

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// The scenario file (TOML; see examples/).
    pub scenario: PathBuf,
    /// Use this policy instead of the scenario's (a plugin name, `name:key=value:...` to set
    /// parameters, or a .wasm file).
    #[arg(long)]
    pub policy: Option<String>,
    /// Run only this many windows.
    #[arg(long)]
    pub windows: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args, Clone)]
pub struct CompareArgs {
    pub scenario: PathBuf,
    /// Policies to compare, comma-separated (each as for `run --policy`).
    #[arg(long, default_value = "thief,fair,no-retrain")]
    pub policies: String,
    #[arg(long)]
    pub windows: Option<u32>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args, Clone)]
pub struct Common {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t)]
    pub backend: BackendChoice,
    /// Where plugins, cached models and history live.
    #[arg(long, default_value = ".tandem")]
    pub data_dir: PathBuf,
    /// Also write every window's full record (policy inputs and outputs, allocations,
    /// predictions) as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(w) = args.windows {
        scenario.windows = w.min(scenario.windows).max(1);
    }
    let policy = match &args.policy {
        Some(p) => parse_policy(p)?,
        None => scenario.policy.clone(),
    };
    let json = args.common.json;
    let report_path = args.common.report.clone();
    let reports = backend::with_backend(
        args.common.backend,
        Job {
            scenario,
            policies: vec![policy],
            common: args.common,
        },
    )?;
    write_report(report_path.as_deref(), &reports)?;
    let report = &reports[0];
    if json {
        println!("{}", serde_json::to_string_pretty(&summary_json(report))?);
    } else {
        print_summary(report);
    }
    Ok(())
}

pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(w) = args.windows {
        scenario.windows = w.min(scenario.windows).max(1);
    }
    let policies = args
        .policies
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(parse_policy)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if policies.is_empty() {
        bail!("--policies: name at least one policy");
    }
    let json = args.common.json;
    let report_path = args.common.report.clone();
    let started = Instant::now();
    let reports = backend::with_backend(
        args.common.backend,
        Job {
            scenario: scenario.clone(),
            policies,
            common: args.common,
        },
    )?;
    write_report(report_path.as_deref(), &reports)?;
    let out = compare_json(&scenario, &reports, started.elapsed().as_secs_f64());
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_compare(&reports);
        eprintln!("({:.0} s)", started.elapsed().as_secs_f64());
    }
    Ok(())
}

fn write_report(path: Option<&Path>, reports: &[RunReport]) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_vec_pretty(reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `name` or `name:key=value:key=value` (numbers, true/false, or text).
fn parse_policy(spec: &str) -> anyhow::Result<PluginRef> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default().trim().to_string();
    if name.is_empty() {
        bail!("policy `{spec}`: empty name");
    }
    let mut params = BTreeMap::new();
    for kv in parts {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("policy `{spec}`: `{kv}` is not key=value")
        };
        let value = if let Ok(n) = v.parse::<f64>() {
            toml::Value::Float(n)
        } else if let Ok(b) = v.parse::<bool>() {
            toml::Value::Boolean(b)
        } else {
            toml::Value::String(v.to_string())
        };
        params.insert(k.to_string(), value);
    }
    Ok(PluginRef { name, params })
}

fn label(p: &PluginRef) -> String {
    let mut s = p.name.clone();
    for (k, v) in &p.params {
        let v = match v {
            toml::Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        s.push_str(&format!(":{k}={v}"));
    }
    s
}

struct Job {
    scenario: Scenario,
    policies: Vec<PluginRef>,
    common: Common,
}

impl WithBackend for Job {
    type Output = Vec<RunReport>;
    fn run<B: Backend>(self, be: &B) -> anyhow::Result<Vec<RunReport>> {
        let Job {
            scenario,
            policies,
            common,
        } = self;
        let recorder = Recorder::open(&common.data_dir)?;
        let ctx = Context_::new(be, &scenario, &common.data_dir, !common.json)?;
        let comparison = if policies.len() > 1 {
            let labels: Vec<String> = policies.iter().map(label).collect();
            Some(
                recorder
                    .rt
                    .block_on(recorder.history.start_comparison(&scenario.name, &labels))?,
            )
        } else {
            None
        };
        let mut reports = Vec::new();
        for policy in &policies {
            reports.push(ctx.run_policy(
                be,
                &scenario,
                policy,
                !common.json,
                &recorder,
                comparison,
            )?);
        }
        if !common.json {
            eprintln!(
                "history: {}",
                common.data_dir.join("history.sqlite").display()
            );
        }
        Ok(reports)
    }
}

/// What every policy of a comparison shares: the plugin host, the source images, the
/// pretrained starting model and the cost model.
struct Context_<B: Backend> {
    host: Arc<PluginHost>,
    registry: Registry,
    pools: Vec<Arc<SourcePool>>,
    pretrained: Model<B>,
    cost: CostModel,
}

impl<B: Backend> Context_<B> {
    fn new(be: &B, s: &Scenario, data_dir: &Path, verbose: bool) -> anyhow::Result<Self> {
        let host =
            Arc::new(PluginHost::new(Limits::default())?.with_cache_dir(data_dir.join("compiled")));
        let registry = Registry::open(data_dir)?;
        registry.register_builtins(&host)?;
        let mut by_kind: Vec<(SourceKind, Arc<SourcePool>)> = Vec::new();
        let mut pools = Vec::new();
        for cam in &s.cameras {
            let pool = match by_kind.iter().find(|(k, _)| *k == cam.source) {
                Some((_, p)) => p.clone(),
                None => {
                    let p = SourcePool::load(&cam.source, s.seed)
                        .with_context(|| format!("camera `{}`", cam.name))?;
                    by_kind.push((cam.source.clone(), p.clone()));
                    p
                }
            };
            pools.push(pool);
        }
        let kinds: std::collections::HashSet<(usize, usize, usize)> = pools
            .iter()
            .map(|p| (p.train.h, p.train.w, p.train.c))
            .collect();
        if kinds.len() > 1 {
            bail!(
                "all cameras of a scenario must share one image shape (their models are pretrained alike); got {kinds:?}"
            );
        }
        let pool = &pools[0];
        let arch = Arch {
            in_channels: pool.train.c,
            channels: s.channels.map(|c| c as usize),
            hidden: s.hidden as usize,
            classes: pool.train.classes,
        };
        let pretrained =
            pretrained_model(be, s, arch, &s.cameras[0].source, pool, data_dir, verbose)?;
        let per_second = s.cameras[0].frame_rate * s.cameras[0].objects_per_frame as f64;
        // Default capacity: one camera's inference at full rate and resolution needs a
        // quarter GPU, as in Ekya's setting.
        let gpu_flops = s.gpu_gflops.map_or_else(
            || 4.0 * per_second * arch.forward_flops(pool.train.h, pool.train.w),
            |g| g * 1e9,
        );
        let cost = CostModel { arch, gpu_flops };
        if verbose {
            let device = CostModel::calibrate(be, arch, pool.train.h, pool.train.w);
            eprintln!(
                "modelled GPU: {:.3} GFLOP/s each, {} GPU(s); this device trains at {device:.1} GFLOP/s ({:.0}x the modelled GPU)",
                gpu_flops / 1e9,
                s.gpus,
                device * 1e9 / gpu_flops
            );
        }
        Ok(Self {
            host,
            registry,
            pools,
            pretrained,
            cost,
        })
    }

    fn load_plugin(&self, r: &PluginRef) -> anyhow::Result<Arc<Plugin>> {
        if r.name.ends_with(".wasm") {
            return Ok(self.host.load_file(Path::new(&r.name))?);
        }
        let entry = self.registry.find(&r.name)?.with_context(|| {
            format!(
                "no plugin named `{}` (see `tandem plugin list`; built-ins need scripts/setup.sh)",
                r.name
            )
        })?;
        Ok(self.registry.load(&self.host, &entry.digest)?)
    }

    fn run_policy(
        &self,
        be: &B,
        s: &Scenario,
        policy: &PluginRef,
        verbose: bool,
        recorder: &Recorder,
        comparison: Option<i64>,
    ) -> anyhow::Result<RunReport> {
        let params = |r: &PluginRef| {
            engine::params_from_toml(&r.params)
                .map_err(|e| anyhow::anyhow!("plugin `{}`: {e}", r.name))
        };
        let plugins = Plugins {
            host: self.host.clone(),
            policy: self.load_plugin(policy)?,
            policy_params: params(policy)?,
            space: self.load_plugin(&s.config_space)?,
            space_params: params(&s.config_space)?,
            estimator: self.load_plugin(&s.estimator)?,
            estimator_params: params(&s.estimator)?,
        };
        let cameras = s
            .cameras
            .iter()
            .enumerate()
            .map(|(index, spec)| Camera {
                index,
                spec: spec.clone(),
                pool: self.pools[index].clone(),
            })
            .collect();
        let name = label(policy);
        let run_id = recorder.rt.block_on(recorder.history.start_run(&NewRun {
            scenario: &s.name,
            scenario_json: &serde_json::to_string(s)?,
            policy: &name,
            policy_digest: plugins.policy.digest(),
            backend: &be.describe(),
            windows_planned: s.windows,
            comparison,
        }))?;
        let mut engine = Engine::new(
            be,
            s.clone(),
            plugins,
            cameras,
            &self.pretrained,
            self.cost.clone(),
        );

        let bar = if verbose {
            ProgressBar::new(s.windows as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:30}] window {pos}/{len} {elapsed}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_message(name.clone());
        let mut windows = Vec::new();
        for _ in 0..s.windows {
            let w = match engine.run_window() {
                Ok(w) => w,
                Err(e) => {
                    recorder
                        .rt
                        .block_on(recorder.history.finish_run(run_id, Err(&e.to_string())))?;
                    return Err(e.into());
                }
            };
            // Each window is committed as soon as it ends: a crash loses at most the next.
            recorder
                .rt
                .block_on(recorder.history.record_window(run_id, &w))?;
            bar.inc(1);
            if verbose {
                bar.println(format!(
                    "{name:24} window {:>2}: mean accuracy {:.3}",
                    w.window, w.mean_accuracy
                ));
            }
            windows.push(w);
        }
        bar.finish_and_clear();
        let report = RunReport {
            scenario: s.name.clone(),
            policy: name,
            windows,
        };
        recorder.rt.block_on(
            recorder
                .history
                .finish_run(run_id, Ok(report.mean_accuracy())),
        )?;
        Ok(report)
    }
}

/// The history database and a runtime to drive it from this synchronous loop.
struct Recorder {
    rt: tokio::runtime::Runtime,
    history: History,
}

impl Recorder {
    fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let history = rt.block_on(History::open(&data_dir.join("history.sqlite")))?;
        Ok(Self { rt, history })
    }
}

/// The starting model of every camera: pretrained on undrifted data, cached on disk by what
/// determines it.
fn pretrained_model<B: Backend>(
    be: &B,
    s: &Scenario,
    arch: Arch,
    source: &SourceKind,
    pool: &SourcePool,
    data_dir: &Path,
    verbose: bool,
) -> anyhow::Result<Model<B>> {
    let key = format!("{source:?}|{arch:?}|{:?}|{}", s.pretrain, s.seed);
    let digest = hex(&Sha256::digest(key.as_bytes()))[..16].to_string();
    let path = data_dir
        .join("models")
        .join(format!("pretrained-{digest}.safetensors"));
    if path.exists() {
        return Ok(weights::load(be, &path, Some(arch))?);
    }
    let data = pool.train.take(s.pretrain.samples as usize);
    let mut m = Model::new(be, arch, s.seed);
    let cfg = TrainConfig {
        epochs: s.pretrain.epochs as usize,
        seed: s.seed,
        ..TrainConfig::default()
    };
    let bar = if verbose {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("pretraining {msg} [{bar:30}] {pos}/{len} {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("({} samples x {} epochs)", data.len(), cfg.epochs));
    model::train(be, &mut m, &data, &cfg, &mut |d, t| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    });
    bar.finish_and_clear();
    weights::save(be, &m, &path)?;
    if verbose {
        eprintln!("pretrained starting model cached at {}", path.display());
    }
    Ok(m)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn summary_json(r: &RunReport) -> serde_json::Value {
    json!({
        "scenario": r.scenario,
        "policy": r.policy,
        "mean_accuracy": r.mean_accuracy(),
        "profiler_median_abs_error": r.profiler_median_abs_error(),
        "windows": r.windows.iter().map(|w| json!({
            "window": w.window,
            "mean_accuracy": w.mean_accuracy,
            "gpu_utilization": w.gpu_utilization,
            "profiler_gpu_seconds": w.profiler_gpu_seconds,
            "decision_at": w.decision_at,
            "policy_calls": w.policy_calls.len(),
            "policy_failures": w.policy_calls.iter().filter(|c| c.error.is_some()).count(),
            "streams": w.streams.iter().map(|s| json!({
                "stream": s.stream,
                "accuracy": s.accuracy,
                "start_accuracy": s.start_accuracy,
                "end_accuracy": s.end_accuracy,
                "infer_config": s.infer_config,
                "infer_share": s.infer_share,
                "retrain": s.retrain,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn compare_json(s: &Scenario, reports: &[RunReport], seconds: f64) -> serde_json::Value {
    let policies: serde_json::Map<String, serde_json::Value> = reports
        .iter()
        .map(|r| {
            (
                r.policy.clone(),
                json!({
                    "mean_accuracy": r.mean_accuracy(),
                    "windows": r.windows.iter().map(|w| w.mean_accuracy).collect::<Vec<_>>(),
                    "profiler_median_abs_error": r.profiler_median_abs_error(),
                    "gpu_utilization": r.windows.iter().map(|w| w.gpu_utilization).sum::<f64>() / r.windows.len().max(1) as f64,
                    "retraining_jobs_finished": r.windows.iter().flat_map(|w| &w.streams).filter(|s| s.retrain.as_ref().is_some_and(|j| j.finished_at.is_some())).count(),
                }),
            )
        })
        .collect();
    json!({ "scenario": s.name, "windows": s.windows, "streams": s.cameras.len(), "gpus": s.gpus, "seconds": seconds, "policies": policies })
}

fn print_summary(r: &RunReport) {
    println!("scenario {} under {}", r.scenario, r.policy);
    let names: Vec<&str> = r
        .windows
        .first()
        .map(|w| w.streams.iter().map(|s| s.stream.as_str()).collect())
        .unwrap_or_default();
    print!("{:>6}", "window");
    for n in &names {
        print!(" {n:>12}");
    }
    println!(" {:>8} {:>7} {:>9}", "mean", "GPU use", "profiler");
    for w in &r.windows {
        print!("{:>6}", w.window);
        for s in &w.streams {
            let mark = match &s.retrain {
                Some(j) if j.finished_at.is_some() => "*",
                Some(_) => "~",
                None => " ",
            };
            print!(" {:>11.3}{mark}", s.accuracy);
        }
        println!(
            " {:>8.3} {:>6.0}% {:>8.1}s",
            w.mean_accuracy,
            100.0 * w.gpu_utilization,
            w.profiler_gpu_seconds
        );
    }
    println!(
        "mean accuracy {:.3}   (* retrained this window, ~ retraining did not finish)",
        r.mean_accuracy()
    );
    match r.profiler_median_abs_error() {
        Some(e) => println!(
            "profiler: median |predicted - actual| accuracy {:.3} over jobs that ran",
            e
        ),
        None => println!("profiler: no retraining job finished, so no prediction could be checked"),
    }
    let mut alloc = Vec::new();
    for j in r
        .windows
        .iter()
        .flat_map(|w| &w.streams)
        .filter_map(|s| s.retrain.as_ref())
    {
        if j.allocated_share > 0.0 {
            alloc.push(j.delivered_share / j.allocated_share);
        }
    }
    if !alloc.is_empty() {
        let worst = alloc.iter().map(|r| (r - 1.0).abs()).fold(0.0, f64::max);
        println!(
            "executor: delivered/allocated share over {} jobs, worst deviation {:.1}%",
            alloc.len(),
            100.0 * worst
        );
    }
}

fn print_compare(reports: &[RunReport]) {
    let windows = reports.iter().map(|r| r.windows.len()).max().unwrap_or(0);
    print!("{:>6}", "window");
    for r in reports {
        print!(" {:>16}", truncate(&r.policy, 16));
    }
    println!();
    for w in 0..windows {
        print!("{w:>6}");
        for r in reports {
            match r.windows.get(w) {
                Some(x) => print!(" {:>16.3}", x.mean_accuracy),
                None => print!(" {:>16}", "-"),
            }
        }
        println!();
    }
    print!("{:>6}", "mean");
    for r in reports {
        print!(" {:>16.3}", r.mean_accuracy());
    }
    println!();
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect()
    }
}
