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
//! A job can also be waiting for work (a live stream's next frame): it says until when, uses
//! no time meanwhile, and forfeits the share it left unused, so a share is a rate to use as
//! work comes, not credit to bank and spend later at the expense of the others.
//!
//! [`SliceReport`] gives each job's time-averaged allocation and its delivered share (time
//! used over time alive): the numbers `JobReport::allocated_share` / `delivered_share` carry.

use std::time::{Duration, Instant};

/// What one call of a job's step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// Ran a batch; more work is left.
    Worked,
    /// Nothing to do until this many seconds since the slicer started (no time used).
    Idle(f64),
    /// Ran its last batch (or had none left).
    Done,
}

/// One step of work, given the slicer's clock (seconds since it started).
type Step<'a> = Box<dyn FnMut(f64) -> Progress + 'a>;

struct Slot<'a> {
    step: Step<'a>,
    share: f64,
    /// Seconds (since the slicer started) at which it was added, and at which it ended.
    added: f64,
    ended: Option<f64>,
    /// ∫ share dt up to `changed`: what it was given (reported).
    allocated: f64,
    /// What it may still claim up to `changed`: the allocation less what it let pass while
    /// waiting for work (orders the jobs).
    owed: f64,
    changed: f64,
    /// Waiting for work until `wake` (its share accrues nothing meanwhile).
    waiting: bool,
    wake: f64,
    /// Measured wall time of its batches, seconds.
    used: f64,
    batches: u64,
}

impl Slot<'_> {
    fn allocated_at(&self, now: f64) -> f64 {
        self.allocated + self.share * (now - self.changed).max(0.0)
    }

    fn owed_at(&self, now: f64) -> f64 {
        if self.waiting {
            self.owed
        } else {
            self.owed + self.share * (now - self.changed).max(0.0)
        }
    }

    /// Fold the time since `changed` into both integrals.
    fn settle(&mut self, now: f64) {
        self.owed = self.owed_at(now);
        self.allocated = self.allocated_at(now);
        self.changed = now;
    }

    fn live(&self) -> bool {
        self.ended.is_none()
    }

    /// Owed time not yet used: what orders the jobs.
    fn deficit(&self, now: f64) -> f64 {
        self.owed_at(now) - self.used
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
    pub fn add(&mut self, share: f64, step: impl FnMut(f64) -> Progress + 'a) -> usize {
        let now = self.now();
        self.slots.push(Slot {
            step: Box::new(step),
            share: share.clamp(0.0, 1.0),
            added: now,
            ended: None,
            allocated: 0.0,
            owed: 0.0,
            changed: now,
            waiting: false,
            wake: now,
            used: 0.0,
            batches: 0,
        });
        self.slots.len() - 1
    }

    /// Change job `id`'s share from now on.
    pub fn set_share(&mut self, id: usize, share: f64) {
        let now = self.now();
        let s = &mut self.slots[id];
        s.settle(now);
        s.share = share.clamp(0.0, 1.0);
    }

    /// Stop job `id` (dropped by the policy); its share is freed.
    pub fn stop(&mut self, id: usize) {
        let now = self.now();
        let s = &mut self.slots[id];
        if s.live() {
            s.step = Box::new(|_| Progress::Done);
            s.settle(now);
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
            // Jobs whose work has come stop waiting; their share accrues from then on.
            for s in self.slots.iter_mut().filter(|s| s.waiting && s.wake <= now) {
                s.settle(s.wake);
                s.waiting = false;
            }
            let next = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.live() && s.share > 0.0 && !s.waiting)
                .map(|(i, s)| (i, s.deficit(now)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            // The first moment someone is owed time again or has work again.
            let wait = || {
                self.slots
                    .iter()
                    .filter(|s| s.live() && s.share > 0.0)
                    .map(|s| {
                        if s.waiting {
                            s.wake - now
                        } else {
                            -s.deficit(now) / s.share
                        }
                    })
                    .fold(until - now, f64::min)
                    .max(1e-5)
            };
            let Some((i, _)) = next.filter(|(_, d)| *d > 0.0) else {
                // Everyone is waiting for work or ahead of its allocation: idle (not work),
                // so nobody gets more than its share.
                std::thread::sleep(Duration::from_secs_f64(wait()));
                continue;
            };
            let t0 = Instant::now();
            let progress = (self.slots[i].step)(now);
            let end = self.now();
            let s = &mut self.slots[i];
            match progress {
                Progress::Worked => {
                    s.used += t0.elapsed().as_secs_f64();
                    s.batches += 1;
                }
                Progress::Idle(wake) => {
                    // Unused share is not banked: what it was owed lapses, and nothing
                    // accrues while it waits.
                    s.settle(end);
                    s.owed = s.owed.min(s.used);
                    s.waiting = true;
                    s.wake = wake.max(end);
                }
                Progress::Done => {
                    s.used += t0.elapsed().as_secs_f64();
                    s.batches += 1;
                    s.settle(end);
                    s.ended = Some(end);
                    // Drop the finished job's closure, releasing whatever it holds.
                    s.step = Box::new(|_| Progress::Done);
                    return Some(i);
                }
            }
        }
    }

    /// Job `id`'s allocation against what it received so far.
    pub fn report(&self, id: usize) -> SliceReport {
        let s = &self.slots[id];
        let end = s.ended.unwrap_or_else(|| self.now());
        let seconds = (end - s.added).max(0.0);
        let allocated = s.allocated_at(end);
        let (allocated_share, delivered_share) = if seconds > 0.0 {
            (allocated / seconds, s.used / seconds)
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
