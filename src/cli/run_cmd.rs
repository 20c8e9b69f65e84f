//! `tandem run`: the demo — edge and device as two processes on loopback.
//!
//! Spawns this binary twice (`edge`, then `device` pointed at the edge's address), with configs
//! written from the demo file's `[edge]` and `[device]` sections. The device prints a live
//! status line and the final summary; the edge is stopped (gracefully, by closing its stdin)
//! once the device is done. Ctrl-C reaches both children; this process waits for them.
//!
//! The pair of processes ([`Pair`]) and the flags that build its config ([`PairArgs`]) are shared
//! with `tandem soak`, which runs the same two processes for longer and watches them from outside.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tandem_actors::config::{self, DemoConfig, DeviceConfig};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// Stop after N frames (overrides the config).
    #[arg(long, conflicts_with = "duration")]
    frames: Option<u64>,
    /// Stop after this long, e.g. 30s (overrides the config).
    #[arg(long, value_parser = super::device::parse_duration)]
    duration: Option<Duration>,
}

/// The flags that pick the two roles' config, shared by `tandem run` and `tandem soak`.
#[derive(Args, Debug)]
pub struct PairArgs {
    /// Demo config with [edge] and [device] sections.
    #[arg(long, default_value = "configs/demo.toml")]
    config: PathBuf,
    /// Series directory for both roles (overrides the config).
    #[arg(long)]
    series: Option<PathBuf>,
    /// Plan for the device (overrides the config).
    #[arg(long)]
    plan: Option<String>,
    #[command(flatten)]
    adapt: super::device::AdaptArgs,
}

impl PairArgs {
    /// The demo config with these flags applied, the edge on an ephemeral loopback port, checked.
    /// `tweak` edits the device section before the adaptation flags, so a flag given on the
    /// command line still wins over what the caller sets there (e.g. soak's default trace).
    pub(super) fn load(&self, tweak: impl FnOnce(&mut DeviceConfig)) -> anyhow::Result<DemoConfig> {
        let mut demo: DemoConfig = config::load(&self.config)?;
        if self.series.is_some() {
            demo.series.clone_from(&self.series);
        }
        let series = demo
            .series
            .clone()
            .or(demo.edge.series.clone())
            .context("no series directory: pass --series DIR or set `series` in the demo config")?;
        anyhow::ensure!(
            series.join("series.toml").is_file(),
            "{} holds no series.toml (run `tandem prune` first, or pass --series DIR)",
            series.display()
        );
        demo.edge.series = Some(series.clone());
        demo.edge.listen = "127.0.0.1:0".into();
        demo.device.series = Some(series);
        demo.device.edge = None;
        if self.plan.is_some() {
            demo.device.plan.clone_from(&self.plan);
        }
        tweak(&mut demo.device);
        self.adapt.apply(&mut demo.device);
        demo.validate()?;
        Ok(demo)
    }
}

/// Set how the device's camera stops: after `frames`, or after `duration`.
pub(super) fn stop_after(cfg: &mut DeviceConfig, frames: Option<u64>, duration: Option<Duration>) {
    if let Some(n) = frames {
        cfg.camera.frames = Some(n);
        cfg.camera.duration_ms = None;
    }
    if let Some(d) = duration {
        cfg.camera.duration_ms = Some(d.as_millis().max(1) as u64);
        cfg.camera.frames = None;
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let demo = a.pair.load(|device| stop_after(device, a.frames, a.duration))?;
    let mut pair = Pair::spawn(&demo)?;
    let done = pair.finish()?;
    anyhow::ensure!(done.device.success(), "the device process failed ({})", done.device);
    Ok(())
}

/// Lines of the device's output kept for the caller: enough for the final summary.
const KEEP_DEVICE_LINES: usize = 64;

/// An edge and a device process of this binary on loopback, the device pointed at the edge.
///
/// Both children's stdout is echoed to ours (the edge's prefixed `[edge]`); the device's last
/// lines are kept, so a caller can read its summary. Dropping a `Pair` that was not finished
/// kills both children, so an error on the way leaves no process behind.
pub(super) struct Pair {
    edge: Child,
    device: Child,
    edge_echo: Option<JoinHandle<()>>,
    device_echo: Option<JoinHandle<VecDeque<String>>>,
    /// The two configs: a fresh private (0700) directory with a random name, removed on drop.
    _dir: tempfile::TempDir,
    /// Holds the Ctrl-C handler: the signal reaches the whole process group, the children stop
    /// themselves, and this process must live on to wait for them.
    _signals: tokio::runtime::Runtime,
}

/// How a [`Pair`] ended.
pub(super) struct Finished {
    /// The device's exit status.
    pub device: ExitStatus,
    /// The device's last lines of output (its summary among them).
    pub device_tail: Vec<String>,
}

impl Pair {
    /// Write the two configs, start the edge, wait until it listens, start the device.
    pub(super) fn spawn(demo: &DemoConfig) -> anyhow::Result<Self> {
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
        let exe = std::env::current_exe().context("locating this binary")?;

        let signals = super::device::runtime()?;
        signals.spawn(async {
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                eprintln!("\n[tandem] Ctrl-C: waiting for the device to drain and the edge to stop");
            }
        });

        let mut edge = Command::new(&exe)
            .args(["edge", "--exit-on-stdin-eof", "--config"])
            .arg(&edge_toml)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the edge process")?;
        let (addr, lines) = match edge_address(&mut edge) {
            Ok(found) => found,
            Err(e) => {
                let _ = edge.kill();
                let _ = edge.wait();
                return Err(e);
            }
        };
        let edge_echo = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                println!("[edge] {line}");
            }
        });
        let device = Command::new(&exe)
            .args(["device", "--status", "--edge", &addr, "--config"])
            .arg(&device_toml)
            .stdout(Stdio::piped())
            .spawn();
        let mut device = match device {
            Ok(d) => d,
            Err(e) => {
                let _ = edge.kill();
                let _ = edge.wait();
                return Err(anyhow::Error::new(e).context("starting the device process"));
            }
        };
        let device_echo = device.stdout.take().map(|out| {
            std::thread::spawn(move || {
                let mut tail = VecDeque::with_capacity(KEEP_DEVICE_LINES);
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    println!("{line}");
                    if tail.len() == KEEP_DEVICE_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                tail
            })
        });
        Ok(Self { edge, device, edge_echo: Some(edge_echo), device_echo, _dir: dir, _signals: signals })
    }

    /// Process ids of the edge and the device.
    pub(super) fn pids(&self) -> (u32, u32) {
        (self.edge.id(), self.device.id())
    }

    /// Whether the device process has exited (it is reaped then: its pid is no longer ours).
    pub(super) fn device_exited(&mut self) -> anyhow::Result<bool> {
        Ok(self.device.try_wait().context("polling the device process")?.is_some())
    }

    /// Wait for the device, then stop the edge: close its stdin, give it 10 s to drain, kill it.
    pub(super) fn finish(&mut self) -> anyhow::Result<Finished> {
        let device = self.device.wait().context("waiting for the device process")?;
        drop(self.edge.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.edge.try_wait()?.is_none() {
            if Instant::now() > deadline {
                eprintln!("[tandem] the edge did not stop in time; killing it");
                self.edge.kill()?;
                self.edge.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(h) = self.edge_echo.take() {
            let _ = h.join();
        }
        let device_tail = self.device_echo.take().and_then(|h| h.join().ok()).map(Vec::from).unwrap_or_default();
        std::io::stdout().flush()?;
        Ok(Finished { device, device_tail })
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for child in [&mut self.device, &mut self.edge] {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The number after `key` in `line` of the device's summary (`"captured 180 = …"`, `"captured "`
/// → 180): the summary is the ledger's `Display`, meant for people, so callers that read it
/// (`tandem soak`, `tandem reproduce`) share this one reader.
pub(super) fn number_after(line: &str, key: &str) -> anyhow::Result<f64> {
    let at = line.find(key).with_context(|| format!("no {key:?} in {line:?}"))? + key.len();
    let text: String = line[at..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    text.parse().with_context(|| format!("no number after {key:?} in {line:?}"))
}

/// Read the edge's stdout until it says where it listens; echo what it printed on the way.
/// Returns the address and the rest of its output.
fn edge_address(edge: &mut Child) -> anyhow::Result<(String, std::io::Lines<BufReader<std::process::ChildStdout>>)> {
    let out = edge.stdout.take().context("edge stdout")?;
    let mut lines = BufReader::new(out).lines();
    loop {
        let Some(line) = lines.next() else {
            let status = edge.wait()?;
            anyhow::bail!("the edge exited before listening ({status})");
        };
        let line = line?;
        println!("[edge] {line}");
        if let Some(rest) = line.strip_prefix("edge listening on ") {
            return Ok((rest.split_whitespace().next().unwrap_or_default().to_string(), lines));
        }
    }
}
