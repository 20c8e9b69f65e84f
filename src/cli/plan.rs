//! `tandem plan`: the best (model, split, coding) for a link and an accuracy floor, next to the
//! baselines, with the ratios against the unpruned best split.

use clap::{ArgGroup, Args};
use tandem_planner::LinkState;
use tandem_planner::units::{accuracy_floor, parse_bandwidth, parse_duration_ms};
use tandem_report::{Comparison, describe_sides};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("floor").required(true).args(["max_loss", "min_accuracy"])))]
pub struct PlanArgs {
    #[command(flatten)]
    profiles: super::profiles_args::ProfileSource,
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
    let profiles = a.profiles.load()?;
    let comparison = Comparison::new(&profiles, LinkState::new(bandwidth, rtt), floor);
    println!("times      {}", describe_sides(&profiles));
    print!("{}", comparison.render_text());
    if comparison.chosen.is_none() {
        anyhow::bail!("no plan meets the accuracy floor ({:.2} %)", comparison.min_accuracy * 100.0);
    }
    Ok(())
}
