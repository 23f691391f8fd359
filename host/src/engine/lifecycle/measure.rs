//! What a wake-up costs on this machine, measured once for the window loop's phases: a
//! stream as it stands late in a run is really scaled to zero and brought back each way, and
//! the medians become the [`WakeCosts`] every policy of a run (or of a comparison) pays.

use std::path::Path;

use super::{
    ColdStart, FirstBatch, Labelled, Lifecycle, LifecycleError, Replay, Resident, StreamPlugin,
};
use crate::compute::Backend;
use crate::data::Dataset;
use crate::engine::memory::ExemplarMemory;
use crate::engine::phases::{WakeCosts, WakeKind};
use crate::engine::scenario::Scenario;
use crate::engine::stream::{Camera, split};
use crate::model::Model;
use crate::plugin::Catalog;

/// `camera`'s stream as it stands after the scenario's windows: `model` serving, the exemplar
/// memory filled from every window as the window loop fills it, one window of labels that
/// came while it was cold, and `plugins` compiled for it alone.
pub fn late_resident<B: Backend>(
    scenario: &Scenario,
    camera: &Camera,
    model: Model<B>,
    plugins: Vec<StreamPlugin>,
) -> Resident<B> {
    let mut memory = ExemplarMemory::new(
        scenario.memory.capacity as usize,
        &camera.pool.train.empty_like(),
    );
    for w in 0..scenario.windows {
        let (mut fit, val) = split(&camera.labelled(scenario, w));
        fit.extend(&val);
        memory.absorb(&fit, w, scenario.seed ^ w as u64);
    }
    let pending = vec![Labelled {
        window: scenario.windows,
        samples: camera.labelled(scenario, scenario.windows),
    }];
    Resident {
        model,
        memory,
        pending,
        plugins,
    }
}

/// The scenario's policy, configuration space and estimator compiled for one stream alone,
/// from the components `catalog` finds for them.
pub fn stream_plugins(
    catalog: &Catalog,
    s: &Scenario,
) -> Result<Vec<StreamPlugin>, LifecycleError> {
    let mut plugins = Vec::new();
    for (role, r) in [
        ("policy", &s.policy),
        ("config-space", &s.config_space),
        ("estimator", &s.estimator),
    ] {
        let component = catalog.component(&r.name)?;
        plugins.push(StreamPlugin::compile(&catalog.host, role, &component)?);
    }
    Ok(plugins)
}

/// The objects of `camera`'s first frame: what a woken stream's first inference classifies.
pub fn first_objects(camera: &Camera) -> Dataset {
    camera
        .pool
        .frames
        .take(camera.spec.objects_per_frame as usize)
}

/// A copy of `r` to scale down (the original stays as it is).
pub fn duplicate<B: Backend>(be: &B, r: &Resident<B>) -> Resident<B> {
    Resident {
        model: r.model.duplicate(be),
        memory: r.memory.clone(),
        pending: r.pending.clone(),
        plugins: r.plugins.clone(),
    }
}

/// Scale `r` down and wake it `rounds` times each way (interleaved, so a slow moment of the
/// machine lands on every path alike) under `root`, and return each path's median seconds
/// to its first inference with the median of each step. The three paths: cold with nothing
/// prepared, cold from preprocessed artifacts, pre-warmed (the pre-warm's own load is done
/// ahead of the frames, so it is not counted).
pub fn measure<B: Backend>(
    be: &B,
    (root, host): (&Path, std::sync::Arc<crate::plugin::PluginHost>),
    r: &Resident<B>,
    (replay, first): (Replay<'_>, FirstBatch<'_>),
    rounds: usize,
) -> Result<WakeCosts, LifecycleError> {
    let slow = Lifecycle::new(root, host.clone(), false);
    let fast = Lifecycle::new(root, host, true);
    let mut starts: [Vec<ColdStart>; 3] = Default::default();
    for _ in 0..rounds.max(1) {
        let cold = slow.scale_down(be, "measure-slow", duplicate(be, r))?;
        starts[0].push(slow.wake(be, cold, replay, first)?.1);
        let cold = fast.scale_down(be, "measure-fast", duplicate(be, r))?;
        starts[1].push(fast.wake(be, cold, replay, first)?.1);
        let cold = fast.scale_down(be, "measure-prewarmed", duplicate(be, r))?;
        let warm = fast.prewarm(cold, replay)?;
        starts[2].push(fast.wake_prewarmed(be, warm, first)?.1);
    }
    let _ = std::fs::remove_dir_all(root);
    let mut costs = WakeCosts::default();
    for (kind, runs) in [WakeKind::Cold, WakeKind::Preprocessed, WakeKind::Prewarmed]
        .into_iter()
        .zip(&starts)
    {
        let total = median(runs.iter().map(ColdStart::total_ms).collect()) / 1e3;
        match kind {
            WakeKind::Cold => costs.cold = total,
            WakeKind::Preprocessed => costs.preprocessed = total,
            WakeKind::Prewarmed => costs.prewarmed = total,
        }
        for step in super::Step::ALL {
            let ms: Vec<f64> = runs
                .iter()
                .filter(|s| s.steps.iter().any(|(st, _)| *st == step))
                .map(|s| s.ms(step))
                .collect();
            if !ms.is_empty() {
                costs
                    .steps
                    .push((kind, step.name().to_string(), median(ms)));
            }
        }
    }
    Ok(costs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
