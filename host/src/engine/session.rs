//! [`Session`]: what every run of a scenario shares — the plugin catalog it is given (the
//! process's one plugin host and registry), the cameras' source images, the pretrained
//! starting model (cached on disk) and the cost model — so that the CLI, the dashboard and
//! comparisons build engines the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::lifecycle::{FirstBatch, Replay, measure};
use super::phases::WakeCosts;
use super::scenario::{EstimateSource, PluginRef, ProfileTiming, SourceKind, ZooStart};
use super::zoo::{PRETRAINED, Zoo};
use super::{Camera, CostModel, Engine, EngineError, Plugins, Scenario, SourcePool};
use crate::compute::Backend;
use crate::data::Look;
use crate::model::{self, Arch, Model, TrainConfig, weights};
use crate::plugin::types::{Param, PluginKind};
use crate::plugin::{Catalog, Plugin, validate};

pub struct Session<B: Backend> {
    /// The process's plugin host and registry: every engine of the session runs its plugins
    /// on that one host.
    pub catalog: Catalog,
    pools: Vec<Arc<SourcePool>>,
    pretrained: Model<B>,
    pub cost: CostModel,
    /// Where the pretrained model is cached.
    pub pretrained_path: PathBuf,
    /// Where the zoo is kept (`<data dir>/zoo`).
    pub zoo_dir: PathBuf,
    /// The pretrained model's scene signature (what the images it learnt from look like)
    /// and accuracy on held-out undrifted images: its entry in every zoo.
    pretrained_look: (Vec<f64>, f64),
    /// What a wake-up costs, measured the first time a serverless engine is made: every run
    /// and every lane of a comparison of this session then pays the same.
    wake_costs: std::sync::Mutex<Option<WakeCosts>>,
    /// The data dir's zoo, read the first time an engine keeps it (`start = "keep"`): every
    /// lane of a comparison then starts from the same zoo, even while the live run saves its
    /// own to the same directory after every window. (Read per lane, lanes started at
    /// different moments saw different zoos, and since the host swaps a zoo model in at the
    /// labels for any policy, two lanes of one policy decided differently.)
    kept_zoo: std::sync::OnceLock<Zoo>,
}

impl<B: Backend> Session<B> {
    /// Load the scenario's sources and load (or pretrain and cache under `data_dir`) the
    /// starting model; plugins come from `catalog`. `on_pretrain(done, total)` reports
    /// pretraining progress in samples.
    pub fn new(
        be: &B,
        s: &Scenario,
        data_dir: &Path,
        catalog: Catalog,
        on_pretrain: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, EngineError> {
        // Cameras of one kind share a pool; samplelist cameras share one per CSV file.
        type Key = (SourceKind, Option<PathBuf>);
        let mut by_kind: Vec<(Key, Arc<SourcePool>)> = Vec::new();
        let mut pools = Vec::new();
        for cam in &s.cameras {
            let key = (cam.source.clone(), cam.samplelist.clone());
            let pool = match by_kind.iter().find(|(k, _)| *k == key) {
                Some((_, p)) => p.clone(),
                None => {
                    let p = SourcePool::for_camera(cam, s.seed)?;
                    by_kind.push((key, p.clone()));
                    p
                }
            };
            pools.push(pool);
        }
        let shapes: std::collections::BTreeSet<(usize, usize, usize)> = pools
            .iter()
            .map(|p| (p.train.h, p.train.w, p.train.c))
            .collect();
        if shapes.len() > 1 {
            return Err(EngineError::Setup(format!(
                "all cameras of a scenario must share one image shape (their models are pretrained alike); got {shapes:?}"
            )));
        }
        let pool = &pools[0];
        let arch = Arch {
            in_channels: pool.train.c,
            channels: s.channels.map(|c| c as usize),
            hidden: s.hidden as usize,
            classes: pool.train.classes,
        };
        let key = format!(
            "{:?}|{arch:?}|{:?}|{}",
            s.cameras[0].source, s.pretrain, s.seed
        );
        let digest = hex::encode(&Sha256::digest(key.as_bytes())[..8]);
        let pretrained_path = data_dir
            .join("models")
            .join(format!("pretrained-{digest}.safetensors"));
        let pretrained = if pretrained_path.exists() {
            weights::load(be, &pretrained_path, Some(arch))
                .map_err(|e| EngineError::Setup(e.to_string()))?
        } else {
            let data = pool.train.take(s.pretrain.samples as usize);
            let mut m = Model::new(be, arch, s.seed);
            let cfg = TrainConfig {
                epochs: s.pretrain.epochs as usize,
                seed: s.seed,
                ..TrainConfig::default()
            };
            model::train(be, &mut m, &data, &cfg, on_pretrain);
            weights::save(be, &m, &pretrained_path)
                .map_err(|e| EngineError::Setup(e.to_string()))?;
            m
        };
        let mut held_out = pretrained.duplicate(be);
        let pretrained_look = (
            Look::of(&pool.train.take(s.pretrain.samples as usize)).mean,
            model::evaluate(be, &mut held_out, &pool.frames.take(512), 256) as f64,
        );
        let cost = CostModel::of(s, arch, pool.train.h, pool.train.w);
        Ok(Self {
            catalog,
            pools,
            pretrained,
            cost,
            pretrained_path,
            zoo_dir: data_dir.join("zoo"),
            pretrained_look,
            wake_costs: std::sync::Mutex::new(None),
            kept_zoo: std::sync::OnceLock::new(),
        })
    }

    /// Measure this device against the modelled GPU: (device GFLOP/s, modelled GFLOP/s).
    pub fn calibrate(&self, be: &B) -> (f64, f64) {
        let (h, w) = (self.pools[0].train.h, self.pools[0].train.w);
        (
            CostModel::calibrate(be, self.cost.arch, h, w),
            self.cost.gpu_flops / 1e9,
        )
    }

    /// The scenario's plugins, with `policy` as the policy, each one's parameters checked.
    pub fn plugins(&self, s: &Scenario, policy: &PluginRef) -> Result<Plugins, EngineError> {
        plugins(&self.catalog, s, policy)
    }

    /// The zoo a run of `s` starts from: the data dir's (`start = "keep"`, as the session first
    /// read it; corrupt or missing models skipped with a warning on stderr) or an empty one,
    /// with the pretrained model in it.
    pub fn zoo(&self, be: &B, s: &Scenario) -> Zoo {
        let (max_models, max_bytes) = (
            s.zoo.max_models as usize,
            (s.zoo.max_mib * 1024.0 * 1024.0) as u64,
        );
        let mut zoo = match s.zoo.start {
            ZooStart::Keep => self
                .kept_zoo
                .get_or_init(|| {
                    let (zoo, warnings) = Zoo::open(&self.zoo_dir, max_models, max_bytes);
                    for w in warnings {
                        eprintln!("warning: {w}");
                    }
                    zoo
                })
                .clone(),
            ZooStart::Fresh => Zoo::new(max_models, max_bytes),
        };
        if !zoo.models().any(|m| m.id == PRETRAINED) {
            let (look, accuracy) = self.pretrained_look.clone();
            zoo.insert(be, &self.pretrained, (PRETRAINED, 0), look, accuracy);
        }
        zoo
    }

    /// A fresh engine for `s` under `policy`, every camera starting from the pretrained model.
    pub fn engine<'a>(
        &self,
        be: &'a B,
        s: &Scenario,
        policy: &PluginRef,
    ) -> Result<Engine<'a, B>, EngineError> {
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
        let (policy, options) = host_options(policy)?;
        let mut s = s.clone();
        options.apply(&mut s);
        let plugins = self.plugins(&s, &policy)?;
        let zoo = s.zoo.enabled.then(|| self.zoo(be, &s));
        let costs = if s.serverless() {
            self.wake_costs(be, &s)?
        } else {
            WakeCosts::default()
        };
        Ok(
            Engine::new(be, s, plugins, cameras, &self.pretrained, self.cost.clone())
                .with_zoo(zoo)
                .with_wake_costs(costs),
        )
    }

    /// The three wake-ups' costs for `s`'s first camera, measured once per session by really
    /// scaling a stream to zero and back (3 rounds each way, medians): see
    /// [`lifecycle::measure`]. Trade-off: one camera stands for all (they share one model
    /// shape and memory bound), and 3 rounds keep a serverless run's start under a few
    /// seconds; `tandem bench coldstart` gives p50/p99 over many.
    pub fn wake_costs(&self, be: &B, s: &Scenario) -> Result<WakeCosts, EngineError> {
        let mut cached = self.wake_costs.lock().expect("wake costs");
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let camera = Camera {
            index: 0,
            spec: s.cameras[0].clone(),
            pool: self.pools[0].clone(),
        };
        let setup =
            |e: &dyn std::fmt::Display| EngineError::Setup(format!("cold-start costs: {e}"));
        let plugins = measure::stream_plugins(&self.catalog, s).map_err(|e| setup(&e))?;
        let resident = measure::late_resident(s, &camera, self.pretrained.duplicate(be), plugins);
        let first = measure::first_objects(&camera);
        let root = std::env::temp_dir().join(format!("tandem-wake-{}", std::process::id()));
        let costs = measure::measure(
            be,
            (&root, self.catalog.host.clone()),
            &resident,
            (
                Replay {
                    scenario: s,
                    camera: 0,
                },
                FirstBatch {
                    images: &first.images,
                    shape: (first.len(), first.h, first.w),
                },
            ),
            3,
        )
        .map_err(|e| setup(&e))?;
        *cached = Some(costs.clone());
        Ok(costs)
    }
}

/// The host's own options in a policy spec, taken out before the plugin sees its parameters,
/// so a compare can run policies under different host settings on the same streams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostOptions {
    /// `profile=true|false` overrides `[profiler] enabled`: a baseline that never reads
    /// predictions runs without paying for the profiler.
    pub profile: Option<bool>,
    /// `timing=before|beside` overrides `[profiler] timing`.
    pub timing: Option<ProfileTiming>,
    /// `estimate=profile|history|history-only` overrides `[profiler] estimate`.
    pub estimate: Option<EstimateSource>,
    /// `reuse=true|false` overrides `[profiler] reuse`.
    pub reuse: Option<bool>,
    /// `lean=true|false` overrides `[profiler] lean`.
    pub lean: Option<bool>,
    /// `zoo=true|false` overrides `[zoo] enabled`: the same streams with and without reuse.
    pub zoo: Option<bool>,
    /// `lifecycle=NAME` overrides `[lifecycle] policy` (its parameters stay the scenario's
    /// when the name is the same, and are dropped otherwise).
    pub lifecycle: Option<String>,
}

impl HostOptions {
    /// The scenario as this policy runs it.
    pub fn apply(&self, s: &mut Scenario) {
        if let Some(profile) = self.profile {
            s.profiler.enabled = profile;
        }
        if let Some(timing) = self.timing {
            s.profiler.timing = timing;
        }
        if let Some(estimate) = self.estimate {
            s.profiler.estimate = estimate;
        }
        if let Some(reuse) = self.reuse {
            s.profiler.reuse = reuse;
        }
        if let Some(lean) = self.lean {
            s.profiler.lean = lean;
        }
        if let Some(zoo) = self.zoo {
            s.zoo.enabled = zoo;
        }
        if let Some(name) = self
            .lifecycle
            .as_ref()
            .filter(|n| **n != s.lifecycle.policy.name)
        {
            s.lifecycle.policy = PluginRef {
                name: name.clone(),
                params: Default::default(),
            };
        }
    }
}

/// Take the host's options out of a policy spec (see [`HostOptions`]).
pub fn host_options(policy: &PluginRef) -> Result<(PluginRef, HostOptions), EngineError> {
    let mut policy = policy.clone();
    let bad = |key: &str, expected: &str, v: &toml::Value| {
        EngineError::Setup(format!(
            "policy `{}`: {key} must be {expected}, got {v}",
            policy.name
        ))
    };
    let flag = |key: &str| match policy.params.get(key) {
        None => Ok(None),
        Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(key, "true or false", v)),
    };
    let (profile, reuse, lean, zoo) = (
        flag("profile")?,
        flag("reuse")?,
        flag("lean")?,
        flag("zoo")?,
    );
    let lifecycle = match policy.params.get("lifecycle") {
        None => None,
        Some(toml::Value::String(n)) => Some(n.clone()),
        Some(v) => return Err(bad("lifecycle", "a lifecycle plugin's name", v)),
    };
    let timing = match policy.params.get("timing") {
        None => None,
        Some(toml::Value::String(t)) if t == "before" => Some(ProfileTiming::Before),
        Some(toml::Value::String(t)) if t == "beside" => Some(ProfileTiming::Beside),
        Some(v) => return Err(bad("timing", "before or beside", v)),
    };
    let estimate = match policy.params.get("estimate") {
        None => None,
        Some(toml::Value::String(t)) if t == "profile" => Some(EstimateSource::Profile),
        Some(toml::Value::String(t)) if t == "history" => Some(EstimateSource::History),
        Some(toml::Value::String(t)) if t == "history-only" => Some(EstimateSource::HistoryOnly),
        Some(v) => return Err(bad("estimate", "profile, history or history-only", v)),
    };
    for key in [
        "profile",
        "timing",
        "estimate",
        "reuse",
        "lean",
        "zoo",
        "lifecycle",
    ] {
        policy.params.remove(key);
    }
    Ok((
        policy,
        HostOptions {
            profile,
            timing,
            estimate,
            reuse,
            lean,
            zoo,
            lifecycle,
        },
    ))
}

/// A plugin from `catalog` and its parameters, checked against the ones it declares.
fn checked(catalog: &Catalog, r: &PluginRef) -> Result<(Arc<Plugin>, Vec<Param>), EngineError> {
    let params = super::params_from_toml(&r.params)
        .map_err(|e| EngineError::Setup(format!("plugin `{}`: {e}", r.name)))?;
    let plugin = catalog.load(&r.name)?;
    validate::params(plugin.description(), &params)
        .map_err(|e| EngineError::Setup(format!("plugin `{}`: {e}", r.name)))?;
    Ok((plugin, params))
}

/// Scenario `s`'s plugins from `catalog`, with `policy` as the policy, each one's parameters
/// checked.
pub fn plugins(
    catalog: &Catalog,
    s: &Scenario,
    policy: &PluginRef,
) -> Result<Plugins, EngineError> {
    let (policy, policy_params) = checked(catalog, policy)?;
    let (space, space_params) = checked(catalog, &s.config_space)?;
    let (estimator, estimator_params) = checked(catalog, &s.estimator)?;
    let selector = if s.zoo.enabled {
        Some(checked(catalog, &s.zoo.selector)?)
    } else {
        None
    };
    let lifecycle = if s.serverless() {
        Some(checked(catalog, &s.lifecycle.policy)?)
    } else {
        None
    };
    Ok(Plugins {
        host: catalog.host.clone(),
        policy,
        policy_params,
        space,
        space_params,
        estimator,
        estimator_params,
        selector,
        zoo_candidates: s.zoo.max_candidates,
        lifecycle,
        seed: s.seed,
    })
}

/// Check every policy (and the scenario's other plugins) before anything runs, pretraining
/// included: each loads, is a policy, and is given only parameters it declares.
pub fn check(catalog: &Catalog, s: &Scenario, policies: &[PluginRef]) -> Result<(), EngineError> {
    for policy in policies {
        let (policy, _) = host_options(policy)?;
        let plugins = plugins(catalog, s, &policy)?;
        if plugins.policy.kind() != PluginKind::Policy {
            return Err(EngineError::Setup(format!(
                "`{}` is a {} plugin, not a policy",
                policy.name,
                plugins.policy.kind().world()
            )));
        }
    }
    Ok(())
}
