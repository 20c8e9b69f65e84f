//! The `tandem` executable the lab starts stages with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;

/// The `tandem` binary, as the caller found it (the CLI passes `std::env::current_exe()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tandem {
    exe: PathBuf,
}

impl Tandem {
    /// Stages will run `exe`.
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        Self { exe: exe.into() }
    }

    /// The executable's path.
    pub fn path(&self) -> &Path {
        &self.exe
    }

    /// A `Command` for `tandem ARGS…`.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(args);
        c
    }

    /// Run one stage as the user-facing `tandem` subcommand, showing its command line; its output
    /// goes to ours. Fails unless it exits successfully.
    pub fn stage<S: AsRef<str>>(&self, args: &[S]) -> anyhow::Result<()> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let name = args.first().copied().unwrap_or_default();
        println!("  $ tandem {}", args.join(" "));
        let status = self.command(&args).status().with_context(|| format!("running tandem {name}"))?;
        anyhow::ensure!(status.success(), "`tandem {name}` failed ({status})");
        Ok(())
    }

    /// Run `tandem ARGS…` with its output captured; fails (showing that output) unless it exits
    /// successfully.
    pub fn quiet<S: AsRef<str>>(&self, args: &[S]) -> anyhow::Result<Output> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let out = self.command(&args).output().with_context(|| format!("running tandem {}", args.join(" ")))?;
        anyhow::ensure!(
            out.status.success(),
            "`tandem {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }
}

/// `["a", "b"]` → owned strings, for argument lists built up in pieces.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}
