//! Integration tests of the `tandem` binary: its subcommands run as real, separate processes.

mod processes;
