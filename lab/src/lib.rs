//! # tandem-lab — orchestration: what the `tandem` CLI runs, as a library
//!
//! The CLI crate holds clap structs and calls in here (tract's `libcli` beside `cli`). Everything
//! that starts `tandem` subcommands as child processes, caches their outputs, or reads the typed
//! files they write lives here; nothing here reads another process's human-readable output.
//!
//! # Layout
//! - [`exe`]: [`Tandem`] — the `tandem` executable (passed in, never guessed) and how a stage
//!   runs it as a child process.
//! - [`pair`]: [`pair::Pair`] — an edge and a device process on loopback (`tokio::process`,
//!   `kill_on_drop`, timeouts); the edge's address comes from its `--ready-file`, the device's
//!   summary from its `--summary-out` ([`tandem_actors::report`]).
//! - [`run`]: `tandem run` — one pair, echoed.
//! - [`soak`]: `tandem soak` — a long pair watched through `/proc`, judged by pure functions;
//!   with `--faults`, [`chaos`] injects the seeded schedule of [`faults`] through the TCP chaos
//!   [`proxy`] and by killing the edge, and measures recovery from the device's `/metrics`
//!   ([`scrape`]).
//! - [`reproduce`]: `tandem reproduce` — config schema, stage cache, measurement, rendering.
//! - [`demo`]: `tandem demo` — the whole story, every stage cached.
//! - [`profiles`]: reading profile files (the I/O half of [`tandem_planner::inputs`]).
//! - [`train`]: train a model and save its directory (shared by `tandem train` and the demo).
//!
//! # Errors
//! `anyhow` with context, like the binary it serves: every error here ends as a message to a
//! person running a command, and the chains name the stage, file and child process involved.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod chaos;
pub mod demo;
pub mod exe;
pub mod faults;
pub mod pair;
pub mod profiles;
pub mod proxy;
pub mod reproduce;
pub mod run;
pub mod scrape;
pub mod soak;
pub mod train;

pub use exe::Tandem;

/// The tokio runtime of the orchestration commands: two workers (the children do the work).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}
