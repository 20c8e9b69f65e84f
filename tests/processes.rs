//! `tandem edge` and `tandem device` as two processes over loopback, and `tandem run` spawning
//! both itself. A tiny random-weight series and synthetic frames keep them fast. What the tests
//! check comes from the typed files the processes write (`--ready-file`, `--summary-out`), never
//! from their printed text.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tandem_actors::report::{EdgeReady, RunReport, read_json};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// A fresh directory under cargo's per-target temp dir, holding a tiny series.
fn tiny_series(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tandem_actors::testkit::tiny_series(&dir).expect("tiny series");
    dir
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The summary a device wrote with `--summary-out`.
fn summary(path: &Path) -> RunReport {
    read_json(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}

#[test]
fn edge_and_device_binaries_run_as_separate_processes() {
    let series = tiny_series("two-processes");
    let (ready_file, summary_file) = (series.join("edge-ready.json"), series.join("summary.json"));
    let mut edge = Reaper(
        Command::new(TANDEM)
            .args(["edge", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--workers", "1", "--series"])
            .arg(&series)
            .arg("--ready-file")
            .arg(&ready_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem edge"),
    );
    // The edge writes its ready file before its first line: wait for that line (a wake-up, its
    // text is not read), then the file holds the bound addresses.
    // The reader lives as long as the edge: closing the pipe would end the edge at its next line.
    let mut edge_out = BufReader::new(edge.0.stdout.take().expect("stdout"));
    let mut first = String::new();
    edge_out.read_line(&mut first).expect("edge prints a line");
    let ready: EdgeReady = read_json(&ready_file).expect("the edge wrote its ready file before printing");
    assert!(ready.listen.ip().is_loopback() && ready.listen.port() != 0, "{ready:?}");
    let metrics = ready.metrics.expect("the metrics address is in the ready file");
    assert!(metrics.port() != 0 && metrics != ready.listen, "{ready:?}");
    let addr = ready.listen.to_string();

    let out = Command::new(TANDEM)
        .args([
            "device",
            "--edge",
            &addr,
            "--plan",
            "0:pool2:q8-lz4",
            "--source",
            "synthetic",
            "--frames",
            "20",
            "--fps",
            "100",
            "--series",
        ])
        .arg(&series)
        .arg("--summary-out")
        .arg(&summary_file)
        .stderr(Stdio::null())
        .output()
        .expect("run tandem device");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "device failed ({}):\n{text}", out.status);
    assert!(text.contains("[balanced]"), "{text}");
    let report = summary(&summary_file);
    let s = &report.summary;
    assert!(s.balanced(), "{s:?}");
    assert_eq!(s.captured, 20);
    assert_eq!(s.results_total() + s.dropped_total(), 20, "{s:?}");
    assert!(s.edge > 0, "results must come from the edge process:\n{text}");
    assert!(report.controller.is_none(), "a fixed plan runs no controller");
    // The human summary on stdout is rendered from the same report (re-read exactly: serde_json's
    // `float_roundtrip`).
    assert!(text.contains(&report.to_string()), "stdout:\n{text}\nreport:\n{report}");
    drop(edge);
    drop(edge_out);
    let _ = std::fs::remove_dir_all(&series);
}

#[test]
fn run_spawns_edge_and_device_and_prints_a_summary() {
    let series = tiny_series("run");
    let config = series.join("demo.toml");
    std::fs::write(
        &config,
        "[edge]\nworkers = 1\n\n[device]\nplan = \"1:pool3:q8c-lz4\"\n\n[device.camera]\nsource = \"synthetic\"\nfps = 100.0\nframes = 15\n",
    )
    .expect("write demo config");
    let summary_file = series.join("run-summary.json");
    let out = Command::new(TANDEM)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--series")
        .arg(&series)
        .arg("--summary-out")
        .arg(&summary_file)
        .stderr(Stdio::null())
        .output()
        .expect("run tandem run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tandem run failed ({}):\n{text}", out.status);
    assert!(text.contains("[edge] edge listening on 127.0.0.1:"), "{text}");
    let s = summary(&summary_file).summary;
    assert_eq!(s.captured, 15, "{text}");
    assert!(s.balanced(), "{s:?}");
    assert!(text.contains("[balanced]"), "{text}");
    assert!(text.contains("[edge] edge stopped:"), "the edge is stopped gracefully:\n{text}");
    let _ = std::fs::remove_dir_all(&series);
}

/// The children of `pid` (Linux: `/proc/PID/task/PID/children`).
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether `pid` is gone (or a zombie nobody reaped yet cannot be: its parent exited).
#[cfg(target_os = "linux")]
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// SIGTERM to `tandem run` (the parent only, not its process group) reaches the pair: the device
/// stops its camera, drains and writes its summary, then the edge stops; nothing is left running.
#[test]
#[cfg(target_os = "linux")]
fn sigterm_to_run_stops_both_children_and_the_summary_is_written() {
    let series = tiny_series("sigterm");
    let config = series.join("demo.toml");
    // Ten minutes: only the signal ends this run within the test's guard.
    std::fs::write(
        &config,
        "[edge]\nworkers = 1\n\n[device]\nplan = \"1:pool3:q8c-lz4\"\n\n[device.camera]\nsource = \"synthetic\"\nfps = 30.0\nduration_ms = \"10m\"\n",
    )
    .expect("write demo config");
    let summary_file = series.join("run-summary.json");
    let mut run = Reaper(
        Command::new(TANDEM)
            .args(["run", "--config"])
            .arg(&config)
            .arg("--series")
            .arg(&series)
            .arg("--summary-out")
            .arg(&summary_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem run"),
    );
    let pid = run.0.id();
    // Poll the process table (state, not time: the guard only bounds a hang).
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let kids = loop {
        let kids = children(pid);
        if kids.len() == 2 {
            break kids;
        }
        assert!(std::time::Instant::now() < guard, "tandem run did not start its two children");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = run.0.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < guard, "tandem run did not stop on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(status.success(), "tandem run after SIGTERM: {status}");
    for kid in kids {
        assert!(gone(kid), "child {kid} of tandem run still runs");
    }
    let s = summary(&summary_file).summary;
    assert!(s.balanced(), "{s:?}");
    for reason in s.dropped.keys() {
        // The edge outlives the device's drain: nothing is lost to the link going down.
        assert!(
            matches!(
                reason,
                tandem_actors::ledger::DropReason::Shutdown | tandem_actors::ledger::DropReason::CameraOverrun
            ),
            "{reason:?}: {s:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&series);
}

#[test]
fn a_bare_number_is_refused_as_a_duration_by_every_command() {
    for args in [["device", "--duration", "60"], ["run", "--duration", "60"], ["soak", "--duration", "60"]] {
        let out = Command::new(TANDEM).args(args).output().expect("run tandem");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error:\n{stderr}");
        assert!(stderr.contains("missing unit"), "{args:?}:\n{stderr}");
    }
    // With a unit, the same value parses (the run then fails later, for the missing series).
    let out =
        Command::new(TANDEM).args(["device", "--duration", "1m 30s", "--edge", "127.0.0.1:9"]).output().expect("run");
    assert_ne!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
