//! `tandem prune`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct PruneArgs {}

pub fn run(_a: PruneArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem prune` is not implemented yet")
}

#[derive(Args, Debug)]
pub struct SeriesArgs {}

pub fn series(_a: SeriesArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem series` is not implemented yet")
}
