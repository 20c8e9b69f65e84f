//! A tiny series on disk for tests and examples across the workspace: an original, one step-1
//! member, step-2 members within and outside the budget. Weights are random (seeded); the
//! accuracies in the manifest are made up but consistent with the budget. Real numbers come from
//! `tandem prune`, never from here.

use crate::checkpoint::{self, ModelCard, Provenance};
use crate::data::{Dataset, synthetic};
use crate::device;
use crate::error::Result;
use crate::series::{MANIFEST_VERSION, MemberKind, Series};
use crate::zoo::{Arch, Net, NetSpec};
use burn::tensor::Device;
use std::path::Path;

/// Pruning budget recorded in the tiny series.
pub const BUDGET: f64 = 0.018;

/// Widths of the tiny series' original: VGG-16 divided by 64, clamped to 4..=8.
pub fn base_widths() -> Vec<usize> {
    Arch::Vgg16.base_widths().iter().map(|&w| (w / 64).clamp(4, 8)).collect()
}

fn save_member(dir: &Path, spec: &NetSpec, seed: u64, accuracy: f64, dev: &Device) -> Result<()> {
    dev.seed(seed);
    let net = Net::new(spec, dev);
    let card = ModelCard {
        spec: spec.clone(),
        accuracy: Some(accuracy),
        provenance: Provenance {
            stage: "test".into(),
            dataset: "synthetic".into(),
            epochs: 0.0,
            wall_s: 0.0,
            seed,
            detail: String::new(),
        },
        input: None,
    };
    checkpoint::save(dir, &net, &card)
}

/// Write the series into `dir` and return its manifest.
pub fn tiny_series(dir: &Path) -> Result<Series> {
    let dev = device::cpu();
    let base = NetSpec::new(Arch::Vgg16, 1, 32, 10, base_widths())?;
    let step1: Vec<usize> = base.widths.iter().map(|&w| w - 1).collect();
    let with = |conv: usize, w: usize| {
        let mut v = step1.clone();
        v[conv] = w;
        v
    };
    // (name, kind, widths, accuracy, within budget)
    let plan: Vec<(&str, MemberKind, Vec<usize>, f64, bool)> = vec![
        ("original", MemberKind::Original, base.widths.clone(), 0.90, true),
        ("step1-1", MemberKind::Step1 { iter: 1 }, step1.clone(), 0.895, true),
        ("step2-conv1_2-k1", MemberKind::Step2 { conv: 1, iter: 1 }, with(1, 2), 0.89, true),
        ("step2-conv3_3-k1", MemberKind::Step2 { conv: 6, iter: 1 }, with(6, 1), 0.885, true),
        ("step2-conv3_3-k2", MemberKind::Step2 { conv: 6, iter: 2 }, with(6, 1), 0.80, false),
    ];
    let mut members = Vec::new();
    for (id, (name, kind, widths, accuracy, within)) in plan.into_iter().enumerate() {
        let spec = NetSpec { widths, ..base.clone() };
        let sub = format!("m{id}");
        save_member(&dir.join(&sub), &spec, 100 + id as u64, accuracy, &dev)?;
        members.push(Series::describe(id as u32, name.into(), kind, sub, &spec, accuracy, within, 0.0, 0.0));
    }
    let series = Series {
        version: MANIFEST_VERSION,
        points: base.points().into_iter().map(|p| p.name).collect(),
        base,
        dataset: "synthetic".into(),
        preset: "test".into(),
        budget: BUDGET,
        members,
        step1_done: true,
        step1_kept: Some(1),
        step2_done: vec![1, 6],
    };
    series.save(dir)?;
    Ok(series)
}

/// Test images matching the series (1 channel, 10 classes).
pub fn test_images() -> Dataset {
    synthetic(1, 10, 16, 64, 3).test
}
