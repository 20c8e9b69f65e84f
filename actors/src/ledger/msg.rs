use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

pub use crate::types::DropReason;
use crate::types::{ActivePlan, Origin};

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
    /// The source's presentation timestamp of the frame, seconds (video sources), carried with
    /// its capture instant.
    pub pts: Option<f64>,
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
            pts: None,
        }
    }

    /// The same timeline, carrying the source's timestamp `pts`.
    pub fn with_pts(self, pts: Option<f64>) -> Timeline {
        Timeline { pts, ..self }
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
    /// The most probable classes, most probable first: the edge's top-k (its session's
    /// `ResultSpec::top_k`), or for local results the first `MAX_TOP_K` of the logits.
    pub top: Vec<tandem_codec::ClassProb>,
    /// Every logit: local results always; edge results only when the device asked for them
    /// (`link.result_logits`), else empty.
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
/// Full-policy: **Block** for [`record`](LedgerHandle::record) and the `blocking_*` calls. Every
/// such sender is downstream of the camera, so waiting here is backpressure the camera turns
/// into counted overruns; the ledger does O(1) work per message. Outcomes are never dropped —
/// that would break the accounting.
///
/// The camera, which must never block, reports its drops with
/// [`try_drop`](LedgerHandle::try_drop) instead: a `try_send`, and when the inbox is full an
/// atomic per-reason counter ([`Overflow`]) that the ledger folds in before its next message and
/// once more when its inbox closes. A full inbox means the ledger has messages to read, so the
/// fold usually happens soon; but a drop counted just after the ledger read the last queued
/// message shows in the live [`Snapshot`](super::Snapshot) only with the next outcome (at the
/// latest when the inbox closes). The final [`Summary`](super::Summary) misses nothing. (A separate lock-free counter for
/// every camera drop would need no channel, but nothing would wake the ledger to publish it.)
#[derive(Clone, Debug)]
pub struct LedgerHandle {
    pub(crate) tx: mpsc::Sender<Outcome>,
    pub(crate) overflow: Arc<Overflow>,
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

    /// Record a drop without ever waiting (the camera's path): queued when the inbox has room,
    /// else counted in the [`Overflow`] the ledger folds in (the frame id is then only logged).
    pub fn try_drop(&self, frame_id: u64, reason: DropReason) {
        match self.tx.try_send(Outcome::Dropped { frame_id, reason }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(frame_id, reason = reason.as_str(), "ledger inbox full: drop counted aside");
                self.overflow.add(reason);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => tracing::error!("ledger gone: an outcome was lost"),
        }
    }
}

/// Drops that found the ledger's inbox full, by reason: written by [`LedgerHandle::try_drop`],
/// taken (swapped to 0) by the ledger.
#[derive(Debug, Default)]
pub struct Overflow([AtomicU64; DropReason::COUNT]);

impl Overflow {
    fn add(&self, reason: DropReason) {
        if let Some(c) = self.0.get(reason.index()) {
            // Relaxed: the count is read after the channel's own synchronisation (the next
            // message, or the inbox closing when this sender is dropped).
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count for `reason` since the last take, reset to 0.
    pub(crate) fn take(&self, reason: DropReason) -> u64 {
        // Usually 0: a plain load first keeps the common case off the RMW path.
        self.0
            .get(reason.index())
            .map_or(0, |c| if c.load(Ordering::Relaxed) == 0 { 0 } else { c.swap(0, Ordering::Relaxed) })
    }
}
