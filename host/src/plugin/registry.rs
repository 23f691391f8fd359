//! The plugin registry: plugins stored content-addressed on disk, each with its description,
//! and the built-in plugins embedded in the binary at build time (see `host/build.rs`).
//!
//! Layout under the data directory: `plugins/<sha256>.wasm` (the component) and
//! `plugins/<sha256>.json` (a [`RegistryEntry`]). The digest names the bytes, so adding the same
//! plugin twice is a no-op and a name can map to several versions. A disabled plugin has a
//! flag file `plugins/<sha256>.disabled` beside it: it stays listed but is not found by name,
//! and the built-ins can be disabled without being re-added at the next start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::PluginError;
use super::runtime::{Limits, Plugin, PluginHost};
use super::types::Description;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

/// A built-in plugin embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// Its name (the plugin's directory under `plugins/`).
    pub name: &'static str,
    /// The component's bytes.
    pub bytes: &'static [u8],
}

/// The built-in plugins this binary embeds (those built before it was compiled).
pub fn builtins() -> Vec<BuiltIn> {
    embedded::BUILTIN_PLUGINS
        .iter()
        .map(|&(name, bytes)| BuiltIn { name, bytes })
        .collect()
}

/// Whether `name` is a built-in plugin's (reserved: no other plugin may take it).
pub fn is_builtin_name(name: &str) -> bool {
    embedded::BUILTIN_NAMES.contains(&name)
}

/// Names of the built-in plugins that were not built when this binary was compiled.
pub fn missing_builtins() -> Vec<&'static str> {
    embedded::BUILTIN_NAMES
        .iter()
        .copied()
        .filter(|n| !embedded::BUILTIN_PLUGINS.iter().any(|(m, _)| m == n))
        .collect()
}

/// One stored plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// Lower-case hex sha256 of the component.
    pub digest: String,
    /// The plugin's self-description.
    pub description: Description,
    /// Component size in bytes.
    pub size: usize,
    /// Whether it came with the binary.
    pub builtin: bool,
    /// Where it came from (a file name, or `builtin`).
    pub source: String,
    /// When it was first stored, in seconds since the Unix epoch.
    pub added_unix: u64,
    /// Whether it is disabled (read from the flag file, never trusted from the JSON).
    #[serde(default)]
    pub disabled: bool,
}

/// The content-addressed plugin store.
pub struct Registry {
    dir: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> PluginError {
    PluginError::Host(format!("registry {}: {e}", path.display()))
}

impl Registry {
    /// Open (creating if needed) the registry under `data_dir/plugins`.
    pub fn open(data_dir: &Path) -> Result<Self, PluginError> {
        let dir = data_dir.join("plugins");
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        Ok(Registry { dir })
    }

    /// Validate `bytes` with `host` (component, world, self-description) and store them.
    pub fn add(
        &self,
        host: &PluginHost,
        source: &str,
        bytes: &[u8],
        builtin: bool,
    ) -> Result<RegistryEntry, PluginError> {
        let plugin = host.load(source, bytes)?;
        let json = self.dir.join(format!("{}.json", plugin.digest()));
        if let Ok(existing) = self.read_entry(&json) {
            return Ok(existing);
        }
        let wasm = self.dir.join(format!("{}.wasm", plugin.digest()));
        std::fs::write(&wasm, bytes).map_err(|e| io_err(&wasm, e))?;
        let entry = RegistryEntry {
            digest: plugin.digest().to_string(),
            description: plugin.description().clone(),
            size: bytes.len(),
            builtin,
            source: source.to_string(),
            added_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            disabled: false,
        };
        let text = serde_json::to_string_pretty(&entry).map_err(|e| io_err(&json, e))?;
        std::fs::write(&json, text).map_err(|e| io_err(&json, e))?;
        Ok(entry)
    }

    /// Store every embedded built-in plugin (idempotent).
    pub fn register_builtins(&self, host: &PluginHost) -> Result<Vec<RegistryEntry>, PluginError> {
        builtins()
            .iter()
            .map(|b| self.add(host, "builtin", b.bytes, true))
            .collect()
    }

    /// Validate `bytes` as `tandem plugin validate` does (load, then one sample run) and store
    /// them only if both pass; returns the entry and the sample run's account. A plugin that
    /// calls itself by a built-in's name is refused: built-in names are reserved, so an upload
    /// can never stand in for a built-in.
    pub fn add_validated(
        &self,
        host: &PluginHost,
        source: &str,
        bytes: &[u8],
    ) -> Result<(RegistryEntry, String), PluginError> {
        let plugin = host.load(source, bytes)?;
        if is_builtin_name(plugin.name()) && !builtins().iter().any(|b| b.bytes == bytes) {
            return Err(PluginError::ReservedName {
                source_name: source.to_string(),
                name: plugin.name().to_string(),
            });
        }
        let sample = super::check::sample_run(host, &plugin)?;
        Ok((self.add(host, source, bytes, false)?, sample))
    }

    fn read_entry(&self, path: &Path) -> Result<RegistryEntry, PluginError> {
        let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
        let mut entry: RegistryEntry = serde_json::from_str(&text).map_err(|e| io_err(path, e))?;
        entry.disabled = self.flag_path(&entry.digest).exists();
        Ok(entry)
    }

    fn flag_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.disabled"))
    }

    /// The entry with exactly this digest.
    pub fn get(&self, digest: &str) -> Result<Option<RegistryEntry>, PluginError> {
        // Digests are hex: anything else cannot name a file here (and must not name a path).
        if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let json = self.dir.join(format!("{digest}.json"));
        if !json.exists() {
            return Ok(None);
        }
        self.read_entry(&json).map(Some)
    }

    /// Disable or enable a stored plugin; false if no plugin has this digest.
    pub fn set_disabled(&self, digest: &str, disabled: bool) -> Result<bool, PluginError> {
        if self.get(digest)?.is_none() {
            return Ok(false);
        }
        let flag = self.flag_path(digest);
        if disabled {
            std::fs::write(&flag, b"").map_err(|e| io_err(&flag, e))?;
        } else if flag.exists() {
            std::fs::remove_file(&flag).map_err(|e| io_err(&flag, e))?;
        }
        Ok(true)
    }

    /// Delete an uploaded plugin; built-ins come back at every start, so they can only be
    /// disabled. False if no plugin has this digest.
    pub fn remove(&self, digest: &str) -> Result<bool, PluginError> {
        let Some(entry) = self.get(digest)? else {
            return Ok(false);
        };
        if entry.builtin {
            return Err(PluginError::Host(format!(
                "{} {} is built in: disable it instead of deleting it",
                entry.description.name, entry.description.version
            )));
        }
        for ext in ["wasm", "json", "disabled"] {
            let path = self.dir.join(format!("{digest}.{ext}"));
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            }
        }
        Ok(true)
    }

    /// Every stored plugin, by name then version.
    pub fn list(&self) -> Result<Vec<RegistryEntry>, PluginError> {
        let mut out = Vec::new();
        for item in std::fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, e))? {
            let path = item.map_err(|e| io_err(&self.dir, e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                out.push(self.read_entry(&path)?);
            }
        }
        out.sort_by(|a, b| {
            (&a.description.name, &a.description.version, a.added_unix).cmp(&(
                &b.description.name,
                &b.description.version,
                b.added_unix,
            ))
        });
        Ok(out)
    }

    /// Load a stored plugin by digest (or a unique digest prefix of at least 8 characters).
    pub fn load(
        &self,
        host: &PluginHost,
        digest: &str,
    ) -> Result<std::sync::Arc<Plugin>, PluginError> {
        let entries = self.list()?;
        let matches: Vec<_> = entries
            .iter()
            .filter(|e| digest.len() >= 8 && e.digest.starts_with(digest))
            .collect();
        let [entry] = matches.as_slice() else {
            return Err(PluginError::Host(format!(
                "registry: {} plugins match digest `{digest}`",
                matches.len()
            )));
        };
        host.load_file(&self.component_path(&entry.digest))
    }

    /// Where the component with `digest` is stored.
    pub fn component_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.wasm"))
    }

    /// The latest enabled plugin with this name (by time added). A built-in's name finds only
    /// built-ins, even in a registry that holds an upload of that name from an older version.
    pub fn find(&self, name: &str) -> Result<Option<RegistryEntry>, PluginError> {
        Ok(pick(&self.list()?, name).cloned())
    }
}

/// Among `entries` (a [`Registry::list`]), the plugin a run under `name` uses: the latest
/// enabled one added with that name; for a built-in's name, only built-ins count.
pub fn pick<'a>(entries: &'a [RegistryEntry], name: &str) -> Option<&'a RegistryEntry> {
    let reserved = is_builtin_name(name);
    entries
        .iter()
        .filter(|e| e.description.name == name && !e.disabled)
        .filter(|e| e.builtin || !reserved)
        .max_by_key(|e| e.added_unix)
}

/// What one process shares across all its runs: one [`PluginHost`] (one wasmtime engine, its
/// epoch thread and its compiled components) and the [`Registry`] beside it. The CLI opens
/// one per command; the dashboard one at start, which its live run and every comparison use.
#[derive(Clone)]
pub struct Catalog {
    pub host: Arc<PluginHost>,
    pub registry: Arc<Registry>,
}

impl Catalog {
    /// The registry under `data_dir`, with the built-ins registered, on a host with the
    /// default limits that caches compiled components in `data_dir/compiled`.
    pub fn open(data_dir: &Path) -> Result<Self, PluginError> {
        let host = PluginHost::new(Limits::default())?.with_cache_dir(data_dir.join("compiled"));
        let registry = Registry::open(data_dir)?;
        registry.register_builtins(&host)?;
        Ok(Self {
            host: Arc::new(host),
            registry: Arc::new(registry),
        })
    }

    /// The component file of a plugin named as [`Catalog::load`] takes it.
    pub fn component(&self, name: &str) -> Result<PathBuf, PluginError> {
        if name.ends_with(".wasm") {
            return Ok(PathBuf::from(name));
        }
        Ok(self.registry.component_path(&self.entry(name)?.digest))
    }

    /// A plugin by name (the latest enabled one registered under it) or by `.wasm` path.
    pub fn load(&self, name: &str) -> Result<Arc<Plugin>, PluginError> {
        if name.ends_with(".wasm") {
            return self.host.load_file(Path::new(name));
        }
        self.registry.load(&self.host, &self.entry(name)?.digest)
    }

    fn entry(&self, name: &str) -> Result<RegistryEntry, PluginError> {
        self.registry
            .find(name)?
            .ok_or_else(|| PluginError::NotRegistered {
                name: name.to_string(),
            })
    }
}
