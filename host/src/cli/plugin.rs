//! `tandem plugin ...`: validate a component, list the registry, scaffold a new plugin project
//! ([`super::scaffold`]).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::scaffold::{self, Kind, Lang};
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
        /// Where compiled components are kept, so validating the same component again (or a
        /// Python one, whose interpreter takes long to compile) is quick
        /// [default: $XDG_CACHE_HOME/tandem/compiled or ~/.cache/tandem/compiled].
        #[arg(long)]
        cache_dir: Option<PathBuf>,
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
    /// Create a self-contained plugin project (WIT, SDK, build command, README) that builds
    /// anywhere, without a tandem checkout.
    New {
        /// Plugin name (kebab-case).
        name: String,
        /// Which world it implements.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The language it is written in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Directory to create (default: ./NAME); must not exist or be empty.
        dir: Option<PathBuf>,
    },
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::Validate {
            file,
            json,
            cache_dir,
        } => validate(&file, json, cache_dir.or_else(default_cache_dir)),
        PluginCommand::List { data_dir, json } => list(&data_dir, json),
        PluginCommand::New {
            name,
            kind,
            lang,
            dir,
        } => new(&name, kind, lang, dir),
    }
}

/// The per-user cache of compiled components: `$XDG_CACHE_HOME/tandem/compiled`, else
/// `$HOME/.cache/tandem/compiled`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("tandem").join("compiled"))
}

fn validate(file: &Path, as_json: bool, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let mut host = PluginHost::new(Limits::default())?;
    if let Some(dir) = cache_dir {
        host = host.with_cache_dir(dir);
    }
    let plugin = host.load_file(file)?;
    let d = plugin.description();
    let sample = check::sample_run(&host, &plugin)?;
    let limits = plugin.limits();
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
            "limits": {
                "deadline_ms": limits.deadline.as_millis(),
                "memory_bytes": limits.memory_bytes,
            },
            "peak_memory_bytes": plugin.peak_memory_bytes(),
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
        println!(
            "  limits:  {} ms, {} MiB a call ({}); peak memory so far {:.1} MiB",
            limits.deadline.as_millis(),
            limits.memory_bytes >> 20,
            if limits == host.limits() {
                "a compiled plugin"
            } else {
                "a component carrying an interpreter"
            },
            plugin.peak_memory_bytes() as f64 / f64::from(1 << 20)
        );
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

fn new(name: &str, kind: Kind, lang: Lang, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let project = scaffold::project(name, kind, lang)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    scaffold::write(&dir, &project)?;
    let language = match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
    };
    println!(
        "created {}: a {language} {} plugin (world `{}` of tandem:plugin@{}, {} files)",
        dir.display(),
        kind.world(),
        kind.world(),
        scaffold::WIT_VERSION,
        project.files.len()
    );
    if lang == Lang::Python {
        println!(
            "needs:    componentize-py {} (pip install componentize-py=={})",
            scaffold::COMPONENTIZE_PY_VERSION,
            scaffold::COMPONENTIZE_PY_VERSION
        );
    }
    if lang == Lang::Rust
        && let Some(outer) = scaffold::enclosing_workspace(&dir)
    {
        println!(
            "note:     {} is a Cargo workspace of its own inside {}: if that workspace's \
             `members` match it, add it to its `exclude`",
            dir.display(),
            outer.display()
        );
    }
    println!("build:    cd {} && {}", dir.display(), project.build);
    println!(
        "validate: tandem plugin validate {}",
        dir.join(&project.component).display()
    );
    Ok(())
}
