//! 2-step pruning (Shi et al. 2019): one trained model → a series of pruned models.
//!
//! - **Step 1** ([`step1`]) ranks filters globally and removes a fixed share per iteration,
//!   fine-tuning after each, until accuracy falls more than the budget below the original: it
//!   cuts computation everywhere.
//! - **Step 2** ([`step2`]) starts from the last step-1 model within budget and, for each conv
//!   independently, prunes only that conv along a log-spaced schedule: it cuts the data sent at
//!   the partition points that conv feeds.
//!
//! Decisions are pure functions ([`rank`], [`schedule`], [`surgery`]); this module and the two
//! step modules only sequence them, fine-tune, evaluate and record every iteration in the
//! [`Series`] manifest, which is saved after each one so `--resume` loses at most one.

pub mod rank;
pub mod schedule;
pub mod step1;
pub mod step2;
pub mod surgery;

use crate::checkpoint::{self, InputSpec, ModelCard, Provenance};
use crate::data::{BatchIter, Dataset, Splits};
use crate::error::{ModelError, Result};
use crate::params::ParamMap;
use crate::series::{MANIFEST, MANIFEST_VERSION, Member, MemberKind, Series};
use crate::train::{Schedule, TrainConfig, evaluate};
use crate::zoo::{Net, NetSpec};
use burn::tensor::Device;
use rank::{BatchNormMode, TaylorVariant};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Ranking pass settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankConfig {
    /// Taylor criterion.
    pub variant: TaylorVariant,
    /// Training images per ranking pass (0 = the whole training set, as the authors did).
    pub images: usize,
    /// Batch size of the ranking pass.
    pub batch_size: usize,
    /// Batch norm during the pass: `eval` (running statistics) or `train` (each batch's own, as
    /// the authors' code). Default `eval`.
    #[serde(default)]
    pub batch_norm: BatchNormMode,
    /// Seed of the ranking subset's shuffle; iteration i draws with `seed + i` (wrapping). Default 7919.
    #[serde(default = "default_rank_seed")]
    pub seed: u64,
}

fn default_rank_seed() -> u64 {
    7919
}

/// Step 1 settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step1Config {
    /// Share of the original model's total filters removed per iteration (authors: 1/16).
    pub fraction: f64,
    /// Upper bound on iterations.
    pub max_iters: u32,
    /// Fine-tuning after each iteration.
    pub finetune: TrainConfig,
    /// Extra fine-tuning epochs on the kept model once step 1 stops (authors: 3); 0 = none.
    pub final_epochs: f64,
}

/// Step 2 settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step2Config {
    /// Log-spaced schedule length (authors: 16 points from the width down to 1).
    pub points: usize,
    /// Convs to build a family for; empty = all of them.
    #[serde(default)]
    pub families: Vec<usize>,
    /// Fine-tuning after each iteration.
    pub finetune: TrainConfig,
}

/// Every knob of a pruning run (`configs/prune.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneConfig {
    /// Preset name recorded in the manifest.
    pub preset: String,
    /// Accuracy budget as a fraction (0.018 = 1.8 points below the reference model).
    pub budget: f64,
    /// Test images used for the accuracy that drives the budget (0 = the whole test set).
    pub eval_images: usize,
    /// Ranking pass.
    pub rank: RankConfig,
    /// Step 1.
    pub step1: Step1Config,
    /// Step 2.
    pub step2: Step2Config,
}

fn finetune(epochs: f64, lr: f64, batch_size: usize, schedule: Schedule) -> TrainConfig {
    TrainConfig { epochs, batch_size, lr, momentum: 0.9, weight_decay: 5e-4, schedule, augment: true, seed: 11 }
}

impl PruneConfig {
    /// The authors' protocol: whole-training-set ranking, 13 fine-tune epochs per iteration
    /// (8 at 1e-3, 5 at 1e-4, batch 32), 3 final epochs. ≈ 2,550 epochs for VGG-16: GPU only.
    pub fn paper() -> Self {
        let ft = finetune(13.0, 1e-3, 32, Schedule::Step { at: [8.0 / 13.0, 2.0], gamma: 0.1 });
        Self {
            preset: "paper".into(),
            budget: 0.018,
            eval_images: 0,
            rank: RankConfig {
                variant: TaylorVariant::Signed,
                images: 0,
                batch_size: 32,
                batch_norm: BatchNormMode::Eval,
                seed: default_rank_seed(),
            },
            step1: Step1Config { fraction: 1.0 / 16.0, max_iters: 15, finetune: ft.clone(), final_epochs: 3.0 },
            step2: Step2Config { points: 16, families: Vec::new(), finetune: ft },
        }
    }

    /// The same budget and schedules with far less work, for two CPU cores: rank on a 1,024-image
    /// subset, evaluate on half the test set, fine-tune a fraction of an epoch per iteration with a short cosine schedule, and
    /// warm-start each step-2 iteration from the previous member of its family.
    pub fn fast() -> Self {
        Self {
            preset: "fast".into(),
            budget: 0.018,
            eval_images: 5000,
            rank: RankConfig {
                variant: TaylorVariant::Signed,
                images: 1024,
                batch_size: 64,
                batch_norm: BatchNormMode::Eval,
                seed: default_rank_seed(),
            },
            step1: Step1Config {
                fraction: 1.0 / 16.0,
                max_iters: 15,
                finetune: finetune(0.25, 0.01, 64, Schedule::Cosine { warmup: 0.0 }),
                final_epochs: 0.5,
            },
            step2: Step2Config {
                points: 16,
                families: Vec::new(),
                finetune: finetune(0.05, 0.005, 64, Schedule::Cosine { warmup: 0.0 }),
            },
        }
    }

    /// A named preset (`paper`, `fast`).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(Self::paper()),
            "fast" => Ok(Self::fast()),
            other => Err(ModelError::Config(format!("unknown pruning preset {other:?} (expected paper or fast)"))),
        }
    }

    /// Parse a TOML config and validate it.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| ModelError::Config(format!("{}: {e}", origin.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..0.5).contains(&self.budget) {
            return Err(ModelError::Config(format!("budget {} must be a fraction in [0, 0.5)", self.budget)));
        }
        if !(self.step1.fraction > 0.0 && self.step1.fraction < 1.0) {
            return Err(ModelError::Config("step1.fraction must be in (0, 1)".into()));
        }
        if self.step2.points < 2 {
            return Err(ModelError::Config("step2.points must be ≥ 2".into()));
        }
        if self.rank.batch_size == 0 {
            return Err(ModelError::Config("rank.batch_size must be > 0".into()));
        }
        if self.step1.final_epochs.is_nan() || self.step1.final_epochs < 0.0 {
            return Err(ModelError::Config("step1.final_epochs must be ≥ 0".into()));
        }
        self.step1.finetune.validate()?;
        self.step2.finetune.validate()
    }
}

/// One line of progress, for the CLI to print.
pub type Report<'a> = &'a mut dyn FnMut(&str);

/// Shared state of a pruning run: data, config, the series being built and where it lives.
pub struct Run<'a> {
    /// Series directory.
    pub dir: &'a Path,
    /// Config.
    pub cfg: &'a PruneConfig,
    /// Train and test data.
    pub data: &'a Splits,
    /// The test subset used for budget decisions.
    pub eval_set: Dataset,
    /// The manifest being built.
    pub series: Series,
    /// Show training progress bars.
    pub progress: bool,
    /// The plain (non-autodiff) device every model of the run lives on; training and ranking
    /// use its autodiff form.
    pub device: Device,
}

impl<'a> Run<'a> {
    /// Accuracy of a model on the evaluation subset.
    pub fn accuracy(&self, net: &Net) -> f64 {
        evaluate(net, &self.eval_set, 250)
    }

    /// Taylor scores over the configured ranking subset.
    pub fn rank(&self, net: &Net, layers: Option<&[usize]>, iteration_seed: u64) -> Result<Vec<Vec<f64>>> {
        let cfg = &self.cfg.rank;
        let subset = if cfg.images == 0 { self.data.train.len() } else { cfg.images };
        let iter = BatchIter::shuffled(
            &self.data.train,
            cfg.batch_size,
            cfg.seed.wrapping_add(iteration_seed),
            crate::data::Augment::None,
        )
        .scan(0usize, move |n, b| {
            if *n >= subset {
                return None;
            }
            *n += b.len;
            Some(b)
        });
        rank::taylor_scores(net, iter, layers, cfg.variant, cfg.batch_norm)
    }

    /// Apply surgery, fine-tune and evaluate: the body of every pruning iteration.
    pub fn prune_and_finetune(
        &self,
        params: &ParamMap,
        spec: &NetSpec,
        removals: &std::collections::BTreeMap<usize, Vec<usize>>,
        ft: &TrainConfig,
        label: &str,
    ) -> Result<(Net, NetSpec, f64, f64)> {
        let started = Instant::now();
        let (pruned, new_spec) = surgery::remove_filters(params, spec, removals)?;
        let net = pruned.apply(Net::new(&new_spec, &self.device.clone().autodiff()))?;
        let (net, _) = crate::train::train(net, &self.data.train, ft, label, self.progress)?;
        let acc = self.accuracy(&net);
        Ok((net, new_spec, acc, started.elapsed().as_secs_f64()))
    }

    /// Save a member's checkpoint and append it to the manifest (atomically rewritten).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        net: &Net,
        spec: &NetSpec,
        name: String,
        kind: MemberKind,
        dir: String,
        acc: f64,
        within: bool,
        epochs: f64,
        wall_s: f64,
        parent: &str,
    ) -> Result<Member> {
        let card = ModelCard {
            spec: spec.clone(),
            accuracy: Some(acc),
            provenance: Provenance {
                stage: name.clone(),
                dataset: self.data.name.clone(),
                epochs,
                wall_s,
                seed: 11,
                detail: format!("preset {}; from {parent}", self.cfg.preset),
            },
            input: Some(InputSpec::of_dataset(&self.data.test, &self.data.name)),
        };
        checkpoint::save(&self.dir.join(&dir), net, &card)?;
        let member = Series::describe(self.series.next_id(), name, kind, dir, spec, acc, within, epochs, wall_s);
        self.series.members.push(member.clone());
        self.series.save(self.dir)?;
        Ok(member)
    }

    /// Load a member back as (params, spec, net on the autodiff device).
    pub fn load_member(&self, m: &Member) -> Result<(ParamMap, NetSpec)> {
        let (net, card) = checkpoint::load(&self.series.dir_of(self.dir, m), &self.device)?;
        Ok((ParamMap::from_module(&net)?, card.spec))
    }
}

/// Which steps a pruning run performs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Steps {
    /// Step 1, then step 2: the whole series.
    #[default]
    Both,
    /// Step 1 only (with its final fine-tune), for studying step 1; a later `--resume` without it
    /// adds step 2.
    Step1Only,
}

/// Run (or resume) 2-step pruning of the model in `base_dir` into the series directory `out`, on
/// the CPU.
pub fn prune(
    base_dir: &Path,
    out: &Path,
    cfg: &PruneConfig,
    data: &Splits,
    resume: bool,
    progress: bool,
    report: Report,
) -> Result<Series> {
    prune_on(&crate::device::cpu(), base_dir, out, cfg, data, resume, progress, Steps::Both, report)
}

/// [`prune`] on `device` (a plain device from [`crate::device::device`]; training and ranking use
/// its autodiff form). The series is the same on every device up to floating-point rounding.
#[allow(clippy::too_many_arguments)]
pub fn prune_on(
    device: &Device,
    base_dir: &Path,
    out: &Path,
    cfg: &PruneConfig,
    data: &Splits,
    resume: bool,
    progress: bool,
    steps: Steps,
    report: Report,
) -> Result<Series> {
    cfg.validate()?;
    let device = device.clone().without_autodiff();
    let eval_set = if cfg.eval_images == 0 { data.test.clone() } else { data.test.take(cfg.eval_images) };
    let manifest = out.join(MANIFEST);
    let series = if manifest.is_file() {
        if !resume {
            return Err(ModelError::Config(format!(
                "{} already exists: pass --resume to continue it, or choose another --out",
                manifest.display()
            )));
        }
        let s = Series::load(out)?;
        report(&format!(
            "resuming {}: {} members, step 1 {}, {} step-2 families done",
            out.display(),
            s.members.len(),
            if s.step1_done { "done" } else { "in progress" },
            s.step2_done.len()
        ));
        s
    } else {
        let (net, card) = checkpoint::load(base_dir, &device)?;
        if card.spec.in_channels != data.train.channels || card.spec.num_classes != data.train.num_classes {
            return Err(ModelError::Config(format!(
                "model {} expects {} channels / {} classes, data set {} has {} / {}",
                base_dir.display(),
                card.spec.in_channels,
                card.spec.num_classes,
                data.name,
                data.train.channels,
                data.train.num_classes
            )));
        }
        let series = Series {
            version: MANIFEST_VERSION,
            base: card.spec.clone(),
            dataset: data.name.clone(),
            preset: cfg.preset.clone(),
            budget: cfg.budget,
            points: card.spec.points().into_iter().map(|p| p.name).collect(),
            members: Vec::new(),
            step1_done: false,
            step1_kept: None,
            step2_done: Vec::new(),
        };
        let mut run = Run { dir: out, cfg, data, eval_set, series, progress, device };
        let acc = run.accuracy(&net);
        report(&format!(
            "original: {:?}, {:.2} M MACs, accuracy {:.2} %",
            card.spec.widths,
            card.spec.total_macs() as f64 / 1e6,
            acc * 100.0
        ));
        run.record(
            &net,
            &card.spec,
            "original".into(),
            MemberKind::Original,
            "original".into(),
            acc,
            true,
            card.provenance.epochs,
            card.provenance.wall_s,
            &base_dir.display().to_string(),
        )?;
        return finish(run, steps, report);
    };
    let run = Run { dir: out, cfg, data, eval_set, series, progress, device };
    finish(run, steps, report)
}

fn finish(mut run: Run, steps: Steps, report: Report) -> Result<Series> {
    if !run.series.step1_done {
        step1::run(&mut run, report)?;
    }
    if steps == Steps::Both {
        step2::run(&mut run, report)?;
    }
    Ok(run.series)
}
