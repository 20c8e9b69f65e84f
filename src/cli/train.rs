use super::device_args::ComputeArgs;
use anyhow::Context;
use burn::tensor::Device;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tandem_models::checkpoint::{self, ModelCard, Provenance};
use tandem_models::data::{self, DataSource, Dataset, Splits};
use tandem_models::device;
use tandem_models::train::{Schedule, TrainConfig, TrainReport, evaluate, train};
use tandem_models::zoo::{Arch, Net, NetSpec, scaled_widths};

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
    /// Data set: fashion-mnist, cifar10 or synthetic.
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
    let spec = NetSpec::new(a.model, train_set.channels, train_set.num_classes, scaled_widths(a.model, a.width_mult))?;
    tracing::info!(model = %a.model, widths = ?spec.widths, macs = spec.total_macs(), params = spec.params(), train = train_set.len(), test = splits.test.len(), "training");
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        schedule: Schedule::Cosine { warmup: 0.03 },
        seed: a.seed,
        ..TrainConfig::default()
    };
    let t = train_and_save_on(&dev, spec, &train_set, &splits, &cfg, &a.out)?;
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

/// What [`train_and_save`] did.
pub struct Trained {
    /// Test accuracy in [0, 1].
    pub accuracy: f64,
    /// Wall-clock seconds, training and evaluation.
    pub wall_s: f64,
    /// The training loop's report.
    pub report: TrainReport,
}

/// Train a fresh network of `spec` (seeded by `cfg.seed`) on the CPU, evaluate it on the test
/// split and save the model directory with its card.
pub fn train_and_save(
    spec: NetSpec,
    train_set: &Dataset,
    splits: &Splits,
    cfg: &TrainConfig,
    out: &Path,
) -> anyhow::Result<Trained> {
    train_and_save_on(&device::cpu_autodiff(), spec, train_set, splits, cfg, out)
}

/// [`train_and_save`] on `dev` (an autodiff device).
pub fn train_and_save_on(
    dev: &Device,
    spec: NetSpec,
    train_set: &Dataset,
    splits: &Splits,
    cfg: &TrainConfig,
    out: &Path,
) -> anyhow::Result<Trained> {
    dev.seed(cfg.seed);
    let started = Instant::now();
    let (net, report) = train(Net::new(&spec, dev), train_set, cfg, "train", true)?;
    let accuracy = evaluate(&net, &splits.test, 200);
    let wall_s = started.elapsed().as_secs_f64();
    let card = ModelCard {
        spec,
        accuracy: Some(accuracy),
        provenance: Provenance {
            stage: "train".into(),
            dataset: splits.name.clone(),
            epochs: cfg.epochs,
            wall_s,
            seed: cfg.seed,
            detail: format!(
                "SGD momentum {} wd {} batch {} lr {} cosine; {} steps, {:.1} img/s; loss {:.3} -> {:.3}",
                cfg.momentum,
                cfg.weight_decay,
                cfg.batch_size,
                cfg.lr,
                report.steps,
                report.images as f64 / report.wall_s.max(1e-9),
                report.first_loss,
                report.last_loss
            ),
        },
    };
    checkpoint::save(out, &net, &card).with_context(|| format!("saving {}", out.display()))?;
    Ok(Trained { accuracy, wall_s, report })
}
