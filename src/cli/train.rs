use super::device_args::ComputeArgs;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use tandem_models::data::{self, DataSource};
use tandem_models::train::{Schedule, TrainConfig};
use tandem_models::zoo::{Arch, NetSpec, scaled_widths};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Architecture: vgg16 or alexnet.
    #[arg(long, default_value = "vgg16")]
    model: Arch,
    /// Multiplier of the architecture's full widths (0.25 = quarter width).
    #[arg(long, default_value_t = 0.25)]
    width_mult: f64,
    /// Passes over the training set (fractions allowed).
    #[arg(long, default_value_t = 4.0)]
    epochs: f64,
    /// Data set: fashion-mnist, cifar10, synthetic or scenes[:size=N,seed=S,train=N,test=N]
    /// (generated from Fashion-MNIST; `train=N` generates only N training frames).
    #[arg(long, default_value = "fashion-mnist")]
    dataset: DataSource,
    /// Data directory (default for fashion-mnist: Debian's /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate (cosine schedule with a short warm-up).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Seed for initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on only the first N training images (smoke runs).
    #[arg(long)]
    limit_train: Option<usize>,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.width_mult > 0.0 && a.width_mult <= 4.0, "--width-mult must be in (0, 4], got {}", a.width_mult);
    let dev = a.compute.device(true)?;
    let splits = data::load(&a.dataset, a.data.as_deref()).context("loading the data set")?;
    let train_set = match a.limit_train {
        Some(n) => splits.train.take(n),
        None => splits.train.clone(),
    };
    let spec = NetSpec::new(
        a.model,
        train_set.channels,
        train_set.size,
        train_set.num_classes,
        scaled_widths(a.model, a.width_mult),
    )?;
    tracing::info!(model = %a.model, widths = ?spec.widths, macs = spec.total_macs(), params = spec.params(), train = train_set.len(), test = splits.test.len(), "training");
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        schedule: Schedule::Cosine { warmup: 0.03 },
        seed: a.seed,
        ..TrainConfig::default()
    };
    let t = tandem_lab::train::train_and_save_on(&dev, spec, &train_set, &splits, &cfg, &a.out)?;
    let (wall, acc) = (t.wall_s, t.accuracy);
    let report = t.report;
    println!(
        "trained {} x{} for {} epochs on {} in {:.0} s ({:.1} img/s): test accuracy {:.2} % -> {}",
        a.model,
        a.width_mult,
        a.epochs,
        a.compute.kind,
        wall,
        report.images as f64 / report.wall_s.max(1e-9),
        acc * 100.0,
        a.out.display()
    );
    Ok(())
}
