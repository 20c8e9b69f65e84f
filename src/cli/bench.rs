//! `tandem bench`: training throughput and batch-1 latency of the model zoo on this machine.
//! Numbers for docs/RESULTS.md; never asserted in tests.

use super::device_args::ComputeArgs;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use clap::{Args, ValueEnum};
use std::time::Instant;
use tandem_models::data::synthetic_sized;
use tandem_models::train::{Schedule, TrainConfig, train};
use tandem_models::zoo::{Arch, Net, NetSpec, scaled_widths};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum What {
    /// SGD training images per second.
    Train,
    /// Batch-1 eval-mode latency of the whole model.
    Latency,
    /// Batch-1 latency of the whole model and of every head/tail at pool1..pool5, side by side
    /// on the same weights: burn, ONNX Runtime (the online path's engine) at 1 and 2 threads,
    /// tract; plus segment prepare times.
    Engines,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    what: What,
    /// Architecture.
    #[arg(long, default_value = "vgg16")]
    model: Arch,
    /// Width multiplier(s), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.25,1.0")]
    width_mult: Vec<f64>,
    /// Input channels (1 grey as Fashion-MNIST, 3 colour as scenes).
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Input height and width (32 as Fashion-MNIST, 64 as scenes' default).
    #[arg(long, default_value_t = 32)]
    input_size: usize,
    /// Batch size for training.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Timed training steps or latency runs.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// `engines` only: also write every benchmarked segment as ONNX into this directory
    /// (`<arch>-x<width>-<segment>.onnx`), so another runtime can time the same weights
    /// (`scripts/ort-python-bench.py`).
    #[arg(long)]
    onnx_out: Option<std::path::PathBuf>,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.runs > 0 && a.batch_size > 0, "--runs and --batch-size must be > 0");
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let on = if a.compute.kind.is_gpu() { format!("on {}", a.compute.kind) } else { format!("{threads} threads") };
    let dev = a.compute.device(matches!(a.what, What::Train))?;
    for &mult in &a.width_mult {
        let spec = NetSpec::new(a.model, a.channels, a.input_size, 10, scaled_widths(a.model, mult))?;
        match a.what {
            What::Train => {
                // Warm-up steps, then timed steps, on synthetic images of the spec's input (I/O
                // excluded).
                let n = a.batch_size * (a.runs + 3);
                let data = synthetic_sized(a.channels, a.input_size, 10, n, 1, 1);
                let cfg = TrainConfig {
                    epochs: 3.0 / (a.runs + 3) as f64,
                    batch_size: a.batch_size,
                    schedule: Schedule::Constant,
                    augment: true,
                    ..TrainConfig::default()
                };
                let net = Net::new(&spec, &dev);
                let (net, _) = train(net, &data.train, &cfg, "warm-up", false)?;
                let cfg = TrainConfig { epochs: a.runs as f64 / (a.runs + 3) as f64, ..cfg };
                // train() synchronises the device before it reads the clock.
                let (_, report) = train(net, &data.train, &cfg, "bench", false)?;
                println!(
                    "train  {} x{mult} at {}x{}x{}: {:.1} img/s at batch {} ({} steps, {:.2} M MACs/img, {on})",
                    a.model,
                    a.channels,
                    a.input_size,
                    a.input_size,
                    report.images as f64 / report.wall_s,
                    a.batch_size,
                    report.steps,
                    spec.total_macs() as f64 / 1e6
                );
            }
            What::Engines => engines(&spec, mult, a.runs, a.onnx_out.as_deref())?,
            What::Latency => {
                let net = Net::new(&spec, &dev).valid();
                let x = Tensor::<4>::random(
                    [1, a.channels, a.input_size, a.input_size],
                    Distribution::Normal(0.0, 1.0),
                    &dev,
                );
                let mut times = tandem_planner::LatencyHistogram::new();
                let mut min_ms = f64::INFINITY;
                for i in 0..a.runs + 5 {
                    tandem_models::device::sync(&dev)?;
                    let t = Instant::now();
                    // Reading the logits back synchronises the device before the clock stops.
                    let _ = net.forward(x.clone()).into_data();
                    if i >= 5 {
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        times.record_ms(ms);
                        min_ms = min_ms.min(ms);
                    }
                }
                let p = times.percentiles();
                println!(
                    "latency {} x{mult}: median {:.2} ms, p90 {:.2} ms, min {:.2} ms over {} runs at batch 1 ({on})",
                    a.model, p.p50, p.p90, min_ms, p.n
                );
            }
        }
    }
    Ok(())
}

/// `tandem bench engines` for one width: a markdown table on stdout.
fn engines(spec: &NetSpec, mult: f64, runs: usize, onnx_out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use tandem_engine::onnx::{Metadata, segment_bytes};
    use tandem_engine::{Choice, Engine, EngineOptions};
    let dev = tandem_models::device::cpu();
    dev.seed(1);
    let net = Net::new(spec, &dev).valid();
    let ort = |threads| {
        Engine::open(&EngineOptions { choice: Choice::OnnxRuntime, threads, ..EngineOptions::default() })
            .map_err(|e| anyhow::anyhow!("{e} (bench engines needs ONNX Runtime: bash scripts/setup.sh)"))
    };
    let (ort1, ort2, burn) = (ort(1)?, ort(2)?, Engine::burn());
    let end = spec.end();
    let points = spec.points();
    let mut segments = vec![("whole".to_string(), 0, end)];
    for p in points.iter().filter(|p| p.name.starts_with("pool")) {
        segments.push((format!("head {}", p.name), 0, p.index));
        if p.index < end {
            segments.push((format!("tail {}", p.name), p.index, end));
        }
    }
    println!(
        "\n{} x{mult} ({:.1} M MACs), batch 1, median of {runs} runs (ms); burn on {} rayon threads; {}",
        spec.arch,
        spec.total_macs() as f64 / 1e6,
        rayon_threads(),
        if cfg!(feature = "tract") {
            "tract single-threaded"
        } else {
            "tract not built (cargo build --features tract)"
        }
    );
    println!(
        "| segment | burn | onnxruntime 1t | onnxruntime 2t | tract | burn / ort 2t | prepare ort 2t | prepare tract |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, from, to) in segments {
        let input = &points[from].shape;
        let shape = [1, input[0], input[1], input[2]];
        let x: Vec<f32> =
            (0..input.iter().product::<usize>()).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
        let b = burn.prepare(&net, from, to, 1)?;
        let o1 = ort1.prepare(&net, from, to, 1)?;
        let o2 = ort2.prepare(&net, from, to, 1)?;
        let t0 = Instant::now();
        let onnx = segment_bytes(&net, from, to, &Metadata::default())?;
        if let Some(dir) = onnx_out {
            std::fs::create_dir_all(dir)?;
            let file = dir.join(format!("{}-x{mult}-{}.onnx", spec.arch, name.replace(' ', "-")));
            std::fs::write(&file, &onnx).map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
        }
        let tr = tract_runner(&onnx, shape)?;
        let tract_prepare = t0.elapsed();
        let mut times: [Vec<f64>; 4] = Default::default();
        for r in 0..runs + 3 {
            // Interleaved: a noisy spell of the machine touches every engine alike.
            for (k, t) in times.iter_mut().enumerate() {
                let started = Instant::now();
                match k {
                    0 => drop(b.run(x.clone(), shape)?),
                    1 => drop(o1.run(x.clone(), shape)?),
                    2 => drop(o2.run(x.clone(), shape)?),
                    _ => match &tr {
                        Some(run) => run(&x)?,
                        None => continue,
                    },
                }
                if r >= 3 {
                    t.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let med = |v: &[f64]| {
            let mut h = tandem_planner::LatencyHistogram::new();
            v.iter().for_each(|&ms| h.record_ms(ms));
            h.percentiles().p50
        };
        let [mb, m1, m2] = [med(&times[0]), med(&times[1]), med(&times[2])];
        let (mt, tp) = match tr {
            Some(_) => (format!("{:.3}", med(&times[3])), format!("{:.1} ms", tract_prepare.as_secs_f64() * 1e3)),
            None => ("—".to_string(), "—".to_string()),
        };
        println!(
            "| {name} | {mb:.3} | {m1:.3} | {m2:.3} | {mt} | {:.1}x | {:.1} ms | {tp} |",
            mb / m2.max(1e-9),
            o2.prepare_time().as_secs_f64() * 1e3,
        );
    }
    Ok(())
}

/// One segment's ONNX file prepared in tract, as a function that runs it; `None` in a build
/// without tract (the `tract` feature: tract is a large build and only this bench and the tests
/// need it).
type TractRun = Box<dyn Fn(&[f32]) -> anyhow::Result<()>>;

#[cfg(feature = "tract")]
fn tract_runner(onnx: &[u8], shape: [usize; 4]) -> anyhow::Result<Option<TractRun>> {
    let model = tandem_engine::tract::TractModel::load(onnx, shape)?;
    Ok(Some(Box::new(move |x| {
        model.run(x)?;
        Ok(())
    })))
}

#[cfg(not(feature = "tract"))]
fn tract_runner(_onnx: &[u8], _shape: [usize; 4]) -> anyhow::Result<Option<TractRun>> {
    Ok(None)
}

/// Threads burn's CPU backend computes with (rayon's global pool; `RAYON_NUM_THREADS` sets it).
fn rayon_threads() -> usize {
    tandem_profiler::compute_threads()
}
