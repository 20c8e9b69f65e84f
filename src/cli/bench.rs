//! `tandem bench`: training throughput and batch-1 latency of the model zoo on this machine.
//! Numbers for docs/RESULTS.md; never asserted in tests.

use super::device_args::ComputeArgs;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use clap::{Args, ValueEnum};
use std::time::Instant;
use tandem_models::data::synthetic;
use tandem_models::train::{Schedule, TrainConfig, train};
use tandem_models::zoo::{Arch, Net, NetSpec, scaled_widths};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum What {
    /// SGD training images per second.
    Train,
    /// Batch-1 eval-mode latency of the whole model.
    Latency,
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
    /// Batch size for training.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Timed training steps or latency runs.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.runs > 0 && a.batch_size > 0, "--runs and --batch-size must be > 0");
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let on = if a.compute.kind.is_gpu() { format!("on {}", a.compute.kind) } else { format!("{threads} threads") };
    let dev = a.compute.device(matches!(a.what, What::Train))?;
    for &mult in &a.width_mult {
        let spec = NetSpec::new(a.model, 1, 10, scaled_widths(a.model, mult))?;
        match a.what {
            What::Train => {
                // Warm-up steps, then timed steps, on synthetic 1×32×32 images (I/O excluded).
                let n = a.batch_size * (a.runs + 3);
                let data = synthetic(1, 10, n, 1, 1);
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
                    "train  {} x{mult}: {:.1} img/s at batch {} ({} steps, {:.2} M MACs/img, {on})",
                    a.model,
                    report.images as f64 / report.wall_s,
                    a.batch_size,
                    report.steps,
                    spec.total_macs() as f64 / 1e6
                );
            }
            What::Latency => {
                let net = Net::new(&spec, &dev).valid();
                let x = Tensor::<4>::random([1, 1, 32, 32], Distribution::Normal(0.0, 1.0), &dev);
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
