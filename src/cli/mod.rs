//! Command-line interface: one module per subcommand, each `parse → build → run`.

mod bench;
mod data;
mod demo;
mod device;
mod device_args;
mod edge;
mod export;
mod info;
mod plan;
mod profile;
mod profiles_args;
mod prune;
mod report;
mod reproduce;
mod run_cmd;
mod soak;
mod train;

use clap::{Parser, Subcommand};

/// Adaptive device–edge split inference of CNNs with 2-step pruning.
#[derive(Parser, Debug)]
#[command(name = "tandem", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model from scratch and save it as a model directory.
    Train(train::TrainArgs),
    /// Write data set frames as PNG (scenes) or measure their bytes per frame.
    Data(data::DataArgs),
    /// Evaluate a model directory on the test set.
    Eval(info::EvalArgs),
    /// Print a model's widths, parameters, MACs and per-point tensor sizes.
    Info(info::InfoArgs),
    /// 2-step pruning of a trained model into a series of pruned models.
    Prune(prune::PruneArgs),
    /// Print a series: per partition point, elements original / step 1 / best step 2.
    Series(prune::SeriesArgs),
    /// Measure per-point compute time, coded bytes and coding cost of every model in a series.
    Profile(profile::ProfileArgs),
    /// Choose (model, split, coding) for a bandwidth, RTT and accuracy floor, with baselines.
    Plan(plan::PlanArgs),
    /// Write a markdown report with charts from a series and its profiles.
    Report(report::ReportArgs),
    /// Run the edge server: decode frames, run model tails, return results.
    Edge(edge::EdgeArgs),
    /// Run the device pipeline: camera → front inference → encoder → link.
    Device(device::DeviceArgs),
    /// Run edge and device on loopback as two processes (the demo).
    Run(run_cmd::RunArgs),
    /// Run edge and device for a long time over a varying link and check memory, descriptors and
    /// frame accounting (default: 10 minutes at 30 FPS over configs/links/cellular.toml).
    Soak(soak::SoakArgs),
    /// Reproduce the paper's tables from one config (train → prune → profile → report → measured
    /// end-to-end latency on the runtime) and splice them into docs/RESULTS.md.
    Reproduce(reproduce::ReproduceArgs),
    /// Measure training throughput or batch-1 latency of the model zoo.
    Bench(bench::BenchArgs),
    /// Write series members (whole, or head/tail at a partition point) as ONNX files.
    Export(export::ExportArgs),
    /// The whole story on the embedded default, every stage cached (scripts/demo.sh runs it).
    Demo(demo::DemoArgs),
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Data(a) => data::run(a),
        Command::Eval(a) => info::eval(a),
        Command::Info(a) => info::info(a),
        Command::Prune(a) => prune::run(a),
        Command::Series(a) => prune::series(a),
        Command::Profile(a) => profile::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Report(a) => report::run(a),
        Command::Edge(a) => edge::run(a),
        Command::Device(a) => device::run(a),
        Command::Run(a) => run_cmd::run(a),
        Command::Soak(a) => soak::run(a),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Export(a) => export::run(a),
        Command::Demo(a) => demo::run(a),
    }
}
