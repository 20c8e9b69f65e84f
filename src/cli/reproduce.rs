//! `tandem reproduce`: the paper's protocol end to end, from one config, into `docs/RESULTS.md`.
//!
//! train → 2-step prune → profile (device and edge) → report (predicted tables and charts) →
//! **measured** end-to-end latency on the runtime: for each bandwidth of the config, the adaptive
//! pipeline, the 2-step plan and the paper's baselines each run as a real edge and device process
//! pair (`tandem run`) over a link shaped to that bandwidth, with the device emulated R times slower
//! in the runtime and in the planner's prices. Every stage is a `tandem` subcommand whose output is
//! cached in the run's directory, so an interrupted reproduction resumes and a finished one only
//! re-measures. The generated section is spliced into a results file between markers, replacing
//! the previous run's, so the numbers in RESULTS.md always come from the command that names them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::demo::tandem;
use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tandem_models::series::Series;
use tandem_report::Comparison;
use tandem_report::document::{best_step2, elements_table, step1_model};
use tandem_report::planner::{AccuracyFloor, Baseline, Calibration, LinkState, Plan, Profiles, evaluate};
use tandem_report::units::format_ratio;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Reproduction config (configs/paper-vgg16.toml, configs/paper-alexnet.toml).
    #[arg(long)]
    config: PathBuf,
    /// Directory for every stage's output [default: artifacts/reproduce/NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Splice the generated section into this markdown file (e.g. docs/RESULTS.md), replacing the
    /// previous one for this config, and copy the report next to it (under reproduce/NAME/).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Stop after the report: no runtime measurement.
    #[arg(long)]
    no_measure: bool,
    #[command(flatten)]
    compute: super::device_args::ComputeArgs,
}

/// `configs/paper-*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReproduceConfig {
    /// Short name: the output directory and the marker in the results file.
    name: String,
    /// Heading of the generated section.
    title: String,
    train: TrainSection,
    prune: PruneSection,
    #[serde(default)]
    profile: ProfileSection,
    #[serde(default)]
    measure: MeasureSection,
    /// Published numbers to print beside ours (markdown).
    #[serde(default)]
    reference: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TrainSection {
    model: String,
    width_mult: f64,
    epochs: f64,
    #[serde(default = "default_seed")]
    seed: u64,
    /// Train on only the first N training images (smoke runs and tests).
    #[serde(default)]
    limit_train: Option<u64>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PruneSection {
    /// A pruning config file (configs/prune.toml = the fast protocol) ...
    config: Option<PathBuf>,
    /// ... or a named preset (`paper` = the authors' protocol; GPU only).
    preset: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct ProfileSection {
    /// Test images coded for bytes and coding time.
    images: usize,
    /// Test images for the accuracy of lossy codings (edge profile).
    accuracy_images: usize,
}

impl Default for ProfileSection {
    fn default() -> Self {
        ProfileSection { images: 32, accuracy_images: 200 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MeasureSection {
    /// Device emulated this many times slower than this machine (the paper: 10).
    slowdown: f64,
    /// One-way delay of the shaped link, each direction, ms (RTT = twice this).
    delay_ms: u64,
    /// Bandwidths measured on the runtime, Mbit/s.
    bandwidths_mbps: Vec<f64>,
    /// Length of each measured run, seconds.
    duration_s: f64,
    /// `tandem run` config (camera, queues, edge settings).
    run_config: PathBuf,
}

impl Default for MeasureSection {
    fn default() -> Self {
        MeasureSection {
            slowdown: 10.0,
            delay_ms: 2,
            bandwidths_mbps: vec![1.0, 5.0, 20.0],
            duration_s: 8.0,
            run_config: "configs/demo.toml".into(),
        }
    }
}

impl ReproduceConfig {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let c: ReproduceConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            !c.name.is_empty() && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
            "{}: name must be a non-empty [A-Za-z0-9_-] word, got {:?}",
            path.display(),
            c.name
        );
        anyhow::ensure!(
            c.prune.config.is_some() != c.prune.preset.is_some(),
            "{}: [prune] needs exactly one of `config` or `preset`",
            path.display()
        );
        anyhow::ensure!(
            c.train.width_mult > 0.0 && c.train.width_mult <= 4.0 && c.train.epochs > 0.0,
            "{}: [train] width_mult must be in (0, 4] and epochs positive",
            path.display()
        );
        let m = &c.measure;
        anyhow::ensure!(
            (1.0..=1000.0).contains(&m.slowdown),
            "{}: measure.slowdown must be in [1, 1000]",
            path.display()
        );
        anyhow::ensure!(
            m.bandwidths_mbps.iter().all(|b| b.is_finite() && *b >= 0.01 && *b <= 10_000.0),
            "{}: measure.bandwidths_mbps must be in [0.01, 10000]",
            path.display()
        );
        anyhow::ensure!(
            m.duration_s >= 1.0 && m.duration_s <= 3600.0,
            "{}: measure.duration_s must be in [1, 3600]",
            path.display()
        );
        anyhow::ensure!(m.delay_ms <= 10_000, "{}: measure.delay_ms must be at most 10000", path.display());
        anyhow::ensure!(
            m.run_config.is_file(),
            "{}: measure.run_config {} is not a file",
            path.display(),
            m.run_config.display()
        );
        anyhow::ensure!(
            c.profile.images >= 1 && c.profile.accuracy_images <= 10_000,
            "{}: [profile] images must be at least 1",
            path.display()
        );
        Ok(c)
    }
}

/// The settings that decide what the cached stages hold, as they were when `dir` was first used:
/// a directory made by another config is refused instead of silently reused.
fn check_stages_match(cfg: &ReproduceConfig, dir: &Path) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Stages<'a> {
        train: &'a TrainSection,
        prune: &'a PruneSection,
        profile: &'a ProfileSection,
    }
    let now = toml::to_string(&Stages { train: &cfg.train, prune: &cfg.prune, profile: &cfg.profile })?;
    let path = dir.join("stages.toml");
    match std::fs::read_to_string(&path) {
        Ok(before) => anyhow::ensure!(
            before == now,
            "{} was made with other [train]/[prune]/[profile] settings than {}'s (see {}): delete it or pass another --dir",
            dir.display(),
            cfg.name,
            path.display()
        ),
        Err(_) => std::fs::write(&path, now).with_context(|| format!("writing {}", path.display()))?,
    }
    Ok(())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

pub fn run(a: ReproduceArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = ReproduceConfig::load(&a.config)?;
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from("artifacts/reproduce").join(&cfg.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |p: &str| dir.join(p).display().to_string();
    let device = a.compute.kind.to_string();
    check_stages_match(&cfg, &dir)?;
    let mut timings: Vec<(&str, f64)> = Vec::new();
    let stage = |n: usize, name: &str| println!("\n== [{n}/5] {name}  (t = {:.0} s)", started.elapsed().as_secs_f64());

    stage(1, &format!("train {} ×{} for {} epochs", cfg.train.model, cfg.train.width_mult, cfg.train.epochs));
    let t = Instant::now();
    if dir.join("base/model.toml").is_file() {
        println!("  reusing {}", path("base"));
    } else {
        let mut train = strings(&[
            "train",
            "--model",
            &cfg.train.model,
            "--width-mult",
            &cfg.train.width_mult.to_string(),
            "--epochs",
            &cfg.train.epochs.to_string(),
            "--seed",
            &cfg.train.seed.to_string(),
            "--device",
            &device,
            "--out",
            &path("base"),
        ]);
        if let Some(n) = cfg.train.limit_train {
            train.extend(strings(&["--limit-train", &n.to_string()]));
        }
        tandem(&train)?;
    }
    timings.push(("train", t.elapsed().as_secs_f64()));

    stage(2, "2-step pruning");
    let t = Instant::now();
    let mut prune = strings(&["prune", "--model-dir", &path("base"), "--out", &path("series"), "--device", &device]);
    match (&cfg.prune.config, &cfg.prune.preset) {
        (Some(c), _) => prune.extend(strings(&["--config", &c.display().to_string()])),
        (None, Some(p)) => prune.extend(strings(&["--preset", p])),
        (None, None) => unreachable!("checked when the config was loaded"),
    }
    if dir.join("series/series.toml").is_file() {
        prune.push("--resume".into());
    }
    tandem(&prune)?;
    timings.push(("prune", t.elapsed().as_secs_f64()));

    stage(3, "profile every model and split point (device and edge: this machine)");
    let t = Instant::now();
    for (role, accuracy) in [("edge", cfg.profile.accuracy_images), ("device", 0)] {
        let out = path(&format!("profile-{role}.toml"));
        if Path::new(&out).is_file() {
            println!("  reusing {out}");
            continue;
        }
        tandem(&strings(&[
            "profile",
            "--series",
            &path("series"),
            "--role",
            role,
            "--images",
            &cfg.profile.images.to_string(),
            "--accuracy-images",
            &accuracy.to_string(),
            "--out",
            &out,
        ]))?;
    }
    timings.push(("profile", t.elapsed().as_secs_f64()));

    stage(4, "report with the predicted tables and charts");
    let m = &cfg.measure;
    let rtt = format!("{}ms", 2 * m.delay_ms);
    let slowdown = m.slowdown.to_string();
    let profile_flags = strings(&[
        "--device-profile",
        &path("profile-device.toml"),
        "--edge-profile",
        &path("profile-edge.toml"),
        "--slowdown",
        &slowdown,
    ]);
    let mut report = strings(&["report", "--series", &path("series"), "--rtt", &rtt, "--out", &path("report")]);
    report.extend(profile_flags.iter().cloned());
    tandem(&report)?;

    let series = Series::load(&dir.join("series")).with_context(|| format!("loading {}", path("series")))?;
    let profiles = tandem_report::load_profiles(
        None,
        Some(&dir.join("profile-device.toml")),
        Some(&dir.join("profile-edge.toml")),
        Some(m.slowdown),
    )?;
    let measured = if a.no_measure {
        Vec::new()
    } else {
        stage(
            5,
            &format!(
                "end-to-end latency on the runtime: device emulated {}×, {} bandwidths",
                m.slowdown,
                m.bandwidths_mbps.len()
            ),
        );
        let t = Instant::now();
        let rows = measure(&cfg, &dir, &series, &profiles, &profile_flags)?;
        timings.push(("measure", t.elapsed().as_secs_f64()));
        rows
    };

    let section = render(&cfg, &a, &series, &profiles, &measured, &timings)?;
    let out = dir.join("reproduce.md");
    std::fs::write(&out, &section).with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    if let Some(results) = &a.results {
        publish(&cfg.name, &dir.join("report"), results, &section)?;
        println!("updated {}", results.display());
    }
    println!("reproduction finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// One measured run: a plan (or the adaptive controller) on one shaped bandwidth.
#[derive(Clone, Debug)]
struct Measured {
    mbps: f64,
    /// Which plan: "2-step, adaptive", "2-step plan", or a baseline's name.
    label: String,
    /// `MODEL:POINT:CODING` as run, or "controller".
    choice: String,
    predicted_ms: f64,
    /// The prediction with the calibration the adaptive run at this bandwidth learned, at its
    /// controller's final link estimate: for a fixed plan, calibration learned on *other* plans;
    /// for the adaptive row, the controller's own prediction for the plan it ended on.
    calibrated_ms: Option<f64>,
    run: RunStats,
}

/// What one `tandem run` reported.
#[derive(Clone, Debug, Default, PartialEq)]
struct RunStats {
    mean_ms: f64,
    p50_ms: f64,
    captured: u64,
    results: u64,
    dropped: u64,
    /// The adaptive run's controller at the end, if it ran one.
    controller: Option<ControllerEnd>,
}

/// The `controller:` and `calibration:` lines of an adaptive run's summary.
#[derive(Clone, Debug, PartialEq)]
struct ControllerEnd {
    link: LinkState,
    predicted_ms: f64,
    calibration: Calibration,
}

const ADAPTIVE: &str = "2-step, adaptive (controller)";
const CHOSEN: &str = "2-step plan (fixed)";

fn plan_arg(p: &Plan) -> String {
    match &p.coding {
        Some(c) => format!("{}:{}:{}", p.model_id, p.point_name, c),
        None => format!("{}:end", p.model_id),
    }
}

fn measure(
    cfg: &ReproduceConfig,
    dir: &Path,
    series: &Series,
    profiles: &Profiles,
    profile_flags: &[String],
) -> anyhow::Result<Vec<Measured>> {
    let m = &cfg.measure;
    let links = dir.join("links");
    std::fs::create_dir_all(&links).with_context(|| format!("creating {}", links.display()))?;
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
                plans.push((tandem_report::compare::baseline_name(b).to_string(), p.clone()));
            }
        }
        let common = strings(&[
            "run",
            "--config",
            &m.run_config.display().to_string(),
            "--series",
            &dir.join("series").display().to_string(),
            "--trace",
            &trace.display().to_string(),
            "--duration",
            &format!("{}s", m.duration_s),
        ]);
        let mut adaptive = common.clone();
        adaptive.extend(profile_flags.iter().cloned());
        adaptive.extend(strings(&["--floor", &format!("loss={}", series.budget)]));
        let stats = run_measured(&adaptive)?;
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
                    fixed.extend(strings(&["--fixed-plan", "--plan", &choice, "--slowdown", &m.slowdown.to_string()]));
                    let s = run_measured(&fixed)?;
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
fn constant_trace(mbps: f64, delay_ms: u64) -> String {
    format!(
        "# Written by `tandem reproduce`: a constant {mbps} Mbit/s link, {delay_ms} ms each way.\nbucket_bytes = 0\ndelay_ms = {delay_ms}\nreturn_delay_ms = {delay_ms}\n\n[[step]]\nat_ms = 0\nmbps = {mbps:?}\n"
    )
}

/// Run `tandem run …` quietly and read its summary.
fn run_measured(args: &[String]) -> anyhow::Result<RunStats> {
    let exe = std::env::current_exe().context("locating the tandem binary")?;
    let out = Command::new(exe).args(args).output().with_context(|| format!("running tandem {}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "`tandem {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_run(&stdout).with_context(|| format!("reading the summary of `tandem {}`", args.join(" ")))
}

/// The numbers of the device summary `tandem run` prints (`frames    captured …` and
/// `e2e       mean …` lines).
fn parse_run(stdout: &str) -> anyhow::Result<RunStats> {
    let line = |prefix: &str| {
        stdout
            .lines()
            .rev()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("no `{prefix}` line in the summary"))
    };
    use super::run_cmd::number_after;
    let frames = line("frames ")?;
    let e2e = line("e2e  ")?;
    let count = |key: &str| -> anyhow::Result<u64> {
        let v = number_after(frames, key)?;
        Ok(v as u64)
    };
    Ok(RunStats {
        mean_ms: number_after(e2e, "mean ")?,
        p50_ms: number_after(e2e, "p50 ")?,
        captured: count("captured ")?,
        results: count("= results ")?,
        dropped: count("+ dropped ")?,
        controller: parse_controller(stdout),
    })
}

/// The adaptive run's final link estimate, prediction and calibration (`None` for a fixed
/// plan, or when the controller never had an estimate).
fn parse_controller(stdout: &str) -> Option<ControllerEnd> {
    use super::run_cmd::number_after;
    let line = |prefix: &str| stdout.lines().rev().find(|l| l.starts_with(prefix));
    let (c, k) = (line("controller: ")?, line("calibration: ")?);
    let num = |l: &str, key: &str| number_after(l, key).ok();
    Some(ControllerEnd {
        link: LinkState::new(num(c, "last estimate ")? * 1e6, num(c, "RTT ")?),
        predicted_ms: num(c, "predicted ")?,
        calibration: Calibration {
            device_scale: num(k, "device x")?,
            encode_scale: num(k, "encode x")?,
            edge_scale: num(k, "edge x")?,
        },
    })
}

fn render(
    cfg: &ReproduceConfig,
    a: &ReproduceArgs,
    series: &Series,
    profiles: &Profiles,
    measured: &[Measured],
    timings: &[(&str, f64)],
) -> anyhow::Result<String> {
    let mut md = String::new();
    let original = series.original().context("the series has no original model")?;
    let m = &cfg.measure;
    let _ = writeln!(md, "### {}\n", cfg.title);
    let _ = writeln!(
        md,
        "`tandem reproduce --config {}` on {}, {} (UTC). Stage times: {}. Device emulated **{}×** slower than this machine in the runtime and in the planner; link shaped in-process, {} ms each way.\n",
        a.config.display(),
        profiles.edge().machine,
        today(),
        timings.iter().map(|(s, t)| format!("{s} {t:.0} s")).collect::<Vec<_>>().join(", "),
        m.slowdown,
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
    let _ = writeln!(
        md,
        "\n**Transmission at the pool points, bytes on the wire per image** (80-byte frame header included):\n"
    );
    md.push_str(&transmission_table(series, profiles));
    if !measured.is_empty() {
        let _ = writeln!(
            md,
            "\n**End-to-end latency measured on the runtime** (edge and device as two processes, {} s per run at the config's FPS). *Profiled* = the planner's price for the same plan and the nominal link, from the offline profiles alone. *Calibrated* = the price after online calibration: the device and edge compute scales the adaptive run at that bandwidth learned from its own frames, at its controller's final bandwidth and RTT estimate — for the fixed plans a prediction from measurements of *other* plans; for the adaptive row, the controller's own prediction for the plan it ended on:\n",
            m.duration_s
        );
        let _ = writeln!(
            md,
            "| bandwidth | plan | run as | profiled ms | calibrated ms | measured mean ms | p50 ms | error, profiled | error, calibrated | results / captured |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        let error = |predicted: f64, measured: f64| format!("{:+.0} %", (measured / predicted - 1.0) * 100.0);
        for r in measured {
            let _ = writeln!(
                md,
                "| {} Mbit/s | {} | `{}` | {:.2} | {} | {:.2} | {:.2} | {} | {} | {} / {} |",
                r.mbps,
                r.label,
                r.choice,
                r.predicted_ms,
                r.calibrated_ms.map_or("–".into(), |c| format!("{c:.2}")),
                r.run.mean_ms,
                r.run.p50_ms,
                error(r.predicted_ms, r.run.mean_ms),
                r.calibrated_ms.map_or("–".into(), |c| error(c, r.run.mean_ms)),
                r.run.results,
                r.run.captured
            );
        }
        let _ = writeln!(
            md,
            "\n**Measured ratios** (baseline mean ÷ 2-step adaptive mean; the paper: 4.81× end-to-end vs the unpruned best split):\n"
        );
        let _ = writeln!(
            md,
            "| bandwidth | vs unpruned best split (uncoded) | vs unpruned best split (coded) | vs input offload | vs all on device |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        for &mbps in &m.bandwidths_mbps {
            let get = |label: &str| measured.iter().find(|r| r.mbps == mbps && r.label == label).map(|r| r.run.mean_ms);
            let Some(adaptive) = get(ADAPTIVE) else { continue };
            let cell = |b: Baseline| {
                get(tandem_report::compare::baseline_name(b)).map_or("–".into(), |v| format_ratio(v / adaptive))
            };
            let _ = writeln!(
                md,
                "| {mbps} Mbit/s | {} | {} | {} | {} |",
                cell(Baseline::OriginalUncoded),
                cell(Baseline::OriginalCoded),
                cell(Baseline::InputOffload),
                cell(Baseline::LocalOnly)
            );
        }
    }
    let _ = writeln!(
        md,
        "\nPredicted tables over a bandwidth sweep, charts and the coding table: [reproduce/{0}/report.md](reproduce/{0}/report.md).",
        cfg.name
    );
    Ok(md)
}

/// Bytes at each pool point for the original and the best step-2 member there, uncoded (`f32`) and
/// with the default coding (`q8-lz4`), and the ratios.
fn transmission_table(series: &Series, profiles: &Profiles) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| point | original f32 | original q8-lz4 | best step 2 f32 | best step 2 q8-lz4 | ratio, no coding | ratio, with coding |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let best2 = best_step2(series);
    let bytes = |model: u32, point: usize, coding: &str| -> Option<f64> {
        profiles.model(model)?.points.get(point)?.coding(coding).map(|c| c.bytes)
    };
    let Some(original) = series.original() else { return md };
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
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            cell(o32),
            cell(o8),
            cell(b32),
            cell(b8),
            ratio(o32, b32),
            ratio(o32, b8)
        );
    }
    md
}

/// Replace (or append) this config's section of `results` and copy its report beside it.
fn publish(name: &str, report_dir: &Path, results: &Path, section: &str) -> anyhow::Result<()> {
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
fn splice(text: &str, name: &str, section: &str) -> String {
    let begin = format!("<!-- tandem reproduce {name}: generated, do not edit -->");
    let end = format!("<!-- end tandem reproduce {name} -->");
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{block}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    }
}

/// Today's date (UTC), `YYYY-MM-DD`, from the system clock (civil-from-days, Howard Hinnant).
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
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
    fn run_summary_is_read() {
        let out = "noise\nframes    captured 180 = results 178 (edge 170, local 8) + dropped 2  [balanced]\n\
                   e2e       mean 26.623  p50 25.912  p90 32.274  p99 44.924  max 89.978 ms (n 180)\n\
                   e2e edge  mean 26.623  p50 25.912  p90 32.274  p99 44.924  max 89.978 ms (n 180)\n";
        let s = parse_run(out).unwrap();
        assert_eq!(
            s,
            RunStats { mean_ms: 26.623, p50_ms: 25.912, captured: 180, results: 178, dropped: 2, controller: None }
        );
        assert!(parse_run("frames    captured 1 = results 1 (edge 1, local 0) + dropped 0\n").is_err());

        let adaptive = format!(
            "{out}controller: 2 swaps applied, 0 rolled back, 3 probes (15.2 kB), last estimate 0.982 Mbit/s RTT 4.61 ms, plan in force predicted 12.40 ms\n\
             calibration: device x1.412, encode x2.000, edge x1.100 (231 frames)\n"
        );
        let c = parse_run(&adaptive).unwrap().controller.expect("controller lines");
        assert_eq!(c.link, LinkState::new(982_000.0, 4.61));
        assert_eq!(c.predicted_ms, 12.40);
        assert_eq!(c.calibration, Calibration { device_scale: 1.412, encode_scale: 2.0, edge_scale: 1.1 });
        // A controller that never planned prints NaN: no calibrated column then, but no error.
        let never = adaptive.replace("predicted 12.40", "predicted NaN");
        assert_eq!(parse_run(&never).unwrap().controller, None);
    }

    #[test]
    fn the_configs_in_the_repository_load() {
        for name in ["paper-vgg16", "paper-alexnet"] {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("configs/{name}.toml"));
            let c = ReproduceConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(c.name, name.trim_start_matches("paper-"));
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let base = "name = \"x\"\ntitle = \"t\"\n[train]\nmodel = \"vgg16\"\nwidth_mult = 0.25\nepochs = 1\n";
        std::fs::write(&p, format!("{base}[prune]\n")).unwrap();
        assert!(format!("{:#}", ReproduceConfig::load(&p).unwrap_err()).contains("exactly one"));
        std::fs::write(&p, format!("{base}[prune]\npreset = \"fast\"\n[measure]\nslowdwn = 3\n")).unwrap();
        assert!(format!("{:#}", ReproduceConfig::load(&p).unwrap_err()).contains("slowdwn"));
        std::fs::write(&p, format!("{base}[prune]\npreset = \"fast\"\n[measure]\nslowdown = 0.5\n")).unwrap();
        assert!(ReproduceConfig::load(&p).is_err());
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }
}
