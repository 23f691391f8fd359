//! `tandem plugin new`: a self-contained plugin project, in Rust or Python, in any directory.
//!
//! Everything a project needs travels inside the binary (see `host/build.rs`): the WIT package
//! the plugin targets, the Rust SDK's sources, the Python SDK, and the templates in
//! `host/templates/`. A project builds with its language's own tools alone:
//!
//! - Rust: `cargo build --release --target wasm32-wasip2`. The SDK is vendored into `sdk/`
//!   rather than generated: it is plain Rust without dependencies, its glue macros are what
//!   turn a `Policy` implementation into a component, and a vendored copy is the very code the
//!   built-in plugins are compiled from, so an author's estimate and PickConfigs match theirs
//!   (and the project builds offline once its two crates.io dependencies are cached).
//! - Python: `componentize-py -d wit -w WORLD componentize app -o NAME.wasm`, which generates
//!   the world's bindings at build time; `tandem_sdk/` is the Python SDK.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use crate::plugin::bindings::WIT_VERSIONS;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/scaffold_sources.rs"));
}

/// The WIT package new projects target: the newest this host accepts.
pub const WIT_VERSION: &str = WIT_VERSIONS[0];

/// The componentize-py release Python plugins are built and tested with (scripts/setup.sh
/// installs exactly this one).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Plugin kinds on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Policy,
    ConfigSpace,
    Estimator,
}

impl Kind {
    /// The WIT world a plugin of this kind implements.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Policy => "policy",
            Kind::ConfigSpace => "config-space",
            Kind::Estimator => "estimator",
        }
    }
}

/// The language a plugin is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

/// A project to write: its files (path relative to the project, contents).
pub struct Project {
    pub files: Vec<(String, String)>,
    /// The command that builds it, run in its directory.
    pub build: String,
    /// The component the build writes, relative to the project.
    pub component: String,
}

/// Check a plugin name: kebab-case, starting with a letter.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("plugin name `{name}` must be kebab-case (a-z, 0-9, -) and start with a letter");
    }
    Ok(())
}

fn render(template: &str, name: &str, world: &str) -> String {
    template
        .replace("{name}", name)
        .replace("{snake}", &name.replace('-', "_"))
        .replace("{world}", world)
        .replace("{wit_version}", WIT_VERSION)
        .replace("{version}", env!("CARGO_PKG_VERSION"))
        .replace("{componentize_py}", COMPONENTIZE_PY_VERSION)
}

/// The files of a new project (nothing is written).
pub fn project(name: &str, kind: Kind, lang: Lang) -> anyhow::Result<Project> {
    check_name(name)?;
    let world = kind.world();
    let r = |t: &str| render(t, name, world);
    let mut files: Vec<(String, String)> = embedded::WIT_FILES
        .iter()
        .map(|(f, text)| (format!("wit/{f}"), text.to_string()))
        .collect();
    match lang {
        Lang::Rust => {
            let body = match kind {
                Kind::Policy => include_str!("../../templates/rust/policy.rs.tmpl"),
                Kind::ConfigSpace => include_str!("../../templates/rust/config-space.rs.tmpl"),
                Kind::Estimator => include_str!("../../templates/rust/estimator.rs.tmpl"),
            };
            files.push(("src/lib.rs".into(), r(body)));
            files.push((
                "Cargo.toml".into(),
                r(include_str!("../../templates/rust/Cargo.toml.tmpl")),
            ));
            files.push((
                "README.md".into(),
                r(include_str!("../../templates/rust/README.md.tmpl")),
            ));
            files.push((".gitignore".into(), "/target\n".into()));
            files.push((
                "sdk/Cargo.toml".into(),
                r(include_str!("../../templates/rust/sdk-Cargo.toml.tmpl")),
            ));
            files.extend(
                embedded::RUST_SDK_FILES
                    .iter()
                    .map(|(f, text)| (format!("sdk/src/{f}"), text.to_string())),
            );
            Ok(Project {
                files,
                build: "cargo build --release --target wasm32-wasip2".into(),
                component: format!(
                    "target/wasm32-wasip2/release/tandem_plugin_{}.wasm",
                    name.replace('-', "_")
                ),
            })
        }
        Lang::Python => {
            let body = match kind {
                Kind::Policy => include_str!("../../templates/python/policy.py.tmpl"),
                Kind::ConfigSpace => include_str!("../../templates/python/config-space.py.tmpl"),
                Kind::Estimator => include_str!("../../templates/python/estimator.py.tmpl"),
            };
            files.push(("app.py".into(), r(body)));
            files.push((
                "README.md".into(),
                r(include_str!("../../templates/python/README.md.tmpl")),
            ));
            files.push((
                ".gitignore".into(),
                "*.wasm\n__pycache__/\n/wit_world/\n/componentize_py_*\n/poll_loop.py\n".into(),
            ));
            files.extend(
                embedded::PYTHON_SDK_FILES
                    .iter()
                    .map(|(f, text)| (format!("tandem_sdk/{f}"), text.to_string())),
            );
            Ok(Project {
                files,
                build: format!("componentize-py -d wit -w {world} componentize app -o {name}.wasm"),
                component: format!("{name}.wasm"),
            })
        }
    }
}

/// Write `project` into `dir`, which must not exist or be empty.
pub fn write(dir: &Path, project: &Project) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty: choose another directory",
                dir.display()
            );
        }
    }
    for (rel, text) in &project.files {
        let path: PathBuf = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The Cargo workspace above `dir`, if any: a Rust project there is a workspace of its own, which
/// breaks the outer one's builds when its `members` match it (tandem's own `plugins/*` does).
pub fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors().skip(1).find_map(|a| {
        let manifest = a.join("Cargo.toml");
        std::fs::read_to_string(&manifest)
            .ok()
            .filter(|t| t.lines().any(|l| l.trim() == "[workspace]"))
            .map(|_| manifest)
    })
}
