//! `tandem data`: look at and measure the data sets. `data scenes` writes generated scenes
//! frames as PNG files plus `labels.json` (playable with the device's `images:DIR` source);
//! `data entropy` measures how many bytes a frame takes raw, q8-lz4 coded as the runtime sends
//! it, as PNG and as JPEG.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use image::ImageEncoder;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tandem_codec::Coding;
use tandem_models::data::{self, DataSource, Dataset, SceneSplit, ScenesConfig, scenes};

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Write scenes frames as PNG files and a labels.json.
    Scenes(ScenesArgs),
    /// Mean bytes per frame of a data set split: raw u8, q8-lz4 (the runtime's input coding),
    /// PNG, JPEG at quality 50/75/90; and the frames' per-channel mean and std.
    Entropy(EntropyArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum SplitArg {
    Test,
    Train,
}

#[derive(Args, Debug)]
pub struct ScenesArgs {
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
    /// Frame height and width.
    #[arg(long, default_value_t = scenes::DEFAULT_SIZE)]
    size: usize,
    /// Seed of the frames' RNG.
    #[arg(long, default_value_t = scenes::DEFAULT_SEED)]
    seed: u64,
    /// Which split (drawn from Fashion-MNIST's split of the same name).
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Frames to write (the first N of the split).
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Also write `grid.png`: the first COLSxROWS frames tiled (e.g. 8x4).
    #[arg(long)]
    grid: Option<String>,
    /// Fashion-MNIST directory (default: Debian's /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EntropyArgs {
    /// Data set (e.g. `scenes:train=0,test=1000`, `fashion-mnist`).
    #[arg(long, default_value = "scenes:train=0,test=1000")]
    dataset: DataSource,
    /// Data directory (see `tandem train --data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Which split to measure.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Frames measured (the first N of the split).
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Also write the numbers as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(a: DataArgs) -> anyhow::Result<()> {
    match a.command {
        DataCommand::Scenes(a) => write_scenes(a),
        DataCommand::Entropy(a) => entropy(a),
    }
}

/// One written frame in `labels.json`.
#[derive(Serialize)]
struct LabelledFile {
    file: String,
    label: u8,
    class: String,
}

/// `labels.json`: what the directory holds and each file's label.
#[derive(Serialize)]
struct Labels {
    dataset: String,
    split: SplitArg,
    size: usize,
    seed: u64,
    classes: Vec<String>,
    frames: Vec<LabelledFile>,
}

fn write_scenes(a: ScenesArgs) -> anyhow::Result<()> {
    let cfg = ScenesConfig { size: a.size, seed: a.seed, ..ScenesConfig::default() };
    cfg.validate()?;
    let grid = a.grid.as_deref().map(parse_grid).transpose()?;
    let fmnist = data::load_fashion_mnist(a.data.as_deref().unwrap_or(Path::new(data::DEFAULT_FASHION_MNIST_DIR)))
        .context("loading Fashion-MNIST, which scenes are drawn from")?;
    let (items, which) = match a.split {
        SplitArg::Test => (&fmnist.test, SceneSplit::Test),
        SplitArg::Train => (&fmnist.train, SceneSplit::Train),
    };
    let count = a.count.max(grid.map_or(0, |(c, r)| c * r));
    let t = Instant::now();
    let frames = scenes::generate(items, &cfg, which, count)?;
    let gen_s = t.elapsed().as_secs_f64();
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let classes = data::class_names("scenes", frames.num_classes);
    let mut listed = Vec::with_capacity(a.count);
    for i in 0..a.count {
        let file = format!("{i:06}.png");
        let path = a.out.join(&file);
        std::fs::write(&path, png(&frames, i)?).with_context(|| format!("writing {}", path.display()))?;
        let label = frames.labels[i];
        listed.push(LabelledFile { file, label, class: classes[usize::from(label)].clone() });
    }
    let labels = Labels {
        dataset: cfg.to_string(),
        split: a.split,
        size: a.size,
        seed: a.seed,
        classes: classes.clone(),
        frames: listed,
    };
    tandem_actors::report::write_json(&a.out.join("labels.json"), &labels)?;
    if let Some((cols, rows)) = grid {
        let path = a.out.join("grid.png");
        std::fs::write(&path, grid_png(&frames, cols, rows)?).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{} {:?} frames of {} ({}x{}x{}) generated in {:.2} s ({:.0} frames/s), {} written to {}",
        count,
        a.split,
        cfg,
        3,
        a.size,
        a.size,
        gen_s,
        count as f64 / gen_s.max(1e-9),
        a.count,
        a.out.display()
    );
    Ok(())
}

fn parse_grid(s: &str) -> anyhow::Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--grid {s:?}: expected COLSxROWS, e.g. 8x4");
    let (c, r) = s.split_once('x').ok_or_else(bad)?;
    let (c, r): (usize, usize) = (c.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?);
    anyhow::ensure!(c > 0 && r > 0 && c * r <= 1024, "--grid {s:?}: 1..=1024 frames");
    Ok((c, r))
}

/// Frame `i` as interleaved bytes (grey or RGB) for the image encoders.
fn interleaved(ds: &Dataset, i: usize) -> Vec<u8> {
    let plane = ds.size * ds.size;
    let img = ds.image(i);
    (0..plane).flat_map(|p| (0..ds.channels).map(move |c| img[c * plane + p])).collect()
}

fn colour_type(ds: &Dataset) -> anyhow::Result<image::ColorType> {
    match ds.channels {
        1 => Ok(image::ColorType::L8),
        3 => Ok(image::ColorType::Rgb8),
        c => anyhow::bail!("{c}-channel images cannot be written as PNG/JPEG"),
    }
}

fn png(ds: &Dataset, i: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let side = u32::try_from(ds.size)?;
    image::codecs::png::PngEncoder::new(&mut out).write_image(&interleaved(ds, i), side, side, colour_type(ds)?)?;
    Ok(out)
}

fn jpeg(ds: &Dataset, i: usize, quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let side = u32::try_from(ds.size)?;
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).write_image(
        &interleaved(ds, i),
        side,
        side,
        colour_type(ds)?,
    )?;
    Ok(out)
}

/// The first `cols × rows` frames tiled with a 2-pixel white gap.
fn grid_png(ds: &Dataset, cols: usize, rows: usize) -> anyhow::Result<Vec<u8>> {
    const GAP: usize = 2;
    let (s, ch) = (ds.size, ds.channels);
    let (w, h) = (cols * (s + GAP) + GAP, rows * (s + GAP) + GAP);
    let mut buf = vec![255u8; w * h * ch];
    for k in 0..(cols * rows).min(ds.len()) {
        let (x0, y0) = (GAP + (k % cols) * (s + GAP), GAP + (k / cols) * (s + GAP));
        let px = interleaved(ds, k);
        for y in 0..s {
            let dst = ((y0 + y) * w + x0) * ch;
            buf[dst..dst + s * ch].copy_from_slice(&px[y * s * ch..(y + 1) * s * ch]);
        }
    }
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        &buf,
        u32::try_from(w)?,
        u32::try_from(h)?,
        colour_type(ds)?,
    )?;
    Ok(out)
}

/// What `data entropy` measured (mean bytes per frame).
#[derive(Serialize)]
struct Entropy {
    dataset: String,
    split: SplitArg,
    frames: usize,
    shape: [usize; 3],
    raw_u8: f64,
    /// The q8-lz4 coded normalised input tensor: payload, and with its frame header.
    q8_lz4_payload: f64,
    q8_lz4_wire: f64,
    png: f64,
    jpeg_q50: f64,
    jpeg_q75: f64,
    jpeg_q90: f64,
    /// Per-channel mean and std of the frames' pixels scaled to [0, 1].
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Seconds to load (and for scenes generate) the data set, both splits.
    load_s: f64,
}

fn entropy(a: EntropyArgs) -> anyhow::Result<()> {
    let t = Instant::now();
    let splits = data::load(&a.dataset, a.data.as_deref()).context("loading the data set")?;
    let load_s = t.elapsed().as_secs_f64();
    let ds = match a.split {
        SplitArg::Test => splits.test,
        SplitArg::Train => splits.train,
    };
    let n = a.count.min(ds.len());
    anyhow::ensure!(n > 0, "the {:?} split of {} holds no frame", a.split, a.dataset);
    let shape = [ds.channels, ds.size, ds.size];
    let (mut q8, mut q8_wire, mut png_b, mut jpg) = (0usize, 0usize, 0usize, [0usize; 3]);
    let plane = ds.size * ds.size;
    let (mut sum, mut sq) = (vec![0f64; ds.channels], vec![0f64; ds.channels]);
    for i in 0..n {
        let coded = tandem_codec::encode(&ds.image_f32(i), &[1, shape[0], shape[1], shape[2]], Coding::Q8_LZ4)?;
        q8 += coded.payload().len();
        // On the wire as the profiler prices it: model 0 at the input point, a steady-state frame id.
        q8_wire += coded.wire_len(&tandem_profiler::profile_meta(0, 0));
        png_b += png(&ds, i)?.len();
        for (b, q) in jpg.iter_mut().zip([50, 75, 90]) {
            *b += jpeg(&ds, i, q)?.len();
        }
        for c in 0..ds.channels {
            for &p in &ds.image(i)[c * plane..(c + 1) * plane] {
                let v = f64::from(p) / 255.0;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
    }
    let mean_of = |total: usize| total as f64 / n as f64;
    let px = (n * plane) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / px).collect();
    let std: Vec<f64> = sq.iter().zip(&mean).map(|(q, m)| (q / px - m * m).max(0.0).sqrt()).collect();
    let e = Entropy {
        dataset: splits.name,
        split: a.split,
        frames: n,
        shape,
        raw_u8: ds.image_len() as f64,
        q8_lz4_payload: mean_of(q8),
        q8_lz4_wire: mean_of(q8_wire),
        png: mean_of(png_b),
        jpeg_q50: mean_of(jpg[0]),
        jpeg_q75: mean_of(jpg[1]),
        jpeg_q90: mean_of(jpg[2]),
        mean,
        std,
        load_s,
    };
    println!(
        "{} {:?}, {} frames of {}x{}x{}: mean bytes/frame raw {:.0} | q8-lz4 {:.0} (wire {:.0}) | PNG {:.0} | JPEG q50 {:.0} q75 {:.0} q90 {:.0}",
        e.dataset,
        e.split,
        n,
        shape[0],
        shape[1],
        shape[2],
        e.raw_u8,
        e.q8_lz4_payload,
        e.q8_lz4_wire,
        e.png,
        e.jpeg_q50,
        e.jpeg_q75,
        e.jpeg_q90
    );
    println!("pixel mean {:.4?} std {:.4?}; loaded in {:.2} s", e.mean, e.std, e.load_s);
    if let Some(path) = &a.json {
        tandem_actors::report::write_json(path, &e)?;
    }
    Ok(())
}
