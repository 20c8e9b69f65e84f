//! `tandem profile`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct ProfileArgs {}

pub fn run(_a: ProfileArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem profile` is not implemented yet")
}
