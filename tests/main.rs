//! Integration tests of the `tandem` binary: its subcommands run as real, separate processes.

mod device;
mod export;
mod processes;
mod reproduce;
mod soak;
mod video;
