//! `tandem report`: not built yet.

use clap::Args;

#[derive(Args, Debug)]
pub struct ReportArgs {}

pub fn run(_a: ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tandem report` is not implemented yet")
}
