//! `tandem report`: `report.md` with charts from a series and its profiles.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tandem_models::series::Series;
use tandem_planner::units::{accuracy_floor, parse_bandwidth, parse_duration_ms};
use tandem_report::{ChartFormat, ReportOptions, write_report};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Series directory (holds series.toml).
    #[arg(long)]
    series: PathBuf,
    #[command(flatten)]
    profiles: super::profiles_args::ProfileSource,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Round-trip time added to offloading plans (the paper's analysis has none).
    #[arg(long, default_value = "0ms")]
    rtt: String,
    /// Bandwidth of the latency-breakdown chart.
    #[arg(long, default_value = "1Mbit")]
    breakdown_bandwidth: String,
    /// Accuracy floor in points below the original (default: the series' pruning budget).
    #[arg(long, conflicts_with = "min_accuracy")]
    max_loss: Option<String>,
    /// Accuracy floor in percent.
    #[arg(long)]
    min_accuracy: Option<String>,
    /// Chart files: png, svg or both.
    #[arg(long, default_value = "png")]
    format: ChartFormat,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let series = Series::load(&a.series).with_context(|| format!("loading the series in {}", a.series.display()))?;
    let profiles = a.profiles.load()?;
    let floor = match (&a.max_loss, &a.min_accuracy) {
        (None, None) => None,
        (l, m) => Some(accuracy_floor(l.as_deref(), m.as_deref())?),
    };
    let opts = ReportOptions {
        rtt_ms: parse_duration_ms(&a.rtt)?,
        breakdown_bps: parse_bandwidth(&a.breakdown_bandwidth)?,
        floor,
        format: a.format,
        ..ReportOptions::default()
    };
    let files = write_report(&series, &profiles, &opts, &a.out)?;
    println!("wrote {} and {} charts", files.markdown.display(), files.charts.len());
    Ok(())
}
