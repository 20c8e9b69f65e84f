//! `tandem reproduce`: the paper's protocol end to end, from one config, into `docs/RESULTS.md`.
//!
//! The flags; the stages, the measurement and the rendering are `tandem_lab::reproduce`.

use std::path::PathBuf;

use clap::Args;
use tandem_lab::reproduce::ReproduceOptions;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Reproduction config (configs/paper-vgg16.toml, configs/paper-alexnet.toml).
    #[arg(long)]
    config: PathBuf,
    /// Directory for every stage's output [default: artifacts/reproduce/NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Splice the generated section into this markdown file (e.g. docs/RESULTS.md), replacing the
    /// previous one for this config, and copy the report next to it (under reproduce/NAME/).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Stop after the report: no runtime measurement.
    #[arg(long)]
    no_measure: bool,
    #[command(flatten)]
    compute: super::device_args::ComputeArgs,
}

pub fn run(a: ReproduceArgs) -> anyhow::Result<()> {
    let opts = ReproduceOptions {
        config: a.config,
        dir: a.dir,
        results: a.results,
        no_measure: a.no_measure,
        device: a.compute.kind.to_string(),
    };
    tandem_lab::reproduce::run(&super::run_cmd::this_tandem()?.forwarding_signals()?, &opts)
}
