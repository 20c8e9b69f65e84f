//! Integration tests of the offline crate: models split exactly, checkpoints round-trip and
//! refuse tampering, training learns. Tiny widths keep them fast on two cores.

mod checkpoint;
mod prune;
mod scenes;
mod split;
mod train;

use tandem_models::zoo::{Arch, NetSpec};

/// A narrow network of the given architecture (widths 4..8) for tests.
pub fn tiny(arch: Arch, in_channels: usize) -> NetSpec {
    let widths = arch.base_widths().iter().map(|&w| (w / 64).clamp(4, 8)).collect();
    NetSpec::new(arch, in_channels, 32, 10, widths).expect("valid tiny spec")
}
