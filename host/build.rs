//! Finds the guest plugins built for wasm32-wasip2 (by `scripts/setup.sh`, profile `plugin`)
//! and generates `builtin_plugins.rs`, which embeds each one found with `include_bytes!`.
//! When they were not built yet the list is simply shorter: the host builds and tests anyway.

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
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_plugins.rs");
    std::fs::write(out, code).expect("write builtin_plugins.rs");
}
