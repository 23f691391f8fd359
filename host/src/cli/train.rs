//! `tandem train`: train the CNN from scratch, then show drift hurting and retraining
//! healing — the learning core of continuous learning, end to end on one stream.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::backend::{self, BackendChoice, WithBackend};
use crate::compute::Backend;
use crate::data::{Dataset, Drift, drift, fashion, synthetic};
use crate::model::{self, Arch, Model, TrainConfig, weights};

#[derive(clap::Args, Clone)]
pub struct TrainArgs {
    /// Epochs of training from scratch (8 reach ~89.7% on Fashion-MNIST in ~5.5 min on 2 cores).
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Training samples used from scratch (0: the whole training split).
    #[arg(long, default_value_t = 0)]
    pub train_samples: usize,
    /// Width of the hidden fully connected layer.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0.08)]
    pub lr: f32,
    /// Labelled drifted samples used for retraining.
    #[arg(long, default_value_t = 2000)]
    pub retrain_samples: usize,
    /// Undrifted samples kept as an exemplar memory and mixed into retraining (limits
    /// forgetting of the clean scene).
    #[arg(long, default_value_t = 500)]
    pub memory_samples: usize,
    #[arg(long, default_value_t = 5)]
    pub retrain_epochs: usize,
    /// Layer groups retrained (1 = classifier only .. 5 = all).
    #[arg(long, default_value_t = 5)]
    pub retrain_layers: usize,
    /// Use the synthetic source even if Fashion-MNIST is installed.
    #[arg(long)]
    pub synthetic: bool,
    /// Save the trained (undrifted) model here as safetensors.
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t)]
    pub backend: BackendChoice,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (train, test, source) = load_data(&args)?;
    backend::with_backend(
        args.backend,
        TrainJob {
            args,
            train,
            test,
            source,
        },
    )
}

fn load_data(args: &TrainArgs) -> anyhow::Result<(Dataset, Dataset, &'static str)> {
    if !args.synthetic && fashion::is_installed() {
        let train = fashion::load(fashion::Split::Train).context("loading Fashion-MNIST")?;
        let test = fashion::load(fashion::Split::Test).context("loading Fashion-MNIST")?;
        let train = if args.train_samples > 0 {
            train.take(args.train_samples)
        } else {
            train
        };
        return Ok((train, test, "Fashion-MNIST"));
    }
    if !args.synthetic {
        eprintln!(
            "note: Fashion-MNIST is not installed in {} (run scripts/setup.sh); using the synthetic source",
            fashion::data_dir().display()
        );
    }
    let n = if args.train_samples > 0 {
        args.train_samples
    } else {
        20_000
    };
    Ok((
        synthetic::generate(n, args.seed),
        synthetic::generate(4_000, args.seed + 1_000_003),
        "synthetic",
    ))
}

struct TrainJob {
    args: TrainArgs,
    train: Dataset,
    test: Dataset,
    source: &'static str,
}

impl WithBackend for TrainJob {
    type Output = ();
    fn run<B: Backend>(self, be: &B) -> anyhow::Result<()> {
        let TrainJob {
            args,
            train,
            test,
            source,
        } = self;
        println!("backend: {}", be.describe());
        let arch = Arch::new(train.c, train.classes, args.hidden);
        println!(
            "model: convs {:?}, hidden {}, {} classes, {} parameters; data: {source}, {} train / {} test, {}x{}x{}",
            arch.channels,
            arch.hidden,
            arch.classes,
            arch.parameters(),
            train.len(),
            test.len(),
            train.h,
            train.w,
            train.c
        );
        let mut model = Model::new(be, arch, args.seed);
        let cfg = TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            lr: args.lr,
            seed: args.seed,
            ..TrainConfig::default()
        };
        let started = Instant::now();
        let stats = train_with_bar(be, &mut model, &train, &cfg, "training from scratch");
        let secs = started.elapsed().as_secs_f64();
        let samples: usize = stats.iter().map(|s| s.samples).sum();
        for s in &stats {
            println!("  epoch {}: mean loss {:.4}", s.epoch, s.mean_loss);
        }
        println!(
            "trained {} epochs in {secs:.1} s ({:.0} samples/s, {:.2} GFLOP/s useful)",
            args.epochs,
            samples as f64 / secs,
            samples as f64 * arch.train_flops(train.h, train.w, 5) / secs / 1e9
        );
        if let Some(path) = &args.save {
            weights::save(be, &model, path)?;
            println!("saved the model to {}", path.display());
        }

        let (drifted_test, retrain_data, drifted_samples) = drifted(&args, &train, &test);

        let clean_acc = model::evaluate(be, &mut model, &test, 256);
        let drifted_acc = model::evaluate(be, &mut model, &drifted_test, 256);
        let retrain_cfg = TrainConfig {
            epochs: args.retrain_epochs,
            trained_layers: args.retrain_layers,
            batch_size: args.batch_size,
            lr: args.lr * 0.4,
            seed: args.seed + 11,
            ..TrainConfig::default()
        };
        let started = Instant::now();
        let mut retrained = model.duplicate(be);
        train_with_bar(
            be,
            &mut retrained,
            &retrain_data,
            &retrain_cfg,
            "retraining on drifted data",
        );
        let retrain_secs = started.elapsed().as_secs_f64();
        let healed_acc = model::evaluate(be, &mut retrained, &drifted_test, 256);
        let after_clean = model::evaluate(be, &mut retrained, &test, 256);

        println!();
        println!("{:<46} {:>9}", "test set", "accuracy");
        println!("{:<46} {:>8.2}%", "clean", 100.0 * clean_acc);
        println!(
            "{:<46} {:>8.2}%",
            "drifted (dusk, rain, tilt, new class mix)",
            100.0 * drifted_acc
        );
        println!(
            "{:<46} {:>8.2}%",
            format!(
                "drifted, after retraining ({drifted_samples}+{} samples, {} epochs)",
                args.memory_samples, args.retrain_epochs
            ),
            100.0 * healed_acc
        );
        println!(
            "{:<46} {:>8.2}%",
            "clean, after retraining",
            100.0 * after_clean
        );
        println!(
            "drift cost {:.1} points; retraining ({retrain_secs:.1} s) won back {:.1}",
            100.0 * (clean_acc - drifted_acc),
            100.0 * (healed_acc - drifted_acc)
        );
        Ok(())
    }
}

/// The drifted scene (dusk and rain, a tilted camera, a different class mix): a test set
/// drawn from `test`, and retraining data drawn from `train` (drifted samples first, then
/// `memory_samples` undrifted ones with a uniform class mix, as an exemplar memory would add),
/// and how many of those are drifted.
fn drifted(args: &TrainArgs, train: &Dataset, test: &Dataset) -> (Dataset, Dataset, usize) {
    let scene = Drift {
        brightness: 0.6,
        contrast: 0.8,
        noise: 0.08,
        blur: 0.5,
        rotation: 15.0,
        scale: 1.1,
    };
    let mut mix = vec![1.0f32; train.classes];
    for (k, w) in mix.iter_mut().enumerate() {
        *w = if k % 3 == 0 { 4.0 } else { 0.5 };
    }
    let drifted_test = scene.apply(
        &drift::resample_mix(test, &mix, test.len().min(5000), args.seed + 7),
        args.seed + 8,
    );
    let mut retrain_data = scene.apply(
        &drift::resample_mix(train, &mix, args.retrain_samples, args.seed + 9),
        args.seed + 10,
    );
    let drifted_samples = retrain_data.len();
    let uniform = vec![1.0f32; train.classes];
    retrain_data.extend(&drift::resample_mix(
        train,
        &uniform,
        args.memory_samples,
        args.seed + 12,
    ));
    (drifted_test, retrain_data, drifted_samples)
}

fn train_with_bar<B: Backend>(
    be: &B,
    model: &mut Model<B>,
    data: &Dataset,
    cfg: &TrainConfig,
    what: &str,
) -> Vec<model::EpochStats> {
    let bar = ProgressBar::new(1).with_message(what.to_string());
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} samples {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let stats = model::train(be, model, data, cfg, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    stats
}
