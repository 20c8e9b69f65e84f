use std::time::{Duration, Instant};

use tandem_codec::PlanResult;
use tokio::sync::{mpsc, oneshot};

use crate::plan::ActivePlan;

/// Session state, published on a `watch` (front inference reads it between frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting or in the handshake.
    Connecting,
    /// Session established.
    Up {
        /// Id the edge gave the session.
        session_id: u64,
    },
    /// Not connected; waiting to retry.
    Down,
}

impl LinkState {
    /// Whether frames can be offloaded now.
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Up { .. })
    }
}

/// Why a link command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No session with the edge.
    #[error("the link to the edge is down")]
    Down,
    /// A probe is already in progress.
    #[error("a probe is already in progress")]
    Busy,
}

/// What an active probe measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// `Ping` → `Pong` round trip, if the pong came back.
    pub rtt: Option<Duration>,
    /// Per burst answered: wire bytes and transfer time (first byte, or the previous burst's
    /// reply, → its `ProbeReply`). A bare receipt: no edge compute to subtract.
    pub bursts: Vec<(u64, Duration)>,
    /// When the report was made.
    pub at: Instant,
}

/// Control-plane commands for the link (for the controller of the adaptation issue).
#[derive(Debug)]
pub enum LinkCommand {
    /// Ask the edge to prepare `plan` (load the tail) and report its `PlanAck`. Publishing the
    /// plan to the data plane after `Applied` is the caller's move (switch at a frame boundary,
    /// roll back on anything else).
    Prepare {
        /// The plan to announce.
        plan: ActivePlan,
        /// The edge's answer.
        reply: oneshot::Sender<Result<PlanResult, LinkError>>,
    },
    /// Measure the link actively: a `Ping`, then `count` `Probe` frames of `burst_bytes` padding,
    /// sent like frames (through the shaper), each answered by the edge's `ProbeReply`.
    Probe {
        /// Padding per burst, bytes.
        burst_bytes: u32,
        /// Bursts (1..=16).
        count: u32,
        /// The measurements.
        reply: oneshot::Sender<Result<ProbeReport, LinkError>>,
    },
}

/// The link's command inbox: bounded (4). Full-policy: **Block** (`send().await`); commands
/// are rare and must not be lost.
pub fn command_queue() -> (mpsc::Sender<LinkCommand>, mpsc::Receiver<LinkCommand>) {
    mpsc::channel(4)
}

/// One frame's transfer: what the bandwidth estimator is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferSample {
    /// Frame bytes on the wire (header + payload).
    pub bytes: u64,
    /// First byte written → result read, minus the edge's reported decode + inference time.
    pub duration: Duration,
    /// When the result was read.
    pub at: Instant,
}

/// The transfer-sample queue: bounded. Full-policy: **DropNewest** (`try_send`): samples are
/// advisory and a lagging consumer must not slow the link.
pub fn sample_queue(capacity: usize) -> (mpsc::Sender<TransferSample>, mpsc::Receiver<TransferSample>) {
    mpsc::channel(capacity.max(1))
}
