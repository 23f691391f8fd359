//! Reading what to replay: Ekya meta-profiles (one file per stream), `tandem run --report`
//! files, and policy inputs recorded in history.

use super::{Profiles, ReplayError, WindowProfiles, field_err, parse_ekya};
use crate::engine::report::RunReport;
use crate::plugin::types::{PolicyInput, StreamInput};

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
