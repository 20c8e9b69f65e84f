use tokio::sync::mpsc;

use crate::ledger::Timeline;
use crate::types::ActivePlan;

/// A framed tensor ready for the socket.
#[derive(Clone, Debug)]
pub struct WireFrame {
    /// Frame id.
    pub frame_id: u64,
    /// The plan it ran under.
    pub plan: ActivePlan,
    /// The whole frame (header + payload).
    pub bytes: Vec<u8>,
    /// Ground-truth label.
    pub label: Option<u8>,
    /// Stage instants so far.
    pub timeline: Timeline,
}

/// The encoder → link queue: bounded tokio mpsc. Full-policy: **Block** (`blocking_send` from
/// the encoder thread) — a slow link backs up into the encoder and front, and the camera counts
/// overruns.
pub fn link_queue(capacity: usize) -> (mpsc::Sender<WireFrame>, mpsc::Receiver<WireFrame>) {
    mpsc::channel(capacity.max(1))
}
