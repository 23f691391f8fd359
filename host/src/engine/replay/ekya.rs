//! Ekya's per-city meta-profile JSON: `taskwise_train_profiles` (task → rows `[name,
//! start_acc, end_acc, resource_time, model]`, the name `<hp id>_<epoch index>`) and
//! `taskwise_infer_profiles` (task → `{hp: [start_acc, model]}`). Tasks are windows, in
//! numeric order; Ekya's inference configurations are its frame-sampling grid.

use serde_json::{Map, Value};

use super::{EKYA_FULL_RATE_SHARE, EKYA_SAMPLING, ReplayError, field_err};
use crate::plugin::types::{
    InferConfig, InferProfile, RetrainConfig, RetrainProfile, StreamInput, StreamState,
};

/// A number in a JSON field, or an error naming it.
fn number(file: &str, field: &str, what: &str, v: &Value) -> Result<f64, ReplayError> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(field_err(
            file,
            field,
            format!("{what} {v} is not a number"),
        )),
    }
}

fn accuracy(file: &str, field: &str, what: &str, v: &Value) -> Result<f64, ReplayError> {
    let a = number(file, field, what, v)?;
    if !(0.0..=1.0).contains(&a) {
        return Err(field_err(
            file,
            field,
            format!("{what} {a} is outside [0, 1]"),
        ));
    }
    Ok(a)
}

/// Ekya's inference configurations: keep 1 frame in k, for every k of its grid.
pub fn ekya_infer_profiles() -> Vec<InferProfile> {
    EKYA_SAMPLING
        .iter()
        .map(|&(k, factor)| InferProfile {
            config: InferConfig {
                name: format!("sample-1/{k}"),
                frame_sampling: k,
                // Ekya's profiles have no resolution axis.
                resolution: 0,
            },
            accuracy_factor: factor,
            gpu_cost: EKYA_FULL_RATE_SHARE / k as f64,
        })
        .collect()
}

/// One Ekya meta-profile (one city, i.e. one stream): its windows in task order, each with
/// its task id.
pub fn parse_ekya(
    file: &str,
    stream: &str,
    text: &str,
) -> Result<Vec<(String, StreamInput)>, ReplayError> {
    let root: Value = serde_json::from_str(text).map_err(|e| ReplayError::Read {
        file: file.into(),
        message: format!("not valid JSON: {e}"),
    })?;
    let Some(root) = root.as_object() else {
        return Err(field_err(file, "(top level)", "expected a JSON object"));
    };
    let train = match root.get("taskwise_train_profiles") {
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(field_err(
                file,
                "taskwise_train_profiles",
                "expected an object: task → list of [name, start_acc, end_acc, resource_time, model]",
            ));
        }
        None => {
            return Err(field_err(
                file,
                "taskwise_train_profiles",
                "missing (is this an Ekya meta-profile?)",
            ));
        }
    };
    let empty = Map::new();
    let infer = match root.get("taskwise_infer_profiles") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => &empty,
        Some(_) => {
            return Err(field_err(
                file,
                "taskwise_infer_profiles",
                "expected an object: task → {hp: [start_acc, model]}",
            ));
        }
    };
    let mut out = Vec::new();
    for task in task_order(file, train, infer)? {
        let (retrain, mut starts) = match train.get(task) {
            Some(rows) => train_rows(file, task, rows)?,
            None => (Vec::new(), Vec::new()),
        };
        if let Some(hps) = infer.get(task) {
            let infer_starts = infer_starts(file, task, hps)?;
            // Only a window without training rows needs them.
            if retrain.is_empty() {
                starts.extend(infer_starts);
            }
        }
        if starts.is_empty() {
            return Err(field_err(
                file,
                format!("taskwise_train_profiles[\"{task}\"]"),
                "task has no profile, so its start accuracy is unknown",
            ));
        }
        // Every row starts from the same serving model; their mean irons out rounding.
        let start = starts.iter().sum::<f64>() / starts.len() as f64;
        out.push((
            task.clone(),
            StreamInput {
                state: StreamState {
                    id: stream.to_string(),
                    window: 0,
                    accuracy: start,
                    class_mix: Vec::new(),
                    samples: 0,
                },
                retrain,
                infer: ekya_infer_profiles(),
                running: None,
            },
        ));
    }
    Ok(out)
}

/// The task ids of both sections, in numeric order (tasks are windows).
fn task_order<'m>(
    file: &str,
    train: &'m Map<String, Value>,
    infer: &'m Map<String, Value>,
) -> Result<Vec<&'m String>, ReplayError> {
    let mut tasks: Vec<(f64, &String)> = Vec::new();
    for key in train.keys().chain(infer.keys()) {
        let section = if train.contains_key(key) {
            "taskwise_train_profiles"
        } else {
            "taskwise_infer_profiles"
        };
        let n: f64 = key.trim().parse().map_err(|_| {
            field_err(
                file,
                format!("{section}[\"{key}\"]"),
                "task ids must be numbers (tasks are windows, in numeric order)",
            )
        })?;
        if !tasks.iter().any(|(_, k)| *k == key) {
            tasks.push((n, key));
        }
    }
    tasks.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(tasks.into_iter().map(|(_, k)| k).collect())
}

/// A task's training rows: each configuration's profile, and the start accuracies they
/// record.
fn train_rows(
    file: &str,
    task: &str,
    rows: &Value,
) -> Result<(Vec<RetrainProfile>, Vec<f64>), ReplayError> {
    let base = format!("taskwise_train_profiles[\"{task}\"]");
    let Some(rows) = rows.as_array() else {
        return Err(field_err(file, base, "expected a list of profile rows"));
    };
    let mut retrain: Vec<RetrainProfile> = Vec::new();
    let mut starts = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let at = format!("{base}[{r}]");
        let (profile, start) = train_row(file, &at, row)?;
        if retrain.iter().any(|p| p.config.name == profile.config.name) {
            return Err(field_err(
                file,
                format!("{at}[0]"),
                format!(
                    "configuration `{}` appears twice in this task",
                    profile.config.name
                ),
            ));
        }
        starts.push(start);
        retrain.push(profile);
    }
    Ok((retrain, starts))
}

/// One training row `[name, start_acc, end_acc, resource_time, model]` at JSON path `at`:
/// its profile and start accuracy.
fn train_row(file: &str, at: &str, row: &Value) -> Result<(RetrainProfile, f64), ReplayError> {
    let Some(cols) = row.as_array() else {
        return Err(field_err(
            file,
            at,
            "expected a row [name, start_acc, end_acc, resource_time, model]",
        ));
    };
    if cols.len() != 5 {
        return Err(field_err(
            file,
            at,
            format!(
                "a profile row has {} entries, expected 5: [name, start_acc, end_acc, resource_time, model]",
                cols.len()
            ),
        ));
    }
    let Some(name) = cols[0].as_str() else {
        return Err(field_err(
            file,
            format!("{at}[0]"),
            format!("name {} is not a string", cols[0]),
        ));
    };
    // "<hp id>_<epoch index>": the epoch index is all a policy could use.
    let epoch = name
        .rsplit_once('_')
        .and_then(|(_, e)| e.parse::<u32>().ok())
        .ok_or_else(|| {
            field_err(
                file,
                format!("{at}[0]"),
                format!("name `{name}` is not `<hp id>_<epoch index>`"),
            )
        })?;
    let start = accuracy(file, &format!("{at}[1]"), "start accuracy", &cols[1])?;
    let end = accuracy(file, &format!("{at}[2]"), "end accuracy", &cols[2])?;
    let time = number(file, &format!("{at}[3]"), "resource time", &cols[3])?;
    if time <= 0.0 {
        return Err(field_err(
            file,
            format!("{at}[3]"),
            format!("resource time {time} must be positive (GPU-seconds at a full GPU)"),
        ));
    }
    let profile = RetrainProfile {
        config: RetrainConfig {
            name: name.to_string(),
            epochs: epoch,
            layers_trained: 0,
            data_fraction: 1.0,
            width: 0,
            batch_size: 0,
            learning_rate: 0.0,
            start_from: None,
        },
        accuracy_after: end,
        gpu_seconds: time,
        accuracy_error: 0.0,
        progress: 0.0,
    };
    Ok((profile, start))
}

/// A task's inference profiles `{hp: [start_acc, model]}`: their start accuracies.
fn infer_starts(file: &str, task: &str, hps: &Value) -> Result<Vec<f64>, ReplayError> {
    let base = format!("taskwise_infer_profiles[\"{task}\"]");
    let Some(hps) = hps.as_object() else {
        return Err(field_err(
            file,
            base,
            "expected an object {hp: [start_acc, model]}",
        ));
    };
    let mut starts = Vec::new();
    for (hp, entry) in hps {
        let at = format!("{base}[\"{hp}\"]");
        match entry.as_array() {
            Some(cols) if cols.len() == 2 => {
                starts.push(accuracy(
                    file,
                    &format!("{at}[0]"),
                    "start accuracy",
                    &cols[0],
                )?);
            }
            Some(cols) => {
                return Err(field_err(
                    file,
                    at,
                    format!(
                        "an inference profile has {} entries, expected 2: [start_acc, model]",
                        cols.len()
                    ),
                ));
            }
            None => return Err(field_err(file, at, "expected [start_acc, model]")),
        }
    }
    Ok(starts)
}
