//! `tandem zoo ...`: the model zoo a data dir keeps (`<data dir>/zoo`, saved by `tandem run`
//! and the live dashboard): list its models, show one with what the history says it did, and
//! prune it by the zoo's own eviction rule.
//!
//! The zoo is opened without bounds, so the listing is what is on disk; a missing or corrupt
//! model file is skipped with a warning on stderr (and, after a prune, left out of the index).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use crate::data::look;
use crate::engine::zoo::{Zoo, ZooModel};
use crate::history::{History, ZooEvent};
use crate::text::truncate;

#[derive(Subcommand)]
pub enum ZooCommand {
    /// The zoo's models: origin, accuracy when made, uses, last use, size, scene signature.
    List {
        #[command(flatten)]
        at: At,
    },
    /// One model: its metadata, and its checks, uses and eviction from the history.
    Show {
        /// The model's id (as `list` prints it).
        id: String,
        #[command(flatten)]
        at: At,
    },
    /// Evict models by the zoo's own rule (fewest uses, then longest unused, then oldest;
    /// the pretrained model is never evicted); the files and the index stay consistent. A run
    /// in progress on the same data dir saves its own zoo over the pruned one.
    Prune {
        /// Keep this many models (the pretrained one included).
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        keep: Option<usize>,
        /// Keep only the pretrained model.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        at: At,
    },
}

#[derive(clap::Args)]
pub struct At {
    /// The data directory whose zoo to read (as given to `tandem run`).
    #[arg(long, default_value = ".tandem")]
    data_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ZooCommand) -> anyhow::Result<()> {
    match cmd {
        ZooCommand::List { at } => list(&at),
        ZooCommand::Show { id, at } => show(&id, &at),
        ZooCommand::Prune { keep, all, at } => prune(if all { 0 } else { keep.unwrap_or(0) }, &at),
    }
}

/// The zoo saved in `data_dir` and its directory; warnings about skipped files go to stderr.
fn open(data_dir: &Path) -> anyhow::Result<(PathBuf, Zoo)> {
    if !data_dir.is_dir() {
        bail!(
            "data dir {} does not exist (`tandem run --data-dir {0}` makes one and saves its zoo there)",
            data_dir.display()
        );
    }
    let dir = data_dir.join("zoo");
    let (zoo, warnings) = Zoo::open(&dir, usize::MAX, u64::MAX);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok((dir, zoo))
}

fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// A model as JSON: its metadata, its signature summarized, and its file.
fn model_json(m: &ZooModel, dir: &Path) -> serde_json::Value {
    let mut v = json!(m);
    v["signature_summary"] = json!(look::summary(&m.signature));
    v["file"] = json!(dir.join(format!("{}.safetensors", m.id)));
    v
}

/// When a model was last used, in words.
fn last_use(m: &ZooModel) -> String {
    if m.uses == 0 {
        "never".into()
    } else {
        format!("window {}", m.last_used_window)
    }
}

fn list(at: &At) -> anyhow::Result<()> {
    let (dir, zoo) = open(&at.data_dir)?;
    if at.json {
        let models: Vec<_> = zoo.models().map(|m| model_json(m, &dir)).collect();
        let out = json!({ "dir": dir, "models": models, "bytes": zoo.bytes() });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if zoo.is_empty() {
        println!(
            "no zoo saved in {} (`tandem run` saves its zoo there)",
            dir.display()
        );
        return Ok(());
    }
    println!(
        "{:<10} {:<22} {:>8} {:>5} {:>11} {:>9}  signature",
        "id", "origin (stream/window)", "accuracy", "uses", "last use", "KiB"
    );
    for m in zoo.models() {
        let origin = format!(
            "{}/{}",
            truncate(&m.origin_stream, 16, None),
            m.origin_window
        );
        println!(
            "{:<10} {:<22} {:>8.3} {:>5} {:>11} {:>9.1}  {}",
            truncate(&m.id, 10, None),
            origin,
            m.accuracy,
            m.uses,
            last_use(m),
            kib(m.bytes),
            look::summary(&m.signature)
        );
    }
    println!(
        "{} models, {:.2} MiB in {}",
        zoo.len(),
        kib(zoo.bytes()) / 1024.0,
        dir.display()
    );
    Ok(())
}

/// What the history in `data_dir` says model `m` did (`None`: no history there).
fn story(data_dir: &Path, m: &ZooModel) -> anyhow::Result<Option<Vec<ZooEvent>>> {
    let db = data_dir.join("history.sqlite");
    if !db.exists() {
        return Ok(None);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let h = History::open(&db).await?;
        Ok(Some(h.zoo_model_story(m).await?))
    })
}

/// An event in words.
fn event_text(e: &ZooEvent) -> String {
    let stream = e.stream.as_deref().unwrap_or("?");
    match (e.kind.as_str(), e.accuracy) {
        ("checked", Some(a)) => format!("checked for {stream}: accuracy {a:.3}"),
        ("deployed", _) => format!("deployed as it is for {stream}"),
        ("retrained", _) => format!("retrained from for {stream}"),
        (kind, _) => kind.to_string(),
    }
}

fn show(id: &str, at: &At) -> anyhow::Result<()> {
    let (dir, zoo) = open(&at.data_dir)?;
    let Some(m) = zoo.models().find(|m| m.id == id) else {
        let ids: Vec<&str> = zoo.models().map(|m| m.id.as_str()).collect();
        if ids.is_empty() {
            bail!("no model `{id}`: no zoo saved in {}", dir.display());
        }
        bail!(
            "no model `{id}` in the zoo at {} (it holds: {})",
            dir.display(),
            ids.join(", ")
        );
    };
    let events = story(&at.data_dir, m).context("reading the history")?;
    if at.json {
        let out = json!({ "model": model_json(m, &dir), "history": events });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("model {}", m.id);
    println!(
        "  origin               stream {}, window {}",
        m.origin_stream, m.origin_window
    );
    println!("  accuracy when made   {:.3}", m.accuracy);
    println!("  uses                 {} (last: {})", m.uses, last_use(m));
    println!("  size                 {:.1} KiB", kib(m.bytes));
    println!(
        "  signature            {} ({} values)",
        look::summary(&m.signature),
        m.signature.len()
    );
    println!(
        "  file                 {}",
        dir.join(format!("{}.safetensors", m.id)).display()
    );
    match events {
        None => println!("no history in {}", at.data_dir.display()),
        Some(events) if events.is_empty() => {
            println!(
                "history: no check, use or change of it recorded (runs compared side by side keep their own zoo)"
            )
        }
        Some(events) => {
            println!("history (runs that kept their zoo):");
            for e in &events {
                println!(
                    "  run {:>4} window {:>3}  {}",
                    e.run_id,
                    e.window,
                    event_text(e)
                );
            }
        }
    }
    Ok(())
}

fn prune(keep: usize, at: &At) -> anyhow::Result<()> {
    let (dir, mut zoo) = open(&at.data_dir)?;
    let evicted = zoo.prune(keep);
    if !evicted.is_empty() {
        zoo.save(&dir)?;
    }
    if at.json {
        let out = json!({
            "evicted": evicted.iter().map(|m| model_json(m, &dir)).collect::<Vec<_>>(),
            "models": zoo.len(),
            "bytes": zoo.bytes(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for m in &evicted {
        println!(
            "evicted {} (from {} window {}, {} uses, last use: {})",
            m.id,
            m.origin_stream,
            m.origin_window,
            m.uses,
            last_use(m)
        );
    }
    println!(
        "{} evicted; {} models, {:.2} MiB left in {}",
        evicted.len(),
        zoo.len(),
        kib(zoo.bytes()) / 1024.0,
        dir.display()
    );
    Ok(())
}
