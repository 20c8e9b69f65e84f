//! Stage 5: end-to-end latency measured on the runtime — for each bandwidth, the adaptive
//! pipeline, the chosen 2-step plan and the paper's baselines each run as `tandem run` (a real
//! edge and device process pair) over a link shaped to that bandwidth. Each run's numbers come
//! from the device's typed report (`tandem run --summary-out`), kept in `DIR/runs/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tandem_actors::report::{RunReport, read_json};
use tandem_models::series::Series;
use tandem_planner::{AccuracyFloor, Baseline, Calibration, LinkState, Plan, Profiles, evaluate};
use tandem_report::Comparison;
use tandem_report::compare::baseline_name;

use super::config::ReproduceConfig;
use crate::Tandem;
use crate::exe::strings;

/// One measured run: a plan (or the adaptive controller) on one shaped bandwidth.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The shaped bandwidth, Mbit/s.
    pub mbps: f64,
    /// Which plan: "2-step, adaptive", "2-step plan", or a baseline's name.
    pub label: String,
    /// `MODEL:POINT:CODING` as run, or "controller".
    pub choice: String,
    /// The planner's price for the plan at the nominal link, from the offline profiles.
    pub predicted_ms: f64,
    /// The prediction with the calibration the adaptive run at this bandwidth learned, at its
    /// controller's final link estimate: for a fixed plan, calibration learned on *other* plans;
    /// for the adaptive row, the controller's own prediction for the plan it ended on.
    pub calibrated_ms: Option<f64>,
    /// What the run measured.
    pub run: RunStats,
}

/// What one `tandem run` reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Mean capture → result latency, ms.
    pub mean_ms: f64,
    /// Median capture → result latency, ms.
    pub p50_ms: f64,
    /// Frames captured.
    pub captured: u64,
    /// Results (edge and local).
    pub results: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// The adaptive run's controller at the end, if it ran one.
    pub controller: Option<ControllerEnd>,
}

/// The adaptive run's controller at the end: its link estimate, prediction and calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerEnd {
    /// The last bandwidth and RTT estimate.
    pub link: LinkState,
    /// Its prediction for the plan in force, ms.
    pub predicted_ms: f64,
    /// The calibration it priced with.
    pub calibration: Calibration,
}

impl From<&RunReport> for RunStats {
    fn from(r: &RunReport) -> Self {
        let s = &r.summary;
        // A controller that never planned has no prediction: no calibrated column then.
        let controller = r.controller.as_ref().and_then(|c| {
            let predicted_ms = c.predicted_ms.filter(|p| p.is_finite())?;
            Some(ControllerEnd {
                link: LinkState::new(c.bandwidth_bps?, c.rtt_ms?),
                predicted_ms,
                calibration: c.calibration,
            })
        });
        Self {
            mean_ms: s.stats.e2e_ms.mean,
            p50_ms: s.stats.e2e_ms.p50,
            captured: s.captured,
            results: s.results_total(),
            dropped: s.dropped_total(),
            controller,
        }
    }
}

/// Row label of the adaptive run.
pub const ADAPTIVE: &str = "2-step, adaptive (controller)";
/// Row label of the chosen plan run fixed.
pub const CHOSEN: &str = "2-step plan (fixed)";

/// `MODEL:POINT:CODING`, or `MODEL:end` for all on the device.
pub fn plan_arg(p: &Plan) -> String {
    match &p.coding {
        Some(c) => format!("{}:{}:{}", p.model_id, p.point_name, c),
        None => format!("{}:end", p.model_id),
    }
}

/// Run every plan at every bandwidth of the config.
pub fn measure(
    tandem: &Tandem,
    cfg: &ReproduceConfig,
    dir: &Path,
    series: &Series,
    profiles: &Profiles,
    profile_flags: &[String],
    slowdown: f64,
) -> anyhow::Result<Vec<Measured>> {
    let m = &cfg.measure;
    let links = dir.join("links");
    let runs = dir.join("runs");
    for d in [&links, &runs] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let floor = AccuracyFloor::MaxLoss(series.budget);
    let mut rows = Vec::new();
    for &mbps in &m.bandwidths_mbps {
        let trace = links.join(format!("const-{mbps}mbit.toml"));
        std::fs::write(&trace, constant_trace(mbps, m.delay_ms))
            .with_context(|| format!("writing {}", trace.display()))?;
        let c = Comparison::new(profiles, LinkState::new(mbps * 1e6, 2.0 * m.delay_ms as f64), floor);
        let Some(chosen) = c.chosen.clone() else {
            println!("  {mbps} Mbit/s: no plan meets the accuracy floor; skipped");
            continue;
        };
        let mut plans: Vec<(String, Plan)> = vec![(CHOSEN.to_string(), chosen.clone())];
        for b in Baseline::ALL {
            if let Some(p) = c.baseline(b) {
                plans.push((baseline_name(b).to_string(), p.clone()));
            }
        }
        let duration = humantime::format_duration(Duration::from_secs_f64(m.duration_s)).to_string();
        let common = strings(&[
            "run",
            "--config",
            &m.run_config.display().to_string(),
            "--series",
            &dir.join("series").display().to_string(),
            "--trace",
            &trace.display().to_string(),
            "--duration",
            &duration,
        ]);
        let mut adaptive = common.clone();
        adaptive.extend(profile_flags.iter().cloned());
        adaptive.extend(strings(&["--floor", &format!("loss={}", series.budget)]));
        let stats = run_measured(tandem, &adaptive, &runs.join(format!("{mbps}mbit-adaptive.json")))?;
        let end = stats.controller.clone();
        println!(
            "  {mbps:>6} Mbit/s  {ADAPTIVE:<34} predicted {:>8.2} ms  measured {:>8.2} ms  ({end:?})",
            chosen.predicted.total_ms, stats.mean_ms
        );
        let priced = end.as_ref().map(|e| (profiles.calibrated(e.calibration), e.link));
        let calibrated = |p: &Plan| {
            let (profiles, link) = priced.as_ref()?;
            evaluate(profiles, p.model_id, p.point, p.coding.as_deref(), link).ok().map(|c| c.predicted.total_ms)
        };
        rows.push(Measured {
            mbps,
            label: ADAPTIVE.into(),
            choice: "controller".into(),
            predicted_ms: chosen.predicted.total_ms,
            calibrated_ms: end.as_ref().map(|e| e.predicted_ms),
            run: stats,
        });
        // The same choice is run once per bandwidth, whatever rows share it.
        let mut seen: BTreeMap<String, RunStats> = BTreeMap::new();
        for (label, p) in plans {
            let choice = plan_arg(&p);
            let stats = match seen.get(&choice) {
                Some(s) => s.clone(),
                None => {
                    let mut fixed = common.clone();
                    fixed.extend(strings(&["--fixed-plan", "--plan", &choice, "--slowdown", &slowdown.to_string()]));
                    let out = runs.join(format!("{mbps}mbit-{}.json", choice.replace(':', "_")));
                    let s = run_measured(tandem, &fixed, &out)?;
                    seen.insert(choice.clone(), s.clone());
                    s
                }
            };
            println!(
                "  {mbps:>6} Mbit/s  {label:<34} predicted {:>8.2} ms  measured {:>8.2} ms  ({choice})",
                p.predicted.total_ms, stats.mean_ms
            );
            rows.push(Measured {
                mbps,
                label,
                choice,
                predicted_ms: p.predicted.total_ms,
                calibrated_ms: calibrated(&p),
                run: stats,
            });
        }
    }
    Ok(rows)
}

/// A constant-rate link with `delay_ms` each way (the shaper's trace format).
pub fn constant_trace(mbps: f64, delay_ms: u64) -> String {
    format!(
        "# Written by `tandem reproduce`: a constant {mbps} Mbit/s link, {delay_ms} ms each way.\nbucket_bytes = 0\ndelay_ms = {delay_ms}\nreturn_delay_ms = {delay_ms}\n\n[[step]]\nat_ms = 0\nmbps = {mbps:?}\n"
    )
}

/// Run `tandem run ARGS… --summary-out OUT` quietly and read the device's report from OUT.
fn run_measured(tandem: &Tandem, args: &[String], out: &PathBuf) -> anyhow::Result<RunStats> {
    let mut args = args.to_vec();
    args.extend(strings(&["--summary-out", &out.display().to_string()]));
    // A report left by an earlier run must not stand in for this one.
    match std::fs::remove_file(out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context(format!("removing {}", out.display())));
        }
        _ => {}
    }
    tandem.quiet(&args)?;
    let report: RunReport =
        read_json(out).with_context(|| format!("reading the summary of `tandem {}`", args.join(" ")))?;
    // A run whose camera captured nothing measured nothing: a row of zeros would read as a
    // measurement. (A plan too slow to answer any captured frame stays a row: its results /
    // captured cell shows 0 / N.)
    anyhow::ensure!(
        report.summary.captured > 0,
        "`tandem {}` captured no frame; is measure.duration_s long enough?",
        args.join(" ")
    );
    Ok(RunStats::from(&report))
}

#[cfg(test)]
mod tests {
    use tandem_actors::ledger::{Percentiles, Summary, SummaryStats};
    use tandem_actors::report::ControllerReport;

    use super::*;

    #[test]
    fn run_stats_come_from_the_device_report() {
        let e2e = Percentiles { n: 178, mean: 26.623, p50: 25.912, p90: 32.274, p99: 44.924, max: 89.978 };
        let summary = Summary {
            captured: 180,
            edge: 170,
            local: 8,
            dropped: BTreeMap::from([(tandem_actors::ledger::DropReason::Deadline, 2)]),
            stats: SummaryStats { e2e_ms: e2e, ..SummaryStats::default() },
            ..Summary::default()
        };
        let fixed = RunReport { summary, controller: None };
        assert_eq!(
            RunStats::from(&fixed),
            RunStats { mean_ms: 26.623, p50_ms: 25.912, captured: 180, results: 178, dropped: 2, controller: None }
        );

        let calibration = Calibration::scales(1.412, 2.0, 1.1);
        let controller = ControllerReport {
            swaps_applied: 2,
            swaps_failed: 0,
            probes: 3,
            probe_bytes: 15_200,
            bandwidth_bps: Some(982_000.0),
            rtt_ms: Some(4.61),
            predicted_ms: Some(12.40),
            calibration,
            calibrated_frames: 231,
            swaps: Vec::new(),
        };
        let adaptive = RunReport { controller: Some(controller.clone()), ..fixed.clone() };
        let c = RunStats::from(&adaptive).controller.expect("controller");
        assert_eq!(c, ControllerEnd { link: LinkState::new(982_000.0, 4.61), predicted_ms: 12.40, calibration });
        // A controller that never planned: no calibrated column then, but no error.
        let never = RunReport { controller: Some(ControllerReport { predicted_ms: None, ..controller }), ..fixed };
        assert_eq!(RunStats::from(&never).controller, None);
    }
}
