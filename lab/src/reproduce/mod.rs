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
//!
//! - [`config`]: the config schema and its checks, and the stage-directory guard.
//! - [`measure`]: stage 5, the measured runs, read from the device's typed report.
//! - [`render`]: the markdown section and splicing it into the results file.

pub mod config;
pub mod measure;
pub mod render;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tandem_models::series::Series;
use tandem_planner::{Profile, ProfileSource, Role, build_profiles};

use crate::Tandem;
use crate::exe::strings;
use config::{ReproduceConfig, check_stages_match};

/// This host's throughput on the device's threads, GMAC/s: the original model, whole, as the
/// device profile timed it (MACs from the series manifest).
fn host_gmacs(profile: &Profile, path: &Path, series: &Series) -> anyhow::Result<f64> {
    let original = series.original().context("the series has no original model")?;
    let whole = profile
        .models
        .iter()
        .find(|m| m.model_id == original.id)
        .and_then(|m| m.points.last())
        .with_context(|| format!("{} has no whole-model time for the original model", path.display()))?;
    anyhow::ensure!(whole.device_ms > 0.0, "{}: the original model's time is {} ms", path.display(), whole.device_ms);
    Ok(original.macs as f64 / (whole.device_ms * 1e-3) / 1e9)
}

/// What `tandem reproduce` was asked to do.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// Reproduction config (configs/paper-vgg16.toml, configs/paper-alexnet.toml).
    pub config: PathBuf,
    /// Directory for every stage's output [default: artifacts/reproduce/NAME].
    pub dir: Option<PathBuf>,
    /// Splice the generated section into this markdown file, and copy the report next to it.
    pub results: Option<PathBuf>,
    /// Stop after the report: no runtime measurement.
    pub no_measure: bool,
    /// Compute device of the offline stages (`cpu`, `cuda`, `wgpu`).
    pub device: String,
}

/// Run (or resume) a reproduction.
pub fn run(tandem: &Tandem, a: &ReproduceOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = ReproduceConfig::load(&a.config)?;
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from("artifacts/reproduce").join(&cfg.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |p: &str| dir.join(p).display().to_string();
    let device = a.device.as_str();
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
            device,
            "--out",
            &path("base"),
        ]);
        if let Some(n) = cfg.train.limit_train {
            train.extend(strings(&["--limit-train", &n.to_string()]));
        }
        if let Some(d) = &cfg.train.dataset {
            train.extend(strings(&["--dataset", d]));
        }
        if let Some(lr) = cfg.train.lr {
            train.extend(strings(&["--lr", &lr.to_string()]));
        }
        tandem.stage(&train)?;
    }
    timings.push(("train", t.elapsed().as_secs_f64()));

    stage(2, "2-step pruning");
    let t = Instant::now();
    let mut prune = strings(&["prune", "--model-dir", &path("base"), "--out", &path("series"), "--device", device]);
    match (&cfg.prune.config, &cfg.prune.preset) {
        (Some(c), _) => prune.extend(strings(&["--config", &c.display().to_string()])),
        (None, Some(p)) => prune.extend(strings(&["--preset", p])),
        (None, None) => anyhow::bail!("{}: [prune] needs exactly one of `config` or `preset`", a.config.display()),
    }
    if dir.join("series/series.toml").is_file() {
        prune.push("--resume".into());
    }
    tandem.stage(&prune)?;
    timings.push(("prune", t.elapsed().as_secs_f64()));

    stage(3, "profile every model and split point (device and edge: this machine)");
    let t = Instant::now();
    // Each role is profiled on as many threads as its runtime will use.
    let run_cfg: tandem_actors::config::DemoConfig = tandem_actors::config::load(&cfg.measure.run_config)
        .with_context(|| format!("reading {}", cfg.measure.run_config.display()))?;
    for (role, accuracy) in [(Role::Edge, cfg.profile.accuracy_images), (Role::Device, 0)] {
        let out = path(&format!("profile-{role}.toml"));
        if Path::new(&out).is_file() {
            println!("  reusing {out}");
            continue;
        }
        let threads = crate::profiles::threads_args(role, &run_cfg);
        let role = role.to_string();
        tandem.stage(
            &[
                &strings(&[
                    "profile",
                    "--series",
                    &path("series"),
                    "--role",
                    &role,
                    "--images",
                    &cfg.profile.images.to_string(),
                    "--accuracy-images",
                    &accuracy.to_string(),
                    "--out",
                    &out,
                ])[..],
                &threads,
            ]
            .concat(),
        )?;
    }
    timings.push(("profile", t.elapsed().as_secs_f64()));

    stage(4, "report with the predicted tables and charts");
    let m = &cfg.measure;
    let series = Series::load(&dir.join("series")).with_context(|| format!("loading {}", path("series")))?;
    // Each profile is read once: the raw device profile gives this host's throughput, then both
    // are combined with the R it implies.
    let (device_path, edge_path) = (dir.join("profile-device.toml"), dir.join("profile-edge.toml"));
    let device_profile = crate::profiles::read_profile(&device_path)?;
    let slowdown = m.slowdown(|| host_gmacs(&device_profile, &device_path, &series))?;
    let shown = render::format_slowdown(slowdown.r);
    match slowdown.derived_from {
        Some((host, board)) => println!(
            "  device emulated {shown}× slower: this host runs the original model at {host:.2} GMAC/s on the device's threads, the board at {board} GMAC/s"
        ),
        None => println!("  device emulated {shown}× slower (the config's figure)"),
    }
    let rtt = format!("{}ms", 2 * m.delay_ms);
    let r = slowdown.r;
    let slowdown_arg = r.to_string();
    let profile_flags = strings(&[
        "--device-profile",
        &path("profile-device.toml"),
        "--edge-profile",
        &path("profile-edge.toml"),
        "--slowdown",
        &slowdown_arg,
    ]);
    let mut report = strings(&["report", "--series", &path("series"), "--rtt", &rtt, "--out", &path("report")]);
    report.extend(profile_flags.iter().cloned());
    tandem.stage(&report)?;

    let profiles = build_profiles(
        ProfileSource::Pair { device: device_profile, edge: crate::profiles::read_profile(&edge_path)? },
        Some(r),
    )
    .context("combining the device and edge profiles")?;
    let measured = if a.no_measure {
        Vec::new()
    } else {
        stage(
            5,
            &format!(
                "end-to-end latency on the runtime: device emulated {shown}×, {} bandwidths",
                m.bandwidths_mbps.len()
            ),
        );
        let t = Instant::now();
        let rows = measure::measure(tandem, &cfg, &dir, &series, &profiles, &profile_flags, r)?;
        timings.push(("measure", t.elapsed().as_secs_f64()));
        rows
    };

    let date = render::today();
    let made = render::Made { config: &a.config, timings: &timings, date: &date, slowdown };
    let section = render::render(&cfg, &made, &series, &profiles, &measured)?;
    let out = dir.join("reproduce.md");
    std::fs::write(&out, &section).with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    if let Some(results) = &a.results {
        render::publish(&cfg.name, &dir.join("report"), results, &section)?;
        println!("updated {}", results.display());
    }
    println!("reproduction finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
