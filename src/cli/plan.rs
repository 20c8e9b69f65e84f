//! `tandem plan`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct PlanArgs {}

pub fn run(_a: PlanArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem plan` is not implemented yet")
}
