//! Typed results one process writes for another to read, as JSON files written atomically.
//!
//! - [`RunReport`]: the device's final summary (frame accounting per drop reason, latency
//!   percentiles per stage, bytes) and, when a controller ran, its status and calibration —
//!   `tandem device --summary-out FILE`. Its [`Display`](fmt::Display) is the human summary the
//!   device prints, so the two never disagree.
//! - [`EdgeReady`]: the addresses the edge listens on — `tandem edge --ready-file FILE`, written
//!   once both listeners are bound and before the edge prints its first line.
//! - [`DeviceReady`]: where a running device serves `/metrics` — `tandem device --ready-file
//!   FILE`, written once its pipeline runs and its HTTP listener is bound (how `tandem soak
//!   --faults` finds the metrics it measures recovery with).
//!
//! [`write_json`] writes a temporary file in the target's directory and renames it over the
//! target, so a reader sees either no file or a whole one, never a half-written one.
//! [`read_json`] is its counterpart. Nothing here parses human-readable text.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tandem_planner::Calibration;

use crate::controller::{ControllerStatus, SwapRecord};
use crate::ledger::Summary;

/// What a device run ended with: `tandem device --summary-out FILE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// The ledger's final summary (without the per-frame results).
    pub summary: Summary,
    /// The controller at the end of the run; `None` for a fixed plan.
    pub controller: Option<ControllerReport>,
}

/// The controller's state at the end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerReport {
    /// Swaps applied.
    pub swaps_applied: u64,
    /// Swaps rolled back.
    pub swaps_failed: u64,
    /// Probes answered.
    pub probes: u64,
    /// Bytes the answered probes put on the link.
    pub probe_bytes: u64,
    /// Last bandwidth estimate, bit/s (`None`: the controller never had one).
    pub bandwidth_bps: Option<f64>,
    /// Last smoothed RTT estimate, ms.
    pub rtt_ms: Option<f64>,
    /// The planner's (calibrated) prediction for the plan in force at the last estimate, ms.
    pub predicted_ms: Option<f64>,
    /// The calibration the planner priced with at the end.
    pub calibration: Calibration,
    /// Results taken into the calibration.
    pub calibrated_frames: u64,
    /// Every swap decision (the latest 256) with the planner's best plans at the time: why each
    /// plan was in force.
    #[serde(default)]
    pub swaps: Vec<SwapRecord>,
}

impl From<&ControllerStatus> for ControllerReport {
    fn from(st: &ControllerStatus) -> Self {
        Self {
            swaps_applied: st.applied,
            swaps_failed: st.failed,
            probes: st.probes,
            probe_bytes: st.probe_bytes,
            bandwidth_bps: st.bandwidth_bps,
            rtt_ms: st.rtt_ms,
            predicted_ms: st.predicted_ms,
            calibration: st.calibration,
            calibrated_frames: st.calibrated_frames,
            swaps: st.swaps.clone(),
        }
    }
}

impl fmt::Display for ControllerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "controller: {} swaps applied, {} rolled back, {} probes ({:.1} kB), last estimate {:.3} Mbit/s RTT {:.2} ms, plan in force predicted {:.2} ms",
            self.swaps_applied,
            self.swaps_failed,
            self.probes,
            self.probe_bytes as f64 / 1e3,
            self.bandwidth_bps.unwrap_or(0.0) / 1e6,
            self.rtt_ms.unwrap_or(0.0),
            self.predicted_ms.unwrap_or(f64::NAN)
        )?;
        let k = self.calibration;
        write!(
            f,
            "calibration (x scale + offset): device x{:.3} {:+.2} ms, encode x{:.3} {:+.2} ms, edge x{:.3} {:+.2} ms ({} frames)",
            k.device_scale,
            k.device_offset_ms,
            k.encode_scale,
            k.encode_offset_ms,
            k.edge_scale,
            k.edge_offset_ms,
            self.calibrated_frames
        )?;
        // Why each plan was in force: the latest swaps with the planner's best plans then.
        let shown = self.swaps.len().min(SWAPS_PRINTED);
        if self.swaps.len() > shown {
            write!(f, "\nswaps: {} earlier ones in the JSON summary", self.swaps.len() - shown)?;
        }
        for s in &self.swaps[self.swaps.len() - shown..] {
            write!(
                f,
                "\nswap epoch {} at {:.1} s, {:.2} Mbit/s: {} {}",
                s.epoch,
                s.at_s,
                s.bandwidth_bps / 1e6,
                s.result.as_str(),
                s.chosen
            )?;
            for (i, r) in s.ranked.iter().enumerate() {
                write!(f, "\n    planner #{}: {r}", i + 1)?;
            }
        }
        Ok(())
    }
}

/// The human summary prints at most this many swaps (the JSON has them all).
const SWAPS_PRINTED: usize = 12;

/// The human summary: the controller's two lines (if it ran), then the ledger's summary.
impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.controller {
            writeln!(f, "{c}")?;
        }
        write!(f, "{}", self.summary)
    }
}

/// Where a running edge listens: `tandem edge --ready-file FILE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeReady {
    /// The frame listener devices connect to.
    pub listen: SocketAddr,
    /// The `/metrics` endpoint, when one is served.
    pub metrics: Option<SocketAddr>,
}

/// Where a running device serves its HTTP endpoint: `tandem device --ready-file FILE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceReady {
    /// The `/metrics` endpoint, when one is served.
    pub metrics: Option<SocketAddr>,
}

/// Writing or reading one of these files.
#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    /// Creating, writing, renaming or reading the file.
    #[error("{}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The content is not the JSON of the expected type (or a value could not be written).
    #[error("{}: not a valid {what}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The type expected.
        what: &'static str,
        /// serde_json's error (line and column).
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportFileError + '_ {
    move |source| ReportFileError::Io { path: path.to_path_buf(), source }
}

/// Short name of `T` for error messages (`RunReport`, not the module path).
fn type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Write `value` as pretty JSON to `path` atomically: into a temporary file in the same
/// directory (so the rename cannot cross file systems), flushed to disk, then renamed over `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ReportFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".tandem-").suffix(".tmp").tempfile_in(dir).map_err(io(path))?;
    serde_json::to_writer_pretty(&mut tmp, value).map_err(|source| ReportFileError::Json {
        path: path.to_path_buf(),
        what: type_name::<T>(),
        source,
    })?;
    tmp.write_all(b"\n").map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| ReportFileError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Read a file [`write_json`] wrote.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportFileError> {
    let text = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&text).map_err(|source| ReportFileError::Json {
        path: path.to_path_buf(),
        what: type_name::<T>(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ledger::{DropReason, Percentiles, SummaryStats};
    use crate::types::Stage;

    fn priced(model_id: u32, point: &str, coding: Option<&str>, predicted_ms: f64) -> crate::controller::PricedPlan {
        crate::controller::PricedPlan {
            model_id,
            model: format!("m{model_id}"),
            point: point.into(),
            coding: coding.map(str::to_owned),
            predicted_ms,
            accuracy: 0.9125,
        }
    }

    fn report() -> RunReport {
        // Literals of at most 16 significant digits: the default serde_json parser returns them
        // exactly (see `floats_beyond_16_digits_come_back_within_one_ulp`).
        let pct =
            |mean: f64, p50: f64, max: f64| Percentiles { n: 178, mean, p50, p90: p50 * 2.0, p99: p50 * 4.0, max };
        let summary = Summary {
            captured: 180,
            edge: 170,
            local: 8,
            rerun_local: 0,
            labelled: 178,
            correct: 160,
            dropped: BTreeMap::from([(DropReason::CameraOverrun, 1), (DropReason::Deadline, 1)]),
            stats: SummaryStats {
                wall_s: 6.021,
                e2e_ms: pct(26.7464, 26.623, 82.5313),
                e2e_edge_ms: pct(26.0354, 25.912, 80.3272),
                overhead_ms: pct(0.8544, 0.731, 2.2661),
                stage_mean_ms: BTreeMap::from([(Stage::Front, 3.25), (Stage::EdgeInfer, 1.0 / 3.0)]),
                bytes_sent: 123_456,
            },
            predictions: Some(crate::predictions::PredictionsReport { written: 179, dropped: 1 }),
            source_error: None,
            source_restarts: 0,
            source_gap_s: 0.0,
            results: Vec::new(),
        };
        let controller = ControllerReport {
            swaps_applied: 2,
            swaps_failed: 0,
            probes: 3,
            probe_bytes: 15_200,
            bandwidth_bps: Some(982_000.0),
            rtt_ms: Some(4.61),
            predicted_ms: None,
            calibration: Calibration { device_offset_ms: 2.5, ..Calibration::scales(1.412, 2.0, 0.3) },
            calibrated_frames: 231,
            swaps: vec![crate::controller::SwapRecord {
                epoch: 2,
                at_s: 3.31,
                bandwidth_bps: 982_000.0,
                result: crate::controller::SwapResult::Applied,
                chosen: priced(7, "pool4", Some("q8-lz4"), 23.5),
                ranked: vec![priced(7, "pool4", Some("q8-lz4"), 23.5), priced(7, "end", None, 31.0)],
            }],
        };
        RunReport { summary, controller: Some(controller) }
    }

    fn assert_same(a: &RunReport, b: &RunReport) {
        let (x, y) = (&a.summary, &b.summary);
        assert_eq!(
            (x.captured, x.edge, x.local, x.labelled, x.correct, &x.dropped),
            (y.captured, y.edge, y.local, y.labelled, y.correct, &y.dropped)
        );
        assert_eq!(x.stats, y.stats);
        assert_eq!(a.controller, b.controller);
    }

    #[test]
    fn a_run_report_is_written_atomically_and_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let written = report();
        write_json(&path, &written).unwrap();
        let read: RunReport = read_json(&path).unwrap();
        assert_same(&written, &read);
        // Nothing but the file itself is left in the directory (the temporary was renamed).
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("summary.json")]);
        // Drop reasons and stages are keyed by their metric labels.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"camera_overrun\": 1") && text.contains("\"edge_infer\""), "{text}");
        // Overwriting replaces the whole file.
        let mut fixed = report();
        fixed.controller = None;
        write_json(&path, &fixed).unwrap();
        assert_same(&fixed, &read_json(&path).unwrap());
    }

    #[test]
    fn floats_beyond_16_digits_come_back_within_one_ulp() {
        // serde_json without `float_roundtrip` (which would rebuild burn): exact to 16 digits,
        // at most one unit in the last place off beyond — far below anything a reader prints.
        for v in [45.259100000000004_f64, 0.1 + 0.2, 2.0_f64.sqrt(), 1e-300 / 3.0] {
            let back: f64 = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert!(v.to_bits().abs_diff(back.to_bits()) <= 1, "{v:?} came back as {back:?}");
        }
    }

    #[test]
    fn the_human_summary_is_rendered_from_the_report() {
        let text = report().to_string();
        assert!(text.starts_with("controller: 2 swaps applied, 0 rolled back, 3 probes (15.2 kB)"), "{text}");
        assert!(text.contains("plan in force predicted NaN ms"), "{text}");
        assert!(
            text.contains(
                "calibration (x scale + offset): device x1.412 +2.50 ms, encode x2.000 +0.00 ms, edge x0.300 +0.00 ms (231 frames)"
            ),
            "{text}"
        );
        assert!(
            text.contains("swap epoch 2 at 3.3 s, 0.98 Mbit/s: applied model 7 (m7) pool4 q8-lz4 23.5 ms 91.25 %"),
            "{text}"
        );
        assert!(text.contains("planner #2: model 7 (m7) end local 31.0 ms"), "{text}");
        assert!(
            text.contains("frames    captured 180 = results 178 (edge 170, local 8) + dropped 2  [balanced]"),
            "{text}"
        );
    }

    #[test]
    fn a_ready_file_reads_back_and_a_bad_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        let ready = EdgeReady { listen: "127.0.0.1:40123".parse().unwrap(), metrics: None };
        write_json(&path, &ready).unwrap();
        assert_eq!(read_json::<EdgeReady>(&path).unwrap(), ready);
        std::fs::write(&path, "{\"listen\": \"nowhere\"}").unwrap();
        let err = read_json::<EdgeReady>(&path).unwrap_err();
        assert!(matches!(err, ReportFileError::Json { what: "EdgeReady", .. }), "{err:?}");
        let missing = read_json::<EdgeReady>(&dir.path().join("absent.json")).unwrap_err();
        assert!(matches!(missing, ReportFileError::Io { .. }), "{missing:?}");
    }
}
