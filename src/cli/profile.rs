//! `tandem profile`: measure a series on this machine and write its profile TOML; optionally
//! dump real intermediate tensors for the codec benchmark.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tandem_models::data::DataSource;
use tandem_models::series::Series;
use tandem_profiler::codec::Coding;
use tandem_profiler::planner::{Profile, Role};
use tandem_profiler::{DumpOptions, ProfileOptions, dump_tensors, load_test_set, profile_series_on};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Device,
    Edge,
}

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Series directory (holds series.toml).
    #[arg(long)]
    series: PathBuf,
    /// Which side of the split this machine plays.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Output profile TOML (optional when only dumping tensors).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Emulate a device R times slower than this machine (implies --role device).
    #[arg(long)]
    slowdown: Option<f64>,
    /// Timed runs per model (median per segment; also encode/decode repetitions).
    #[arg(long, default_value_t = tandem_profiler::DEFAULT_RUNS)]
    runs: usize,
    /// Untimed warm-up runs per model.
    #[arg(long, default_value_t = tandem_profiler::DEFAULT_WARMUP)]
    warmup: usize,
    /// Test images whose intermediate tensors are coded for bytes and coding time.
    #[arg(long, default_value_t = tandem_profiler::DEFAULT_IMAGES)]
    images: usize,
    /// Test images for the accuracy of each lossy coding at each point (0 = skip). Default: 200
    /// for the edge; 0 for the device, whose accuracies the planner does not read.
    #[arg(long)]
    accuracy_images: Option<usize>,
    /// Codings to measure, comma-separated (f32 is always added), or `all`.
    #[arg(long, default_value = "f32,f32-lz4,q8-lz4,q8c-lz4,q4-lz4,q4c-lz4,png,jpeg50,jpeg75,jpeg90")]
    codings: String,
    /// Data set of the test images (default: the one the series was pruned on).
    #[arg(long)]
    dataset: Option<DataSource>,
    /// Data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Inference engine to time: `auto` (what the runtime uses: ONNX Runtime where its library
    /// loads, else burn), `onnxruntime` or `burn`.
    #[arg(long, default_value = "auto")]
    engine: tandem_engine::Choice,
    /// Intra-op threads of the timed engine (default: every core, as the runtime); a device
    /// config with `engine_threads = 1` is profiled with `--threads 1`.
    #[arg(long)]
    threads: Option<usize>,
    /// Write real intermediate tensors (`*.f32` + `*.shape`) into this directory for the codec
    /// benchmark (`TANDEM_CODEC_TENSORS=DIR cargo bench -p tandem-codec`).
    #[arg(long)]
    dump_tensors: Option<PathBuf>,
    /// Points to dump, comma-separated names or indices (default: every pool).
    #[arg(long, value_delimiter = ',')]
    dump_points: Vec<String>,
    /// Model id to dump (default: the original).
    #[arg(long)]
    dump_model: Option<u32>,
    /// Test images to dump per point.
    #[arg(long, default_value_t = 4)]
    dump_images: usize,
}

fn parse_codings(s: &str) -> anyhow::Result<Vec<Coding>> {
    if s.trim() == "all" {
        return Ok(Coding::all());
    }
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<Coding>().with_context(|| format!("--codings: {t:?}")))
        .collect()
}

pub fn run(a: ProfileArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.out.is_some() || a.dump_tensors.is_some(), "nothing to do: give --out and/or --dump-tensors");
    let role = match (a.role, a.slowdown) {
        (RoleArg::Edge, Some(_)) => {
            anyhow::bail!("--slowdown emulates a device: use --role device")
        }
        (RoleArg::Device, _) => Role::Device,
        (RoleArg::Edge, None) => Role::Edge,
    };
    let series = Series::load(&a.series).with_context(|| format!("loading the series in {}", a.series.display()))?;
    let test = load_test_set(&series, a.dataset.as_ref(), a.data.as_deref()).context("loading the test images")?;

    if let Some(dir) = &a.dump_tensors {
        let opts = DumpOptions { model: a.dump_model, points: a.dump_points.clone(), images: a.dump_images };
        let dumped = dump_tensors(&a.series, &opts, &test, dir)?;
        println!("wrote {} tensors to {} (use TANDEM_CODEC_TENSORS={})", dumped.len(), dir.display(), dir.display());
    }
    let Some(out) = &a.out else { return Ok(()) };

    let accuracy_images = a.accuracy_images.unwrap_or(match role {
        Role::Edge => tandem_profiler::DEFAULT_ACCURACY_IMAGES,
        Role::Device => 0,
    });
    let opts = ProfileOptions {
        warmup: a.warmup,
        runs: a.runs,
        images: a.images,
        accuracy_images,
        codings: parse_codings(&a.codings)?,
        data: a.dataset.clone(),
        data_dir: a.data.clone(),
        progress: true,
        engine: a.engine,
        threads: a.threads,
    };
    if accuracy_images == 0 && opts.effective_codings().iter().any(|c| !c.is_lossless()) {
        match role {
            Role::Edge => {
                tracing::warn!("lossy codings profiled without accuracy: the planner will assume they cost none")
            }
            Role::Device => tracing::info!(
                "no coding accuracy measured: the planner takes it from the edge profile (pass --accuracy-images N to use this profile alone)"
            ),
        }
    }
    let started = Instant::now();
    let measured = profile_series_on(&a.series, role, &opts, &test)?;
    let wall = started.elapsed().as_secs_f64();
    let profile = match a.slowdown {
        Some(r) => measured.slowed(r)?,
        None => measured,
    };
    let toml = profile.to_toml_string()?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = out.with_extension("toml.tmp");
    std::fs::write(&tmp, toml).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    print_summary(&profile, &opts, wall, out);
    Ok(())
}

fn print_summary(profile: &Profile, a: &ProfileOptions, wall: f64, out: &std::path::Path) {
    let p = &profile.provenance;
    let emulated = p.emulated_slowdown.map(|r| format!(", device EMULATED as {r}× this machine")).unwrap_or_default();
    println!(
        "profiled {} models on {} ({} threads{emulated}) in {wall:.1} s: {} runs, {} images, {} accuracy images -> {}",
        profile.models.len(),
        p.machine,
        p.threads,
        a.runs,
        a.images,
        a.accuracy_images,
        out.display()
    );
    let Some(original) = profile.original() else {
        return;
    };
    let names: Vec<&str> =
        original.points.first().map(|pt| pt.codings.iter().map(|c| c.coding.as_str()).collect()).unwrap_or_default();
    println!(
        "\noriginal model `{}`: head / tail ms and bytes per image (accuracy with lossy coding when measured)",
        original.name
    );
    print!("{:<9} {:>9} {:>9}", "point", "head ms", "tail ms");
    for n in &names {
        print!(" {n:>17}");
    }
    println!();
    for pt in &original.points {
        print!("{:<9} {:>9.3} {:>9.3}", pt.name, pt.device_ms, pt.edge_ms);
        for n in &names {
            // A point may lack a coding its shape cannot take (image codings past the input).
            let cell = match pt.codings.iter().find(|c| c.coding == *n) {
                Some(c) => match c.accuracy {
                    Some(acc) => format!("{:.0} ({:.1}%)", c.bytes, acc * 100.0),
                    None => format!("{:.0}", c.bytes),
                },
                None => "-".into(),
            };
            print!(" {cell:>17}");
        }
        println!();
    }
}
