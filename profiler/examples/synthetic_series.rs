//! Write a tiny random-weight VGG-16 series (1-channel 32×32, widths 1..8) for smoke runs of
//! `tandem profile`, `tandem plan` and `tandem report` with `--dataset synthetic`:
//!
//! ```text
//! cargo run --release -p tandem-profiler --example synthetic_series -- /tmp/tiny-series
//! ```
//! Accuracies in the manifest are made up (the weights are untrained) but obey the budget.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: synthetic_series DIR")?);
    let series = tandem_models::testkit::tiny_series(&dir)?;
    println!("wrote {} models to {}", series.members.len(), dir.display());
    Ok(())
}
