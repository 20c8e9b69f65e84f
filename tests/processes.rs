//! `tandem edge` and `tandem device` as two processes over loopback, and `tandem run` spawning
//! both itself. A tiny random-weight series and synthetic frames keep them fast.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// The number after `key` in `text` (`"results 20"` → 20).
fn count_after(text: &str, key: &str) -> u64 {
    let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key:?} not in:\n{text}")) + key.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in:\n{text}"))
}

#[test]
fn edge_and_device_binaries_run_as_separate_processes() {
    let series = tiny_series("two-processes");
    let mut edge = Reaper(
        Command::new(TANDEM)
            .args(["edge", "--listen", "127.0.0.1:0", "--workers", "1", "--series"])
            .arg(&series)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem edge"),
    );
    let mut first = String::new();
    BufReader::new(edge.0.stdout.take().expect("stdout")).read_line(&mut first).expect("edge prints its address");
    let addr = first
        .strip_prefix("edge listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));

    let out = Command::new(TANDEM)
        .args([
            "device",
            "--edge",
            addr,
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
        .stderr(Stdio::null())
        .output()
        .expect("run tandem device");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "device failed ({}):\n{text}", out.status);
    assert!(text.contains("[balanced]"), "{text}");
    assert_eq!(count_after(&text, "captured"), 20);
    let (results, dropped) = (count_after(&text, "= results"), count_after(&text, "+ dropped"));
    assert_eq!(results + dropped, 20, "{text}");
    assert!(count_after(&text, "(edge") > 0, "results must come from the edge process:\n{text}");
    drop(edge);
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
    let out = Command::new(TANDEM)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--series")
        .arg(&series)
        .stderr(Stdio::null())
        .output()
        .expect("run tandem run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tandem run failed ({}):\n{text}", out.status);
    assert!(text.contains("[edge] edge listening on 127.0.0.1:"), "{text}");
    assert_eq!(count_after(&text, "captured"), 15, "{text}");
    assert!(text.contains("[balanced]"), "{text}");
    assert!(text.contains("[edge] edge stopped:"), "the edge is stopped gracefully:\n{text}");
    let _ = std::fs::remove_dir_all(&series);
}
