//! [`TimeSlicer`]: wall-clock share enforcement for the real clock. Jobs are closures that
//! run one batch of real work per call; the slicer interleaves them on one device by deficit
//! round robin, so each job receives its allocated share of the device's time.
//!
//! Each job is owed `∫ share dt` seconds since it was added and has used the measured wall
//! time of its batches; the job with the largest deficit (owed − used) runs next. When every
//! job is ahead of its allocation (shares summing to less than the whole device), the device
//! idles until the first deficit turns positive, so a job never gets more than it was given.
//! The error in a job's delivered share is bounded by one batch's time over the time it ran,
//! so batches should be short against the window (milliseconds against seconds).
//!
//! [`SliceReport`] gives each job's time-averaged allocation and its delivered share (time
//! used over time alive): the numbers `JobReport::allocated_share` / `delivered_share` carry.

use std::time::{Duration, Instant};

/// One batch of work; returns `false` once the job has no work left.
type Step<'a> = Box<dyn FnMut() -> bool + 'a>;

struct Slot<'a> {
    step: Step<'a>,
    share: f64,
    /// Seconds (since the slicer started) at which it was added, and at which it ended.
    added: f64,
    ended: Option<f64>,
    /// ∫ share dt up to `changed`.
    owed: f64,
    changed: f64,
    /// Measured wall time of its batches, seconds.
    used: f64,
    batches: u64,
}

impl Slot<'_> {
    fn owed_at(&self, now: f64) -> f64 {
        self.owed + self.share * (now - self.changed).max(0.0)
    }

    fn live(&self) -> bool {
        self.ended.is_none()
    }
}

/// A job's allocation against what it received.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceReport {
    /// Time-averaged allocated share while it was alive.
    pub allocated_share: f64,
    /// Device time used over the time it was alive.
    pub delivered_share: f64,
    /// Seconds alive (since added, until finished or now).
    pub seconds: f64,
    pub batches: u64,
    /// When it finished, seconds since the slicer started (`None`: still has work).
    pub finished_at: Option<f64>,
}

impl SliceReport {
    /// |delivered / allocated − 1|: the deviation the CLI reports (0 for an empty allocation).
    pub fn deviation(&self) -> f64 {
        if self.allocated_share > 0.0 {
            (self.delivered_share / self.allocated_share - 1.0).abs()
        } else {
            0.0
        }
    }
}

/// Interleaves jobs on one device so each gets its share of wall time.
pub struct TimeSlicer<'a> {
    start: Instant,
    slots: Vec<Slot<'a>>,
}

impl Default for TimeSlicer<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> TimeSlicer<'a> {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            slots: Vec::new(),
        }
    }

    /// Seconds since the slicer started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Add a job with `share` of the device (0 to 1); returns its id.
    pub fn add(&mut self, share: f64, step: impl FnMut() -> bool + 'a) -> usize {
        let now = self.now();
        self.slots.push(Slot {
            step: Box::new(step),
            share: share.clamp(0.0, 1.0),
            added: now,
            ended: None,
            owed: 0.0,
            changed: now,
            used: 0.0,
            batches: 0,
        });
        self.slots.len() - 1
    }

    /// Change job `id`'s share from now on.
    pub fn set_share(&mut self, id: usize, share: f64) {
        let now = self.now();
        let s = &mut self.slots[id];
        s.owed = s.owed_at(now);
        s.changed = now;
        s.share = share.clamp(0.0, 1.0);
    }

    /// Stop job `id` (dropped by the policy); its share is freed.
    pub fn stop(&mut self, id: usize) {
        let now = self.now();
        let s = &mut self.slots[id];
        if s.live() {
            s.step = Box::new(|| false);
            s.owed = s.owed_at(now);
            s.changed = now;
            s.ended = Some(now);
        }
    }

    /// Run batches until a job finishes (its id is returned) or `until` seconds since the
    /// start have passed (`None`).
    pub fn run(&mut self, until: f64) -> Option<usize> {
        loop {
            let now = self.now();
            if now >= until {
                return None;
            }
            let next = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.live() && s.share > 0.0)
                .map(|(i, s)| (i, s.owed_at(now) - s.used))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, deficit)) = next else {
                // Nothing to run: the device idles to the deadline.
                std::thread::sleep(Duration::from_secs_f64(until - now));
                return None;
            };
            if deficit <= 0.0 {
                // Everyone is ahead of its allocation: idle (not work) until the first
                // job is owed time again, so nobody gets more than its share.
                let wait = self
                    .slots
                    .iter()
                    .filter(|s| s.live() && s.share > 0.0)
                    .map(|s| (s.used - s.owed_at(now)) / s.share)
                    .fold(f64::INFINITY, f64::min);
                let wait = wait.min(until - now).max(1e-5);
                std::thread::sleep(Duration::from_secs_f64(wait));
                continue;
            }
            let t0 = Instant::now();
            let more = (self.slots[i].step)();
            let end = self.now();
            let s = &mut self.slots[i];
            s.used += t0.elapsed().as_secs_f64();
            s.batches += 1;
            if !more {
                s.owed = s.owed_at(end);
                s.changed = end;
                s.ended = Some(end);
                // Drop the finished job's closure, releasing whatever it holds.
                s.step = Box::new(|| false);
                return Some(i);
            }
        }
    }

    /// Job `id`'s allocation against what it received so far.
    pub fn report(&self, id: usize) -> SliceReport {
        let s = &self.slots[id];
        let end = s.ended.unwrap_or_else(|| self.now());
        let seconds = (end - s.added).max(0.0);
        let owed = s.owed_at(end);
        let (allocated_share, delivered_share) = if seconds > 0.0 {
            (owed / seconds, s.used / seconds)
        } else {
            (s.share, s.share)
        };
        SliceReport {
            allocated_share,
            delivered_share,
            seconds,
            batches: s.batches,
            finished_at: s.ended,
        }
    }

    /// Reports for every job, in the order they were added.
    pub fn reports(&self) -> Vec<SliceReport> {
        (0..self.slots.len()).map(|i| self.report(i)).collect()
    }
}
