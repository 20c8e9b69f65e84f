use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Receiver;
use tandem_codec::frame;
use tandem_codec::{Body, Codec, EncodedTensor, Frame, FrameMeta};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::msg::WireFrame;
use crate::emulation::Slowdown;
use crate::error::ActorError;
use crate::faults;
use crate::front::HeadFrame;
use crate::ledger::LedgerHandle;
use crate::metrics::DeviceMetrics;
use crate::supervise::{self, Budget, Restarts};
use crate::types::{DropReason, Supervised};

/// The encoder actor (a thread).
#[derive(Debug)]
pub struct Encoder {
    /// Front queue.
    pub input: Receiver<HeadFrame>,
    /// Link inbox (Block).
    pub out: mpsc::Sender<WireFrame>,
    /// Accounting.
    pub ledger: LedgerHandle,
    /// Cancelled when the drain deadline passes: what is still held is dropped as `shutdown`.
    pub abort: CancellationToken,
    /// Emulated device speed: coding is stretched to R times its measured time.
    pub slowdown: Slowdown,
    /// Where restarts are counted (`tandem_restarts_total{stage="encoder"}`); `None` in unit
    /// tests that have no registry.
    pub metrics: Option<DeviceMetrics>,
}

impl Encoder {
    /// Start the thread. It ends when the front queue is closed and empty.
    pub fn spawn(self) -> Result<JoinHandle<()>, ActorError> {
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || self.run())
            .map_err(|source| ActorError::Spawn { name: "encoder", source })
    }

    fn run(self) {
        let span = tracing::info_span!("encoder");
        let _enter = span.enter();
        // Scratch reused across frames: after the first frame of a size, encoding allocates
        // only the outgoing frame buffer.
        let mut codec = Codec::new();
        let mut scratch = EncodedTensor::default();
        let mut restarts = Restarts::new(Budget::default());
        while let Ok(head) = self.input.recv() {
            if self.abort.is_cancelled() {
                self.ledger.blocking_drop(head.frame_id, DropReason::Shutdown);
                continue;
            }
            let frame_id = head.frame_id;
            // The job boundary: a panic while encoding is this frame's outcome.
            if let Err(why) = supervise::catch(|| self.encode(head, &mut codec, &mut scratch)) {
                self.ledger.blocking_drop(frame_id, DropReason::Panic);
                if let Some(m) = &self.metrics {
                    m.restart(Supervised::Encoder);
                }
                supervise::after_panic(Supervised::Encoder, &mut restarts, &why);
                // The restart: fresh codec state and scratch.
                codec = Codec::new();
                scratch = EncodedTensor::default();
            }
        }
        tracing::debug!("front queue closed");
    }

    /// Encode one frame and hand it to the link (or record why not).
    fn encode(&self, head: HeadFrame, codec: &mut Codec, scratch: &mut EncodedTensor) {
        let HeadFrame { frame_id, plan, tensor, shape, label, mut timeline } = head;
        let started = Instant::now();
        timeline.encode_start = Some(started);
        // `panic` here panics this thread on this frame (the supervision test).
        let _ = faults::fired(faults::ENCODE);
        if let Err(e) = codec.encode_into(&tensor, &shape, plan.choice.coding, scratch) {
            tracing::warn!(frame_id, error = %e, "tensor refused");
            self.ledger.blocking_drop(frame_id, DropReason::EncodeError);
            return;
        }
        let meta =
            FrameMeta { frame_id, plan_epoch: plan.epoch, model_id: plan.choice.model_id, point: plan.choice.point };
        let frame = Frame { meta, body: Body::Tensor(std::mem::take(scratch)) };
        let mut bytes = Vec::with_capacity(frame::MAX_HEADER_LEN + tensor.len());
        let written = frame::write(&frame, &mut bytes);
        if let Body::Tensor(t) = frame.body {
            *scratch = t;
        }
        if let Err(e) = written {
            tracing::warn!(frame_id, error = %e, "framing failed");
            self.ledger.blocking_drop(frame_id, DropReason::EncodeError);
            return;
        }
        self.slowdown.stretch(started);
        timeline.encoded = Some(Instant::now());
        if let Err(e) = self.out.blocking_send(WireFrame { frame_id, plan, bytes, label, timeline }) {
            self.ledger.blocking_drop(e.0.frame_id, DropReason::Shutdown);
        }
    }
}
