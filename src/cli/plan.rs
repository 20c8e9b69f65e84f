//! `tandem plan`: the best (model, split, coding) for a link and an accuracy floor, next to the
//! baselines, with the ratios against the unpruned best split.

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgGroup, Args};
use tandem_report::planner::LinkState;
use tandem_report::units::{accuracy_floor, parse_bandwidth, parse_duration_ms};
use tandem_report::{Comparison, describe_sides, load_profiles};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("floor").required(true).args(["max_loss", "min_accuracy"])))]
pub struct PlanArgs {
    /// One profile for both sides (the device optionally emulated with --slowdown).
    #[arg(long, conflicts_with_all = ["device_profile", "edge_profile"])]
    profile: Option<PathBuf>,
    /// The device's profile (with --edge-profile).
    #[arg(long, requires = "edge_profile")]
    device_profile: Option<PathBuf>,
    /// The edge's profile (with --device-profile).
    #[arg(long, requires = "device_profile")]
    edge_profile: Option<PathBuf>,
    /// Emulate the device as R times slower than its profile says.
    #[arg(long)]
    slowdown: Option<f64>,
    /// Link bandwidth, with a unit: 1Mbit, 500kbit, 2MB/s.
    #[arg(long)]
    bandwidth: String,
    /// Round-trip time, with a unit: 20ms, 0.1s.
    #[arg(long, default_value = "0ms")]
    rtt: String,
    /// Largest accuracy loss below the original, in percentage points (1.8 = the paper's budget).
    #[arg(long)]
    max_loss: Option<String>,
    /// Lowest accuracy, in percent (90 = 90 %).
    #[arg(long)]
    min_accuracy: Option<String>,
}

pub fn run(a: PlanArgs) -> anyhow::Result<()> {
    let bandwidth = parse_bandwidth(&a.bandwidth)?;
    let rtt = parse_duration_ms(&a.rtt)?;
    let floor = accuracy_floor(a.max_loss.as_deref(), a.min_accuracy.as_deref())?;
    anyhow::ensure!(
        a.profile.is_some() || a.device_profile.is_some(),
        "give --profile P, or --device-profile P --edge-profile Q"
    );
    let profiles = load_profiles(
        a.profile.as_deref(),
        a.device_profile.as_deref(),
        a.edge_profile.as_deref(),
        a.slowdown,
    )
    .context("loading profiles")?;
    let comparison = Comparison::new(&profiles, LinkState::new(bandwidth, rtt), floor);
    println!("times      {}", describe_sides(&profiles));
    print!("{}", comparison.render_text());
    if comparison.chosen.is_none() {
        anyhow::bail!(
            "no plan meets the accuracy floor ({:.2} %)",
            comparison.min_accuracy * 100.0
        );
    }
    Ok(())
}
