//! The simulation: each window's streams under one policy, through the engine's
//! [`Scheduler`] with the recorded profiles as the truth, scored second by second as Ekya's
//! simulator does.

use std::collections::HashMap;

use super::{Profiles, ReplayOptions, ReplayStream, ReplayWindow, WindowProfiles};
use crate::engine::executor::Executor;
use crate::engine::report::JobReport;
use crate::engine::schedule::{Outcome, Policy, Scheduler, Step, start_infer};
use crate::plugin::PluginError;
use crate::plugin::types::{InferProfile, PolicyInput, Schedule, StreamInput};

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
    let (gpus, horizon, decide_at) = options.for_window(window);
    let (gpus, decide_at) = (gpus.max(1), decide_at.max(0.0));
    let n = window.streams.len();
    // Until the first decision, inference keeps last window's allocation; in the first
    // window, a fair split capped at what full rate needs.
    let start: Vec<(f64, String)> = window
        .streams
        .iter()
        .map(|s| start_infer(carried.get(&s.state.id), &s.infer, gpus as f64, n))
        .collect();
    let policy = Policy {
        name: String::new(),
        digest: String::new(),
        decide,
    };
    let mut sched = Scheduler::new(gpus, horizon, window.streams.clone(), &start, policy);
    // The recorded profile is the truth here: a job costs what its profile says, and
    // reaches the accuracy it recorded.
    for (i, s) in window.streams.iter().enumerate() {
        sched.offer(i, s.retrain.clone(), Vec::new(), Vec::new());
    }
    sched.run(decide_at, None, &mut |sched| {
        let done = sched.next_completion(f64::INFINITY)?;
        let input = sched.input(done.stream);
        let accuracy = input
            .retrain
            .iter()
            .find(|r| r.config.name == done.config)
            .map_or(input.state.accuracy, |r| r.accuracy_after);
        let outcome = Outcome {
            accuracy,
            deployed: true,
            infer_factors: None,
            shares: sched.job_shares(done.stream),
        };
        Some(Step::Completed(done, outcome))
    });
    let (exec, records, _) = sched.close(&[]);
    let streams = window
        .streams
        .iter()
        .zip(&records.jobs)
        .enumerate()
        .map(|(i, (s, job))| {
            let scored = score(&exec, i, s, job.as_ref(), horizon);
            carried.insert(
                s.state.id.clone(),
                (exec.infer_share(i), exec.infer_config(i).to_string()),
            );
            scored
        })
        .collect::<Vec<_>>();
    let mean_accuracy = streams.iter().map(|s| s.accuracy).sum::<f64>() / n.max(1) as f64;
    ReplayWindow {
        window: w,
        label: window.label.clone(),
        mean_accuracy,
        streams,
        policy_calls: records.calls.len(),
        policy_failures: records
            .calls
            .iter()
            .filter_map(|c| c.error.clone())
            .collect(),
    }
}

/// Stream `i`'s window as Ekya's simulator scores it: second by second, the accuracy of the
/// model serving (`s`'s start accuracy, or its `job`'s once it finished) times the sampling
/// factor its inference share affords.
fn score(
    exec: &Executor,
    i: usize,
    s: &StreamInput,
    job: Option<&JobReport>,
    horizon: f64,
) -> ReplayStream {
    let start = s.state.accuracy;
    let finished = job.and_then(|j| Some((j.finished_at?, j.actual_accuracy?)));
    let model_accuracy = |m: usize| {
        if m == 0 {
            start
        } else {
            finished.map_or(start, |f| f.1)
        }
    };
    let segments = exec.infer_segments(i);
    let steps = horizon.ceil().max(1.0) as usize;
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
        let factor = sampling_factor(&curve(&s.infer, sg.resolution), k);
        total += model_accuracy(sg.model) * factor;
    }
    let last = segments.last().expect("inference starts at time 0");
    ReplayStream {
        stream: s.state.id.clone(),
        accuracy: total / steps as f64,
        start_accuracy: start,
        end_accuracy: model_accuracy(last.model),
        retrain_config: job.map(|j| j.config.clone()),
        finished_at: finished.map(|f| f.0),
        infer_share: exec.mean_infer_share(i),
    }
}
