//! `tandem`: adaptive device–edge split inference of pruned CNNs.
//!
//! This binary only parses arguments, builds the pieces the subcommand needs and runs them; the
//! work lives in the workspace crates (`models`, `codec`, `planner`, ...); what starts `tandem`
//! subcommands as child processes (run, soak, reproduce, demo) is the `tandem-lab` library.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `tandem info | head` closes stdout early; like other Unix tools, stop quietly instead of
    // reporting a panic from `println!`.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload_as_str().is_some_and(|m| m.contains("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(0);
        }
        default_hook(info)
    }));
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
