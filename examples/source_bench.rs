//! Decode + convert cost of a video source: every frame of FILE through the device's ffmpeg
//! source (`video:FILE`), scaled to a 32×32 model input, as fast as it comes; prints one JSON
//! object (frames, seconds, ms per frame, frames per second). Used for docs/RESULTS.md §9:
//!
//! ```sh
//! cargo test --release --workspace --locked --no-run   # builds target/release/examples/source_bench
//! target/release/examples/source_bench FILE [grey|rgb]
//! ```

use std::time::Instant;

use tandem_actors::source::{Frames, SourceOptions, SourceSpec};
use tandem_models::checkpoint::InputSpec;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or_else(|| anyhow::anyhow!("usage: source_bench FILE [grey|rgb]"))?;
    let channels = match args.next().as_deref() {
        None | Some("grey") => 1,
        Some("rgb") => 3,
        Some(other) => anyhow::bail!("unknown format {other:?} (grey or rgb)"),
    };
    let input = InputSpec {
        channels,
        size: 32,
        mean: vec![0.5; channels],
        std: vec![0.5; channels],
        classes: (0..10).map(|i| i.to_string()).collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let spec = SourceSpec::Video { input: file.clone() };
        let started = Instant::now();
        let mut frames = Frames::open(&spec, &SourceOptions::default(), &input).await?;
        let mut n = 0u64;
        let mut checksum = 0u64;
        while let Some(f) = frames.next().await? {
            // Normalising is part of the camera's conversion.
            let x = input.normalise(&f.pixels);
            checksum = checksum.wrapping_add(x.len() as u64);
            n += 1;
        }
        let s = started.elapsed().as_secs_f64();
        println!(
            "{{\"file\":{file:?},\"channels\":{channels},\"frames\":{n},\"seconds\":{s:.3},\"ms_per_frame\":{:.4},\"fps\":{:.1},\"elements\":{checksum}}}",
            1e3 * s / n.max(1) as f64,
            n as f64 / s
        );
        anyhow::Ok(())
    })
}
