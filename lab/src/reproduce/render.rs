//! The generated section of the results file: prose, the paper's tables (through
//! [`tandem_report::Table`]) and the measured rows; and splicing it into the file between markers.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use tandem_models::series::Series;
use tandem_planner::units::format_ratio;
use tandem_planner::{Baseline, Profiles};
use tandem_report::Table;
use tandem_report::compare::baseline_name;
use tandem_report::document::{best_step2, elements_table, step1_model};

use super::config::{ReproduceConfig, Slowdown};
use super::measure::{ADAPTIVE, Measured};

/// What the section says about how it was made.
pub struct Made<'a> {
    /// The config file as given on the command line.
    pub config: &'a Path,
    /// Stage wall times, seconds.
    pub timings: &'a [(&'a str, f64)],
    /// The date of the run, `YYYY-MM-DD` (UTC).
    pub date: &'a str,
    /// R, and how it was found.
    pub slowdown: Slowdown,
}

/// The markdown section for `cfg`.
pub fn render(
    cfg: &ReproduceConfig,
    made: &Made<'_>,
    series: &Series,
    profiles: &Profiles,
    measured: &[Measured],
) -> anyhow::Result<String> {
    let mut md = String::new();
    let original = series.original().context("the series has no original model")?;
    let m = &cfg.measure;
    let _ = writeln!(md, "### {}\n", cfg.title);
    let _ = writeln!(
        md,
        "`tandem reproduce --config {}` on {}, {} (UTC). Stage times: {}. Device emulated **{}×** slower than this machine in the runtime and in the planner{}; link shaped in-process, {} ms each way.\n",
        made.config.display(),
        profiles.edge().machine,
        made.date,
        made.timings.iter().map(|(s, t)| format!("{s} {t:.0} s")).collect::<Vec<_>>().join(", "),
        format_slowdown(made.slowdown.r),
        match made.slowdown.derived_from {
            Some((host, board)) => format!(
                " (this host ran the original model at {host:.1} GMAC/s on {} device thread(s); the board it stands for runs {board} GMAC/s)",
                profiles.device().threads
            ),
            None => String::new(),
        },
        m.delay_ms
    );
    let _ = write!(
        md,
        "Base: {} ×{}, {:.2} % test accuracy, {:.2} M MACs, protocol `{}`. ",
        series.base.arch,
        cfg.train.width_mult,
        original.accuracy * 100.0,
        original.macs as f64 / 1e6,
        series.preset
    );
    if let Some(s1) = step1_model(series) {
        let _ = write!(
            md,
            "Step 1 kept `{}`: {:.2} %, {:.2} M MACs — **computation {} lower**. ",
            s1.name,
            s1.accuracy * 100.0,
            s1.macs as f64 / 1e6,
            format_ratio(original.macs as f64 / s1.macs.max(1) as f64)
        );
    }
    let _ = writeln!(md, "Series: {} models, budget {:.1} points.\n", series.members.len(), series.budget * 100.0);
    if !cfg.reference.trim().is_empty() {
        let _ = writeln!(md, "Reference: {}\n", cfg.reference.trim());
    }
    let _ =
        writeln!(md, "**Elements at each split point** (the paper's main table; accuracies on the full test set):\n");
    md.push_str(&elements_table(series, original));
    let _ =
        writeln!(md, "\n**Transmission at the pool points, bytes on the wire per image** (frame header included):\n");
    md.push_str(&transmission_table(series, profiles));
    if !measured.is_empty() {
        let _ = writeln!(
            md,
            "\n**End-to-end latency measured on the runtime** (edge and device as two processes, {} s per run at the config's FPS). *Profiled* = the planner's price for the same plan and the nominal link, from the offline profiles alone. *Calibrated* = the price after online calibration: the device and edge compute corrections (scale and per-frame offset) the adaptive run at that bandwidth learned from its own frames, at its controller's final bandwidth and RTT estimate — for the fixed plans a prediction from measurements of *other* plans; for the adaptive row, the controller's own prediction for the plan it ended on:\n",
            m.duration_s
        );
        md.push_str(&measured_table(measured).to_string());
        let _ = writeln!(
            md,
            "\n**Measured ratios** (baseline mean ÷ 2-step adaptive mean; the paper: 4.81× end-to-end vs the unpruned best split):\n"
        );
        md.push_str(&ratios_table(&m.bandwidths_mbps, measured).to_string());
    }
    let _ = writeln!(
        md,
        "\nPredicted tables over a bandwidth sweep, charts and the coding table: [reproduce/{0}/report.md](reproduce/{0}/report.md).",
        cfg.name
    );
    Ok(md)
}

/// One row per measured run.
fn measured_table(measured: &[Measured]) -> Table {
    let mut t = Table::new([
        "bandwidth",
        "plan",
        "run as",
        "profiled ms",
        "calibrated ms",
        "measured mean ms",
        "p50 ms",
        "error, profiled",
        "error, calibrated",
        "results / captured",
    ]);
    let error = |predicted: f64, measured: f64| format!("{:+.0} %", (measured / predicted - 1.0) * 100.0);
    for r in measured {
        t.row([
            format!("{} Mbit/s", r.mbps),
            r.label.clone(),
            format!("`{}`", r.choice),
            format!("{:.2}", r.predicted_ms),
            r.calibrated_ms.map_or("–".into(), |c| format!("{c:.2}")),
            format!("{:.2}", r.run.mean_ms),
            format!("{:.2}", r.run.p50_ms),
            error(r.predicted_ms, r.run.mean_ms),
            r.calibrated_ms.map_or("–".into(), |c| error(c, r.run.mean_ms)),
            format!("{} / {}", r.run.results, r.run.captured),
        ]);
    }
    t
}

/// Baseline mean ÷ adaptive mean, per bandwidth.
fn ratios_table(bandwidths_mbps: &[f64], measured: &[Measured]) -> Table {
    let mut t = Table::new([
        "bandwidth",
        "vs unpruned best split (uncoded)",
        "vs unpruned best split (coded)",
        "vs input offload",
        "vs input offload, best lossy coding",
        "vs all on device",
    ]);
    for &mbps in bandwidths_mbps {
        let get = |label: &str| measured.iter().find(|r| r.mbps == mbps && r.label == label).map(|r| r.run.mean_ms);
        let Some(adaptive) = get(ADAPTIVE) else { continue };
        let cell = |b: Baseline| get(baseline_name(b)).map_or("–".into(), |v| format_ratio(v / adaptive));
        t.row([
            format!("{mbps} Mbit/s"),
            cell(Baseline::OriginalUncoded),
            cell(Baseline::OriginalCoded),
            cell(Baseline::InputOffload),
            cell(Baseline::InputOffloadLossy),
            cell(Baseline::LocalOnly),
        ]);
    }
    t
}

/// Bytes at each pool point for the original and the best step-2 member there, uncoded (`f32`) and
/// with the default coding (`q8-lz4`), and the ratios.
fn transmission_table(series: &Series, profiles: &Profiles) -> String {
    let mut t = Table::new([
        "point",
        "original f32",
        "original q8-lz4",
        "best step 2 f32",
        "best step 2 q8-lz4",
        "ratio, no coding",
        "ratio, with coding",
    ]);
    let best2 = best_step2(series);
    let bytes = |model: u32, point: usize, coding: &str| -> Option<f64> {
        profiles.model(model)?.points.get(point)?.coding(coding).map(|c| c.bytes)
    };
    let Some(original) = series.original() else { return t.to_string() };
    for (p, name) in series.points.iter().enumerate() {
        if !name.starts_with("pool") {
            continue;
        }
        let best = best2.get(p).copied().flatten();
        let cell = |v: Option<f64>| v.map_or("–".into(), |b| format!("{b:.0}"));
        let (o32, o8) = (bytes(original.id, p, "f32"), bytes(original.id, p, "q8-lz4"));
        let (b32, b8) = best.map_or((None, None), |m| (bytes(m.id, p, "f32"), bytes(m.id, p, "q8-lz4")));
        let ratio = |o: Option<f64>, b: Option<f64>| match (o, b) {
            (Some(o), Some(b)) if b > 0.0 => format_ratio(o / b),
            _ => "–".into(),
        };
        t.row([name.clone(), cell(o32), cell(o8), cell(b32), cell(b8), ratio(o32, b32), ratio(o32, b8)]);
    }
    t.to_string()
}

/// Replace (or append) this config's section of `results` and copy its report beside it.
pub fn publish(name: &str, report_dir: &Path, results: &Path, section: &str) -> anyhow::Result<()> {
    let docs = results.parent().unwrap_or(Path::new("."));
    let target = docs.join("reproduce").join(name);
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    for entry in std::fs::read_dir(report_dir).with_context(|| format!("reading {}", report_dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), target.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    let old = std::fs::read_to_string(results).with_context(|| format!("reading {}", results.display()))?;
    let new = splice(&old, name, section);
    let tmp = results.with_extension("md.tmp");
    std::fs::write(&tmp, new).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, results).with_context(|| format!("replacing {}", results.display()))?;
    Ok(())
}

/// `text` with the block between this name's markers replaced by `section` (appended, with its
/// markers, when absent).
pub fn splice(text: &str, name: &str, section: &str) -> String {
    let begin = format!("<!-- tandem reproduce {name}: generated, do not edit -->");
    let end = format!("<!-- end tandem reproduce {name} -->");
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{block}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    }
}

/// Today's date (UTC), `YYYY-MM-DD`, from the system clock.
pub fn today() -> String {
    date_of(time::OffsetDateTime::now_utc())
}

fn date_of(t: time::OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// R as the prose gives it: a config's round figure as written, a derived one to two decimals.
pub(super) fn format_slowdown(r: f64) -> String {
    if (r - r.round()).abs() < 1e-9 { format!("{r}") } else { format!("{r:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_its_own_block_and_appends_otherwise() {
        let first = splice("# Results\n\nintro\n", "vgg16", "table v1\n");
        assert!(first.starts_with("# Results\n\nintro\n\n<!-- tandem reproduce vgg16"));
        assert!(first.contains("table v1"));
        let second = splice(&first, "vgg16", "table v2");
        assert!(second.contains("table v2") && !second.contains("table v1"));
        assert_eq!(second.matches("<!-- tandem reproduce vgg16").count(), 1);
        let both = splice(&second, "alexnet", "alex");
        assert!(both.contains("table v2") && both.contains("alex"));
        // Text after a block survives a re-splice.
        let tail = format!("{both}\n## After\n");
        assert!(splice(&tail, "vgg16", "v3").contains("## After"));
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
        // 2026-11-26 00:00 UTC and the last second of a leap day.
        let at = |s: i64| date_of(time::OffsetDateTime::from_unix_timestamp(s).unwrap());
        assert_eq!(at(1_795_651_200), "2026-11-26");
        assert_eq!(at(1_709_251_199), "2024-02-29");
    }
}
