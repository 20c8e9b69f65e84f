//! An edge and a device process of `tandem` on loopback, the device pointed at the edge.
//!
//! Both are `tokio::process` children with `kill_on_drop(true)`: dropping a [`Pair`] that was not
//! finished (an error on the way, a panic) kills both, so nothing is left behind. Their stdout is
//! echoed to ours (the edge's prefixed `[edge]`).
//!
//! # How the pair learns the edge's address
//! The edge is started with `--ready-file FILE` (in the pair's private directory, fresh, so no
//! stale file can exist) and an ephemeral port. It binds its listeners, writes FILE atomically
//! (temp file + rename, [`tandem_actors::report::write_json`]) and only then prints its first
//! line. The pair reads the edge's stdout line by line — only as a wake-up, never parsing it — and
//! after each line reads FILE: present means ready, with the typed addresses. If the edge's stdout
//! ends first, the edge died and its exit status is the error; a timeout bounds the wait. No
//! polling loop, no sleep.
//!
//! # How the pair learns the result
//! The device is started with `--summary-out FILE` and writes its [`RunReport`] there (atomically)
//! before it exits; [`Pair::finish`] reads it back after the device has exited.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tandem_actors::config::{DemoConfig, DeviceConfig, EdgeConfig};
use tandem_actors::report::{EdgeReady, ReportFileError, RunReport, read_json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::Tandem;
use crate::proxy::ChaosProxy;

/// Longest wait for the edge to load its series and listen.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for the edge to drain and stop once its stdin is closed; then it is killed.
pub const EDGE_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack on top of a bounded device run (its frames or duration, the connect wait and the
/// drain): loading the series and models, start-up on a busy machine.
pub const DEVICE_SLACK: Duration = Duration::from_secs(120);

/// How long a device run with this config may take before it counts as hung, or `None` for a
/// run that only ends on a signal (neither `frames` nor `duration_ms`).
pub fn device_deadline(cfg: &DeviceConfig) -> Option<Duration> {
    let cam = &cfg.camera;
    let run = match (cam.duration_ms, cam.frames) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Some(n)) if cam.fps_or_default().is_finite() && cam.fps_or_default() > 0.0 => {
            Duration::try_from_secs_f64(n as f64 / cam.fps_or_default()).ok()?
        }
        _ => return None,
    };
    Some(run + Duration::from_millis(cfg.link.connect_wait_ms) + cfg.drain() + DEVICE_SLACK)
}

/// A running edge + device pair.
pub struct Pair {
    edge: Child,
    device: Child,
    edge_echo: Option<JoinHandle<()>>,
    device_echo: Option<JoinHandle<()>>,
    /// Where the device writes its report.
    summary: PathBuf,
    /// Where the device writes its ready file (spawned through a proxy only).
    device_ready: PathBuf,
    /// The edge's config, for a restart.
    edge_config: EdgeConfig,
    /// Edge processes started so far (1 + restarts).
    edge_starts: u32,
    /// Where the edge listens.
    ready: EdgeReady,
    /// The two configs, the ready file and the summary: a fresh private (0700) directory with a
    /// random name, removed on drop.
    dir: tempfile::TempDir,
    /// When the device counts as hung and is killed ([`device_deadline`]); `None` = unbounded.
    device_deadline: Option<tokio::time::Instant>,
    /// Stops the device on SIGINT/SIGTERM ([`stop_on_signal`]); aborted with the pair.
    signals: JoinHandle<()>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.signals.abort();
    }
}

/// How a [`Pair`] ended.
#[derive(Debug)]
pub struct Finished {
    /// The device's exit status.
    pub device: ExitStatus,
    /// What the device wrote to `--summary-out` (an error when it wrote nothing: it failed before
    /// its summary).
    pub report: Result<RunReport, ReportFileError>,
}

/// The edge process and the task echoing its output.
struct EdgeProcess {
    child: Child,
    echo: JoinHandle<()>,
    ready: EdgeReady,
}

/// Start `tandem edge` with the config `edge_toml`, wait until its ready file `ready_file` (which
/// must not exist yet) appears, echo its output.
async fn start_edge(tandem: &Tandem, edge_toml: &Path, ready_file: &Path) -> anyhow::Result<EdgeProcess> {
    let mut child = Command::new(tandem.path())
        .args(["edge", "--exit-on-stdin-eof", "--config"])
        .arg(edge_toml)
        .arg("--ready-file")
        .arg(ready_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("starting the edge process")?;
    let mut lines = BufReader::new(child.stdout.take().context("the edge's stdout")?).lines();
    let ready = match tokio::time::timeout(READY_TIMEOUT, wait_ready(&mut child, &mut lines, ready_file)).await {
        Ok(ready) => ready?,
        Err(_) => anyhow::bail!("the edge did not listen within {} s", READY_TIMEOUT.as_secs()),
    };
    let echo = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("[edge] {line}");
        }
    });
    Ok(EdgeProcess { child, echo, ready })
}

impl Pair {
    /// Write the two configs, start the edge, wait until it listens, start the device.
    /// `demo.edge.listen` should be an ephemeral loopback address (`127.0.0.1:0`).
    pub async fn spawn(tandem: &Tandem, demo: &DemoConfig) -> anyhow::Result<Self> {
        Self::spawn_via(tandem, demo, None).await
    }

    /// [`Pair::spawn`], the device connecting through `proxy` (pointed at the edge once it
    /// listens) when one is given, and writing its `--ready-file` ([`Pair::device_ready_file`]).
    pub async fn spawn_via(tandem: &Tandem, demo: &DemoConfig, proxy: Option<&ChaosProxy>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-run-")
            .tempdir()
            .context("creating a temporary directory for the configs")?;
        let edge_toml = dir.path().join("edge.toml");
        let device_toml = dir.path().join("device.toml");
        std::fs::write(&edge_toml, toml::to_string(&demo.edge)?)
            .with_context(|| format!("writing {}", edge_toml.display()))?;
        std::fs::write(&device_toml, toml::to_string(&demo.device)?)
            .with_context(|| format!("writing {}", device_toml.display()))?;
        let ready_file = dir.path().join("edge-ready.json");
        let signals = Signals::new()?;
        let summary = dir.path().join("device-summary.json");
        let device_ready = dir.path().join("device-ready.json");

        // The children run in their own process groups, so a terminal's Ctrl-C reaches this
        // process only, and this process owns the shutdown (below, `stop_on_signal`).
        let EdgeProcess { child: edge, echo: edge_echo, ready } = start_edge(tandem, &edge_toml, &ready_file).await?;
        let edge_addr = match proxy {
            Some(p) => {
                p.set_upstream(ready.listen);
                p.addr()
            }
            None => ready.listen,
        };
        let mut device = Command::new(tandem.path());
        device
            .args(["device", "--status", "--stop-on-stdin-eof", "--edge", &edge_addr.to_string(), "--config"])
            .arg(&device_toml)
            .arg("--summary-out")
            .arg(&summary);
        if proxy.is_some() {
            device.arg("--ready-file").arg(&device_ready);
        }
        let mut device = device
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting the device process")?;
        let device_echo = device.stdout.take().map(|out| {
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("{line}");
                }
            })
        });
        let device_deadline = device_deadline(&demo.device).map(|d| tokio::time::Instant::now() + d);
        let signals = tokio::spawn(stop_on_signal(device.stdin.take(), signals));
        Ok(Self {
            edge,
            device,
            edge_echo: Some(edge_echo),
            device_echo,
            summary,
            device_ready,
            ready,
            edge_config: demo.edge.clone(),
            edge_starts: 1,
            dir,
            device_deadline,
            signals,
        })
    }

    /// Where the device writes its [`DeviceReady`](tandem_actors::report::DeviceReady) (only
    /// when spawned through a proxy).
    pub fn device_ready_file(&self) -> &Path {
        &self.device_ready
    }

    /// SIGKILL the edge and wait until it is gone (a fault of `tandem soak --faults`).
    pub async fn kill_edge(&mut self) -> anyhow::Result<()> {
        self.edge.start_kill().context("killing the edge")?;
        self.edge.wait().await.context("waiting for the killed edge")?;
        if let Some(echo) = self.edge_echo.take() {
            // Its stdout closed with it.
            let _ = echo.await;
        }
        Ok(())
    }

    /// Start a new edge on the address the first one listened on (after [`Pair::kill_edge`]) and
    /// wait until it listens. Its `/metrics`, if any, is on a fresh ephemeral port.
    pub async fn restart_edge(&mut self, tandem: &Tandem) -> anyhow::Result<()> {
        self.edge_starts += 1;
        let n = self.edge_starts;
        let mut cfg = self.edge_config.clone();
        cfg.listen = self.ready.listen.to_string();
        let edge_toml = self.dir.path().join(format!("edge-{n}.toml"));
        std::fs::write(&edge_toml, toml::to_string(&cfg)?)
            .with_context(|| format!("writing {}", edge_toml.display()))?;
        let ready_file = self.dir.path().join(format!("edge-ready-{n}.json"));
        let EdgeProcess { child, echo, ready } = start_edge(tandem, &edge_toml, &ready_file).await?;
        anyhow::ensure!(
            ready.listen == self.ready.listen,
            "the restarted edge listens on {} instead of {}",
            ready.listen,
            self.ready.listen
        );
        self.edge = child;
        self.edge_echo = Some(echo);
        Ok(())
    }

    /// Process ids of the edge and the device (`None` once that one has been waited for).
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (self.edge.id(), self.device.id())
    }

    /// Where the edge listens, from its ready file.
    pub fn edge_ready(&self) -> EdgeReady {
        self.ready
    }

    /// Wait for the device to exit (cancel-safe: usable in `select!`; [`Pair::finish`] still works
    /// afterwards).
    /// A device still running past its [`device_deadline`] is killed and this is an error.
    pub async fn wait_device(&mut self) -> anyhow::Result<ExitStatus> {
        let Some(deadline) = self.device_deadline else {
            return self.device.wait().await.context("waiting for the device process");
        };
        match tokio::time::timeout_at(deadline, self.device.wait()).await {
            Ok(status) => status.context("waiting for the device process"),
            Err(_) => {
                self.device.kill().await.context("killing the hung device process")?;
                anyhow::bail!("the device did not finish its bounded run in time (hung?); killed it")
            }
        }
    }

    /// Wait for the device, then stop the edge: close its stdin, give it
    /// [`EDGE_STOP_TIMEOUT`] to drain, kill it. Reads the device's report.
    pub async fn finish(mut self) -> anyhow::Result<Finished> {
        let device = self.wait_device().await?;
        drop(self.edge.stdin.take());
        match tokio::time::timeout(EDGE_STOP_TIMEOUT, self.edge.wait()).await {
            Ok(status) => {
                status.context("waiting for the edge process")?;
            }
            Err(_) => {
                eprintln!("[tandem] the edge did not stop in time; killing it");
                self.edge.kill().await.context("killing the edge process")?;
            }
        }
        for echo in [self.edge_echo.take(), self.device_echo.take()].into_iter().flatten() {
            let _ = echo.await;
        }
        std::io::stdout().flush()?;
        Ok(Finished { device, report: read_json(&self.summary) })
    }
}

/// Signals to this process, caught from the start of [`Pair::spawn`] (so none is lost while the
/// edge loads): SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt()).context("catching SIGINT")?,
                term: signal(SignalKind::terminate()).context("catching SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next SIGINT or SIGTERM; its name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// On the first SIGINT or SIGTERM, close the device's stdin: it stops its camera, drains, writes
/// its summary and exits, and [`Pair::finish`] then stops the edge the same way — so a signal
/// ends the pair in order, within the device's drain deadline, and nothing is left running. A
/// pipe rather than a forwarded signal: no `unsafe` `kill(2)`, and it also works when this
/// process dies outright (the pipe closes with it).
async fn stop_on_signal(device_stdin: Option<tokio::process::ChildStdin>, mut signals: Signals) {
    let mut stdin = device_stdin;
    loop {
        let name = signals.next().await;
        if stdin.take().is_some() {
            eprintln!("\n[tandem] {name}: stopping the device (it drains and writes its summary), then the edge");
        } else {
            eprintln!("\n[tandem] {name}: already stopping; waiting for the device to drain and the edge to stop");
        }
    }
}

/// Echo the edge's lines until its ready file exists; the edge's exit first is an error.
async fn wait_ready(
    edge: &mut Child,
    lines: &mut Lines<BufReader<ChildStdout>>,
    ready_file: &Path,
) -> anyhow::Result<EdgeReady> {
    loop {
        let Some(line) = lines.next_line().await.context("reading the edge's output")? else {
            let status = edge.wait().await.context("waiting for the edge process")?;
            anyhow::bail!("the edge exited before listening ({status})");
        };
        println!("[edge] {line}");
        match read_json::<EdgeReady>(ready_file) {
            Ok(ready) => return Ok(ready),
            Err(ReportFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context("reading the edge's ready file")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_run_has_a_deadline_and_an_open_ended_one_has_none() {
        let mut cfg = DeviceConfig::default();
        assert_eq!(device_deadline(&cfg), None, "no frames, no duration: runs until a signal");
        cfg.camera.duration_ms = Some(20_000);
        let slack = Duration::from_millis(cfg.link.connect_wait_ms) + cfg.drain() + DEVICE_SLACK;
        assert_eq!(device_deadline(&cfg), Some(Duration::from_secs(20) + slack));
        cfg.camera.duration_ms = None;
        cfg.camera.frames = Some(600);
        cfg.camera.fps = Some(30.0);
        assert_eq!(device_deadline(&cfg), Some(Duration::from_secs(20) + slack));
        cfg.camera.fps = Some(0.0);
        assert_eq!(device_deadline(&cfg), None, "no frame rate to bound frames by");
    }
}
