//! `tandem run`: the demo pair — edge and device as two processes on loopback, echoed.
//!
//! The device prints a live status line and its final summary; the edge is stopped (gracefully,
//! by closing its stdin) once the device is done. Ctrl-C reaches both children; this process
//! waits for them.

use std::path::Path;
use std::time::Duration;

use tandem_actors::config::{DemoConfig, DeviceConfig};
use tandem_actors::report::write_json;

use crate::Tandem;
use crate::pair::Pair;

/// Set how the device's camera stops: after `frames`, or after `duration`.
pub fn stop_after(cfg: &mut DeviceConfig, frames: Option<u64>, duration: Option<Duration>) {
    if let Some(n) = frames {
        cfg.camera.frames = Some(n);
        cfg.camera.duration_ms = None;
    }
    if let Some(d) = duration {
        cfg.camera.duration_ms = Some(d.as_millis().max(1) as u64);
        cfg.camera.frames = None;
    }
}

/// Run the pair of `demo` to the end; with `summary_out`, write the device's report there too
/// (atomically; the JSON `tandem device --summary-out` writes).
pub fn run(tandem: &Tandem, demo: &DemoConfig, summary_out: Option<&Path>) -> anyhow::Result<()> {
    let rt = crate::runtime()?;
    let done = rt.block_on(async { Pair::spawn(tandem, demo).await?.finish().await })?;
    if let (Some(path), Ok(report)) = (summary_out, &done.report) {
        write_json(path, report)?;
    }
    anyhow::ensure!(done.device.success(), "the device process failed ({})", done.device);
    if summary_out.is_some() {
        done.report?;
    }
    Ok(())
}
