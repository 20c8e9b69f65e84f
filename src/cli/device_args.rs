//! `--device cpu|cuda|wgpu|libtorch`: the compute device of the offline commands (train, prune, eval,
//! bench). The online runtime (`edge`, `device`, `run`) and `profile` always run on the CPU.

use burn::tensor::Device;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use tandem_models::device::{self, DeviceKind};

/// The `--device` flag, flattened into each offline command.
#[derive(Args, Debug, Clone)]
pub struct ComputeArgs {
    /// Compute device. `cuda` and `wgpu` (Vulkan) need a binary built with `--features cuda` or
    /// `--features wgpu` and a GPU driver at run time; `libtorch` (PyTorch's CPU kernels, faster
    /// training) one built with `--features libtorch` against PyTorch 2.9.0 (README).
    #[arg(
        long = "device",
        value_name = "DEVICE",
        default_value = "cpu",
        value_parser = PossibleValuesParser::new(DeviceKind::NAMES).try_map(|s| s.parse::<DeviceKind>()),
    )]
    pub kind: DeviceKind,
}

impl ComputeArgs {
    /// The chosen device, checked to work here; `autodiff` for training.
    pub fn device(&self, autodiff: bool) -> anyhow::Result<Device> {
        let dev = device::device(self.kind, autodiff)?;
        if self.kind.is_gpu() {
            tracing::info!(device = %self.kind, "compute device ready");
        }
        Ok(dev)
    }
}
