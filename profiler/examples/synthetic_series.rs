//! Write a tiny random-weight VGG-16 series (1-channel 32×32, widths 1..8) for smoke runs of
//! `tandem profile`, `tandem plan` and `tandem report` with `--dataset synthetic`:
//!
//! ```text
//! cargo run --release -p tandem-profiler --example synthetic_series -- /tmp/tiny-series
//! ```
//! Accuracies in the manifest are made up (the weights are untrained) but obey the budget.

use std::path::PathBuf;

use tandem_models::checkpoint::{self, ModelCard, Provenance};
use tandem_models::device;
use tandem_models::series::{MANIFEST_VERSION, MemberKind, Series};
use tandem_models::zoo::{Arch, Net, NetSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: synthetic_series DIR")?,
    );
    let dev = device::cpu();
    let base = NetSpec::new(
        Arch::Vgg16,
        1,
        10,
        Arch::Vgg16
            .base_widths()
            .iter()
            .map(|&w| (w / 64).clamp(4, 8))
            .collect(),
    )?;
    let step1: Vec<usize> = base.widths.iter().map(|&w| w - 1).collect();
    let pruned = |conv: usize, w: usize| {
        let mut v = step1.clone();
        v[conv] = w;
        v
    };
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
            pruned(1, 2),
            0.89,
            true,
        ),
        (
            "step2-conv2_2-k1",
            MemberKind::Step2 { conv: 3, iter: 1 },
            pruned(3, 2),
            0.888,
            true,
        ),
        (
            "step2-conv3_3-k1",
            MemberKind::Step2 { conv: 6, iter: 1 },
            pruned(6, 1),
            0.885,
            true,
        ),
        (
            "step2-conv3_3-k2",
            MemberKind::Step2 { conv: 6, iter: 2 },
            pruned(6, 1),
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
        dev.seed(100 + id as u64);
        let net = Net::new(&spec, &dev);
        let card = ModelCard {
            spec: spec.clone(),
            accuracy: Some(accuracy),
            provenance: Provenance {
                stage: "synthetic".into(),
                dataset: "synthetic".into(),
                epochs: 0.0,
                wall_s: 0.0,
                seed: 100 + id as u64,
                detail: "random weights".into(),
            },
        };
        let sub = format!("m{id}");
        checkpoint::save(&dir.join(&sub), &net, &card)?;
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
        preset: "synthetic".into(),
        budget: 0.018,
        members,
        step1_done: true,
        step1_kept: Some(1),
        step2_done: vec![1, 3, 6],
    };
    series.save(&dir)?;
    println!(
        "wrote a {}-member synthetic series to {}",
        series.members.len(),
        dir.display()
    );
    Ok(())
}
