use std::time::Instant;

use tokio::sync::mpsc;

use crate::metrics::Origin;
use crate::plan::ActivePlan;

/// Why a frame ended without a result. The `reason` label of `tandem_frames_dropped_total`;
/// serialised as that label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The camera found front inference busy (its queue full) and dropped a frame.
    CameraOverrun,
    /// The link to the edge was down, or went down while the frame was in flight.
    LinkDown,
    /// The edge answered with a `FrameError`.
    EdgeError,
    /// No result within the per-frame deadline.
    Deadline,
    /// Still in the pipeline when the shutdown deadline passed.
    Shutdown,
    /// The codec refused the tensor (non-finite values).
    EncodeError,
    /// The model could not be loaded or run on the device.
    ModelError,
}

impl DropReason {
    /// Every reason.
    pub const ALL: [DropReason; 7] = [
        DropReason::CameraOverrun,
        DropReason::LinkDown,
        DropReason::EdgeError,
        DropReason::Deadline,
        DropReason::Shutdown,
        DropReason::EncodeError,
        DropReason::ModelError,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::CameraOverrun => "camera_overrun",
            DropReason::LinkDown => "link_down",
            DropReason::EdgeError => "edge_error",
            DropReason::Deadline => "deadline",
            DropReason::Shutdown => "shutdown",
            DropReason::EncodeError => "encode_error",
            DropReason::ModelError => "model_error",
        }
    }
}

/// When a frame passed each stage (stages it skipped stay `None`).
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    /// Capture.
    pub captured: Instant,
    /// Front inference started.
    pub front_start: Option<Instant>,
    /// Front inference finished (head, or whole model when local).
    pub front_end: Option<Instant>,
    /// The encoder took it (front → encoder queue wait ends).
    pub encode_start: Option<Instant>,
    /// Encoded and framed.
    pub encoded: Option<Instant>,
    /// First byte handed to the socket.
    pub sent_start: Option<Instant>,
    /// Last byte handed to the socket.
    pub sent_end: Option<Instant>,
    /// Result available on the device.
    pub done: Option<Instant>,
}

impl Timeline {
    /// A timeline that starts now.
    pub fn starting(captured: Instant) -> Timeline {
        Timeline {
            captured,
            front_start: None,
            front_end: None,
            encode_start: None,
            encoded: None,
            sent_start: None,
            sent_end: None,
            done: None,
        }
    }
}

/// A frame that ended with a class.
#[derive(Clone, Debug)]
pub struct FrameResult {
    /// Frame id (camera order).
    pub frame_id: u64,
    /// Where the tail ran.
    pub origin: Origin,
    /// The plan the frame ran under (for local fallback: the plan in force, run to `end`).
    pub plan: ActivePlan,
    /// Predicted class.
    pub class: u16,
    /// Softmax probability of `class`.
    pub confidence: f32,
    /// The logits.
    pub logits: Vec<f32>,
    /// Ground-truth label when the source has one.
    pub label: Option<u8>,
    /// Stage instants.
    pub timeline: Timeline,
    /// Bytes of the tensor frame on the wire (0 for local results).
    pub bytes_sent: u64,
    /// Edge decode time, µs (0 for local).
    pub edge_decode_us: u32,
    /// Edge tail inference time, µs (0 for local).
    pub edge_infer_us: u32,
}

/// What a finished frame cost, measured, for the controller's calibration
/// ([`tandem_planner::Calibrator`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameTiming {
    /// The plan the frame ran under.
    pub plan: ActivePlan,
    /// Where its tail ran: `Local` means the whole model on the device (a local plan, or the
    /// fallback while the link is down).
    pub origin: Origin,
    /// Device inference (head, or whole model), ms — emulated slowdown included.
    pub device_ms: f64,
    /// Device encoding, ms — emulated slowdown included (0 for local).
    pub encode_ms: f64,
    /// Edge decode + tail inference as the edge reported them, ms (0 for local).
    pub edge_ms: f64,
}

/// The frame-timing queue: bounded. Full-policy: **DropNewest** (`try_send`): timings are
/// advisory and the ledger must never wait on the controller.
pub fn timing_queue(capacity: usize) -> (mpsc::Sender<FrameTiming>, mpsc::Receiver<FrameTiming>) {
    mpsc::channel(capacity.max(1))
}

/// How a frame ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A result.
    Result(Box<FrameResult>),
    /// A drop.
    Dropped {
        /// Frame id.
        frame_id: u64,
        /// Why.
        reason: DropReason,
    },
}

/// Send side of the ledger's inbox.
///
/// Full-policy: **Block**. Every sender is downstream of the camera, so waiting here is
/// backpressure the camera turns into counted overruns; the ledger does O(1) work per message.
/// Outcomes are never dropped — that would break the accounting.
#[derive(Clone, Debug)]
pub struct LedgerHandle {
    pub(crate) tx: mpsc::Sender<Outcome>,
}

impl LedgerHandle {
    /// Record from a task.
    pub async fn record(&self, outcome: Outcome) {
        if self.tx.send(outcome).await.is_err() {
            tracing::error!("ledger gone: an outcome was lost");
        }
    }

    /// Record from a thread (must not be called from inside the tokio runtime).
    pub fn blocking_record(&self, outcome: Outcome) {
        if self.tx.blocking_send(outcome).is_err() {
            tracing::error!("ledger gone: an outcome was lost");
        }
    }

    /// Record a drop from a thread.
    pub fn blocking_drop(&self, frame_id: u64, reason: DropReason) {
        self.blocking_record(Outcome::Dropped { frame_id, reason });
    }
}
