//! `tandem demo`: the whole story on the embedded default, every stage cached in one directory.
//!
//! train → 2-step prune → profile → adaptive pipeline over a shaped loopback link → report.
//! A stage whose output already exists is reused, so a second run only repeats the live part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tandem_models::checkpoint;
use tandem_models::data::{self, DataSource, Splits};
use tandem_models::prune::{PruneConfig, prune};
use tandem_models::train::{Schedule, TrainConfig};
use tandem_models::zoo::{Arch, NetSpec, scaled_widths};

use crate::Tandem;

/// What the demo runs on.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Directory holding every stage's output (created; reused on the next run).
    pub dir: PathBuf,
    /// Fashion-MNIST directory (default: Debian's /usr/share/datasets/fashion-mnist).
    pub data: Option<PathBuf>,
    /// Training epochs of the base model.
    pub epochs: f64,
    /// Pruning config.
    pub prune_config: PathBuf,
    /// Config of the live pipeline stage (`tandem run`).
    pub run_config: PathBuf,
    /// Device emulated this many times slower than this machine in the live stage and the report.
    pub slowdown: f64,
    /// Frame source of the live stage; `None`: the test images encoded once as a lossless video
    /// (`DIR/fmnist-test.mkv`), played through the video source.
    pub source: Option<String>,
}

/// Test images the demo's video holds: 20 s at 30 fps, the live stage's length.
const DEMO_VIDEO_FRAMES: usize = 600;

/// Encode the first test images as a lossless grey video once (ffmpeg, FFV1 in Matroska).
fn demo_video(dir: &Path, splits: &Splits) -> anyhow::Result<PathBuf> {
    let path = dir.join("fmnist-test.mkv");
    if path.is_file() {
        println!("  reusing {}", path.display());
        return Ok(path);
    }
    let frames = splits.test.take(DEMO_VIDEO_FRAMES);
    let tmp = dir.join("fmnist-test.tmp.mkv");
    tandem_actors::source::video::encode_lossless(
        Path::new("ffmpeg"),
        &frames.pixels,
        frames.channels,
        frames.size,
        30.0,
        &tmp,
    )?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
    println!("  encoded {} test images as {} (lossless FFV1, 30 fps)", frames.len(), path.display());
    Ok(path)
}

fn stage(n: usize, name: &str, started: &Instant) {
    println!("\n== [{n}/5] {name}  (t = {:.0} s)", started.elapsed().as_secs_f64());
}

/// Run every stage, reusing what `a.dir` already holds.
pub fn run(tandem: &Tandem, a: &DemoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let splits = data::load(&DataSource::FashionMnist, a.data.as_deref())
        .context("loading Fashion-MNIST (scripts/setup.sh installs Debian's dataset-fashion-mnist)")?;

    stage(1, "train a quarter-width VGG-16 on Fashion-MNIST", &started);
    let base = a.dir.join("base");
    train_base(&base, &splits, a.epochs)?;

    stage(2, "2-step pruning", &started);
    let series_dir = a.dir.join("series");
    let text =
        std::fs::read_to_string(&a.prune_config).with_context(|| format!("reading {}", a.prune_config.display()))?;
    let cfg = PruneConfig::from_toml(&text, &a.prune_config)?;
    let t = Instant::now();
    let mut say = |line: &str| println!("  [{:>5.0} s] {line}", t.elapsed().as_secs_f64());
    let series = prune(&base, &series_dir, &cfg, &splits, true, true, &mut say)?;
    println!("  series: {} models in {}", series.members.len(), series_dir.display());

    let slowdown = a.slowdown.to_string();
    stage(
        3,
        &format!("profile every model and split point (edge: this machine; device: emulated {slowdown}× slower)"),
        &started,
    );
    let edge_profile = a.dir.join("profile-edge.toml");
    let device_profile = a.dir.join("profile-device.toml");
    let series_arg = series_dir.display().to_string();
    // Each role is profiled on as many threads as the live stage's runtime will use.
    let run_cfg: tandem_actors::config::DemoConfig =
        tandem_actors::config::load(&a.run_config).with_context(|| format!("reading {}", a.run_config.display()))?;
    if !edge_profile.is_file() {
        let args = crate::exe::strings(&[
            "profile",
            "--series",
            &series_arg,
            "--role",
            "edge",
            "--accuracy-images",
            "100",
            "--out",
            &edge_profile.display().to_string(),
        ]);
        tandem.stage(&[args, crate::profiles::threads_args(tandem_planner::Role::Edge, &run_cfg)].concat())?;
    } else {
        println!("  reusing {}", edge_profile.display());
    }
    if !device_profile.is_file() {
        let args = crate::exe::strings(&[
            "profile",
            "--series",
            &series_arg,
            "--role",
            "device",
            "--out",
            &device_profile.display().to_string(),
        ]);
        tandem.stage(&[args, crate::profiles::threads_args(tandem_planner::Role::Device, &run_cfg)].concat())?;
    } else {
        println!("  reusing {}", device_profile.display());
    }

    stage(4, "adaptive split pipeline: edge and device as two processes over a shaped loopback link", &started);
    println!("  the link visits 20, 3 and 0.3 Mbit/s, 7 s each (configs/links/high-middle-low.toml); the device is");
    println!("  emulated as {slowdown}x slower than this machine, in the runtime and the planner");
    // The series, both profiles and the emulation: what the live run and the report share.
    let (device_arg, edge_arg) = (device_profile.display().to_string(), edge_profile.display().to_string());
    let profiled = [
        "--series",
        &series_arg,
        "--device-profile",
        &device_arg,
        "--edge-profile",
        &edge_arg,
        "--slowdown",
        &slowdown,
    ];
    let run_config = a.run_config.display().to_string();
    let source = match &a.source {
        Some(s) => s.clone(),
        None => format!("video:{}", demo_video(&a.dir, &splits)?.display()),
    };
    let predictions = a.dir.join("predictions.jsonl").display().to_string();
    println!("  frames from {source}; every frame's prediction goes to {predictions}");
    let live = ["--source", &source, "--loop", "--predictions", &predictions];
    tandem.stage(&[&["run", "--config", &run_config][..], &live, &profiled].concat())?;

    stage(5, "report with charts", &started);
    let report = a.dir.join("report");
    let report_arg = report.display().to_string();
    tandem.stage(&[&["report"][..], &profiled, &["--rtt", "2ms", "--out", &report_arg]].concat())?;
    println!("  open {}", report.join("report.md").display());

    println!("\ndemo finished in {:.0} s; outputs in {}", started.elapsed().as_secs_f64(), a.dir.display());
    Ok(())
}

fn train_base(dir: &Path, splits: &Splits, epochs: f64) -> anyhow::Result<()> {
    if let Ok(card) = checkpoint::read_card(dir) {
        println!("  reusing {} ({:.2} % test accuracy)", dir.display(), card.accuracy.unwrap_or(0.0) * 100.0);
        return Ok(());
    }
    let spec = NetSpec::new(Arch::Vgg16, 1, 32, 10, scaled_widths(Arch::Vgg16, 0.25))?;
    let cfg = TrainConfig { epochs, schedule: Schedule::Cosine { warmup: 0.03 }, seed: 1, ..TrainConfig::default() };
    let t = crate::train::train_and_save(spec, &splits.train, splits, &cfg, dir)?;
    let acc = t.accuracy;
    println!("  trained in {:.0} s: {:.2} % test accuracy", t.wall_s, acc * 100.0);
    Ok(())
}
