use tandem::compute::{Backend, cpu::CpuBackend};
use tandem::data::{drift, synthetic};
use tandem::model::{self, Arch, Model, TrainConfig, weights};

/// A narrow network: enough to learn the synthetic classes quickly in a debug build.
fn small_arch() -> Arch {
    Arch {
        in_channels: 3,
        channels: [8, 16, 16],
        hidden: 32,
        classes: 8,
    }
}

fn cfg(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr: 0.05,
        seed: 5,
        ..TrainConfig::default()
    }
}

#[test]
fn cnn_learns_the_synthetic_classes() {
    let be = CpuBackend::new(2);
    let train = synthetic::generate(1200, 11);
    let test = synthetic::generate(300, 12);
    let mut m = Model::new(&be, small_arch(), 1);
    let before = model::evaluate(&be, &mut m, &test, 100);
    let stats = model::train(&be, &mut m, &train, &cfg(6), &mut |_, _| {});
    let after = model::evaluate(&be, &mut m, &test, 100);
    assert!(
        stats.last().unwrap().mean_loss < stats[0].mean_loss,
        "{stats:?}"
    );
    assert!(
        after > 0.6 && after > before + 0.3,
        "accuracy {before} -> {after}"
    );
}

#[test]
fn training_is_deterministic() {
    let be = CpuBackend::new(2);
    let data = synthetic::generate(128, 1);
    let run = || {
        let mut m = Model::new(&be, small_arch(), 3);
        model::train(&be, &mut m, &data, &cfg(1), &mut |_, _| {});
        weights::to_bytes(&be, &m)
    };
    assert_eq!(run(), run());
}

#[test]
fn frozen_layers_do_not_change() {
    let be = CpuBackend::new(1);
    let data = synthetic::generate(96, 2);
    let mut m = Model::new(&be, small_arch(), 4);
    let before = m.duplicate(&be);
    let head_only = TrainConfig {
        trained_layers: 2,
        ..cfg(1)
    };
    model::train(&be, &mut m, &data, &head_only, &mut |_, _| {});
    let (a, b) = (layer_weights(&be, &before), layer_weights(&be, &m));
    for g in 0..3 {
        assert_eq!(a[g], b[g], "frozen group {g} changed");
    }
    for g in 3..5 {
        assert_ne!(a[g], b[g], "trained group {g} did not change");
    }
}

fn layer_weights(be: &CpuBackend, m: &Model<CpuBackend>) -> Vec<Vec<u8>> {
    // Round-trip through safetensors to reach the weights by layer name.
    let bytes = weights::to_bytes(be, m);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tandem::model::LAYER_GROUPS
        .iter()
        .map(|g| st.tensor(&format!("{g}.weight")).unwrap().data().to_vec())
        .collect()
}

#[test]
fn model_serves_several_resolutions() {
    let be = CpuBackend::new(1);
    let data = synthetic::generate(20, 5);
    let mut m = Model::new(&be, small_arch(), 4);
    for side in [32, 24, 16, 8] {
        let d = drift::resize(&data, side, side);
        let p = m.predict(&be, &d.images, (d.len(), side, side));
        assert_eq!(p.len(), 20);
        assert!(p.iter().all(|&c| c < 8));
    }
}

#[test]
fn weights_round_trip_and_refuse_mismatches() {
    let be = CpuBackend::new(1);
    let data = synthetic::generate(16, 6);
    let mut m = Model::new(&be, small_arch(), 8);
    let dir = super::data::tempdir();
    let path = dir.join("cam0.safetensors");
    weights::save(&be, &m, &path).unwrap();
    let mut back = weights::load(&be, &path, Some(small_arch())).unwrap();
    assert_eq!(
        m.logits(&be, &data.images, (16, 32, 32)),
        back.logits(&be, &data.images, (16, 32, 32))
    );

    let other = Arch {
        hidden: 64,
        ..small_arch()
    };
    let err = weights::load(&be, &path, Some(other)).unwrap_err();
    assert!(
        matches!(err, weights::WeightsError::ArchMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("cam0.safetensors"), "{err}");

    std::fs::write(&path, b"not a model").unwrap();
    let err = weights::load(&be, &path, None).unwrap_err();
    assert!(matches!(err, weights::WeightsError::Format { .. }), "{err}");

    let plain = safetensors::serialize(Vec::<(&str, safetensors::tensor::TensorView)>::new(), None)
        .unwrap();
    std::fs::write(&path, plain).unwrap();
    let err = weights::load(&be, &path, None).unwrap_err();
    assert!(matches!(err, weights::WeightsError::NoArch { .. }), "{err}");
}

#[test]
fn train_flops_count_only_trained_groups() {
    let a = Arch::new(1, 10, 256);
    let fwd = a.forward_flops(28, 28);
    assert!(a.train_flops(28, 28, 1) < a.train_flops(28, 28, 3));
    assert!(a.train_flops(28, 28, 5) < 3.0 * fwd);
    assert!(a.train_flops(28, 28, 5) > 2.0 * fwd);
    let _ = CpuBackend::new(1).describe();
}
