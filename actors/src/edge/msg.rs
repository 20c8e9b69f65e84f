use std::time::Instant;

use tandem_codec::{Control, EncodedTensor, ErrorCode, FrameMeta, PlanResult, ResultSpec};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use tandem_engine::Segment;

/// A tensor frame for the inference pool.
///
/// The pool queue is a bounded crossbeam channel of `queue` jobs guarded by a semaphore with as
/// many permits; a connection takes a permit (`acquire().await`) before queueing, and the job
/// carries it until the worker is done. Full-policy: **Block** — a busy pool stops the reading
/// connection, which pushes back over TCP to that device.
#[derive(Debug)]
pub(crate) struct Job {
    pub meta: FrameMeta,
    pub tensor: EncodedTensor,
    /// What the result carries (the session's `Hello`).
    pub results: ResultSpec,
    pub received_at: Instant,
    /// The connection's outbox. Workers use `try_send` (DropNewest, counted): one device that
    /// does not read its replies must not stall the pool.
    pub reply: mpsc::Sender<Control>,
    pub _permit: OwnedSemaphorePermit,
}

/// The model store's inbox: bounded crossbeam (64). Connections use `try_send` (full → the
/// plan switch is answered `Busy`); workers use `send` (Block: they need the model).
#[derive(Debug)]
pub(crate) enum StoreMsg {
    /// The tail of `model_id` from `point`, prepared, for a worker's cache.
    Get { model_id: u32, point: u16, reply: oneshot::Sender<Result<Segment, ErrorCode>> },
    /// Load `model_id`, check that `point` can be split at and prepare the tail from it; the
    /// answer for a `PlanAck` (so a swap never waits for preparation on a frame).
    Prepare { model_id: u32, point: u16, reply: oneshot::Sender<PlanResult> },
}
