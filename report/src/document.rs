//! `report.md` and its charts from a series manifest and its profiles.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tandem_models::series::{Member, MemberKind, Series};
use tandem_planner::{AccuracyFloor, Baseline, CodingClass, LinkState, Plan, Profiles, evaluate};

use crate::charts::{Chart, ChartFormat, GroupedBars, LogLines, StackedBars, render};
use crate::compare::describe_sides;
use crate::compare::{
    Comparison, PAPER_COMPUTATION, PAPER_END_TO_END, PAPER_TRANSMISSION, Ratios, baseline_name, ratio,
};
use crate::error::{ReportError, Result};
use crate::regimes::{needs_table, regime_map, regime_table, split_needs};
use crate::table::Table;
use tandem_planner::units::{format_bandwidth, format_bytes, format_ratio};

/// What the report prices and how it draws.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Round-trip time in ms added to every offloading plan. Default 0 (the paper's analysis
    /// has none).
    pub rtt_ms: f64,
    /// Accuracy floor; `None` = the series' pruning budget below the original (the paper's).
    pub floor: Option<AccuracyFloor>,
    /// Bandwidth (bit/s) of the latency-breakdown chart. Default 1 Mbit/s.
    pub breakdown_bps: f64,
    /// Bandwidths (bit/s) of the headline table. Default 1 and 10 Mbit/s.
    pub headline_bps: Vec<f64>,
    /// Sweep of the latency-vs-bandwidth chart: from, to (bit/s), and samples (log-spaced).
    /// Default 0.1 to 100 Mbit/s, 31 samples.
    pub sweep: (f64, f64, usize),
    /// Chart files. Default PNG.
    pub format: ChartFormat,
    /// Chart size in pixels. Default 800 × 500.
    pub size: (u32, u32),
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            rtt_ms: 0.0,
            floor: None,
            breakdown_bps: 1e6,
            headline_bps: vec![1e6, 1e7],
            sweep: (1e5, 1e8, 31),
            format: ChartFormat::Png,
            size: (800, 500),
        }
    }
}

impl ReportOptions {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ReportError::Options(m));
        let (from, to, n) = self.sweep;
        if !(from > 0.0 && to > from && to.is_finite() && (2..=1000).contains(&n)) {
            return bad(format!("sweep must be 0 < from < to with 2..=1000 samples, got {:?}", self.sweep));
        }
        if !(self.rtt_ms.is_finite() && self.rtt_ms >= 0.0) {
            return bad(format!("rtt must be finite and non-negative, got {}", self.rtt_ms));
        }
        if !(self.breakdown_bps.is_finite() && self.breakdown_bps > 0.0)
            || self.headline_bps.iter().any(|b| !(b.is_finite() && *b > 0.0))
        {
            return bad("bandwidths must be positive".into());
        }
        if self.size.0 < 200 || self.size.1 < 150 || self.size.0 > 4000 || self.size.1 > 4000 {
            return bad(format!("chart size {:?} out of 200×150 ..= 4000×4000", self.size));
        }
        Ok(())
    }

    /// The regime map's bandwidths: 1 and 3 of each decade within the sweep (0.1, 0.3, 1, …,
    /// 100 Mbit/s by default).
    pub fn regime_bps(&self) -> Vec<f64> {
        let (from, to, _) = self.sweep;
        let decades = from.log10().floor() as i32..=to.log10().ceil() as i32;
        decades
            .flat_map(|d| [1.0, 3.0].map(|m| m * 10f64.powi(d)))
            .filter(|b| *b >= from * (1.0 - 1e-9) && *b <= to * (1.0 + 1e-9))
            .collect()
    }

    /// The sweep's bandwidths, log-spaced.
    pub fn sweep_bps(&self) -> Vec<f64> {
        let (from, to, n) = self.sweep;
        (0..n).map(|i| from * (to / from).powf(i as f64 / (n - 1) as f64)).collect()
    }
}

/// Device slowdowns (relative to the profiles') of the report's regime map.
pub const REGIME_FACTORS: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// What [`write_report`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportFiles {
    /// `report.md`.
    pub markdown: PathBuf,
    /// Every chart file.
    pub charts: Vec<PathBuf>,
}

/// The step-1 model step 2 started from: the manifest's `step1_kept`, else the last step-1
/// member within budget.
pub fn step1_model(series: &Series) -> Option<&Member> {
    series
        .step1_final()
        .or_else(|| series.members.iter().rev().find(|m| matches!(m.kind, MemberKind::Step1 { .. }) && m.within_budget))
}

/// At each point, the step-2 member within budget with the fewest elements there.
pub fn best_step2(series: &Series) -> Vec<Option<&Member>> {
    (0..series.points.len())
        .map(|p| {
            series
                .members
                .iter()
                .filter(|m| matches!(m.kind, MemberKind::Step2 { .. }) && m.within_budget)
                .filter(|m| m.elements.get(p).is_some())
                .min_by_key(|m| (m.elements[p], m.id))
        })
        .collect()
}

/// The paper's main figure: elements per image at each split point (input and end excluded)
/// for the original, step-1 and best step-2 models.
pub fn elements_chart(series: &Series) -> GroupedBars {
    let n = series.points.len();
    let inner: Vec<usize> = (1..n.saturating_sub(1)).collect();
    let at = |m: Option<&Member>, p: usize| m.and_then(|m| m.elements.get(p)).map(|&e| e as f64);
    let best = best_step2(series);
    GroupedBars {
        title: "Elements sent at each split point (per image)".into(),
        y_desc: "elements (log scale)".into(),
        categories: inner.iter().map(|&p| series.points[p].clone()).collect(),
        groups: vec![
            ("original".into(), inner.iter().map(|&p| at(series.original(), p)).collect()),
            ("step 1".into(), inner.iter().map(|&p| at(step1_model(series), p)).collect()),
            ("best step 2 within budget".into(), inner.iter().map(|&p| at(best[p], p)).collect()),
        ],
    }
}

/// Stage-by-stage latency of the original model at every point with the raw `f32` coding.
pub fn breakdown_chart(profiles: &Profiles, link: &LinkState, emulated: &str) -> StackedBars {
    let original = profiles.original();
    let plans: Vec<Option<Plan>> = original
        .points
        .iter()
        .map(|p| {
            let coding = if p.is_end() {
                None
            } else {
                p.codings.iter().find(|c| c.class == CodingClass::Raw).map(|c| c.coding.as_str())
            };
            evaluate(profiles, original.model_id, p.point, coding, link).ok()
        })
        .collect();
    let stage = |name: &str, f: fn(&Plan) -> f64| {
        (name.to_string(), plans.iter().map(|p| p.as_ref().map(f).unwrap_or(0.0)).collect())
    };
    StackedBars {
        title: format!("Original model, uncoded, at {}{emulated}", format_bandwidth(link.bandwidth_bps)),
        y_desc: "latency per image (ms)".into(),
        categories: original.points.iter().map(|p| p.name.clone()).collect(),
        stacks: vec![
            stage("device compute", |p| p.predicted.device_ms),
            stage("encode", |p| p.predicted.encode_ms),
            stage("transfer", |p| p.predicted.transfer_ms),
            stage("RTT", |p| p.predicted.rtt_ms),
            stage("decode", |p| p.predicted.decode_ms),
            stage("edge compute", |p| p.predicted.edge_ms),
            stage("result", |p| p.predicted.result_ms),
        ],
    }
}

/// The comparisons at every sweep bandwidth.
pub fn sweep(profiles: &Profiles, bandwidths: &[f64], rtt_ms: f64, floor: AccuracyFloor) -> Vec<Comparison> {
    bandwidths.iter().map(|&b| Comparison::new(profiles, LinkState::new(b, rtt_ms), floor)).collect()
}

/// End-to-end latency against bandwidth for 2-step and every baseline.
pub fn sweep_chart(comparisons: &[Comparison], emulated: &str) -> LogLines {
    let total = |p: Option<&Plan>| p.map(|p| p.predicted.total_ms);
    let mut lines =
        vec![("2-step (pruned series)".to_string(), comparisons.iter().map(|c| total(c.chosen.as_ref())).collect())];
    for b in Baseline::ALL {
        lines.push((baseline_name(b).to_string(), comparisons.iter().map(|c| total(c.baseline(b))).collect()));
    }
    LogLines {
        title: format!("End-to-end latency vs bandwidth{emulated}"),
        x_desc: "bandwidth (Mbit/s, log scale)".into(),
        y_desc: "latency per image (ms, log scale)".into(),
        x: comparisons.iter().map(|c| c.link.bandwidth_bps / 1e6).collect(),
        lines,
    }
}

/// MACs the device runs for `plan` (head up to its point), from the series manifest.
pub fn device_macs(series: &Series, plan: &Plan) -> Option<u64> {
    let member = series.member(plan.model_id).ok()?;
    let spec = series.spec_of(member).ok()?;
    Some(spec.macs_between(0, usize::from(plan.point)))
}

fn check_consistency(series: &Series, profiles: &Profiles) -> Result<()> {
    for m in profiles.models() {
        let member = series.member(m.model_id).map_err(|_| {
            ReportError::Mismatch(format!("profiled model {} ({}) is not in the series", m.model_id, m.name))
        })?;
        if member.name != m.name {
            return Err(ReportError::Mismatch(format!(
                "model {}: series calls it {:?}, the profile {:?}",
                m.model_id, member.name, m.name
            )));
        }
        let names: Vec<&str> = m.points.iter().map(|p| p.name.as_str()).collect();
        let series_names: Vec<&str> = series.points.iter().map(String::as_str).collect();
        if names != series_names {
            return Err(ReportError::Mismatch(format!(
                "model {}: profile points {names:?}, series points {series_names:?}",
                m.name
            )));
        }
    }
    let original = profiles.original();
    if series.original().map(|m| m.id) != Some(original.model_id) {
        return Err(ReportError::Mismatch(format!(
            "the profiles' original model is {} ({}), not the series'",
            original.model_id, original.name
        )));
    }
    Ok(())
}

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

fn plan_cell(p: Option<&Plan>) -> String {
    match p {
        None => "infeasible".into(),
        Some(p) => format!("{} @ {} / {}", p.model_name, p.point_name, p.coding.as_deref().unwrap_or("local")),
    }
}

fn ms_cell(p: Option<&Plan>) -> String {
    p.map(|p| format!("{:.2}", p.predicted.total_ms)).unwrap_or_else(|| "–".into())
}

/// The paper's main table as markdown: elements at every inner split point for the original,
/// the kept step-1 model and the best step-2 member within budget (with its accuracy).
pub fn elements_table(series: &Series, original: &Member) -> String {
    let best2 = best_step2(series);
    let s1 = step1_model(series);
    let mut t = Table::new(["point", "original", "step 1", "best step 2 within budget", "its accuracy"]);
    for (p, best) in best2.iter().enumerate().take(series.points.len().saturating_sub(1)).skip(1) {
        let e =
            |m: Option<&Member>| m.and_then(|m| m.elements.get(p)).map(|e| e.to_string()).unwrap_or_else(|| "–".into());
        t.row([
            series.points[p].clone(),
            e(Some(original)),
            e(s1),
            format!("{} {}", e(*best), best.map(|m| format!("(`{}`)", m.name)).unwrap_or_default()),
            best.map(|m| pct(m.accuracy)).unwrap_or_else(|| "–".into()),
        ]);
    }
    t.to_string()
}

/// Write `report.md` and its charts into `out_dir` (created if needed).
pub fn write_report(series: &Series, profiles: &Profiles, opts: &ReportOptions, out_dir: &Path) -> Result<ReportFiles> {
    opts.validate()?;
    check_consistency(series, profiles)?;
    std::fs::create_dir_all(out_dir).map_err(|e| ReportError::io(out_dir, e))?;
    let floor = opts.floor.unwrap_or(AccuracyFloor::MaxLoss(series.budget));
    let emulated = match profiles.device().emulated_slowdown {
        Some(r) => format!(" (device emulated: {r}× {})", short_machine(&profiles.device().machine)),
        None => String::new(),
    };
    let ext = opts.format.shown_extension();
    let mut charts = Vec::new();

    // Charts.
    charts.extend(render(&Chart::Grouped(elements_chart(series)), out_dir, "elements", opts.format, opts.size)?);
    let breakdown_link = LinkState::new(opts.breakdown_bps, opts.rtt_ms);
    charts.extend(render(
        &Chart::Stacked(breakdown_chart(profiles, &breakdown_link, &emulated)),
        out_dir,
        "breakdown_original",
        opts.format,
        opts.size,
    )?);
    let sweep_bps = opts.sweep_bps();
    let swept = sweep(profiles, &sweep_bps, opts.rtt_ms, floor);
    charts.extend(render(
        &Chart::Lines(sweep_chart(&swept, &emulated)),
        out_dir,
        "latency_vs_bandwidth",
        opts.format,
        opts.size,
    )?);

    // Text.
    let mut md = String::new();
    let original = series.original().ok_or_else(|| ReportError::Mismatch("the series has no original model".into()))?;
    let _ = writeln!(md, "# tandem report: {} on {}\n", series.base.arch, series.dataset);
    let count = |f: fn(&MemberKind) -> bool| series.members.iter().filter(|m| f(&m.kind)).count();
    let _ = writeln!(
        md,
        "Series: {} members ({} step-1, {} step-2; {} profiled), preset `{}`, pruning budget {:.2} points. Original: {} accuracy, {:.2} M MACs.",
        series.members.len(),
        count(|k| matches!(k, MemberKind::Step1 { .. })),
        count(|k| matches!(k, MemberKind::Step2 { .. })),
        profiles.models().len(),
        series.preset,
        series.budget * 100.0,
        pct(original.accuracy),
        original.macs as f64 / 1e6
    );
    if let Some(s1) = step1_model(series) {
        let _ = writeln!(
            md,
            "Step 1 kept `{}`: {} accuracy, {:.2} M MACs ({} fewer).",
            s1.name,
            pct(s1.accuracy),
            s1.macs as f64 / 1e6,
            format_ratio(ratio(original.macs as f64, s1.macs as f64))
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "Times: {}.", describe_sides(profiles));
    if let Some(r) = profiles.device().emulated_slowdown {
        let _ = writeln!(
            md,
            "\n**The device is emulated**: its times are {r}× those measured on the machine named above (the paper emulates a Snapdragon 835 as 10× a Xeon), not measured on a device."
        );
    }
    let floor_text = match floor {
        AccuracyFloor::MaxLoss(l) => {
            format!("at most {:.2} points below the original ({})", l * 100.0, pct(floor.min_accuracy(profiles)))
        }
        AccuracyFloor::Absolute(a) => format!("at least {}", pct(a)),
    };
    let _ = writeln!(
        md,
        "\nLatency model: device compute + encode + bytes / bandwidth + RTT ({} ms) + decode + edge compute + result message. Accuracy floor: {floor_text}; every baseline obeys it too.\n",
        opts.rtt_ms
    );

    // Headline ratios.
    let _ = writeln!(md, "## Headline: 2-step vs the unpruned model at its best split (uncoded)\n");
    let _ = writeln!(
        md,
        "Ratios are unpruned ÷ 2-step (higher is better). \"Computation\" is what the device computes before the split.\n"
    );
    let mut table = Table::new([
        "setting",
        "transmission",
        "device computation (time)",
        "device computation (MACs)",
        "end-to-end latency",
    ]);
    table.row([
        "paper (VGG-16, CIFAR-10; \"up to\")".to_string(),
        format_ratio(PAPER_TRANSMISSION),
        "–".into(),
        format_ratio(PAPER_COMPUTATION),
        format_ratio(PAPER_END_TO_END),
    ]);
    let macs_ratio = |c: &Comparison| -> Option<f64> {
        let (p, r) = (c.chosen.as_ref()?, c.reference()?);
        Some(ratio(device_macs(series, r)? as f64, device_macs(series, p)? as f64))
    };
    let headline: Vec<Comparison> = sweep(profiles, &opts.headline_bps, opts.rtt_ms, floor);
    for c in &headline {
        let r = c.ratios();
        let f = |g: fn(&Ratios) -> f64| r.as_ref().map(|r| format_ratio(g(r))).unwrap_or_else(|| "–".into());
        table.row([
            format_bandwidth(c.link.bandwidth_bps),
            f(|r| r.transmission),
            f(|r| r.device_compute),
            macs_ratio(c).map(format_ratio).unwrap_or_else(|| "–".into()),
            f(|r| r.end_to_end),
        ]);
    }
    let best = |g: fn(&Ratios) -> f64| {
        swept
            .iter()
            .filter_map(|c| c.ratios())
            .map(|r| g(&r))
            .filter(|v| v.is_finite())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let best_macs = swept
        .iter()
        .filter_map(macs_ratio)
        .filter(|v| v.is_finite())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let cell = |v: Option<f64>| v.map(format_ratio).unwrap_or_else(|| "–".into());
    table.row([
        format!("best finite, over {}–{}", format_bandwidth(opts.sweep.0), format_bandwidth(opts.sweep.1)),
        cell(best(|r| r.transmission)),
        cell(best(|r| r.device_compute)),
        cell(best_macs),
        cell(best(|r| r.end_to_end)),
    ]);
    let _ = writeln!(md, "{table}");
    let _ = writeln!(
        md,
        "Ratios are ∞ when the 2-step plan sends nothing (all local) or computes nothing on the device (offloads the input); the last row is the largest finite ratio of each column over the bandwidth sweep (each column on its own, like the paper's \"up to\").\n"
    );
    for c in &headline {
        let _ =
            writeln!(md, "Plans at {}:\n\n```text\n{}```\n", format_bandwidth(c.link.bandwidth_bps), c.render_text());
    }

    // Elements.
    let _ = writeln!(md, "## Elements sent at each split point\n");
    let _ = writeln!(md, "![elements per point](elements.{ext})\n");
    md.push_str(&elements_table(series, original));
    md.push('\n');

    // Breakdown.
    let _ = writeln!(md, "## Where the time goes: the original model at {}\n", format_bandwidth(opts.breakdown_bps));
    let _ = writeln!(md, "![latency breakdown](breakdown_original.{ext})\n");

    // Sweep.
    let _ = writeln!(md, "## End-to-end latency vs bandwidth\n");
    let _ = writeln!(md, "![latency vs bandwidth](latency_vs_bandwidth.{ext})\n");
    let mut table = Table::new(
        ["bandwidth".to_string(), "2-step plan".into(), "2-step ms".into()]
            .into_iter()
            .chain(Baseline::ALL.iter().map(|&b| format!("{} ms", baseline_name(b)))),
    );
    let step = (swept.len() / 6).max(1);
    for c in swept.iter().step_by(step).chain(swept.last().filter(|_| !(swept.len() - 1).is_multiple_of(step))) {
        table.row(
            [format_bandwidth(c.link.bandwidth_bps), plan_cell(c.chosen.as_ref()), ms_cell(c.chosen.as_ref())]
                .into_iter()
                .chain(Baseline::ALL.iter().map(|&b| ms_cell(c.baseline(b)))),
        );
    }
    let _ = writeln!(md, "{table}");

    // Regimes over device speed.
    let _ = writeln!(md, "## Where a mid-network split would win: device speed × bandwidth\n");
    let _ = writeln!(
        md,
        "The planner's choice with the device made ×k slower still than the profiles' (a board k times weaker), at RTT {} ms and the same floor. A split cell names the point and the member, and in brackets the unpruned model's best plan there (any point and coding, JPEG input included) ÷ the chosen one. Predicted from the profiles, not measured.\n",
        opts.rtt_ms
    );
    let rows = regime_map(profiles, floor, opts.rtt_ms, &REGIME_FACTORS, &opts.regime_bps())
        .map_err(|source| ReportError::Profile { context: "slowing the device for the regime map".into(), source })?;
    let _ = writeln!(md, "{}", regime_table(&rows));
    let _ = writeln!(
        md,
        "What a split at each point would need to win on the profiles' device (×1), at each bandwidth: the largest request (frame header included) its fastest plan could send and still beat the chosen plan, and how many times smaller than its best coding today that is; `compute A ≥ B ms` where its head, tail, coding, round trip and result message alone (A) already take at least as long as the chosen plan (B), so that no coding helps.\n"
    );
    let _ = writeln!(md, "{}", needs_table(&split_needs(profiles, floor, opts.rtt_ms, &opts.regime_bps())));

    // Coding accuracy (if measured).
    let orig = profiles.original();
    let measured = orig.points.iter().flat_map(|p| &p.codings).any(|c| c.accuracy.is_some());
    let _ = writeln!(md, "## Coding of the original model's tensors\n");
    let _ = writeln!(
        md,
        "Bytes on the wire per image (frame header included){}.\n",
        if measured {
            " and accuracy with each lossy coding"
        } else {
            "; accuracy with lossy codings was not measured (profile with --accuracy-images)"
        }
    );
    let codings: Vec<&str> =
        orig.points.first().map(|p| p.codings.iter().map(|c| c.coding.as_str()).collect()).unwrap_or_default();
    let mut table = Table::new(std::iter::once("point").chain(codings.iter().copied()));
    for p in orig.points.iter().filter(|p| !p.is_end()) {
        let cells = codings.iter().map(|name| match p.coding(name) {
            Some(c) => match c.accuracy {
                Some(a) => format!("{} ({})", format_bytes(c.bytes), pct(a)),
                None => format_bytes(c.bytes),
            },
            None => "–".into(),
        });
        table.row(std::iter::once(p.name.clone()).chain(cells));
    }
    md.push_str(&table.to_string());

    let markdown = out_dir.join("report.md");
    std::fs::write(&markdown, md).map_err(|e| ReportError::io(&markdown, e))?;
    Ok(ReportFiles { markdown, charts })
}

fn short_machine(m: &str) -> String {
    m.split(" (").next().unwrap_or(m).to_string()
}
