//! Replay: the paper's simulator mode. Scheduling policies (the real plugins) are run on
//! recorded job profiles, with no training and no inference, for fast what-if studies.
//!
//! - [`Profiles`]: what is replayed, window by window: per stream, the [`StreamInput`] a
//!   policy would have seen at the first decision. Read from Ekya's per-city meta-profile
//!   JSON ([`Profiles::from_ekya`]), from the run reports `tandem run --report` writes
//!   ([`Profiles::from_run_reports`]), or from policy inputs recorded in history
//!   ([`Profiles::from_policy_inputs`]).
//! - [`replay`]: one policy over every window, on the same [`Executor`] the engine uses:
//!   decide at the golden-label delay, progress the retraining jobs as a fluid, re-decide at
//!   each completion (falling back as the window loop does when the policy fails), then
//!   score each stream second by second ([`ReplayWindow`]).
//!
//! Scoring follows Ekya's simulator: a stream serves its start accuracy until its job
//! completes and the job's end accuracy afterwards, times the frame-sampling factor its
//! inference share affords: the job samples 1 frame in `full_rate_cost / share` (at least 1),
//! the factor is read off the stream's sampling curve (linearly between its points), and is 0
//! beyond the curve's last point (Ekya: below 1/20 of the needed rate). The window score is
//! the mean over streams and over 1-second steps (evaluated at the start of each second).

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::executor::{Completion, Executor, best_infer, fallback, initial_infer};
use super::report::RunReport;
use crate::plugin::PluginError;
use crate::plugin::types::{
    InferConfig, InferProfile, PolicyInput, RetrainConfig, RetrainProfile, Schedule, StreamInput,
    StreamState,
};

/// Ekya's frame-sampling curve (keep 1 frame in k → accuracy factor), measured on one stream.
pub const EKYA_SAMPLING: [(u32, f64); 12] = [
    (1, 1.0),
    (2, 0.78),
    (3, 0.64),
    (4, 0.60),
    (5, 0.44),
    (6, 0.42),
    (7, 0.41),
    (8, 0.33),
    (9, 0.28),
    (10, 0.15),
    (15, 0.12),
    (20, 0.04),
];

/// GPU share an inference job needs to keep up with every frame, in Ekya's setting.
pub const EKYA_FULL_RATE_SHARE: f64 = 0.25;

/// Defaults of Ekya's drivers: 200 s windows, 2 s golden-label delay, 1 GPU.
pub const DEFAULT_WINDOW_SECONDS: f64 = 200.0;
pub const DEFAULT_GOLDEN_DELAY: f64 = 2.0;
pub const DEFAULT_GPUS: u32 = 1;

/// A problem with the profiles to replay. Messages name the file and, for content errors,
/// the field (as a JSON path).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read or is not JSON.
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    /// A field holds something the format does not allow.
    #[error("{file}: {field}: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
    /// The profiles as a whole cannot be replayed (no windows, mixed formats, ...).
    #[error("{0}")]
    Input(String),
}

/// One window's recorded profiles.
#[derive(Debug, Clone)]
pub struct WindowProfiles {
    /// Where it came from (Ekya's task id, or tandem's window number).
    pub label: String,
    /// One entry per stream, as a policy sees it at the first decision.
    pub streams: Vec<StreamInput>,
    /// Recorded settings, used unless [`ReplayOptions`] overrides them.
    pub gpus: Option<u32>,
    pub window_seconds: Option<f64>,
    pub decide_at: Option<f64>,
}

/// Everything to replay.
#[derive(Debug, Clone)]
pub struct Profiles {
    /// What was read (files, or `history run N`), for the output.
    pub sources: Vec<String>,
    pub windows: Vec<WindowProfiles>,
}

/// Settings that override what the profiles recorded (Ekya's profiles record none: their
/// defaults are [`DEFAULT_GPUS`], [`DEFAULT_WINDOW_SECONDS`] and [`DEFAULT_GOLDEN_DELAY`]).
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub gpus: Option<u32>,
    pub window_seconds: Option<f64>,
    pub golden_delay: Option<f64>,
}

/// One stream of one replayed window.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayStream {
    pub stream: String,
    /// Served accuracy, mean over the window's 1-second steps.
    pub accuracy: f64,
    pub start_accuracy: f64,
    /// Accuracy of the model serving at the window end.
    pub end_accuracy: f64,
    /// Retraining configuration the stream ran last, if any.
    pub retrain_config: Option<String>,
    /// When it finished, seconds into the window (`None`: it did not finish).
    pub finished_at: Option<f64>,
    /// Time-averaged inference share.
    pub infer_share: f64,
}

/// One replayed window.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayWindow {
    pub window: u32,
    pub label: String,
    pub mean_accuracy: f64,
    pub streams: Vec<ReplayStream>,
    pub policy_calls: usize,
    /// Why the policy's answer was not used, per failed call (the fallback decided).
    pub policy_failures: Vec<String>,
}

impl ReplayWindow {
    pub fn jobs_finished(&self) -> usize {
        self.streams
            .iter()
            .filter(|s| s.finished_at.is_some())
            .count()
    }
}

/// Mean of the windows' mean accuracies.
pub fn mean_accuracy(windows: &[ReplayWindow]) -> f64 {
    windows.iter().map(|w| w.mean_accuracy).sum::<f64>() / windows.len().max(1) as f64
}

// ---------------------------------------------------------------------------------------------
// Reading profiles

fn field_err(file: &str, field: impl Into<String>, message: impl Into<String>) -> ReplayError {
    ReplayError::Field {
        file: file.to_string(),
        field: field.into(),
        message: message.into(),
    }
}

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

/// One Ekya meta-profile (one city, i.e. one stream): its windows in task order.
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
    let empty = serde_json::Map::new();
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
    // Tasks are windows, in numeric order.
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

    let mut out = Vec::with_capacity(tasks.len());
    for (_, task) in tasks {
        let mut retrain = Vec::new();
        let mut starts = Vec::new();
        if let Some(rows) = train.get(task) {
            let base = format!("taskwise_train_profiles[\"{task}\"]");
            let Some(rows) = rows.as_array() else {
                return Err(field_err(file, base, "expected a list of profile rows"));
            };
            for (r, row) in rows.iter().enumerate() {
                let at = format!("{base}[{r}]");
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
                        format!(
                            "resource time {time} must be positive (GPU-seconds at a full GPU)"
                        ),
                    ));
                }
                if retrain
                    .iter()
                    .any(|p: &RetrainProfile| p.config.name == name)
                {
                    return Err(field_err(
                        file,
                        format!("{at}[0]"),
                        format!("configuration `{name}` appears twice in this task"),
                    ));
                }
                starts.push(start);
                retrain.push(RetrainProfile {
                    config: RetrainConfig {
                        name: name.to_string(),
                        epochs: epoch,
                        layers_trained: 0,
                        data_fraction: 1.0,
                        width: 0,
                        batch_size: 0,
                        learning_rate: 0.0,
                    },
                    accuracy_after: end,
                    gpu_seconds: time,
                });
            }
        }
        if let Some(hps) = infer.get(task) {
            let base = format!("taskwise_infer_profiles[\"{task}\"]");
            let Some(hps) = hps.as_object() else {
                return Err(field_err(
                    file,
                    base,
                    "expected an object {hp: [start_acc, model]}",
                ));
            };
            for (hp, entry) in hps {
                let at = format!("{base}[\"{hp}\"]");
                match entry.as_array() {
                    Some(cols) if cols.len() == 2 => {
                        let a = accuracy(file, &format!("{at}[0]"), "start accuracy", &cols[0])?;
                        // Only a window without training rows needs it.
                        if retrain.is_empty() {
                            starts.push(a);
                        }
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
                    None => {
                        return Err(field_err(file, at, "expected [start_acc, model]"));
                    }
                }
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
            },
        ));
    }
    Ok(out)
}

impl Profiles {
    /// Read profile files, recognising each format: an Ekya meta-profile (a JSON object with
    /// `taskwise_train_profiles`; one file per stream) or a `tandem run --report` file (a
    /// JSON list of run reports). Formats cannot be mixed.
    pub fn load(paths: &[std::path::PathBuf]) -> Result<Self, ReplayError> {
        if paths.is_empty() {
            return Err(ReplayError::Input(
                "no profiles: name profile files or a recorded run".into(),
            ));
        }
        let mut ekya = Vec::new();
        let mut reports = Vec::new();
        for p in paths {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| ReplayError::Read {
                file: file.clone(),
                message: e.to_string(),
            })?;
            if text.trim_start().starts_with('[') {
                reports.push((file, text));
            } else {
                let stem = p
                    .file_stem()
                    .map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned());
                ekya.push((file, stem, text));
            }
        }
        match (ekya.is_empty(), reports.len()) {
            (false, 0) => Self::from_ekya(&ekya),
            (true, 1) => {
                let (file, text) = &reports[0];
                Self::from_run_reports(file, text, None)
            }
            (true, _) => Err(ReplayError::Input(
                "replay one `tandem run --report` file at a time".into(),
            )),
            (false, _) => Err(ReplayError::Input(
                "Ekya meta-profiles and tandem run reports cannot be mixed in one replay".into(),
            )),
        }
    }

    /// Ekya meta-profiles, one `(file, stream name, text)` per stream. Windows are aligned by
    /// position in each file's task order; a file with fewer tasks ends the replay early.
    pub fn from_ekya(files: &[(String, String, String)]) -> Result<Self, ReplayError> {
        let mut per_stream = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (file, stem, text) in files {
            // Two cities with the same file name still need distinct stream ids.
            let mut name = stem.clone();
            let mut n = 2;
            while names.contains(&name) {
                name = format!("{stem}-{n}");
                n += 1;
            }
            names.push(name.clone());
            per_stream.push(parse_ekya(file, &name, text)?);
        }
        let count = per_stream.iter().map(Vec::len).min().unwrap_or(0);
        if count == 0 {
            return Err(ReplayError::Input(format!(
                "no tasks to replay in {}",
                files
                    .iter()
                    .map(|f| f.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let windows = (0..count)
            .map(|w| {
                let streams: Vec<StreamInput> = per_stream
                    .iter()
                    .map(|s| {
                        let mut input = s[w].1.clone();
                        input.state.window = w as u32;
                        input
                    })
                    .collect();
                WindowProfiles {
                    label: format!("task {}", per_stream[0][w].0),
                    streams,
                    gpus: None,
                    window_seconds: None,
                    decide_at: None,
                }
            })
            .collect();
        Ok(Self {
            sources: files.iter().map(|f| f.0.clone()).collect(),
            windows,
        })
    }

    /// A `tandem run --report` file: each window's first policy input. With several runs in
    /// the file (a comparison), `policy` picks one by name; the first run is used otherwise.
    pub fn from_run_reports(
        file: &str,
        text: &str,
        policy: Option<&str>,
    ) -> Result<Self, ReplayError> {
        let reports: Vec<RunReport> =
            serde_json::from_str(text).map_err(|e| ReplayError::Read {
                file: file.into(),
                message: format!("not a `tandem run --report` file: {e}"),
            })?;
        let (index, report) = match policy {
            Some(p) => reports
                .iter()
                .enumerate()
                .find(|(_, r)| r.policy == p || r.policy.starts_with(&format!("{p}:")))
                .ok_or_else(|| ReplayError::Input(format!("{file}: no run of policy `{p}`")))?,
            None => reports
                .iter()
                .enumerate()
                .next()
                .ok_or_else(|| ReplayError::Input(format!("{file}: no runs in the report")))?,
        };
        let mut inputs = Vec::new();
        for (w, window) in report.windows.iter().enumerate() {
            let Some(call) = window.policy_calls.first() else {
                return Err(field_err(
                    file,
                    format!("[{index}].windows[{w}].policy_calls"),
                    "no policy call recorded (the window never reached a decision)",
                ));
            };
            inputs.push((window.window, call.input.clone()));
        }
        Self::from_policy_inputs(
            format!("{file} ({} under {})", report.scenario, report.policy),
            inputs,
        )
    }

    /// Recorded policy inputs, one per window (the first call of each).
    pub fn from_policy_inputs(
        source: String,
        inputs: Vec<(u32, PolicyInput)>,
    ) -> Result<Self, ReplayError> {
        if inputs.is_empty() {
            return Err(ReplayError::Input(format!("{source}: no windows recorded")));
        }
        let windows = inputs
            .into_iter()
            .map(|(w, input)| WindowProfiles {
                label: format!("window {w}"),
                gpus: Some(input.gpus),
                window_seconds: Some(input.window_seconds),
                decide_at: Some(input.elapsed_seconds),
                streams: input.streams,
            })
            .collect();
        Ok(Self {
            sources: vec![source],
            windows,
        })
    }

    /// Number of streams (the first window's).
    pub fn streams(&self) -> usize {
        self.windows.first().map_or(0, |w| w.streams.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Replaying

/// Sampling factor at 1 frame in `k` (possibly fractional) on `curve` (sorted by k): the
/// first point's factor at or below it, linear between points, 0 beyond the last.
pub fn sampling_factor(curve: &[(f64, f64)], k: f64) -> f64 {
    let Some(&(k0, f0)) = curve.first() else {
        return 0.0;
    };
    if k <= k0 {
        return f0;
    }
    for pair in curve.windows(2) {
        let ((ka, fa), (kb, fb)) = (pair[0], pair[1]);
        if k <= kb {
            return fa + (fb - fa) * (k - ka) / (kb - ka);
        }
    }
    0.0
}

/// A stream's sampling curve at one resolution: its offered inference configurations at that
/// resolution, by frame sampling (the best factor when several share a k).
fn curve(infer: &[InferProfile], resolution: u32) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    for p in infer.iter().filter(|p| p.config.resolution == resolution) {
        let k = p.config.frame_sampling.max(1) as f64;
        match points.iter_mut().find(|(kk, _)| *kk == k) {
            Some(pt) => pt.1 = pt.1.max(p.accuracy_factor),
            None => points.push((k, p.accuracy_factor)),
        }
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Replay every window of `profiles` under one policy. `decide` is the policy (a plugin
/// through `PluginHost::decide`, or anything else that answers a [`PolicyInput`]).
pub fn replay(
    profiles: &Profiles,
    options: &ReplayOptions,
    decide: &mut dyn FnMut(&PolicyInput) -> Result<Schedule, PluginError>,
) -> Vec<ReplayWindow> {
    // Inference allocation carried from one window into the next, until the first decision.
    let mut carried: HashMap<String, (f64, String)> = HashMap::new();
    profiles
        .windows
        .iter()
        .enumerate()
        .map(|(w, window)| replay_window(w as u32, window, options, decide, &mut carried))
        .collect()
}

fn replay_window(
    w: u32,
    window: &WindowProfiles,
    options: &ReplayOptions,
    decide: &mut dyn FnMut(&PolicyInput) -> Result<Schedule, PluginError>,
    carried: &mut HashMap<String, (f64, String)>,
) -> ReplayWindow {
    let gpus = options.gpus.or(window.gpus).unwrap_or(DEFAULT_GPUS).max(1);
    let horizon = options
        .window_seconds
        .or(window.window_seconds)
        .unwrap_or(DEFAULT_WINDOW_SECONDS);
    let decide_at = options
        .golden_delay
        .or(window.decide_at)
        .unwrap_or(DEFAULT_GOLDEN_DELAY)
        .max(0.0);
    let mut inputs: Vec<StreamInput> = window.streams.clone();
    let n = inputs.len();
    let start_accuracy: Vec<f64> = inputs.iter().map(|s| s.state.accuracy).collect();

    // Until the first decision, inference keeps last window's allocation; in the first
    // window, a fair split capped at what full rate needs.
    let mut exec = Executor::new(gpus as f64, horizon);
    for (i, s) in inputs.iter().enumerate() {
        let (share, config) = carried
            .get(&s.state.id)
            .cloned()
            .unwrap_or_else(|| initial_infer(&s.infer, gpus as f64, n));
        let profile = s
            .infer
            .iter()
            .find(|p| p.config.name == config)
            .unwrap_or_else(|| best_infer(&s.infer, share));
        exec.set_infer(i, 0.0, share, profile);
    }

    let mut calls = 0;
    let mut failures = Vec::new();
    // Per stream: the configuration that ran and its end accuracy once it completed.
    let mut ran: Vec<Option<String>> = vec![None; n];
    let mut finished: Vec<Option<(f64, f64)>> = vec![None; n];
    // The recorded profile is the truth here: a job costs what its profile says.
    let true_cost = |_: usize, p: &RetrainProfile| p.gpu_seconds;

    let mut ask = |input: &PolicyInput, fallback: &dyn Fn() -> Schedule| {
        calls += 1;
        match decide(input) {
            Ok(s) => s,
            Err(e) => {
                failures.push(e.to_string());
                fallback()
            }
        }
    };

    if decide_at < horizon && n > 0 {
        exec.advance(decide_at);
        let refs: Vec<&StreamInput> = inputs.iter().collect();
        let input = exec.policy_input(&refs, gpus, horizon, decide_at);
        let schedule = ask(&input, &|| fallback(&input, None));
        let applied = exec.apply(&schedule, &refs, decide_at, &true_cost);
        for (i, job) in applied.started {
            ran[i] = Some(job.config);
        }
        while let Some(done) = exec.run_to_next_completion() {
            let Completion { stream: i, at, .. } = done;
            let end = inputs[i]
                .retrain
                .iter()
                .find(|r| r.config.name == done.config)
                .map_or(inputs[i].state.accuracy, |r| r.accuracy_after);
            finished[i] = Some((at, end));
            exec.set_model(i, at, 1);
            inputs[i].state.accuracy = end;
            inputs[i].retrain.clear();
            let refs: Vec<&StreamInput> = inputs.iter().collect();
            let input = exec.policy_input(&refs, gpus, horizon, at);
            let freed = exec.release_retrain(i);
            let schedule = ask(&input, &|| fallback(&input, Some((&exec, freed))));
            let applied = exec.apply(&schedule, &refs, at, &true_cost);
            for (j, job) in applied.started {
                ran[j] = Some(job.config);
            }
        }
    }

    // Score each stream second by second.
    let steps = horizon.ceil().max(1.0) as usize;
    let mut streams = Vec::with_capacity(n);
    for (i, s) in inputs.iter().enumerate() {
        let segments = exec.infer_segments(i);
        let model_accuracy = |m: usize| {
            if m == 0 {
                start_accuracy[i]
            } else {
                finished[i].map_or(start_accuracy[i], |f| f.1)
            }
        };
        let mut total = 0.0;
        let mut seg = 0;
        for step in 0..steps {
            let t = step as f64;
            while seg + 1 < segments.len() && segments[seg + 1].start <= t {
                seg += 1;
            }
            let sg = &segments[seg];
            let k = if sg.share > 0.0 {
                (sg.full_rate_cost / sg.share).max(1.0)
            } else {
                f64::INFINITY
            };
            let factor = sampling_factor(&curve(&window.streams[i].infer, sg.resolution), k);
            total += model_accuracy(sg.model) * factor;
        }
        let infer_share = segments
            .iter()
            .enumerate()
            .map(|(j, sg)| {
                let end = segments.get(j + 1).map_or(horizon, |nx| nx.start);
                sg.share * (end.min(horizon) - sg.start).max(0.0)
            })
            .sum::<f64>()
            / horizon;
        let last = segments.last().expect("inference starts at time 0");
        carried.insert(
            s.state.id.clone(),
            (last.share, exec.infer_config(i).to_string()),
        );
        streams.push(ReplayStream {
            stream: s.state.id.clone(),
            accuracy: total / steps as f64,
            start_accuracy: start_accuracy[i],
            end_accuracy: model_accuracy(last.model),
            retrain_config: ran[i].clone(),
            finished_at: finished[i].map(|f| f.0),
            infer_share,
        });
    }
    let mean_accuracy = streams.iter().map(|s| s.accuracy).sum::<f64>() / n.max(1) as f64;
    ReplayWindow {
        window: w,
        label: window.label.clone(),
        mean_accuracy,
        streams,
        policy_calls: calls,
        policy_failures: failures,
    }
}
