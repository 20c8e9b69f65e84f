//! `tandem run`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {}

pub fn run(_a: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem run` is not implemented yet")
}
