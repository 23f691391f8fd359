//! Checks on plugin output before anything uses it, and on the parameters a run passes a plugin
//! before anything runs ([`params`]). Each returns the first problem found as a plain message;
//! the runtime wraps an output problem into `PluginError::InvalidOutput` with the plugin's name
//! and version.

use std::collections::HashSet;

use super::types::{
    ConfigSet, Description, EstimateRequest, LifecycleDecision, LifecycleInput, Param, ParamValue,
    PluginKind, PolicyInput, Prediction, Schedule, SelectionRequest,
};

/// Slack for floating-point sums of shares.
const TOLERANCE: f64 = 1e-6;

/// A schedule is usable when: every stream of the input appears exactly once and no other;
/// every share is finite and non-negative; each job gets at most one GPU; the total is at most
/// the GPU count; each configuration named was offered for that stream; a retraining share is
/// only given with a retraining configuration.
pub fn schedule(input: &PolicyInput, s: &Schedule) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut total = 0.0;
    for entry in &s.streams {
        let id = &entry.stream_id;
        let Some(stream) = input.streams.iter().find(|x| &x.state.id == id) else {
            return Err(format!("unknown stream `{id}`"));
        };
        if !seen.insert(id.as_str()) {
            return Err(format!("stream `{id}` scheduled twice"));
        }
        for (what, share) in [
            ("inference", entry.infer_share),
            ("retraining", entry.retrain_share),
        ] {
            if !share.is_finite() || share < 0.0 {
                return Err(format!(
                    "stream `{id}`: {what} share {share} is not a finite non-negative number"
                ));
            }
            if share > 1.0 + TOLERANCE {
                return Err(format!(
                    "stream `{id}`: {what} share {share} exceeds one GPU"
                ));
            }
            total += share;
        }
        if !stream
            .infer
            .iter()
            .any(|p| p.config.name == entry.infer_config)
        {
            return Err(format!(
                "stream `{id}`: inference configuration `{}` was not offered",
                entry.infer_config
            ));
        }
        match &entry.retrain_config {
            Some(name) if !stream.retrain.iter().any(|p| &p.config.name == name) => {
                return Err(format!(
                    "stream `{id}`: retraining configuration `{name}` was not offered"
                ));
            }
            None if entry.retrain_share > 0.0 => {
                return Err(format!(
                    "stream `{id}`: retraining share {} without a configuration",
                    entry.retrain_share
                ));
            }
            _ => {}
        }
    }
    if let Some(missing) = input
        .streams
        .iter()
        .find(|x| !seen.contains(x.state.id.as_str()))
    {
        return Err(format!("stream `{}` has no schedule", missing.state.id));
    }
    if total > f64::from(input.gpus) + TOLERANCE {
        return Err(format!(
            "shares total {total:.4} GPUs, more than the {} available",
            input.gpus
        ));
    }
    if let Some(a) = s.estimated_accuracy
        && !(a.is_finite() && (0.0..=1.0 + TOLERANCE).contains(&a))
    {
        return Err(format!("estimated accuracy {a} is not in [0, 1]"));
    }
    Ok(())
}

/// A configuration set is usable when names are unique and non-empty, at least one inference
/// configuration exists, and every number is in range.
pub fn config_set(set: &ConfigSet) -> Result<(), String> {
    if set.infer.is_empty() {
        return Err("no inference configuration".into());
    }
    let mut names = HashSet::new();
    for r in &set.retrain {
        if r.name.is_empty() || !names.insert(("r", r.name.as_str())) {
            return Err(format!(
                "retraining configuration name `{}` is empty or repeated",
                r.name
            ));
        }
        if r.start_from.is_some() {
            return Err(format!(
                "retraining configuration `{}` starts from a zoo model: only the host offers those",
                r.name
            ));
        }
        if r.epochs == 0
            || !(r.data_fraction > 0.0 && r.data_fraction <= 1.0)
            || r.learning_rate.is_nan()
            || r.learning_rate <= 0.0
            || r.batch_size == 0
        {
            return Err(format!(
                "retraining configuration `{}` has an out-of-range value",
                r.name
            ));
        }
    }
    for i in &set.infer {
        if i.name.is_empty() || !names.insert(("i", i.name.as_str())) {
            return Err(format!(
                "inference configuration name `{}` is empty or repeated",
                i.name
            ));
        }
        if i.frame_sampling == 0 || i.resolution == 0 {
            return Err(format!(
                "inference configuration `{}` has an out-of-range value",
                i.name
            ));
        }
    }
    Ok(())
}

/// A prediction is usable when it answers every requested point, accuracies are in [0, 1] and
/// times are positive (infinite when a share gives no throughput).
pub fn prediction(req: &EstimateRequest, p: &Prediction) -> Result<(), String> {
    if p.accuracy.len() != req.epochs_at.len() || p.seconds_at.len() != req.shares.len() {
        return Err(format!(
            "answered {} accuracies and {} times for {} epoch counts and {} shares",
            p.accuracy.len(),
            p.seconds_at.len(),
            req.epochs_at.len(),
            req.shares.len()
        ));
    }
    if let Some(a) = p
        .accuracy
        .iter()
        .find(|a| !(a.is_finite() && (0.0..=1.0).contains(*a)))
    {
        return Err(format!("accuracy {a} is not in [0, 1]"));
    }
    if !p.accuracy_error.is_empty() && p.accuracy_error.len() != p.accuracy.len() {
        return Err(format!(
            "answered {} accuracy errors for {} accuracies",
            p.accuracy_error.len(),
            p.accuracy.len()
        ));
    }
    if let Some(e) = p
        .accuracy_error
        .iter()
        .find(|e| !(e.is_finite() && **e >= 0.0))
    {
        return Err(format!(
            "accuracy error {e} is not a finite non-negative number"
        ));
    }
    if !(p.gpu_seconds.is_finite() && p.gpu_seconds > 0.0) {
        return Err(format!("GPU time {} s is not positive", p.gpu_seconds));
    }
    if let Some(t) = p.seconds_at.iter().find(|t| t.is_nan() || **t <= 0.0) {
        return Err(format!("run time {t} s is not positive"));
    }
    Ok(())
}

/// A self-description is usable when it names itself, has a version, and declares the world
/// it was loaded as.
pub fn description(d: &Description, world: PluginKind) -> Result<(), String> {
    if d.name.trim().is_empty() || d.version.trim().is_empty() {
        return Err("empty name or version".into());
    }
    if d.kind != world {
        return Err(format!(
            "declares kind {:?} but implements world `{}`",
            d.kind,
            world.world()
        ));
    }
    let mut names = HashSet::new();
    if let Some(p) = d.params.iter().find(|p| !names.insert(p.name.as_str())) {
        return Err(format!("parameter `{}` declared twice", p.name));
    }
    Ok(())
}

/// A selector's short list is usable when every id is an entry of the request, none is named
/// twice and there are at most `max_candidates`.
pub fn selection(req: &SelectionRequest, ids: &[String]) -> Result<(), String> {
    if ids.len() > req.max_candidates as usize {
        return Err(format!(
            "{} candidates, more than the {} allowed",
            ids.len(),
            req.max_candidates
        ));
    }
    let mut seen = HashSet::new();
    for id in ids {
        if !req.entries.iter().any(|e| &e.id == id) {
            return Err(format!("unknown zoo model `{id}`"));
        }
        if !seen.insert(id.as_str()) {
            return Err(format!("zoo model `{id}` named twice"));
        }
    }
    Ok(())
}

/// Lifecycle decisions are usable when every stream of the input has exactly one and no other
/// stream does, and every time is a finite non-negative number of seconds.
pub fn lifecycle(input: &LifecycleInput, ds: &[LifecycleDecision]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for d in ds {
        let id = &d.stream_id;
        if !input.streams.iter().any(|s| &s.id == id) {
            return Err(format!("unknown stream `{id}`"));
        }
        if !seen.insert(id.as_str()) {
            return Err(format!("stream `{id}` decided twice"));
        }
        for t in std::iter::once(d.keep_alive_seconds).chain(d.prewarm_after_seconds) {
            if !(t.is_finite() && t >= 0.0) {
                return Err(format!(
                    "stream `{id}`: {t} s is not a finite non-negative time"
                ));
            }
        }
    }
    if let Some(missing) = input.streams.iter().find(|s| !seen.contains(s.id.as_str())) {
        return Err(format!("stream `{}` has no decision", missing.id));
    }
    Ok(())
}

fn kind_of(v: &ParamValue) -> &'static str {
    match v {
        ParamValue::Number(_) => "a number",
        ParamValue::Text(_) => "text",
        ParamValue::Flag(_) => "true or false",
    }
}

/// Parameters a run passes `d`'s plugin, checked against the ones it declares: every name
/// must be declared and every value of the declared type. The message names the valid ones.
pub fn params(d: &Description, given: &[Param]) -> Result<(), String> {
    let valid = || {
        if d.params.is_empty() {
            format!("{} takes no parameters", d.name)
        } else {
            let names: Vec<String> = d
                .params
                .iter()
                .map(|p| format!("{} ({})", p.name, kind_of(&p.default)))
                .collect();
            format!("{}'s parameters: {}", d.name, names.join(", "))
        }
    };
    for p in given {
        let Some(spec) = d.params.iter().find(|s| s.name == p.name) else {
            return Err(format!(
                "{} {} has no parameter `{}` ({})",
                d.name,
                d.version,
                p.name,
                valid()
            ));
        };
        if std::mem::discriminant(&spec.default) != std::mem::discriminant(&p.value) {
            return Err(format!(
                "{} {}: parameter `{}` takes {}, got {:?} ({})",
                d.name,
                d.version,
                p.name,
                kind_of(&spec.default),
                p.value,
                valid()
            ));
        }
    }
    Ok(())
}
