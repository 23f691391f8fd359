//! The real clock's time slicer: jobs doing real CNN training steps on tiny data receive
//! their allocated share of wall time within ±5%, idle time is not handed out, a job that
//! runs out of work is reported at once, share changes are averaged over time, and a job
//! waiting for work uses nothing and banks nothing.

use tandem::compute::SgdStep;
use tandem::compute::cpu::CpuBackend;
use tandem::data::{drift, synthetic};
use tandem::engine::slicer::{Progress, TimeSlicer};
use tandem::model::{Arch, Model};

/// One training batch of 16×16 colour images: small enough that a step takes about a
/// millisecond, so the slicer's granularity is far below the tolerance.
fn batch(seed: u64) -> (Vec<f32>, Vec<f32>, (usize, usize, usize)) {
    let data = drift::resize(&synthetic::generate(4, seed), 16, 16);
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut x = vec![0.0; data.len() * 16 * 16 * data.c];
    let mut y = vec![0.0; data.len()];
    data.gather(&idx, &mut x, &mut y);
    (x, y, (data.len(), 16, 16))
}

fn arch() -> Arch {
    Arch {
        in_channels: 3,
        channels: [4, 8, 8],
        hidden: 16,
        classes: 8,
    }
}

/// A job: `steps` SGD steps (unbounded when `None`) of a fresh model on its own batch.
fn training_job<'a>(
    be: &'a CpuBackend,
    seed: u64,
    steps: Option<u64>,
) -> impl FnMut(f64) -> Progress + 'a {
    let mut model = Model::new(be, arch(), seed);
    let (x, y, shape) = batch(seed);
    let mut done = 0;
    move |_| {
        model.train_step(
            be,
            &x,
            &y,
            shape,
            5,
            SgdStep {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 0.0,
            },
        );
        done += 1;
        if steps.is_none_or(|s| done < s) {
            Progress::Worked
        } else {
            Progress::Done
        }
    }
}

#[test]
fn delivered_shares_match_allocations_within_5_percent() {
    let be = CpuBackend::new(1);
    let mut slicer = TimeSlicer::new();
    let shares = [0.5, 0.3, 0.15];
    for (i, s) in shares.iter().enumerate() {
        slicer.add(*s, training_job(&be, i as u64 + 1, None));
    }
    assert_eq!(slicer.run(2.0), None);
    let reports = slicer.reports();
    for (r, s) in reports.iter().zip(shares) {
        eprintln!(
            "allocated {:.3} delivered {:.3} ({} batches, {:.2}% off)",
            r.allocated_share,
            r.delivered_share,
            r.batches,
            100.0 * r.deviation()
        );
        assert!((r.allocated_share - s).abs() < 1e-9);
        assert!(r.batches > 20, "batches too long for the test: {r:?}");
        assert!(r.deviation() <= 0.05, "{r:?}");
    }
}

#[test]
fn a_finished_job_is_returned_and_a_share_change_is_time_averaged() {
    let be = CpuBackend::new(1);
    let mut slicer = TimeSlicer::new();
    let short = slicer.add(0.4, training_job(&be, 7, Some(30)));
    let long = slicer.add(0.4, training_job(&be, 8, None));
    assert_eq!(slicer.run(30.0), Some(short));
    let r = slicer.report(short);
    assert_eq!(r.batches, 30);
    assert!(r.finished_at.is_some());
    assert!(r.deviation() <= 0.05, "{r:?}");

    // The long job takes the freed share for as long again as it has run.
    let t = slicer.now();
    slicer.set_share(long, 0.8);
    assert_eq!(slicer.run(2.0 * t), None);
    let r = slicer.report(long);
    assert!((r.allocated_share - 0.6).abs() < 0.03, "{r:?}");
    assert!(r.deviation() <= 0.05, "{r:?}");
}

#[test]
fn a_job_waiting_for_work_uses_nothing_and_banks_nothing() {
    let be = CpuBackend::new(1);
    // A live stream: one batch of work every 50 ms, with far more share than that needs.
    let mut slicer = TimeSlicer::new();
    let mut train = training_job(&be, 3, None);
    let mut next = 0.0;
    let live = slicer.add(0.6, move |now| {
        if now < next {
            return Progress::Idle(next);
        }
        next = now + 0.05;
        train(now)
    });
    let busy = slicer.add(0.3, training_job(&be, 4, None));
    assert_eq!(slicer.run(1.0), None);
    let (l, b) = (slicer.report(live), slicer.report(busy));
    eprintln!("live {l:?}\nbusy {b:?}");
    assert!((15..=25).contains(&l.batches), "{l:?}");
    assert!(l.delivered_share < 0.5 * l.allocated_share, "{l:?}");
    // The device idles rather than hand the unused share to the busy job.
    assert!(b.deviation() <= 0.05, "{b:?}");

    // A job with nothing to do for the first half second does not spend that half's share
    // in the second: it gets its share from when its work comes, and the other job its own.
    let mut slicer = TimeSlicer::new();
    let mut train = training_job(&be, 5, None);
    let late = slicer.add(0.5, move |now| {
        if now < 0.5 {
            Progress::Idle(0.5)
        } else {
            train(now)
        }
    });
    let other = slicer.add(0.5, training_job(&be, 6, None));
    assert_eq!(slicer.run(1.0), None);
    let (l, o) = (slicer.report(late), slicer.report(other));
    eprintln!("late {l:?}\nother {o:?}");
    assert!((l.delivered_share - 0.25).abs() < 0.03, "{l:?}");
    assert!(o.deviation() <= 0.05, "{o:?}");
}
