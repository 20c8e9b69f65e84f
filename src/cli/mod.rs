//! Command-line interface: one module per subcommand, each `parse → build → run`.

mod info;
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
    /// Evaluate a model directory on the test set.
    Eval(info::EvalArgs),
    /// Print a model's widths, parameters, MACs and per-point tensor sizes.
    Info(info::InfoArgs),
}

/// Run the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => info::eval(a),
        Command::Info(a) => info::info(a),
    }
}
