//! The real clock's time slicer: jobs doing real CNN training steps on tiny data receive
//! their allocated share of wall time within ±5%, idle time is not handed out, a job that
//! runs out of work is reported at once, and share changes are averaged over time.

use tandem::compute::cpu::CpuBackend;
use tandem::data::{drift, synthetic};
use tandem::engine::slicer::TimeSlicer;
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
) -> impl FnMut() -> bool + 'a {
    let mut model = Model::new(be, arch(), seed);
    let (x, y, shape) = batch(seed);
    let mut done = 0;
    move || {
        model.train_step(be, &x, &y, shape, 5, 0.01, 0.9, 0.0);
        done += 1;
        steps.is_none_or(|s| done < s)
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
