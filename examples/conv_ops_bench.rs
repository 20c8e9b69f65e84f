//! Where a training step's convolution time goes on burn's flex backend: for every conv of
//! VGG-16 at a width, batch `N` (default 64) at 32×32 grey input, the median time of the three
//! convolutions a training step runs — forward `conv2d`, the input gradient (burn computes it as
//! `conv_transpose2d` of the output gradient) and the weight gradient (burn's
//! `conv2d_weight_backward`: a `conv2d` with batch and channels swapped) — called directly on
//! the same tensors a step would see. `scripts/torch-conv-ops-bench.py` times the same three in
//! PyTorch. Used for docs/RESULTS.md §1b:
//!
//! ```sh
//! cargo test --release --workspace --locked --no-run   # builds target/release/examples/conv_ops_bench
//! target/release/examples/conv_ops_bench 0.25 [N] [RUNS]
//! ```

use burn::tensor::module::{conv_transpose2d, conv2d, conv2d_weight_backward};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;
use tandem_models::zoo::{Arch, NetSpec, Unit, scaled_widths};

/// Median of `runs` timed calls of `f` after one untimed warm-up call.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = tandem_planner::LatencyHistogram::new();
    for _ in 0..runs {
        let s = Instant::now();
        f();
        times.record_ms(s.elapsed().as_secs_f64() * 1e3);
    }
    times.percentiles().p50
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mult: f64 = args.next().as_deref().unwrap_or("0.25").parse()?;
    let n: usize = args.next().as_deref().unwrap_or("64").parse()?;
    let runs: usize = args.next().as_deref().unwrap_or("10").parse()?;
    let spec = NetSpec::new(Arch::Vgg16, 1, 32, 10, scaled_widths(Arch::Vgg16, mult))?;
    let dev = tandem_models::device::cpu();
    let points = spec.points();
    let (mut c_in, mut sum) = (1usize, [0.0f64; 3]);
    println!("| conv | C_in→C_out | H×W | forward ms | input grad ms | weight grad ms |");
    println!("|---|---|---|---|---|---|");
    for (i, u) in spec.units().iter().enumerate() {
        let Unit::Conv { conv, pad, .. } = *u else { continue };
        let c_out = spec.widths[conv];
        let hw = points[i + 1].shape[1];
        let x = Tensor::<4>::random([n, c_in, hw, hw], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<4>::random([c_out, c_in, 3, 3], Distribution::Normal(0.0, 0.1), &dev);
        let g = Tensor::<4>::random([n, c_out, hw, hw], Distribution::Normal(0.0, 1.0), &dev);
        let opts = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        let fwd = median_ms(runs, || {
            let _ = conv2d(x.clone(), w.clone(), None, opts.clone()).into_data();
        });
        let xg = median_ms(runs, || {
            let t = ConvTransposeOptions::new([1, 1], [pad, pad], [0, 0], [1, 1], 1);
            let _ = conv_transpose2d(g.clone(), w.clone(), None, t).into_data();
        });
        let wg = median_ms(runs, || {
            let _ = conv2d_weight_backward(x.clone(), w.clone(), g.clone(), opts.clone()).into_data();
        });
        for (s, v) in sum.iter_mut().zip([fwd, xg, wg]) {
            *s += v;
        }
        println!("| {} | {c_in}→{c_out} | {hw}×{hw} | {fwd:.2} | {xg:.2} | {wg:.2} |", points[i + 1].name);
        c_in = c_out;
    }
    println!("| **all 13** | | | **{:.1}** | **{:.1}** | **{:.1}** |", sum[0], sum[1], sum[2]);
    println!(
        "batch {n}, width ×{mult}, {runs} runs, medians; flex on {} rayon threads",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    Ok(())
}
