//! `tandem device`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct DeviceArgs {}

pub fn run(_a: DeviceArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem device` is not implemented yet")
}
