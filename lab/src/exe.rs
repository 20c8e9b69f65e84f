//! The `tandem` executable the lab starts stages with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;

/// The `tandem` binary, as the caller found it (the CLI passes `std::env::current_exe()`).
#[derive(Clone, Debug)]
pub struct Tandem {
    exe: PathBuf,
    /// Set by [`Tandem::forwarding_signals`].
    signals: Option<Arc<Forwarder>>,
}

impl PartialEq for Tandem {
    fn eq(&self, other: &Tandem) -> bool {
        self.exe == other.exe
    }
}

impl Eq for Tandem {}

/// What the signal thread shares with the stages: the child running now, and whether a signal
/// came. A mutex, not a message: the signal thread must reach whichever stage runs, and stages
/// are plain blocking `std::process` calls with no loop to receive messages in.
#[derive(Debug, Default)]
struct Forwarder {
    current: Mutex<Option<u32>>,
    interrupted: AtomicBool,
}

impl Forwarder {
    /// Send SIGTERM to `pid`. Through the `kill` utility (procps, on every Debian): `kill(2)`
    /// from Rust needs `unsafe` (forbidden here) or a crate (nix) whose libc features would
    /// rebuild the whole workspace. A stage that is `tandem run` stops its pair in order (see
    /// [`crate::pair`]); any other stage ends as SIGTERM ends it.
    fn terminate(pid: u32) {
        match Command::new("kill").args(["-TERM", &pid.to_string()]).stdout(Stdio::null()).status() {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!("[tandem] could not forward the signal to stage {pid} (kill: {s})"),
            Err(e) => eprintln!("[tandem] could not forward the signal to stage {pid}: {e}"),
        }
    }

    /// Spawn `cmd` as the current child. The lock is held across the spawn, so the signal
    /// thread sees either no child (and ends this process) or this one (and forwards to it).
    fn spawn(&self, cmd: &mut Command) -> std::io::Result<Child> {
        let mut cur = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let child = cmd.spawn()?;
        *cur = Some(child.id());
        Ok(child)
    }

    fn done(&self) {
        *self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl Tandem {
    /// Stages will run `exe`.
    pub fn new(exe: impl Into<PathBuf>) -> Self {
        Self { exe: exe.into(), signals: None }
    }

    /// Catch SIGINT and SIGTERM for the rest of this process and forward them to the stage
    /// running at the time (as SIGTERM); the stage then ends and [`Tandem::stage`] /
    /// [`Tandem::quiet`] fail with "interrupted", so no further stage starts. For multi-stage
    /// commands (`tandem demo`, `tandem reproduce`), whose stages are child processes.
    pub fn forwarding_signals(mut self) -> anyhow::Result<Self> {
        let fwd = Arc::new(Forwarder::default());
        let shared = Arc::clone(&fwd);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // Registered before returning, so no signal is missed once this returns.
        #[cfg(unix)]
        let (mut int, mut term) = {
            use tokio::signal::unix::{SignalKind, signal};
            let _guard = rt.enter();
            (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)
        };
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            rt.block_on(async move {
                loop {
                    #[cfg(unix)]
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                    };
                    #[cfg(not(unix))]
                    let name = {
                        let _ = tokio::signal::ctrl_c().await;
                        "Ctrl-C"
                    };
                    shared.interrupted.store(true, Ordering::SeqCst);
                    let current = shared.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    match *current {
                        Some(pid) => {
                            eprintln!("\n[tandem] {name}: stopping the current stage; no further stage starts");
                            Forwarder::terminate(pid);
                        }
                        None => {
                            // In-process work (training, pruning): nothing to drain.
                            eprintln!("\n[tandem] {name}: stopping");
                            std::process::exit(if name == "SIGINT" { 130 } else { 143 });
                        }
                    }
                }
            })
        })?;
        self.signals = Some(fwd);
        Ok(self)
    }

    /// Whether a signal came ([`Tandem::forwarding_signals`]).
    pub fn interrupted(&self) -> bool {
        self.signals.as_ref().is_some_and(|f| f.interrupted.load(Ordering::SeqCst))
    }

    /// Spawn `cmd` and wait for it with `wait`, under the signal forwarder when there is one.
    fn supervise<T>(
        &self,
        name: &str,
        cmd: &mut Command,
        wait: impl FnOnce(Child) -> std::io::Result<T>,
    ) -> anyhow::Result<T> {
        self.not_interrupted()?;
        let child = match self.signals.as_deref() {
            Some(f) => f.spawn(cmd),
            None => cmd.spawn(),
        }
        .with_context(|| format!("running tandem {name}"))?;
        let out = wait(child);
        if let Some(f) = self.signals.as_deref() {
            f.done();
        }
        let out = out.with_context(|| format!("waiting for tandem {name}"))?;
        anyhow::ensure!(!self.interrupted(), "interrupted by a signal during `tandem {name}`");
        Ok(out)
    }

    fn not_interrupted(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.interrupted(), "interrupted by a signal");
        Ok(())
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
        self.not_interrupted()?;
        println!("  $ tandem {}", args.join(" "));
        let status =
            self.supervise(name, &mut self.command(&args), |mut c: Child| -> std::io::Result<ExitStatus> { c.wait() })?;
        anyhow::ensure!(status.success(), "`tandem {name}` failed ({status})");
        Ok(())
    }

    /// Run `tandem ARGS…` with its output captured; fails (showing that output) unless it exits
    /// successfully.
    pub fn quiet<S: AsRef<str>>(&self, args: &[S]) -> anyhow::Result<Output> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut cmd = self.command(&args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = self.supervise(args.first().copied().unwrap_or_default(), &mut cmd, Child::wait_with_output)?;
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
