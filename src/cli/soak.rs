//! `tandem soak`: run the split pipeline for a long time and check that nothing accumulates.
//!
//! The flags; the sampling, the judging and the verdict are `tandem_lab::soak` (its module docs
//! say what is judged and how).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tandem_lab::faults::FaultSpec;
use tandem_lab::run::stop_after;
use tandem_lab::soak::{DEFAULT_TRACE, SoakOptions};

use super::run_cmd::PairArgs;

#[derive(Args, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// How long the camera runs: 60s, 10m (a unit is required).
    #[arg(long, default_value = "600s", value_parser = super::device::parse_duration)]
    duration: Duration,
    /// Start of the judged span, e.g. 60s [default: min(60 s, duration / 6)].
    #[arg(long, value_parser = super::device::parse_duration)]
    warmup: Option<Duration>,
    /// Camera frames per second (overrides the config).
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Directory for soak.csv (the samples) and verdict.toml.
    #[arg(long, default_value = "artifacts/soak")]
    out: PathBuf,
    /// Inject faults: `every=30s[,seed=N][,start=30s][,hold=3s][,kinds=cut+kill+corrupt+collapse+slow]`
    /// — a link cut mid-frame, the edge killed and restarted, a corrupt byte, a bandwidth
    /// collapse, a slow edge, about every `every` at seeded random moments (see
    /// `tandem_lab::faults`). Writes faults.csv with each one's recovery time.
    #[arg(long, value_parser = parse_faults, value_name = "SPEC")]
    faults: Option<FaultSpec>,
}

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    s.parse()
}

pub fn run(a: SoakArgs) -> anyhow::Result<()> {
    let demo = a.pair.load(|device| {
        device.link.trace = Some(PathBuf::from(DEFAULT_TRACE));
        device.camera.fps = Some(a.fps);
        stop_after(device, None, Some(a.duration));
    })?;
    let opts = SoakOptions { duration: a.duration, warmup: a.warmup, fps: a.fps, out: a.out, faults: a.faults };
    tandem_lab::soak::run(&super::run_cmd::this_tandem()?, demo, &opts)
}
