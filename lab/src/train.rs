//! Train a fresh network and save its model directory (the `tandem train` command and the demo's
//! first stage).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::Device;
use tandem_models::checkpoint::{self, InputSpec, ModelCard, Provenance};
use tandem_models::data::{Dataset, Splits};
use tandem_models::device;
use tandem_models::train::{TrainConfig, TrainReport, evaluate, train};
use tandem_models::zoo::{Net, NetSpec};

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
        input: Some(InputSpec::of_dataset(&splits.test, &splits.name)),
    };
    checkpoint::save(out, &net, &card).with_context(|| format!("saving {}", out.display()))?;
    Ok(Trained { accuracy, wall_s, report })
}
