use crossbeam_channel::{Receiver, Sender};

use crate::ledger::Timeline;
use crate::types::ActivePlan;

/// A head activation on its way to the encoder.
#[derive(Clone, Debug)]
pub struct HeadFrame {
    /// Frame id.
    pub frame_id: u64,
    /// The plan it ran under.
    pub plan: ActivePlan,
    /// Activation at `plan.choice.point`, row-major.
    pub tensor: Vec<f32>,
    /// `[1, C, H, W]`.
    pub shape: [usize; 4],
    /// Ground-truth label.
    pub label: Option<u8>,
    /// Stage instants so far.
    pub timeline: Timeline,
}

/// The front → encoder queue: bounded crossbeam channel. Full-policy: **Block** — the front
/// thread waits for the encoder, and the camera (which never blocks) turns that into overruns.
pub fn encoder_queue(capacity: usize) -> (Sender<HeadFrame>, Receiver<HeadFrame>) {
    crossbeam_channel::bounded(capacity.max(1))
}
