//! `tandem prune` and `tandem series`.

use super::device_args::ComputeArgs;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use tandem_models::data::{self, DataSource};
use tandem_models::prune::{PruneConfig, Steps, prune_on};
use tandem_models::series::{MemberKind, Series};

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Trained model directory to prune.
    #[arg(long)]
    model_dir: PathBuf,
    /// Pruning config (TOML); see configs/prune.toml. Overrides --preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Named preset when no --config is given: fast or paper.
    #[arg(long, default_value = "fast")]
    preset: String,
    /// Output series directory.
    #[arg(long)]
    out: PathBuf,
    /// Continue an interrupted run from OUT/series.toml.
    #[arg(long)]
    resume: bool,
    /// Stop after step 1 (and its final fine-tune): for comparing step-1 settings
    /// (docs/RESULTS.md §2b). `--resume` without it later adds step 2.
    #[arg(long)]
    step1_only: bool,
    /// Data set to prune on (fine-tuning, ranking, the budget's accuracy) [default: the one the
    /// model card says it was trained on].
    #[arg(long)]
    dataset: Option<DataSource>,
    /// Data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(a: PruneArgs) -> anyhow::Result<()> {
    let cfg = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            PruneConfig::from_toml(&text, path)?
        }
        None => PruneConfig::preset(&a.preset)?,
    };
    let dev = a.compute.device(false)?;
    let card = tandem_models::checkpoint::read_card(&a.model_dir)
        .with_context(|| format!("reading {}", a.model_dir.display()))?;
    let dataset = super::info::dataset_or_card(a.dataset.clone(), &card, &a.model_dir)?;
    let splits = data::load(&dataset, a.data.as_deref()).with_context(|| format!("loading the data set {dataset}"))?;
    let started = Instant::now();
    let mut say = |line: &str| println!("[{:>6.0} s] {line}", started.elapsed().as_secs_f64());
    let steps = if a.step1_only { Steps::Step1Only } else { Steps::Both };
    let series = prune_on(&dev, &a.model_dir, &a.out, &cfg, &splits, a.resume, true, steps, &mut say)?;
    println!(
        "series of {} models in {} ({:.0} s on {})\n",
        series.members.len(),
        a.out.display(),
        started.elapsed().as_secs_f64(),
        a.compute.kind
    );
    print_series(&series);
    Ok(())
}

#[derive(Args, Debug)]
pub struct SeriesArgs {
    /// Series directory (holds series.toml).
    #[arg(long)]
    dir: PathBuf,
}

pub fn series(a: SeriesArgs) -> anyhow::Result<()> {
    let s = Series::load(&a.dir)?;
    print_series(&s);
    Ok(())
}

/// Per partition point: elements of the original, the kept step-1 model, and the smallest
/// step-2 member within budget of the family that feeds the point (the paper's main table).
fn print_series(s: &Series) {
    let Some(orig) = s.original() else {
        println!("(no original model in the series)");
        return;
    };
    let step1 = s.step1_final().unwrap_or(orig);
    println!(
        "{} on {}, preset {}, budget {:.1} points; {} models",
        s.base.arch,
        s.dataset,
        s.preset,
        s.budget * 100.0,
        s.members.len()
    );
    println!(
        "original {:.2} % {:.2} M MACs | step 1 ({}) {:.2} % {:.2} M MACs ({:.1}× fewer)\n",
        orig.accuracy * 100.0,
        orig.macs as f64 / 1e6,
        step1.name,
        step1.accuracy * 100.0,
        step1.macs as f64 / 1e6,
        orig.macs as f64 / step1.macs.max(1) as f64
    );
    println!("{:<8} {:>10} {:>10} {:>10} {:>9} {:>8}", "point", "original", "step 1", "step 2", "acc", "ratio");
    let points = s.base.points();
    for p in points.iter().take(points.len() - 1).skip(1) {
        let best = p.conv.and_then(|c| {
            s.members
                .iter()
                .filter(|m| matches!(m.kind, MemberKind::Step2 { conv, .. } if conv as usize == c) && m.within_budget)
                .min_by_key(|m| m.elements[p.index])
        });
        let (e2, acc) = best.map_or((step1.elements[p.index], step1.accuracy), |m| (m.elements[p.index], m.accuracy));
        println!(
            "{:<8} {:>10} {:>10} {:>10} {:>8.2}% {:>7.1}×",
            p.name,
            orig.elements[p.index],
            step1.elements[p.index],
            e2,
            acc * 100.0,
            orig.elements[p.index] as f64 / e2.max(1) as f64
        );
    }
}
