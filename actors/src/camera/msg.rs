use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One captured frame: provenance plus the normalised image it owns.
#[derive(Clone, Debug)]
pub struct CapturedFrame {
    /// Frame id, 0-based in capture order.
    pub frame_id: u64,
    /// Capture instant (end-to-end latency starts here).
    pub captured_at: Instant,
    /// The source's presentation timestamp, seconds (video sources).
    pub pts: Option<f64>,
    /// Normalised image, `shape` row-major.
    pub image: Vec<f32>,
    /// `[1, C, H, W]`.
    pub shape: [usize; 4],
    /// Ground-truth label.
    pub label: Option<u8>,
}

/// What the camera does when front inference is busy (its queue is full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Drop the frame just captured.
    DropNewest,
    /// Drop the oldest queued frame and queue the new one (lower latency for a live view).
    #[default]
    DropOldest,
}

/// The camera's inbox. Capacity 1, sent with `try_send` (a second Stop while one is queued is
/// redundant and dropped).
#[derive(Debug)]
pub enum CameraCmd {
    /// Stop capturing; the camera task then ends and reports.
    Stop,
}

/// What the camera counted (for its own log line: the ledger has recorded every drop too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CameraReport {
    /// Why the source ended early, when it failed (a corrupt or truncated video, an unreadable
    /// image): the run ends there, every frame captured before is still accounted for.
    pub source_error: Option<String>,
    /// Times a live source was reopened.
    pub restarts: u64,
    /// Seconds without frames while it was (the `source_gap`).
    pub gap_s: f64,
    /// Frames captured.
    pub captured: u64,
    /// Frames dropped because front inference was busy.
    pub overrun: u64,
    /// Frames captured after the front stage had gone (counted as `shutdown` drops).
    pub orphaned: u64,
}
