//! Finds the guest plugins built for wasm32-wasip2 (by `scripts/setup.sh`, profile `plugin`)
//! and generates `builtin_plugins.rs`, which embeds each one found with `include_bytes!`.
//! When they were not built yet the list is simply shorter: the host builds and tests anyway.
//!
//! It also generates `scaffold_sources.rs`: every file of `wit/`, of the Rust SDK
//! (`plugins/sdk/src`) and of the Python SDK (`plugins/python/sdk/tandem_sdk`), embedded with
//! `include_str!`, so the installed binary alone can write a self-contained plugin project
//! (`tandem plugin new`). Listing the directories here, rather than naming files in the code,
//! keeps a file added to an SDK from being left out of the projects.

use std::path::{Path, PathBuf};

/// The reference plugins registered at startup (test fixtures are deliberately not here).
const BUILTINS: &[&str] = &[
    "thief",
    "fair",
    "no-retrain",
    "fixed-res",
    "fixed-config",
    "oracle",
    "ekya-space",
    "optimus",
    "nearest",
    "check-all",
    "keep-alive",
    "always-warm",
    "scale-to-zero",
    "histogram",
];

fn plugin_dir() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=TANDEM_PLUGIN_DIR");
    if let Ok(dir) = std::env::var("TANDEM_PLUGIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let out = PathBuf::from(std::env::var("OUT_DIR").ok()?);
    out.ancestors()
        .find(|a| a.join("wasm32-wasip2").is_dir())
        .map(|t| t.join("wasm32-wasip2").join("plugin"))
        .or_else(|| {
            // Not built yet: watch the target dir so a later guest build is noticed.
            let target = out.ancestors().nth(4)?;
            println!("cargo:rerun-if-changed={}", target.display());
            None
        })
}

/// `(path relative to dir, absolute path)` of every file under `dir` whose name ends in `ext`,
/// sorted; Python caches are skipped, and so are subdirectories unless `deep`.
fn sources(dir: &Path, ext: &str, deep: bool) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, ext: &str, deep: bool, out: &mut Vec<(String, PathBuf)>) {
        let Ok(items) = std::fs::read_dir(dir) else {
            return;
        };
        for item in items.flatten() {
            let path = item.path();
            if path.is_dir() {
                if deep && item.file_name() != "__pycache__" {
                    walk(root, &path, ext, deep, out);
                }
            } else if path.to_string_lossy().ends_with(ext) {
                let rel = path.strip_prefix(root).expect("under root");
                out.push((rel.to_string_lossy().replace('\\', "/"), path));
            }
        }
    }
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut out = Vec::new();
    walk(dir, dir, ext, deep, &mut out);
    assert!(!out.is_empty(), "no {ext} files under {}", dir.display());
    out.sort();
    out
}

fn scaffold_sources(out_dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut code = String::new();
    // `wit/` holds the newest package; older, frozen ones sit in its subdirectories.
    for (name, doc, dir, ext, deep) in [
        (
            "WIT_FILES",
            "The newest WIT package (`wit/*.wit`)",
            "wit",
            ".wit",
            false,
        ),
        (
            "RUST_SDK_FILES",
            "The Rust SDK's sources (`plugins/sdk/src`)",
            "plugins/sdk/src",
            ".rs",
            true,
        ),
        (
            "PYTHON_SDK_FILES",
            "The Python SDK's package (`plugins/python/sdk/tandem_sdk`)",
            "plugins/python/sdk/tandem_sdk",
            ".py",
            true,
        ),
    ] {
        code.push_str(&format!(
            "/// {doc}: (path relative to it, contents).\npub static {name}: &[(&str, &str)] = &[\n"
        ));
        for (rel, path) in sources(&root.join(dir), ext, deep) {
            println!("cargo:rerun-if-changed={}", path.display());
            code.push_str(&format!(
                "    ({rel:?}, include_str!({:?})),\n",
                path.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    std::fs::write(out_dir.join("scaffold_sources.rs"), code).expect("write scaffold_sources.rs");
}

fn main() {
    // `sqlx::migrate!` embeds the migrations at compile time: edits must rebuild.
    println!("cargo:rerun-if-changed=../migrations");
    let mut entries = String::new();
    if let Some(dir) = plugin_dir() {
        if dir.is_dir() {
            println!("cargo:rerun-if-changed={}", dir.display());
        } else if let Some(parent) = dir.parent().filter(|p| p.is_dir()) {
            println!("cargo:rerun-if-changed={}", parent.display());
        }
        for name in BUILTINS {
            let file: PathBuf = dir.join(format!("tandem_plugin_{}.wasm", name.replace('-', "_")));
            if file.is_file() {
                println!("cargo:rerun-if-changed={}", file.display());
                entries.push_str(&format!(
                    "    ({name:?}, include_bytes!({:?})),\n",
                    file.display().to_string()
                ));
            }
        }
    }
    let code = format!(
        "/// Built-in plugins embedded at build time: (name, component bytes).\n\
         pub static BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n{entries}];\n\
         /// Names of every built-in plugin, embedded or not.\n\
         pub static BUILTIN_NAMES: &[&str] = &{BUILTINS:?};\n"
    );
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out_dir.join("builtin_plugins.rs"), code).expect("write builtin_plugins.rs");
    scaffold_sources(&out_dir);
}
