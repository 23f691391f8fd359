//! `tandem train`: train the CNN, then show drift hurting and retraining healing.

#[derive(clap::Args)]
pub struct TrainArgs {}

pub fn run(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("train: in progress")
}
