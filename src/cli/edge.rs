//! `tandem edge`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct EdgeArgs {}

pub fn run(_a: EdgeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem edge` is not implemented yet")
}
