//! `tandem plugin ...`: validate a component, list the registry, scaffold a new plugin crate.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::plugin::registry::missing_builtins;
use crate::plugin::{Catalog, Limits, PluginHost, check};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Check a plugin: is it a component, which world and version, does it describe itself,
    /// does it run on a small sample input.
    Validate {
        /// The component (.wasm).
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the registered plugins (the built-ins are registered first).
    List {
        /// Data directory holding the registry (`plugins/<sha256>.wasm` and `.json`).
        #[arg(long, default_value = ".tandem")]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a plugin crate under plugins/NAME that builds as it is.
    New {
        /// Plugin name (kebab-case); the crate is `tandem-plugin-NAME`.
        name: String,
        /// Which world it implements.
        #[arg(long, value_enum)]
        kind: Kind,
    },
}

/// Plugin kinds on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Policy,
    ConfigSpace,
    Estimator,
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::Validate { file, json } => validate(&file, json),
        PluginCommand::List { data_dir, json } => list(&data_dir, json),
        PluginCommand::New { name, kind } => new(&name, kind),
    }
}

fn validate(file: &Path, as_json: bool) -> anyhow::Result<()> {
    let host = PluginHost::new(Limits::default())?;
    let plugin = host.load_file(file)?;
    let d = plugin.description();
    let sample = check::sample_run(&host, &plugin)?;
    if as_json {
        let out = json!({
            "file": file.display().to_string(),
            "component": true,
            "wit_package": format!("tandem:plugin@{}", plugin.wit_version()),
            "world": d.kind.world(),
            "description": d,
            "digest": plugin.digest(),
            "size_bytes": plugin.size(),
            "sample_run": sample,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}: a WebAssembly component", file.display());
        println!(
            "  world:   {} (tandem:plugin@{})",
            d.kind.world(),
            plugin.wit_version()
        );
        println!("  plugin:  {} {}: {}", d.name, d.version, d.summary);
        for p in &d.params {
            println!("  param:   {} = {:?}  ({})", p.name, p.default, p.doc);
        }
        println!("  sha256:  {} ({} bytes)", plugin.digest(), plugin.size());
        println!("  sample:  ok, {sample}");
    }
    Ok(())
}

fn list(data_dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let entries = Catalog::open(data_dir)?.registry.list()?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<8} {:<13} {:<14} {:>8}  origin",
        "name", "version", "kind", "digest", "bytes"
    );
    for e in &entries {
        println!(
            "{:<14} {:<8} {:<13} {:<14} {:>8}  {}",
            e.description.name,
            e.description.version,
            e.description.kind.world(),
            &e.digest[..12],
            e.size,
            if e.builtin {
                "built-in".to_string()
            } else {
                e.source.clone()
            }
        );
    }
    let missing = missing_builtins();
    if !missing.is_empty() {
        eprintln!(
            "note: built-ins not embedded (run scripts/setup.sh, then rebuild): {}",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The workspace root: the nearest ancestor of the current directory with `wit/` and `plugins/sdk`.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    cwd.ancestors()
        .find(|d| d.join("wit").is_dir() && d.join("plugins/sdk/Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .context("run `tandem plugin new` inside the tandem workspace (no wit/ and plugins/sdk found above here)")
}

fn new(name: &str, kind: Kind) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
    {
        bail!("plugin name `{name}` must be kebab-case (a-z, 0-9, -)");
    }
    let root = workspace_root()?;
    let dir = root.join("plugins").join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let (world, body) = match kind {
        Kind::Policy => ("policy", POLICY_TEMPLATE),
        Kind::ConfigSpace => ("config-space", CONFIG_SPACE_TEMPLATE),
        Kind::Estimator => ("estimator", ESTIMATOR_TEMPLATE),
    };
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        CARGO_TEMPLATE.replace("{name}", name),
    )?;
    std::fs::write(
        dir.join("src/lib.rs"),
        body.replace("{name}", name).replace("{world}", world),
    )?;
    println!("created {} (world `{world}`)", dir.display());
    println!(
        "build:    cargo build --profile plugin --target wasm32-wasip2 -p tandem-plugin-{name}"
    );
    println!(
        "validate: tandem plugin validate $CARGO_TARGET_DIR/wasm32-wasip2/plugin/tandem_plugin_{}.wasm",
        name.replace('-', "_")
    );
    Ok(())
}

const CARGO_TEMPLATE: &str = r#"[package]
name = "tandem-plugin-{name}"
description = "A tandem plugin"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
tandem-plugin-sdk = { path = "../sdk" }
wit-bindgen = "0.63"
"#;

const POLICY_TEMPLATE: &str = r#"//! {name}: a tandem scheduling policy (world `{world}`).
//!
//! Gives every stream G/N GPUs, `infer-fraction` of it to inference, and lets PickConfigs
//! choose the configurations. Change `schedule` to try your own policy.

use tandem_plugin_sdk::params::{Params, number};
use tandem_plugin_sdk::policy::{Allocation, Policy, check_input, evaluate, to_schedule};
use tandem_plugin_sdk::types::{Description, Param, PluginError, PluginKind, PolicyInput, Schedule};

wit_bindgen::generate!({ world: "{world}", path: "../../wit" });
tandem_plugin_sdk::export_policy!(Plugin);

struct Plugin;

impl Policy for Plugin {
    fn describe() -> Description {
        Description {
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Policy,
            summary: "A static split with PickConfigs.".into(),
            params: vec![number("infer-fraction", "share of each stream's GPU given to inference", 0.5)],
        }
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        check_input(input)?;
        let specs = Self::describe().params;
        let fraction = Params::new(&specs, params)?.number("infer-fraction")?;
        let alloc = Allocation::split(input, fraction.clamp(0.0, 1.0));
        let (picks, mean) = evaluate(input, &alloc, 0.0);
        Ok(to_schedule(input, &alloc, &picks, Some(mean)))
    }
}
"#;

const CONFIG_SPACE_TEMPLATE: &str = r#"//! {name}: a tandem configuration space (world `{world}`).
//!
//! Offers Ekya's grid without the 1.0 data fraction. Change `configs` to offer your own.

use tandem_plugin_sdk::space::{ConfigSpace, EkyaSpace};
use tandem_plugin_sdk::types::{ConfigSet, Description, Param, PluginError, StreamState};

wit_bindgen::generate!({ world: "{world}", path: "../../wit" });
tandem_plugin_sdk::export_config_space!(Plugin);

struct Plugin;

impl ConfigSpace for Plugin {
    fn describe() -> Description {
        Description {
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Ekya's grid without full-data configurations.".into(),
            ..EkyaSpace::describe()
        }
    }

    fn configs(state: &StreamState, params: &[Param]) -> Result<ConfigSet, PluginError> {
        let mut set = EkyaSpace::configs(state, params)?;
        set.retrain.retain(|c| c.data_fraction < 1.0);
        Ok(set)
    }
}
"#;

const ESTIMATOR_TEMPLATE: &str = r#"//! {name}: a tandem estimator (world `{world}`).
//!
//! Extrapolates the last micro-profile gain linearly (capped at 1); time is linear in epochs
//! and data. Change `predict` to try your own estimator.

use tandem_plugin_sdk::optimus::{Estimator, speed};
use tandem_plugin_sdk::types::{Description, EstimateRequest, Param, PluginError, PluginKind, Prediction};

wit_bindgen::generate!({ world: "{world}", path: "../../wit" });
tandem_plugin_sdk::export_estimator!(Plugin);

struct Plugin;

impl Estimator for Plugin {
    fn describe() -> Description {
        Description {
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Estimator,
            summary: "Linear extrapolation of the micro-profile.".into(),
            params: vec![],
        }
    }

    fn predict(req: &EstimateRequest, _params: &[Param]) -> Result<Prediction, PluginError> {
        let last = req.observations.iter().max_by_key(|o| o.epochs)
            .filter(|o| o.epochs > 0 && o.gpu_seconds > 0.0)
            .ok_or_else(|| PluginError::InvalidInput("need an observation with epochs > 0".into()))?;
        let slope = (last.accuracy - req.start_accuracy) / f64::from(last.epochs);
        let accuracy = req.epochs_at.iter().map(|&e| (req.start_accuracy + slope * f64::from(e)).clamp(0.0, 1.0)).collect();
        let gpu_seconds = last.gpu_seconds / f64::from(last.epochs) * f64::from(req.config.epochs)
            * req.config.data_fraction / req.profiled_data_fraction.max(1e-9);
        let seconds_at = req.shares.iter().map(|&s| gpu_seconds / speed(&req.throughput, s)).collect();
        Ok(Prediction { accuracy, gpu_seconds, seconds_at })
    }
}
"#;
