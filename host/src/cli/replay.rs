//! `tandem replay`: policies on recorded job profiles, without training (the paper's
//! simulator mode; see `engine::replay`). Profiles come from Ekya meta-profile files, a
//! `tandem run --report` file, or a run in history; the output has `compare`'s shape.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;

use crate::engine::replay::{self, Profiles, ReplayOptions, ReplayWindow};
use crate::engine::report::Fallbacks;
use crate::engine::scenario::MAX_GPUS;
use crate::engine::{host_options, params_from_toml, parse_policy, policy_label};
use crate::history::History;
use crate::plugin::Catalog;
use crate::plugin::types::PolicyInput;
use crate::plugin::validate;
use crate::text::truncate;

#[derive(clap::Args, Clone)]
pub struct ReplayArgs {
    /// Profile files: Ekya meta-profiles (one JSON per stream, with `taskwise_train_profiles`)
    /// or one file written by `tandem run --report`.
    pub profiles: Vec<PathBuf>,
    /// Replay the policy inputs recorded in history for this run (see the dashboard or
    /// `history.sqlite`'s `runs` table) instead of files.
    #[arg(long, conflicts_with = "profiles")]
    pub run: Option<i64>,
    /// With a report file holding several runs (a comparison): the run of this policy.
    #[arg(long)]
    pub recorded_policy: Option<String>,
    /// Policies to replay, comma-separated (each as for `run --policy`).
    #[arg(long, default_value = "thief,fair,no-retrain")]
    pub policies: String,
    /// GPUs (default: as recorded; 1 for Ekya profiles).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Window length in seconds (default: as recorded; 200 for Ekya profiles).
    #[arg(long)]
    pub window: Option<f64>,
    /// Seconds into the window of the first decision: the golden-label delay (default: as
    /// recorded; 2 for Ekya profiles, as in its drivers).
    #[arg(long)]
    pub golden_delay: Option<f64>,
    /// Seed of the policies' random numbers (each call's WASI random derives from it and the
    /// call's input, so a replay reproduces).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where plugins (and history, for `--run`) live.
    #[arg(long, default_value = ".tandem")]
    pub data_dir: PathBuf,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let profiles = load_profiles(&args)?;
    let policies = args
        .policies
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let r = parse_policy(p).map_err(anyhow::Error::msg)?;
            // Replay profiles nothing, so the host's `profile` option has no effect here;
            // it is checked and taken out so compare's policy specs replay as they are
            // (under the label they were given).
            Ok((policy_label(&r), host_options(&r)?.0))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if policies.is_empty() {
        bail!("--policies: name at least one policy");
    }
    for (what, v) in [
        ("--window", args.window),
        ("--golden-delay", args.golden_delay),
    ] {
        if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            bail!("{what}: expected a non-negative number of seconds");
        }
    }
    if args.window == Some(0.0) || args.gpus == Some(0) {
        bail!("--window and --gpus must be positive");
    }
    if args.gpus.is_some_and(|g| g > MAX_GPUS) {
        bail!("--gpus: at most {MAX_GPUS}");
    }
    let options = ReplayOptions {
        gpus: args.gpus,
        window_seconds: args.window,
        golden_delay: args.golden_delay,
    };
    // The first decision must come inside the window.
    for w in &profiles.windows {
        let (_, window, delay) = options.for_window(w);
        if delay >= window {
            bail!(
                "--golden-delay: {delay} s is not shorter than the {window} s window `{}`",
                w.label
            );
        }
    }
    let catalog = Catalog::open(&args.data_dir)?;

    // Every policy loads and takes its parameters before the first one replays.
    let mut loaded = Vec::new();
    for (label, policy) in &policies {
        let plugin = catalog.load(&policy.name)?;
        let params = params_from_toml(&policy.params)
            .map_err(|e| anyhow::anyhow!("policy `{}`: {e}", policy.name))?;
        validate::params(plugin.description(), &params)
            .map_err(|e| anyhow::anyhow!("policy `{}`: {e}", policy.name))?;
        loaded.push((label, plugin, params));
    }
    let started = Instant::now();
    let mut results = Vec::new();
    for (label, plugin, params) in loaded {
        let windows = replay::replay(&profiles, &options, &mut |input: &PolicyInput| {
            catalog.host.decide(&plugin, input, &params, args.seed)
        });
        results.push((label.clone(), windows));
    }
    let seconds = started.elapsed().as_secs_f64();
    let first = profiles.windows.first().expect("profiles have windows");
    let (gpus, window_seconds, golden_delay) = options.for_window(first);
    let out = json!({
        "source": profiles.sources,
        "windows": profiles.windows.len(),
        "streams": profiles.streams(),
        "gpus": gpus,
        "window_seconds": window_seconds,
        "golden_delay_seconds": golden_delay,
        "seconds": seconds,
        "policies": results.iter().map(|(name, w)| (name.clone(), policy_json(w))).collect::<serde_json::Map<_, _>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&profiles, &results);
        eprintln!(
            "replayed {} window(s) of {} stream(s) from {} ({:.2} s)",
            profiles.windows.len(),
            profiles.streams(),
            profiles.sources.join(", "),
            seconds
        );
    }
    Ok(())
}

fn load_profiles(args: &ReplayArgs) -> anyhow::Result<Profiles> {
    if let Some(run) = args.run {
        return from_history(&args.data_dir, run);
    }
    if args.profiles.is_empty() {
        bail!(
            "name profile files (Ekya meta-profiles or a `tandem run --report` file) or --run ID"
        );
    }
    if let Some(policy) = &args.recorded_policy {
        let [path] = args.profiles.as_slice() else {
            bail!("--recorded-policy applies to one `tandem run --report` file");
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(Profiles::from_run_reports(
            &path.display().to_string(),
            &text,
            Some(policy),
        )?);
    }
    Ok(Profiles::load(&args.profiles)?)
}

/// Each window's first policy input of run `run`, from the history database.
fn from_history(data_dir: &Path, run: i64) -> anyhow::Result<Profiles> {
    let path = data_dir.join("history.sqlite");
    if !path.exists() {
        bail!("no history at {} (see --data-dir)", path.display());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        let history = History::open(&path).await?;
        history.first_policy_inputs(run).await
    })?;
    if rows.is_empty() {
        bail!(
            "run {run} in {} has no recorded policy calls (is the id right?)",
            path.display()
        );
    }
    let inputs = rows
        .into_iter()
        .map(|(w, json)| {
            let input: PolicyInput = serde_json::from_str(&json).with_context(|| {
                format!(
                    "{}: run {run}, window {w}: policy_calls.input is not a policy input",
                    path.display()
                )
            })?;
            Ok((w as u32, input))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Profiles::from_policy_inputs(
        format!("{} run {run}", path.display()),
        inputs,
    )?)
}

/// The policy's failures over the replay, with their reasons.
fn fallbacks(windows: &[ReplayWindow]) -> Fallbacks {
    Fallbacks::count(windows.iter().flat_map(|w| {
        let used = w.policy_calls.saturating_sub(w.policy_failures.len());
        w.policy_failures
            .iter()
            .map(|e| Some(e.as_str()))
            .chain(std::iter::repeat_n(None, used))
    }))
}

fn policy_json(windows: &[ReplayWindow]) -> serde_json::Value {
    json!({
        "mean_accuracy": replay::mean_accuracy(windows),
        "windows": windows.iter().map(|w| w.mean_accuracy).collect::<Vec<_>>(),
        "policy_calls": windows.iter().map(|w| w.policy_calls).sum::<usize>(),
        "policy_failures": windows.iter().map(|w| w.policy_failures.len()).sum::<usize>(),
        "policy_fallbacks": fallbacks(windows),
        "retraining_jobs_finished": windows.iter().map(ReplayWindow::jobs_finished).sum::<usize>(),
        "streams": windows.iter().map(|w| &w.streams).collect::<Vec<_>>(),
    })
}

fn print_table(profiles: &Profiles, results: &[(String, Vec<ReplayWindow>)]) {
    print!("{:>12}", "window");
    for (name, _) in results {
        print!(" {:>16}", truncate(name, 16, None));
    }
    println!();
    for (w, window) in profiles.windows.iter().enumerate() {
        print!("{:>12}", truncate(&window.label, 12, None));
        for (_, r) in results {
            let x = &r[w];
            let mark = if x.policy_failures.is_empty() {
                " "
            } else {
                "!"
            };
            print!(" {:>15.3}{mark}", x.mean_accuracy);
        }
        println!();
    }
    print!("{:>12}", "mean");
    for (_, r) in results {
        print!(" {:>16.3}", replay::mean_accuracy(r));
    }
    println!();
    if results
        .iter()
        .any(|(_, r)| r.iter().any(|w| !w.policy_failures.is_empty()))
    {
        println!("(! the policy failed in that window and the fallback decided; see --json)");
    }
    for (name, r) in results {
        let f = fallbacks(r);
        if f.failed > 0 {
            println!("{name}: {}", f.describe());
        }
    }
}
