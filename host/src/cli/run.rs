//! `tandem run` and `tandem compare`: a scenario's windows under one policy, or under
//! several policies on identical streams, side by side. Every committed window leaves a
//! checkpoint, so `tandem run --resume RUN_ID` continues a stopped run where it stopped. The
//! first SIGINT/SIGTERM stops after the window in progress (the run is `interrupted` and can
//! be resumed); a second one exits at once.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::backend::{self, BackendChoice, WithBackend};
use crate::compute::Backend;
use crate::engine::report::{LifecycleReport, LifecycleSummary};
use crate::engine::scenario::PluginRef;
use crate::engine::{
    RunReport, Scenario, Session, checkpoint, parse_policy, policy_label, session,
};
use crate::history::{Recorder, ResumePoint, RunMeta};
use crate::plugin::Catalog;
use crate::text::truncate;

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// The scenario file (TOML; see examples/).
    #[arg(required_unless_present = "resume")]
    pub scenario: Option<PathBuf>,
    /// Use this policy instead of the scenario's (a plugin name, `name:key=value:...` to set
    /// parameters, or a .wasm file).
    #[arg(long, conflicts_with = "resume")]
    pub policy: Option<String>,
    /// Run only this many windows (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "resume")]
    pub windows: Option<u32>,
    /// Continue run RUN_ID (interrupted or failed) from its last committed window, with the
    /// scenario, policy, models and exemplar memories it had there.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "scenario")]
    pub resume: Option<i64>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args, Clone)]
pub struct CompareArgs {
    pub scenario: PathBuf,
    /// Policies to compare, comma-separated (each as for `run --policy`); default: the
    /// scenario's `compare` list, or thief,fair,no-retrain.
    #[arg(long)]
    pub policies: Option<String>,
    /// Run only this many windows (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
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
    let (scenario, policy, resume) = match (args.resume, &args.scenario) {
        (Some(id), _) => {
            let point = resume_point(&args.common.data_dir, id)?;
            let scenario: Scenario = serde_json::from_str(&point.scenario_json)
                .with_context(|| format!("run {id}: the scenario recorded in history"))?;
            let policy = parse_policy(&point.policy).map_err(anyhow::Error::msg)?;
            (scenario, policy, Some((id, point)))
        }
        (None, Some(path)) => {
            let mut scenario = Scenario::load(path)?;
            if let Some(w) = args.windows {
                scenario.windows = w.min(scenario.windows);
            }
            let policy = match &args.policy {
                Some(p) => parse_policy(p).map_err(anyhow::Error::msg)?,
                None => scenario.policy.clone(),
            };
            (scenario, policy, None)
        }
        (None, None) => bail!("name a scenario file, or --resume RUN_ID"),
    };
    let json = args.common.json;
    let report_path = args.common.report.clone();
    let reports = backend::with_backend(
        args.common.backend,
        Job {
            scenario,
            policies: vec![policy],
            common: args.common,
            resume,
        },
    )?;
    write_report(report_path.as_deref(), &reports)?;
    let report = &reports[0];
    if json {
        println!("{}", serde_json::to_string_pretty(&summary_json(report))?);
    } else {
        print_summary(report);
    }
    fail_if_the_policy_never_decided(&reports)?;
    fail_if_stopped(&reports)
}

/// Where run `id` stopped, checked for resuming.
fn resume_point(data_dir: &Path, id: i64) -> anyhow::Result<ResumePoint> {
    let recorder = Recorder::open(data_dir)?;
    let point = recorder
        .block_on(recorder.history().resume_point(id))?
        .with_context(|| format!("no run {id} in {}", data_dir.display()))?;
    match point.status.as_str() {
        "running" => bail!(
            "run {id} is still running (its writer renewed its lease in the last {} s)",
            crate::history::LEASE.as_secs()
        ),
        "finished" => bail!("run {id} finished all its windows"),
        _ => {}
    }
    if point.windows_done >= point.windows_planned {
        bail!(
            "run {id} has committed all its {} windows",
            point.windows_planned
        );
    }
    if point.checkpoint.is_none() && point.windows_done > 0 {
        bail!(
            "run {id} has no checkpoint (it was recorded by a version without them); start it again"
        );
    }
    Ok(point)
}

/// A run stopped by a signal is not a success: say how to continue it.
fn fail_if_stopped(reports: &[RunReport]) -> anyhow::Result<()> {
    if STOP.load(Ordering::SeqCst) {
        bail!(
            "stopped by a signal after {} window(s)",
            reports.iter().map(|r| r.windows.len()).sum::<usize>()
        );
    }
    Ok(())
}

/// Set by the first SIGINT/SIGTERM: runs stop after their window.
static STOP: AtomicBool = AtomicBool::new(false);

/// On the first signal ask runs to stop after their window; on the second exit at once.
fn stop_on_signal(recorder: &Recorder) {
    recorder.handle().spawn(async {
        super::stop_signal().await;
        STOP.store(true, Ordering::SeqCst);
        eprintln!("stopping after the window in progress (a second Ctrl-C stops at once)");
        super::stop_signal().await;
        eprintln!("stopped; the run reads as interrupted and resumes from its last window");
        std::process::exit(130);
    });
}

/// A run whose policy failed every call is not a success, whatever the fallback achieved.
fn fail_if_the_policy_never_decided(reports: &[RunReport]) -> anyhow::Result<()> {
    let never: Vec<String> = reports
        .iter()
        .filter(|r| r.fallbacks().all_failed())
        .map(|r| format!("{}: {}", r.policy, r.fallbacks().describe()))
        .collect();
    if !never.is_empty() {
        bail!(
            "the policy failed every call, so every decision was the fallback's\n  {}",
            never.join("\n  ")
        );
    }
    Ok(())
}

pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(w) = args.windows {
        scenario.windows = w.min(scenario.windows);
    }
    let named = match &args.policies {
        Some(p) => p.clone(),
        None if !scenario.compare.is_empty() => scenario.compare.join(","),
        None => "thief,fair,no-retrain".to_string(),
    };
    let policies = named
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| parse_policy(p).map_err(anyhow::Error::msg))
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
            resume: None,
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
    fail_if_the_policy_never_decided(&reports)?;
    fail_if_stopped(&reports)
}

fn write_report(path: Option<&Path>, reports: &[RunReport]) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_vec_pretty(reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

struct Job {
    scenario: Scenario,
    policies: Vec<PluginRef>,
    common: Common,
    /// Continue this run from its checkpoint instead of starting one.
    resume: Option<(i64, ResumePoint)>,
}

/// How a policy's run starts.
enum Start<'a> {
    /// A new run, in this comparison if any.
    New(Option<i64>),
    /// Run `.0` again from where `.1` says it stopped.
    Resume(i64, &'a ResumePoint),
}

impl WithBackend for Job {
    type Output = Vec<RunReport>;
    fn run<B: Backend>(self, be: &B) -> anyhow::Result<Vec<RunReport>> {
        let Job {
            scenario,
            policies,
            common,
            resume,
        } = self;
        let recorder = Recorder::open(&common.data_dir)?.with_checkpoints(&common.data_dir);
        stop_on_signal(&recorder);
        let verbose = !common.json;
        let bar = if verbose {
            ProgressBar::new(1)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "pretraining the starting model [{bar:30}] {pos}/{len} samples {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        let catalog = Catalog::open(&common.data_dir)?;
        // Every policy and parameter is checked before anything runs, pretraining included.
        session::check(&catalog, &scenario, &policies)?;
        let session = Session::new(be, &scenario, &common.data_dir, catalog, &mut |d, t| {
            bar.set_length(t as u64);
            bar.set_position(d as u64);
        })?;
        bar.finish_and_clear();
        if verbose {
            let (device, modelled) = session.calibrate(be);
            eprintln!(
                "modelled GPU: {modelled:.3} GFLOP/s each, {} GPU(s); this device trains at {device:.1} GFLOP/s ({:.0}x the modelled GPU)",
                scenario.gpus,
                device / modelled
            );
        }
        let start = match &resume {
            Some((id, point)) => Start::Resume(*id, point),
            None if policies.len() > 1 => {
                let labels: Vec<String> = policies.iter().map(policy_label).collect();
                Start::New(Some(recorder.block_on(
                    recorder.history().start_comparison(&scenario.name, &labels),
                )?))
            }
            None => Start::New(None),
        };
        let mut reports = Vec::new();
        for policy in &policies {
            if STOP.load(Ordering::SeqCst) {
                break;
            }
            reports.push(run_policy(
                &session, be, &scenario, policy, verbose, &recorder, &start,
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

fn run_policy<B: Backend>(
    session: &Session<B>,
    be: &B,
    s: &Scenario,
    policy: &PluginRef,
    verbose: bool,
    recorder: &Recorder,
    start: &Start<'_>,
) -> anyhow::Result<RunReport> {
    let name = policy_label(policy);
    let mut engine = session.engine(be, s, policy)?;
    if let Start::Resume(id, point) = start {
        if engine.policy_digest() != point.policy_digest {
            bail!(
                "run {id}: policy `{name}` is now plugin {}, the run used {}: the same plugin is needed to resume",
                engine.policy_digest(),
                point.policy_digest
            );
        }
        if let Some(dir) = &point.checkpoint {
            let data_dir = recorder.checkpoints().context("checkpoints are kept")?;
            checkpoint::restore(&mut engine, &data_dir.join(dir))?;
        }
        if i64::from(engine.windows_done()) != point.windows_done {
            bail!(
                "run {id}: its checkpoint is of window {} but the history holds {} windows",
                engine.windows_done(),
                point.windows_done
            );
        }
        if verbose {
            eprintln!("resuming run {id} at window {}", point.windows_done);
        }
    }
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
    let mut on_window = |_: &crate::engine::Engine<'_, B>, w: &crate::engine::WindowReport| {
        bar.inc(1);
        if verbose {
            bar.println(format!(
                "{name:24} window {:>2}: mean accuracy {:.3}",
                w.window, w.mean_accuracy
            ));
        }
        windows.push(w.clone());
        if STOP.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let outcome = match start {
        Start::New(comparison) => {
            let meta = RunMeta {
                policy: &name,
                backend: &be.describe(),
                comparison: *comparison,
            };
            recorder.run(&mut engine, &meta, Some(s.windows), &mut on_window)?
        }
        Start::Resume(id, point) => {
            bar.set_position(point.windows_done as u64);
            let committed = (point.windows_done as u32, point.accuracy_sum);
            recorder.resume(&mut engine, *id, s.windows, committed, &mut on_window)?
        }
    };
    if outcome.windows < s.windows {
        eprintln!(
            "run {} interrupted after {} of {} windows: `tandem run --resume {}` continues it",
            outcome.run_id, outcome.windows, s.windows, outcome.run_id
        );
    }
    bar.finish_and_clear();
    // A run keeps the models it retrained for the next run on this data dir; runs compared
    // side by side each start from the same zoo and keep nothing, so none sees another's.
    let alone = !matches!(start, Start::New(Some(_)));
    if let (true, Some(zoo)) = (alone, engine.zoo()) {
        zoo.save(&session.zoo_dir)?;
        if verbose {
            eprintln!(
                "zoo: {} models, {:.1} MiB in {}",
                zoo.len(),
                zoo.bytes() as f64 / (1 << 20) as f64,
                session.zoo_dir.display()
            );
        }
    }
    Ok(RunReport {
        scenario: s.name.clone(),
        policy: name,
        windows,
    })
}

fn summary_json(r: &RunReport) -> serde_json::Value {
    json!({
        "scenario": r.scenario,
        "policy": r.policy,
        "mean_accuracy": r.mean_accuracy(),
        "profiler_median_abs_error": r.profiler_median_abs_error(),
        "profiler_cost_fraction": r.profiler_cost_fraction(),
        "lifecycle": r.lifecycle(),
        "zoo": r.zoo(),
        "policy_fallbacks": r.fallbacks(),
        "windows": r.windows.iter().map(|w| json!({
            "window": w.window,
            "mean_accuracy": w.mean_accuracy,
            "gpu_utilization": w.gpu_utilization,
            "profiler_gpu_seconds": w.profiler_gpu_seconds,
            "decision_at": w.decision_at,
            "policy_calls": w.policy_calls.len(),
            "policy_failures": w.policy_calls.iter().filter(|c| c.error.is_some()).count(),
            "lifecycle": w.lifecycle.as_ref().map(|l| json!({
                "memory_mean_bytes": l.memory_mean_bytes,
                "memory_peak_bytes": l.memory_peak_bytes,
                "cold_starts": l.cold_start_count(),
                "frames_lost": l.frames_lost(),
                "end_phases": l.streams.iter().map(|s| (s.stream.clone(), s.end_phase.name())).collect::<std::collections::BTreeMap<_, _>>(),
            })),
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
                    "profiler_cost_fraction": r.profiler_cost_fraction(),
                    "gpu_utilization": r.windows.iter().map(|w| w.gpu_utilization).sum::<f64>() / r.windows.len().max(1) as f64,
                    "retraining_jobs_finished": r.windows.iter().flat_map(|w| &w.streams).filter(|s| s.retrain.as_ref().is_some_and(|j| j.finished_at.is_some())).count(),
                    "lifecycle": r.lifecycle(),
                    "zoo": r.zoo(),
                    "policy_fallbacks": r.fallbacks(),
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
                Some(j) if j.finished_at.is_some() && !j.deployed => "!",
                Some(j) if j.finished_at.is_some() => "*",
                Some(_) => "~",
                None => " ",
            };
            if s.frames == 0 {
                // Its camera sent nothing this window: nothing was served or scored.
                print!(" {:>11}{mark}", "-");
            } else {
                print!(" {:>11.3}{mark}", s.accuracy);
            }
        }
        println!(
            " {:>8.3} {:>6.0}% {:>8.1}s",
            w.mean_accuracy,
            100.0 * w.gpu_utilization,
            w.profiler_gpu_seconds
        );
    }
    println!(
        "mean accuracy {:.3}   (* retrained this window, ! retrained but the new model validated worse and was not deployed, ~ retraining did not finish)",
        r.mean_accuracy()
    );
    let fallbacks = r.fallbacks();
    if fallbacks.failed > 0 {
        println!("policy: {}", fallbacks.describe());
    }
    match r.profiler_median_abs_error() {
        Some(e) => println!(
            "profiler: median |predicted - actual| accuracy {:.3} over jobs that ran",
            e
        ),
        None => println!("profiler: no retraining job finished, so no prediction could be checked"),
    }
    let failed: Vec<&str> = r
        .windows
        .iter()
        .flat_map(|w| &w.predictions)
        .filter_map(|p| p.estimator_error.as_deref())
        .collect();
    if let Some(first) = failed.first() {
        println!(
            "estimator: failed on {} prediction(s), the last profiled point stood in (first error: {first}; all in the history's predictions)",
            failed.len()
        );
    }
    if let Some(f) = r.profiler_cost_fraction() {
        println!(
            "profiler cost: {:.1}% of the GPU-time of a window (modelled GPU-seconds / (GPUs x window))",
            100.0 * f
        );
    }
    if let Some(l) = r.lifecycle() {
        print_lifecycle(&l, r.windows.last().and_then(|w| w.lifecycle.as_ref()));
    }
    print_executor(r);
}

/// How the executor's delivered shares compare with the allocated ones, per job and, on the
/// real clock, for inference.
fn print_executor(r: &RunReport) {
    // Per job: delivered/allocated and the allocated GPU-seconds over its life, which
    // weighs the summary (a job of a few batches can be a batch off on the real clock).
    let mut alloc = Vec::new();
    for w in &r.windows {
        for j in w.streams.iter().filter_map(|s| s.retrain.as_ref()) {
            let life = j.finished_at.unwrap_or(w.window_seconds) - j.started_at;
            if j.allocated_share > 0.0 && life > 0.0 {
                alloc.push((
                    j.delivered_share / j.allocated_share,
                    j.allocated_share * life,
                ));
            }
        }
    }
    if !alloc.is_empty() {
        let worst = alloc
            .iter()
            .map(|(r, _)| (r - 1.0).abs())
            .fold(0.0, f64::max);
        let weight: f64 = alloc.iter().map(|(_, g)| g).sum();
        let weighted = alloc.iter().map(|(r, g)| (r - 1.0).abs() * g).sum::<f64>() / weight;
        println!(
            "executor: delivered/allocated share over {} jobs, worst deviation {:.1}%, weighted by allocated GPU-seconds {:.1}%",
            alloc.len(),
            100.0 * worst,
            100.0 * weighted
        );
        if r.windows.iter().any(|w| w.lifecycle.is_some()) {
            println!(
                "  (serverless: idle streams' and paused jobs' shares are lent to the running jobs, so delivered differs from allocated by design)"
            );
        }
    }
    // Real clock: inference is time-sliced too; it uses less than its share while it waits
    // for frames, never more.
    let infer: Vec<f64> = r
        .windows
        .iter()
        .flat_map(|w| &w.streams)
        .filter_map(
            |s| match (s.infer_allocated_share, s.infer_delivered_share) {
                (Some(a), Some(d)) if a > 0.0 => Some(d / a),
                _ => None,
            },
        )
        .collect();
    if !infer.is_empty() {
        let (lo, hi) = infer.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), r| {
            (lo.min(*r), hi.max(*r))
        });
        println!(
            "executor: inference delivered/allocated share over {} stream-windows: {:.3} to {:.3} (below 1 while a job waited for frames)",
            infer.len(),
            lo,
            hi
        );
    }
}

/// The serverless figures of a run, and each stream's phase and resident bytes at its end.
fn print_lifecycle(l: &LifecycleSummary, last: Option<&LifecycleReport>) {
    use crate::http::lifecycle;
    println!("{}", lifecycle::summary_line(l));
    if l.plugin_errors > 0 {
        println!(
            "lifecycle plugin: {} calls failed, the decisions in force stood (errors in the history)",
            l.plugin_errors
        );
    }
    if let Some(last) = last {
        let states: Vec<String> = last
            .streams
            .iter()
            .map(|s| {
                format!(
                    "{} {} ({})",
                    s.stream,
                    s.end_phase.name(),
                    lifecycle::mib(s.resident_bytes as f64)
                )
            })
            .collect();
        println!("streams at the end: {}", states.join(", "));
        println!(
            "cold start as measured here: {}",
            wake_costs(&last.wake_costs)
        );
    }
}

/// Each wake path's time to first inference with its largest steps, e.g. `preprocessed 7.5 ms
/// (plugins 1.9, first_inference 3.4)`.
fn wake_costs(c: &crate::engine::phases::WakeCosts) -> String {
    use crate::engine::phases::WakeKind;
    c.by_path()
        .map(|(kind, seconds, mut steps)| {
            let name = match kind {
                WakeKind::Cold => "nothing prepared",
                WakeKind::Preprocessed => "preprocessed",
                WakeKind::Prewarmed => "pre-warmed",
            };
            steps.sort_by(|a, b| b.1.total_cmp(&a.1));
            let top: Vec<String> = steps
                .iter()
                .take(3)
                .map(|(step, ms)| format!("{step} {ms:.1}"))
                .collect();
            format!("{name} {:.1} ms ({})", 1000.0 * seconds, top.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn print_compare(reports: &[RunReport]) {
    let lives: Vec<Option<LifecycleSummary>> = reports.iter().map(RunReport::lifecycle).collect();
    // The first column holds the lifecycle rows' names too, when there are any.
    let first = if lives.iter().any(Option::is_some) {
        12
    } else {
        6
    };
    let windows = reports.iter().map(|r| r.windows.len()).max().unwrap_or(0);
    // Long policy labels get a number in the header and a line of their own below it.
    let long = reports.iter().any(|r| r.policy.chars().count() > 16);
    if long {
        for (k, r) in reports.iter().enumerate() {
            println!("[{}] {}", k + 1, r.policy);
        }
    }
    print!("{:>first$}", "window");
    for (k, r) in reports.iter().enumerate() {
        let head = if long {
            truncate(&format!("[{}] {}", k + 1, r.policy), 16, None)
        } else {
            r.policy.clone()
        };
        print!(" {head:>16}");
    }
    println!();
    for w in 0..windows {
        print!("{w:>first$}");
        for r in reports {
            match r.windows.get(w) {
                Some(x) => print!(" {:>16.3}", x.mean_accuracy),
                None => print!(" {:>16}", "-"),
            }
        }
        println!();
    }
    print!("{:>first$}", "mean");
    for r in reports {
        print!(" {:>16.3}", r.mean_accuracy());
    }
    println!();
    if lives.iter().any(Option::is_some) {
        type Row = (&'static str, fn(&LifecycleSummary) -> String);
        let rows: [Row; 5] = [
            ("cold starts", |l| l.cold_starts.to_string()),
            ("pre-warmed", |l| l.prewarmed_starts.to_string()),
            ("frames lost", |l| {
                format!(
                    "{:.2}%",
                    100.0 * l.frames_lost as f64 / l.frames.max(1) as f64
                )
            }),
            ("mem mean MiB", |l| {
                format!("{:.2}", l.memory_mean_bytes / (1u64 << 20) as f64)
            }),
            ("mem peak MiB", |l| {
                format!("{:.2}", l.memory_peak_bytes as f64 / (1u64 << 20) as f64)
            }),
        ];
        for (name, cell) in rows {
            print!("{name:>first$}");
            for l in &lives {
                print!(" {:>16}", l.as_ref().map_or_else(|| "-".into(), cell));
            }
            println!();
        }
    }
    for r in reports {
        let f = r.fallbacks();
        if f.failed > 0 {
            println!("{}: {}", r.policy, f.describe());
        }
    }
}
