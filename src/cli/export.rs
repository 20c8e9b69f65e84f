//! `tandem export`: series members (or one model directory) as ONNX files.

use anyhow::Context;
use burn::module::Module;
use clap::Args;
use std::path::{Path, PathBuf};
use tandem_engine::onnx::{Metadata, Part, segment_bytes};
use tandem_models::checkpoint;
use tandem_models::data::{self, DataSource};
use tandem_models::series::Series;
use tandem_models::zoo::Net;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Series directory (series.toml + member directories).
    #[arg(long, conflicts_with = "model_dir")]
    series: Option<PathBuf>,
    /// Member of the series: id or name. Default: the original (id 0).
    #[arg(long, requires = "series")]
    member: Option<String>,
    /// A single model directory instead of a series member.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Partition point (name such as `pool2`, or index) for `--part head|tail`.
    #[arg(long)]
    point: Option<String>,
    /// Which part: the whole model, or the head (input → point) / tail (point → logits).
    #[arg(long, default_value = "whole")]
    part: Part,
    /// Every member × every inner point of the manifest, head and tail, plus each whole
    /// model, into the directory `--out` (`<member>/whole.onnx`, `<member>/head-<point>.onnx`, …).
    #[arg(long, requires = "series", conflicts_with_all = ["member", "point"])]
    all: bool,
    /// Output file (or directory with `--all`).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let dev = tandem_models::device::cpu();
    if let Some(dir) = &a.model_dir {
        let (net, card) = checkpoint::load(dir, &dev).with_context(|| format!("loading {}", dir.display()))?;
        let member = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let meta = metadata(member, None, &card.provenance.dataset, net.spec.in_channels);
        let (from, to) = range(&net, a.part, a.point.as_deref())?;
        return write(&a.out, &net.valid(), from, to, &meta);
    }
    let series_dir = a.series.as_deref().context("give --series DIR or --model-dir DIR")?;
    let series = Series::load(series_dir).with_context(|| format!("reading {}", series_dir.display()))?;
    let members: Vec<_> = if a.all {
        series.members.iter().collect()
    } else {
        let wanted = a.member.as_deref().unwrap_or("0");
        let m = series
            .members
            .iter()
            .find(|m| m.name == wanted || m.id.to_string() == wanted)
            .with_context(|| format!("series {} has no member {wanted:?}", series_dir.display()))?;
        vec![m]
    };
    let mut files = 0;
    for m in members {
        let (net, _) = checkpoint::load(&series.dir_of(series_dir, m), &dev)
            .with_context(|| format!("loading member {} ({})", m.id, m.name))?;
        anyhow::ensure!(
            net.spec == series.spec_of(m)?,
            "member {}: checkpoint widths differ from the manifest",
            m.name
        );
        let net = net.valid();
        let meta = metadata(m.name.clone(), Some(m.id), &series.dataset, net.spec.in_channels);
        if !a.all {
            let (from, to) = range(&net, a.part, a.point.as_deref())?;
            return write(&a.out, &net, from, to, &meta);
        }
        let dir = a.out.join(&m.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write(&dir.join("whole.onnx"), &net, 0, net.spec.end(), &meta)?;
        files += 1;
        let end = net.spec.end();
        for p in net.spec.points().into_iter().filter(|p| p.index > 0 && p.index < end) {
            if !series.points.contains(&p.name) {
                continue;
            }
            write(&dir.join(format!("head-{}.onnx", p.name)), &net, 0, p.index, &meta)?;
            write(&dir.join(format!("tail-{}.onnx", p.name)), &net, p.index, end, &meta)?;
            files += 2;
        }
    }
    println!("wrote {files} ONNX files under {}", a.out.display());
    Ok(())
}

fn range(net: &Net, part: Part, point: Option<&str>) -> anyhow::Result<(usize, usize)> {
    let end = net.spec.end();
    let p = match (part, point) {
        (Part::Whole, _) => end,
        (_, Some(name)) => net.spec.point(name)?.index,
        (_, None) => anyhow::bail!("--part {} needs --point", part.as_str()),
    };
    let (from, to) = part.range(p, end);
    anyhow::ensure!(from < to, "--part {} at point {p} is empty", part.as_str());
    Ok((from, to))
}

fn write(out: &Path, net: &Net, from: usize, to: usize, meta: &Metadata) -> anyhow::Result<()> {
    let bytes = segment_bytes(net, from, to, meta)?;
    checkpoint::write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    let points = net.spec.points();
    println!("{}: {} {}..{} ({} bytes)", out.display(), meta.member, points[from].name, points[to].name, bytes.len());
    Ok(())
}

/// What the file says about its input and classes. The statistics are the data set's (the
/// model card names it); #17 may move them and the class names into the card.
fn metadata(member: String, model_id: Option<u32>, dataset: &str, channels: usize) -> Metadata {
    let (mean, std, classes): (Vec<f32>, Vec<f32>, &[&str]) = match dataset.parse::<DataSource>() {
        Ok(DataSource::FashionMnist) => (vec![data::FMNIST_MEAN], vec![data::FMNIST_STD], &FASHION_MNIST_CLASSES),
        Ok(DataSource::Cifar10) => (data::CIFAR10_MEAN.to_vec(), data::CIFAR10_STD.to_vec(), &CIFAR10_CLASSES),
        Ok(DataSource::Scenes(_)) => (data::scenes::MEAN.to_vec(), data::scenes::STD.to_vec(), &FASHION_MNIST_CLASSES),
        // `data::synthetic`'s statistics.
        _ => (vec![0.3; channels], vec![0.35; channels], &[]),
    };
    Metadata {
        member,
        model_id,
        dataset: dataset.to_string(),
        mean,
        std,
        class_names: classes.iter().map(|c| c.to_string()).collect(),
    }
}

/// Label order of the Fashion-MNIST IDX files.
const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
/// Label order of the CIFAR-10 binary batches.
const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
