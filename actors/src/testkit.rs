//! A tiny series with random weights, for tests, smoke runs and the demo without a pruned
//! series: VGG-16 layout at widths 4–8 on 1×32×32 inputs, 10 classes, two members (id 0 the
//! "original", id 1 narrower, as if pruned).

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use tandem_models::checkpoint::{self, InputSpec, ModelCard, Provenance};
use tandem_models::data::{Dataset, synthetic};
use tandem_models::params::ParamMap;
use tandem_models::series::{MANIFEST_VERSION, MemberKind, Series};
use tandem_models::zoo::{Arch, Net, NetSpec, Tap};

use crate::error::ActorError;

/// Widths of member 0.
pub fn tiny_widths() -> Vec<usize> {
    Arch::Vgg16.base_widths().iter().map(|&w| (w / 64).clamp(4, 8)).collect()
}

/// Write a two-member series into `dir` and return its manifest.
pub fn tiny_series(dir: &Path) -> Result<Series, ActorError> {
    tiny_series_for(dir, "synthetic")
}

/// [`tiny_series`] whose cards say they take `dataset`'s input (`fashion-mnist`: grey 32×32,
/// its mean/std and class names), for runs that play that data set or a video of it.
pub fn tiny_series_for(dir: &Path, dataset: &str) -> Result<Series, ActorError> {
    let model = |source| ActorError::Series { dir: dir.to_path_buf(), source };
    let base = NetSpec::new(Arch::Vgg16, 1, 32, 10, tiny_widths()).map_err(model)?;
    let narrow = NetSpec { widths: base.widths.iter().map(|&w| (w / 2).max(2)).collect(), ..base.clone() };
    let device = tandem_models::device::cpu();
    // Fixed weights from run to run (the seed may be process-global: a test running beside
    // this one can still draw from it, which is why `lively` does not rely on the draw).
    device.seed(0x7a_4d_e3);
    let frames = calibration_frames(dataset, dir)?;
    let mut members = Vec::new();
    for (id, name, kind, spec) in
        [(0u32, "original", MemberKind::Original, &base), (1, "step1-1", MemberKind::Step1 { iter: 1 }, &narrow)]
    {
        let net = lively(Net::new(spec, &device), &frames).map_err(model)?;
        let card = ModelCard {
            spec: spec.clone(),
            accuracy: Some(0.1),
            provenance: Provenance { stage: "testkit".into(), dataset: dataset.into(), ..Default::default() },
            input: Some(InputSpec::assumed(dataset, spec)),
        };
        let sub = format!("m{id}");
        checkpoint::save(&dir.join(&sub), &net, &card).map_err(model)?;
        members.push(Series::describe(id, name.into(), kind, sub, spec, 0.1, true, 0.0, 0.0));
    }
    let series = Series {
        version: MANIFEST_VERSION,
        points: base.points().into_iter().map(|p| p.name).collect(),
        base,
        dataset: dataset.into(),
        preset: "testkit".into(),
        budget: 0.018,
        members,
        step1_done: true,
        step1_kept: Some(1),
        step2_done: Vec::new(),
    };
    series.save(dir).map_err(model)?;
    Ok(series)
}

/// The frames `lively` calibrates on: the data set the cards name where it is one a test plays
/// (Fashion-MNIST's first training images), else the synthetic frames.
fn calibration_frames(dataset: &str, dir: &Path) -> Result<Dataset, ActorError> {
    match dataset {
        "fashion-mnist" => tandem_models::data::load(&tandem_models::data::DataSource::FashionMnist, None)
            .map(|s| s.train.take(64))
            .map_err(|source| ActorError::Series { dir: dir.to_path_buf(), source }),
        _ => Ok(synthetic_frames(16)),
    }
}

/// Random init through 13 narrow conv blocks shrinks the signal layer by layer until the logits
/// no longer depend on the input (useless for comparing split and full inference). Set each
/// batch norm's running statistics to the statistics its conv output actually has on `frames`
/// (data-dependent init), layer by layer, so every block sees normalised input; then
/// standardise each class's logit over the same frames, so no class wins on its bias alone
/// (a random classifier over post-ReLU features otherwise often names one class for every
/// frame, which makes "same classes on both paths" vacuous).
fn lively(net: Net, frames: &Dataset) -> tandem_models::Result<Net> {
    let n = frames.len();
    let mut images = Vec::with_capacity(n * frames.image_len());
    for i in 0..n {
        images.extend(frames.image_f32(i));
    }
    let device = tandem_models::device::cpu();
    let x = Tensor::<4>::from_data(TensorData::new(images, [n, frames.channels, frames.size, frames.size]), &device);
    let mut net = net;
    for c in 0..net.spec.widths.len() {
        let mut seen: Option<Tensor<4>> = None;
        let end = net.spec.end();
        let _ = net.forward_tapped(x.clone(), 0, end, &mut |conv, tap, t| {
            if conv == c && tap == Tap::ConvOut {
                seen = Some(t.clone());
            }
            t
        });
        let Some(t) = seen else { continue };
        let [b, ch, h, w] = t.dims();
        let data =
            t.into_data().try_into_vec::<f32>().map_err(|e| tandem_models::ModelError::Config(format!("{e:?}")))?;
        let (mut mean, mut var) = (vec![0f32; ch], vec![0f32; ch]);
        let per = (b * h * w).max(1) as f32;
        for (k, run) in data.chunks_exact(h * w).enumerate() {
            mean[k % ch] += run.iter().sum::<f32>() / per;
        }
        for (k, run) in data.chunks_exact(h * w).enumerate() {
            var[k % ch] += run.iter().map(|v| (v - mean[k % ch]).powi(2)).sum::<f32>() / per;
        }
        let mut map = ParamMap::from_module(&net)?;
        for (suffix, values) in
            [("running_mean", mean), ("running_var", var.into_iter().map(|v| v.max(1e-4)).collect())]
        {
            if let Some(a) = map.0.get_mut(&format!("blocks.{c}.bn.{suffix}")) {
                a.data = values;
            }
        }
        net = map.apply(net)?;
    }
    let logits = net.forward(x);
    let [_, classes] = logits.dims();
    let data =
        logits.into_data().try_into_vec::<f32>().map_err(|e| tandem_models::ModelError::Config(format!("{e:?}")))?;
    let mut map = ParamMap::from_module(&net)?;
    for k in 0..classes {
        let column: Vec<f32> = data.iter().skip(k).step_by(classes).copied().collect();
        let mean = column.iter().sum::<f32>() / n as f32;
        let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n as f32).sqrt().max(1e-6);
        // burn's Linear weight is [d_input, d_output]: class k is column k.
        if let Some(w) = map.0.get_mut("classifier.weight") {
            w.data.iter_mut().skip(k).step_by(classes).for_each(|v| *v /= std);
        }
        if let Some(b) = map.0.get_mut("classifier.bias") {
            b.data[k] = (b.data[k] - mean) / std;
        }
    }
    map.apply(net)
}

/// `n` deterministic synthetic 1×32×32 frames with labels.
pub fn synthetic_frames(n: usize) -> Dataset {
    synthetic(1, 10, 0, n.max(1), 11).test
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny series is only useful if its output depends on the input and it names more than
    /// one class: on the synthetic frames and, for the Fashion-MNIST cards the video tests use,
    /// on Fashion-MNIST test images (frames it was not calibrated on).
    #[test]
    fn tiny_models_respond_to_their_input() {
        let fmnist = tandem_models::data::load(&tandem_models::data::DataSource::FashionMnist, None)
            .expect("Fashion-MNIST (scripts/setup.sh installs it)")
            .test
            .take(100);
        for (dataset, frames) in [("synthetic", synthetic_frames(10)), ("fashion-mnist", fmnist)] {
            let dir = tempfile::tempdir().unwrap();
            let series = tiny_series_for(dir.path(), dataset).unwrap();
            for id in [0, 1] {
                let m = crate::models::load_member(&series, dir.path(), id).unwrap();
                let out: Vec<Vec<f32>> = (0..frames.len())
                    .map(|i| m.run(frames.image_f32(i), [1, 1, 32, 32], 0, m.end()).unwrap().0)
                    .collect();
                let spread = out
                    .iter()
                    .skip(1)
                    .map(|o| o.iter().zip(&out[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max))
                    .fold(0f32, f32::max);
                let classes: std::collections::BTreeSet<usize> =
                    out.iter().map(|o| tandem_models::train::argmax(o)).collect();
                eprintln!("{dataset} model {id}: spread {spread}, classes {classes:?}, logits[0] {:?}", out[0]);
                assert!(spread > 1e-3, "{dataset} model {id}: logits do not depend on the input");
                assert!(classes.len() >= 3, "{dataset} model {id}: names only {classes:?}");
            }
        }
    }
}
