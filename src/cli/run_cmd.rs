//! `tandem run`: the demo — edge and device as two processes on loopback (`tandem_lab::run`).
//!
//! This module holds the flags and turns them into the pair's config; [`PairArgs`] is shared with
//! `tandem soak`, which runs the same two processes for longer and watches them from outside.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tandem_actors::config::{self, DemoConfig, DeviceConfig};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// Stop after N frames (overrides the config).
    #[arg(long, conflicts_with = "duration")]
    frames: Option<u64>,
    /// Stop after this long, e.g. 30s, 2m (a unit is required; overrides the config).
    #[arg(long, value_parser = super::device::parse_duration)]
    duration: Option<Duration>,
    /// Also write the device's final summary to FILE as JSON (what `tandem device --summary-out`
    /// writes), atomically.
    #[arg(long, value_name = "FILE")]
    summary_out: Option<PathBuf>,
}

/// The flags that pick the two roles' config, shared by `tandem run` and `tandem soak`.
#[derive(Args, Debug)]
pub struct PairArgs {
    /// Demo config with [edge] and [device] sections.
    #[arg(long, default_value = "configs/demo.toml")]
    config: PathBuf,
    /// Series directory for both roles (overrides the config).
    #[arg(long)]
    series: Option<PathBuf>,
    /// Plan for the device (overrides the config).
    #[arg(long)]
    plan: Option<String>,
    /// Frame source of the device, e.g. video:clip.mp4, video:rtsp://cam/stream, v4l2:/dev/video0,
    /// images:DIR (see `tandem device --help`; overrides the config).
    #[arg(long, value_name = "URI", value_parser = |s: &str| s.parse::<tandem_actors::source::SourceSpec>().map_err(|e| e.to_string()))]
    source: Option<tandem_actors::source::SourceSpec>,
    /// Start an image directory or a video file again at its end.
    #[arg(long = "loop")]
    looped: bool,
    /// Write the device's per-frame predictions to FILE as JSON lines (overrides the config).
    #[arg(long, value_name = "FILE")]
    predictions: Option<String>,
    #[command(flatten)]
    adapt: super::device::AdaptArgs,
}

impl PairArgs {
    /// The demo config with these flags applied, the edge on an ephemeral loopback port, checked.
    /// `tweak` edits the device section before the adaptation flags, so a flag given on the
    /// command line still wins over what the caller sets there (e.g. soak's default trace).
    pub(super) fn load(&self, tweak: impl FnOnce(&mut DeviceConfig)) -> anyhow::Result<DemoConfig> {
        let mut demo: DemoConfig = config::load(&self.config)?;
        if self.series.is_some() {
            demo.series.clone_from(&self.series);
        }
        let series = demo
            .series
            .clone()
            .or(demo.edge.series.clone())
            .context("no series directory: pass --series DIR or set `series` in the demo config")?;
        anyhow::ensure!(
            series.join("series.toml").is_file(),
            "{} holds no series.toml (run `tandem prune` first, or pass --series DIR)",
            series.display()
        );
        demo.edge.series = Some(series.clone());
        demo.edge.listen = "127.0.0.1:0".into();
        demo.device.series = Some(series);
        demo.device.edge = None;
        if self.plan.is_some() {
            demo.device.plan.clone_from(&self.plan);
        }
        if let Some(s) = &self.source {
            demo.device.camera.source = s.clone();
        }
        if self.looped {
            demo.device.camera.looped = true;
        }
        if self.predictions.is_some() {
            demo.device.predictions.file.clone_from(&self.predictions);
        }
        tweak(&mut demo.device);
        self.adapt.apply(&mut demo.device);
        demo.validate()?;
        Ok(demo)
    }
}

/// This binary, for the lab to start its subcommands with.
pub(super) fn this_tandem() -> anyhow::Result<tandem_lab::Tandem> {
    Ok(tandem_lab::Tandem::new(std::env::current_exe().context("locating the tandem binary")?))
}

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let demo = a.pair.load(|device| tandem_lab::run::stop_after(device, a.frames, a.duration))?;
    tandem_lab::run::run(&this_tandem()?, &demo, a.summary_out.as_deref())
}
