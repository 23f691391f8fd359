//! [`Executor`]: enforces GPU shares on the virtual clock.
//!
//! Jobs progress as a fluid: a retraining job with share `s` does `s` GPU-seconds of its work
//! per second, so it can never get more than it was allocated, and it finishes exactly when
//! its work is done; the executor then hands control back so the policy can re-divide the
//! GPU. Inference jobs are recorded as segments of constant share and configuration, which
//! [`super::serve`] turns into processed frames. Because progress is counted in modelled
//! GPU-seconds (see [`super::cost`]), a run is reproducible on any machine.

use super::serve::InferSegment;
use crate::plugin::types::InferProfile;

/// A retraining job that just finished.
#[derive(Debug, Clone)]
pub struct Completion {
    pub stream: usize,
    pub at: f64,
    pub config: String,
    /// Its true cost in GPU-seconds at a full GPU.
    pub gpu_seconds: f64,
}

#[derive(Debug, Clone)]
struct RetrainJob {
    config: String,
    total: f64,
    share: f64,
    remaining: f64,
    started: f64,
    /// ∫ share dt while it ran (for the time-averaged allocation).
    share_time: f64,
    /// GPU-seconds received.
    consumed: f64,
    ended: Option<f64>,
    running: bool,
}

#[derive(Debug)]
pub struct Executor {
    horizon: f64,
    now: f64,
    infer: Vec<Vec<InferSegment>>,
    infer_config: Vec<String>,
    retrain: Vec<Option<RetrainJob>>,
    retrain_used: f64,
}

impl Executor {
    pub fn new(horizon: f64) -> Self {
        Self {
            horizon,
            now: 0.0,
            infer: Vec::new(),
            infer_config: Vec::new(),
            retrain: Vec::new(),
            retrain_used: 0.0,
        }
    }

    fn ensure(&mut self, i: usize) {
        while self.infer.len() <= i {
            self.infer.push(Vec::new());
            self.infer_config.push(String::new());
            self.retrain.push(None);
        }
    }

    fn push_segment(&mut self, i: usize, seg: InferSegment) {
        let segs = &mut self.infer[i];
        if let Some(last) = segs.last_mut().filter(|l| l.start >= seg.start) {
            *last = seg;
        } else {
            segs.push(seg);
        }
    }

    /// Stream `i`'s inference job runs with `share` and `profile`'s configuration from `at`.
    pub fn set_infer(&mut self, i: usize, at: f64, share: f64, profile: &InferProfile) {
        self.ensure(i);
        let model = self.infer[i].last().map_or(0, |s| s.model);
        let k = profile.config.frame_sampling.max(1);
        self.infer_config[i] = profile.config.name.clone();
        self.push_segment(
            i,
            InferSegment {
                start: at,
                share,
                sampling: k,
                resolution: profile.config.resolution,
                full_rate_cost: profile.gpu_cost * k as f64,
                model,
            },
        );
    }

    /// Stream `i` serves with model version `version` from `at`.
    pub fn set_model(&mut self, i: usize, at: f64, version: usize) {
        let last = self.infer[i]
            .last()
            .cloned()
            .expect("inference starts at time 0");
        self.push_segment(
            i,
            InferSegment {
                start: at,
                model: version,
                ..last
            },
        );
    }

    /// Start a retraining job of `gpu_seconds` for stream `i` at `at` with `share`.
    pub fn start_retrain(&mut self, i: usize, at: f64, share: f64, config: &str, gpu_seconds: f64) {
        self.ensure(i);
        debug_assert!(
            (self.now - at).abs() < 1e-9,
            "jobs start at the executor's time"
        );
        self.retrain[i] = Some(RetrainJob {
            config: config.to_string(),
            total: gpu_seconds,
            share,
            remaining: gpu_seconds,
            started: at,
            share_time: 0.0,
            consumed: 0.0,
            ended: None,
            running: true,
        });
    }

    /// Change a running job's share.
    pub fn set_retrain_share(&mut self, i: usize, share: f64) {
        if let Some(j) = self.retrain[i].as_mut().filter(|j| j.running) {
            j.share = share;
        }
    }

    /// Stop stream `i`'s job (finished or dropped); returns the share it held.
    pub fn release_retrain(&mut self, i: usize) -> f64 {
        match self.retrain.get_mut(i).and_then(|j| j.as_mut()) {
            Some(j) if j.share > 0.0 || j.running => {
                let freed = j.share;
                j.share = 0.0;
                if j.running {
                    j.running = false;
                    j.ended.get_or_insert(self.now);
                }
                freed
            }
            _ => 0.0,
        }
    }

    /// GPU-seconds stream `i`'s running job still needs.
    pub fn remaining(&self, i: usize) -> Option<f64> {
        self.retrain
            .get(i)?
            .as_ref()
            .filter(|j| j.running)
            .map(|j| j.remaining)
    }

    /// Move the clock to `to`, progressing every running job by its share.
    pub fn advance(&mut self, to: f64) {
        let dt = (to - self.now).max(0.0);
        for j in self.retrain.iter_mut().flatten().filter(|j| j.running) {
            let work = (j.share * dt).min(j.remaining);
            j.remaining -= work;
            j.consumed += work;
            j.share_time += j.share * dt;
            self.retrain_used += work;
        }
        self.now = to;
    }

    /// Advance to the next retraining completion before `until` (at most the window's end)
    /// and return it; or, if none comes before, advance to `until` and return `None`.
    pub fn run_to_next_completion(&mut self, until: f64) -> Option<Completion> {
        let until = until.min(self.horizon);
        let next = self
            .retrain
            .iter()
            .enumerate()
            .filter_map(|(i, j)| {
                j.as_ref()
                    .filter(|j| j.running && j.share > 0.0)
                    .map(|j| (i, self.now + j.remaining / j.share))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match next {
            Some((i, at)) if at < until => {
                self.advance(at);
                let j = self.retrain[i].as_mut().expect("job exists");
                j.remaining = 0.0;
                j.running = false;
                j.ended = Some(at);
                Some(Completion {
                    stream: i,
                    at,
                    config: j.config.clone(),
                    gpu_seconds: j.total,
                })
            }
            _ => {
                self.advance(until);
                None
            }
        }
    }

    /// GPUs allocated now: every inference share and every running job's share.
    pub fn allocated(&self) -> f64 {
        let infer: f64 = (0..self.infer.len()).map(|i| self.infer_share(i)).sum();
        infer
            + (0..self.retrain.len())
                .map(|i| self.retrain_share(i))
                .sum::<f64>()
    }

    /// Fraction of stream `i`'s running job already done.
    pub fn progress(&self, i: usize) -> Option<f64> {
        let j = self.retrain.get(i)?.as_ref().filter(|j| j.running)?;
        Some(1.0 - j.remaining / j.total.max(1e-12))
    }

    /// Set stream `i`'s running job's remaining work to `fraction` of its total (the real
    /// clock knows progress from the device, not from the modelled cost).
    pub fn set_remaining_fraction(&mut self, i: usize, fraction: f64) {
        if let Some(j) = self
            .retrain
            .get_mut(i)
            .and_then(|j| j.as_mut())
            .filter(|j| j.running)
        {
            j.remaining = j.total * fraction.clamp(0.0, 1.0);
        }
    }

    /// Stream `i`'s running job's current share (0 when none runs).
    pub fn retrain_share(&self, i: usize) -> f64 {
        self.retrain
            .get(i)
            .and_then(|j| j.as_ref())
            .filter(|j| j.running)
            .map_or(0.0, |j| j.share)
    }

    /// Mark stream `i`'s job finished at `at`, the executor's current time (the real clock
    /// decides completions by the device, not by the modelled cost).
    pub fn finish(&mut self, i: usize, at: f64) -> Completion {
        let j = self.retrain[i].as_mut().expect("a job runs");
        j.running = false;
        j.ended = Some(at);
        j.remaining = 0.0;
        Completion {
            stream: i,
            at,
            config: j.config.clone(),
            gpu_seconds: j.total,
        }
    }

    /// The configuration stream `i` is retraining with, if a job runs.
    pub fn running_config(&self, i: usize) -> Option<&str> {
        self.retrain
            .get(i)?
            .as_ref()
            .filter(|j| j.running)
            .map(|j| j.config.as_str())
    }

    /// Stream `i`'s job: (time-averaged allocated share, delivered share = GPU-seconds
    /// received over the time it ran).
    pub fn job_shares(&self, i: usize) -> (f64, f64) {
        let Some(j) = self.retrain.get(i).and_then(|j| j.as_ref()) else {
            return (0.0, 0.0);
        };
        let span = j.ended.unwrap_or(self.now) - j.started;
        if span <= 0.0 {
            return (j.share, j.share);
        }
        (j.share_time / span, j.consumed / span)
    }

    pub fn infer_segments(&self, i: usize) -> Vec<InferSegment> {
        self.infer[i].clone()
    }

    pub fn infer_config(&self, i: usize) -> &str {
        &self.infer_config[i]
    }

    /// Stream `i`'s inference share now.
    pub fn infer_share(&self, i: usize) -> f64 {
        self.infer[i].last().map_or(0.0, |l| l.share)
    }

    /// Stream `i`'s inference share averaged over the window.
    pub fn mean_infer_share(&self, i: usize) -> f64 {
        let segments = &self.infer[i];
        segments
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let end = segments.get(j + 1).map_or(self.horizon, |n| n.start);
                s.share * (end - s.start).max(0.0)
            })
            .sum::<f64>()
            / self.horizon
    }

    /// Modelled GPU-seconds used: retraining work done, plus what each inference job could
    /// use of its share at its configuration.
    pub fn gpu_seconds_used(&self) -> f64 {
        let infer: f64 = self
            .infer
            .iter()
            .map(|segs| {
                segs.iter()
                    .enumerate()
                    .map(|(j, s)| {
                        let end = segs.get(j + 1).map_or(self.horizon, |n| n.start);
                        s.share.min(s.full_rate_cost / s.sampling as f64) * (end - s.start).max(0.0)
                    })
                    .sum::<f64>()
            })
            .sum();
        infer + self.retrain_used
    }
}
