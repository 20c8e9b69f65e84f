//! SGD training and evaluation.
//!
//! Training runs on the autodiff device (batch norm uses batch statistics and updates its running
//! ones); evaluation runs [`Net::valid`](burn::module::Module::valid) on the plain device, so the
//! reported accuracy is the eval-mode accuracy the deployed model will have. Fine-tuning during
//! pruning is the same loop with a fractional number of epochs.

use crate::data::{Augment, BatchIter, Dataset};
use crate::error::{ModelError, Result};
use crate::zoo::Net;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::time::Instant;

/// Learning-rate schedule over the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Linear warm-up over the first `warmup` fraction of steps, then cosine decay to zero.
    Cosine {
        /// Fraction of the steps spent warming up (0 ≤ warmup < 1).
        warmup: f64,
    },
    /// Multiply the rate by `gamma` at each listed fraction of the run (the authors' code used
    /// 1e-3 then 1e-4 for the last 5 of 13 fine-tune epochs: `at = [0.615], gamma = 0.1`).
    Step {
        /// Fractions of the run where the rate drops.
        at: [f64; 2],
        /// Factor applied at each drop.
        gamma: f64,
    },
}

impl Schedule {
    /// The multiplier of the base rate at progress `t ∈ [0, 1]`.
    pub fn factor(&self, t: f64) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Cosine { warmup } => {
                if t < warmup {
                    (t / warmup).max(0.02)
                } else {
                    let u = ((t - warmup) / (1.0 - warmup)).clamp(0.0, 1.0);
                    0.5 * (1.0 + (std::f64::consts::PI * u).cos())
                }
            }
            Schedule::Step { at, gamma } => at.iter().filter(|&&a| t >= a).fold(1.0, |f, _| f * gamma),
        }
    }
}

/// Knobs of one training or fine-tuning run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set; fractional values stop part-way (fine-tuning).
    pub epochs: f64,
    /// Images per step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Random crop + flip augmentation.
    pub augment: bool,
    /// Seed for shuffling and augmentation.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 4.0,
            batch_size: 64,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine { warmup: 0.03 },
            augment: true,
            seed: 1,
        }
    }
}

impl TrainConfig {
    /// Reject values that cannot train.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ModelError::Config(m.to_string()));
        if !(self.epochs > 0.0 && self.epochs.is_finite()) {
            return bad("epochs must be > 0");
        }
        if self.batch_size == 0 || self.batch_size > 4096 {
            return bad("batch_size must be in 1..=4096");
        }
        if !(self.lr > 0.0 && self.lr < 10.0) {
            return bad("lr must be in (0, 10)");
        }
        if !(0.0..1.0).contains(&self.momentum) || !(0.0..1.0).contains(&self.weight_decay) {
            return bad("momentum and weight_decay must be in [0, 1)");
        }
        if let Schedule::Cosine { warmup } = self.schedule
            && !(0.0..1.0).contains(&warmup)
        {
            return bad("cosine warmup must be in [0, 1)");
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Images seen.
    pub images: usize,
    /// Mean loss over the first and the last 10 % of steps.
    pub first_loss: f64,
    /// Mean loss over the last 10 % of steps.
    pub last_loss: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

/// Steps between reads of the loss back to the host. A read waits for the device: on a GPU,
/// reading every step would keep the CPU from queueing the next step while this one runs.
const LOSS_READ_EVERY: usize = 16;

/// Read the queued per-step losses (one device round trip), append them to `losses` and fail on
/// the first that is not finite. `step` is the number of steps taken so far.
fn read_losses(pending: &mut Vec<Tensor<1>>, losses: &mut Vec<f64>, step: usize) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let n = pending.len();
    let values = Tensor::cat(std::mem::take(pending), 0)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Config(format!("reading the loss back: {e:?}")))?;
    for (i, v) in values.into_iter().enumerate() {
        let v = v as f64;
        if !v.is_finite() {
            return Err(ModelError::Config(format!(
                "loss diverged ({v}) at step {}; lower the learning rate",
                step - n + i
            )));
        }
        losses.push(v);
    }
    Ok(())
}

fn batch_tensors(images: Vec<f32>, labels: Vec<i64>, ds: &Dataset, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let n = labels.len();
    let x = Tensor::<4>::from_data(TensorData::new(images, [n, ds.channels, ds.size, ds.size]), device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
    (x, y)
}

/// Train `net` (on an autodiff device) for `cfg.epochs` passes over `train`.
///
/// `label` names the run on the progress bar; `progress = false` keeps it quiet (tests).
pub fn train(mut net: Net, ds: &Dataset, cfg: &TrainConfig, label: &str, progress: bool) -> Result<(Net, TrainReport)> {
    cfg.validate()?;
    if ds.is_empty() {
        return Err(ModelError::Config("training set is empty".into()));
    }
    let device = net.devices().into_iter().next().ok_or_else(|| ModelError::Config("model has no device".into()))?;
    if !device.is_autodiff() {
        return Err(ModelError::Config("train() needs a model on an autodiff device".into()));
    }
    let per_epoch = ds.len().div_ceil(cfg.batch_size);
    let total_steps = ((cfg.epochs * per_epoch as f64).ceil() as usize).max(1);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(cfg.momentum)))
        .with_weight_decay((cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32)))
        .init();
    // A bar on a terminal; periodic log lines when stderr is a file or a pipe (CI, nohup).
    let tty = std::io::stderr().is_terminal();
    let bar = if progress && tty { ProgressBar::new(total_steps as u64) } else { ProgressBar::hidden() };
    let log_every = if progress && !tty { (total_steps / 10).max(1) } else { usize::MAX };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} steps {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    let started = Instant::now();
    let mut losses = Vec::with_capacity(total_steps);
    let mut pending = Vec::with_capacity(LOSS_READ_EVERY);
    let mut step = 0;
    let mut epoch = 0u64;
    let augment = if cfg.augment { Augment::CropFlip } else { Augment::None };
    'outer: loop {
        let iter =
            BatchIter::shuffled(ds, cfg.batch_size, cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch), augment);
        for batch in iter {
            if step >= total_steps {
                break 'outer;
            }
            let lr = cfg.lr * cfg.schedule.factor(step as f64 / total_steps as f64);
            let (x, y) = batch_tensors(batch.images, batch.labels, ds, &device);
            let logits = net.forward(x);
            let loss = loss_fn.forward(logits, y);
            pending.push(loss.clone().detach());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, net, grads);
            step += 1;
            bar.inc(1);
            if pending.len() >= LOSS_READ_EVERY {
                read_losses(&mut pending, &mut losses, step)?;
            }
            if (step % 20 == 0 || step % log_every == 0) && !losses.is_empty() {
                let tail = &losses[losses.len().saturating_sub(50)..];
                let mean = tail.iter().sum::<f64>() / tail.len() as f64;
                bar.set_message(format!("loss {mean:.3} lr {lr:.4}"));
                if step % log_every == 0 {
                    let rate = (step * cfg.batch_size) as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    tracing::info!(
                        run = label,
                        step,
                        total_steps,
                        loss = format!("{mean:.3}"),
                        img_per_s = format!("{rate:.0}"),
                        "training"
                    );
                }
            }
        }
        epoch += 1;
    }
    bar.finish_and_clear();
    read_losses(&mut pending, &mut losses, step)?;
    // The last optimizer steps may still be queued on a GPU: finish them before reading the clock.
    crate::device::sync(&device)?;
    let k = (losses.len() / 10).max(1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let report = TrainReport {
        steps: step,
        images: (step * cfg.batch_size).min(total_steps * cfg.batch_size),
        first_loss: mean(&losses[..k.min(losses.len())]),
        last_loss: mean(&losses[losses.len().saturating_sub(k)..]),
        wall_s: started.elapsed().as_secs_f64(),
    };
    Ok((net, report))
}

/// Eval-mode logits for a batch of normalised images on the model's plain device.
pub fn logits(net: &Net, images: Vec<f32>, n: usize, ds: &Dataset) -> Vec<f32> {
    let device = net.devices().into_iter().next().unwrap_or_else(crate::device::cpu);
    let x = Tensor::<4>::from_data(TensorData::new(images, [n, ds.channels, ds.size, ds.size]), &device);
    net.forward(x).into_data().try_into_vec::<f32>().unwrap_or_default()
}

/// Eval-mode accuracy in [0, 1] over `ds`. Runs on a validation copy of `net`, so it works for a
/// model on either device and never touches the running statistics.
pub fn evaluate(net: &Net, ds: &Dataset, batch_size: usize) -> f64 {
    let correct = predict(net, ds, batch_size).iter().zip(&ds.labels).filter(|(p, l)| **p == usize::from(**l)).count();
    correct as f64 / ds.len().max(1) as f64
}

/// The eval-mode predicted class of every image of `ds`, in order (what [`evaluate`] scores).
pub fn predict(net: &Net, ds: &Dataset, batch_size: usize) -> Vec<usize> {
    let eval = net.valid();
    let mut out = Vec::with_capacity(ds.len());
    for batch in BatchIter::sequential(ds, batch_size.max(1)) {
        let logits = logits(&eval, batch.images, batch.len, ds);
        out.extend(logits.chunks_exact(ds.num_classes.max(1)).map(argmax));
    }
    out
}

/// Index of the largest value (first on ties); 0 for an empty slice.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let c = Schedule::Cosine { warmup: 0.1 };
        assert!(c.factor(0.0) < 0.1);
        assert!((c.factor(0.1) - 1.0).abs() < 1e-9);
        assert!(c.factor(1.0) < 1e-9);
        let s = Schedule::Step { at: [0.5, 0.8], gamma: 0.1 };
        assert_eq!(s.factor(0.2), 1.0);
        assert!((s.factor(0.6) - 0.1).abs() < 1e-12);
        assert!((s.factor(0.9) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(TrainConfig { batch_size: 0, ..TrainConfig::default() }.validate().is_err());
        assert!(TrainConfig { epochs: f64::NAN, ..TrainConfig::default() }.validate().is_err());
    }

    #[test]
    fn queued_losses_are_read_in_order_and_a_nan_names_its_step() {
        let dev = crate::device::cpu();
        let t = |v: f32| Tensor::<1>::from_floats([v], &dev);
        let mut losses = Vec::new();
        let mut pending = vec![t(1.0), t(2.0)];
        read_losses(&mut pending, &mut losses, 2).expect("finite losses");
        assert_eq!(losses, vec![1.0, 2.0]);
        assert!(pending.is_empty());
        let mut pending = vec![t(3.0), t(f32::NAN), t(4.0)];
        let err = read_losses(&mut pending, &mut losses, 5).expect_err("a NaN loss").to_string();
        assert!(err.contains("diverged (NaN) at step 3"), "{err}");
    }

    #[test]
    fn argmax_picks_first_max() {
        assert_eq!(argmax(&[0.1, 0.9, 0.9]), 1);
        assert_eq!(argmax(&[]), 0);
    }
}
