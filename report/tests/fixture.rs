//! A tiny series on disk: original, one step-1 member, step-2 members within and outside the
//! budget. Weights are random (seeded); accuracies in the manifest are made up but consistent
//! with the budget.

use std::path::Path;

use burn::tensor::Device;
use tandem_models::checkpoint::{self, ModelCard, Provenance};
use tandem_models::data::{Dataset, synthetic};
use tandem_models::device;
use tandem_models::series::{MANIFEST_VERSION, MemberKind, Series};
use tandem_models::zoo::{Arch, Net, NetSpec};

pub const BUDGET: f64 = 0.018;

pub fn base_widths() -> Vec<usize> {
    Arch::Vgg16
        .base_widths()
        .iter()
        .map(|&w| (w / 64).clamp(4, 8))
        .collect()
}

fn save_member(dir: &Path, spec: &NetSpec, seed: u64, accuracy: f64, dev: &Device) {
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
    };
    checkpoint::save(dir, &net, &card).expect("save checkpoint");
}

/// Write the series into `dir` and return its manifest.
pub fn tiny_series(dir: &Path) -> Series {
    let dev = device::cpu();
    let base = NetSpec::new(Arch::Vgg16, 1, 10, base_widths()).expect("valid spec");
    let step1: Vec<usize> = base.widths.iter().map(|&w| w - 1).collect();
    let with = |conv: usize, w: usize| {
        let mut v = step1.clone();
        v[conv] = w;
        v
    };
    // (name, kind, widths, accuracy, within budget)
    let plan: Vec<(&str, MemberKind, Vec<usize>, f64, bool)> = vec![
        (
            "original",
            MemberKind::Original,
            base.widths.clone(),
            0.90,
            true,
        ),
        (
            "step1-1",
            MemberKind::Step1 { iter: 1 },
            step1.clone(),
            0.895,
            true,
        ),
        (
            "step2-conv1_2-k1",
            MemberKind::Step2 { conv: 1, iter: 1 },
            with(1, 2),
            0.89,
            true,
        ),
        (
            "step2-conv3_3-k1",
            MemberKind::Step2 { conv: 6, iter: 1 },
            with(6, 1),
            0.885,
            true,
        ),
        (
            "step2-conv3_3-k2",
            MemberKind::Step2 { conv: 6, iter: 2 },
            with(6, 1),
            0.80,
            false,
        ),
    ];
    let mut members = Vec::new();
    for (id, (name, kind, widths, accuracy, within)) in plan.into_iter().enumerate() {
        let spec = NetSpec {
            widths,
            ..base.clone()
        };
        let sub = format!("m{id}");
        save_member(&dir.join(&sub), &spec, 100 + id as u64, accuracy, &dev);
        members.push(Series::describe(
            id as u32,
            name.into(),
            kind,
            sub,
            &spec,
            accuracy,
            within,
            0.0,
            0.0,
        ));
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
    series.save(dir).expect("save manifest");
    series
}

/// Test images matching the series (1 channel, 10 classes).
pub fn test_images() -> Dataset {
    synthetic(1, 10, 16, 64, 3).test
}
