//! `tandem run`: the demo — edge and device as two processes on loopback.
//!
//! Spawns this binary twice (`edge`, then `device` pointed at the edge's address), with configs
//! written from the demo file's `[edge]` and `[device]` sections. The device prints a live
//! status line and the final summary; the edge is stopped (gracefully, by closing its stdin)
//! once the device is done. Ctrl-C reaches both children; this process waits for them.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tandem_actors::config::{self, DemoConfig};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Demo config with [edge] and [device] sections.
    #[arg(long, default_value = "configs/demo.toml")]
    config: PathBuf,
    /// Series directory for both roles (overrides the config).
    #[arg(long)]
    series: Option<PathBuf>,
    /// Plan for the device (overrides the config).
    #[arg(long)]
    plan: Option<String>,
    /// Stop after N frames (overrides the config).
    #[arg(long, conflicts_with = "duration")]
    frames: Option<u64>,
    /// Stop after this long, e.g. 30s (overrides the config).
    #[arg(long, value_parser = super::device::parse_duration)]
    duration: Option<Duration>,
    #[command(flatten)]
    adapt: super::device::AdaptArgs,
}

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let mut demo: DemoConfig = config::load(&a.config)?;
    if a.series.is_some() {
        demo.series = a.series;
    }
    let series = demo.series.clone().or(demo.edge.series.clone()).context("no series directory: pass --series DIR or set `series` in the demo config")?;
    anyhow::ensure!(series.join("series.toml").is_file(), "{} holds no series.toml (run `tandem prune` first, or pass --series DIR)", series.display());
    demo.edge.series = Some(series.clone());
    demo.edge.listen = "127.0.0.1:0".into();
    demo.device.series = Some(series);
    demo.device.edge = None;
    if a.plan.is_some() {
        demo.device.plan = a.plan;
    }
    if let Some(n) = a.frames {
        demo.device.camera.frames = Some(n);
        demo.device.camera.duration_ms = None;
    }
    if let Some(d) = a.duration {
        demo.device.camera.duration_ms = Some(d.as_millis().max(1) as u64);
        demo.device.camera.frames = None;
    }
    a.adapt.apply(&mut demo.device);
    demo.validate()?;

    let dir = std::env::temp_dir().join(format!("tandem-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let edge_toml = dir.join("edge.toml");
    let device_toml = dir.join("device.toml");
    std::fs::write(&edge_toml, toml::to_string(&demo.edge)?)?;
    std::fs::write(&device_toml, toml::to_string(&demo.device)?)?;
    let exe = std::env::current_exe().context("locating this binary")?;

    // Ctrl-C goes to the whole process group: the children stop themselves; we wait for them.
    let rt = super::device::runtime()?;
    rt.spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!("\n[run] Ctrl-C: waiting for the device to drain and the edge to stop");
        }
    });

    let mut edge = Command::new(&exe)
        .args(["edge", "--exit-on-stdin-eof", "--config"])
        .arg(&edge_toml)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the edge process")?;
    let edge_out = edge.stdout.take().context("edge stdout")?;
    let mut lines = BufReader::new(edge_out).lines();
    let addr = loop {
        let Some(line) = lines.next() else {
            let status = edge.wait()?;
            anyhow::bail!("the edge exited before listening ({status})");
        };
        let line = line?;
        println!("[edge] {line}");
        if let Some(rest) = line.strip_prefix("edge listening on ") {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    let forward = std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("[edge] {line}");
        }
    });

    let status = Command::new(&exe)
        .args(["device", "--status", "--edge", &addr, "--config"])
        .arg(&device_toml)
        .status()
        .context("running the device process")?;

    drop(edge.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if edge.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("[run] the edge did not stop in time; killing it");
            edge.kill()?;
            edge.wait()?;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = forward.join();
    std::io::stdout().flush()?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(status.success(), "the device process failed ({status})");
    Ok(())
}
