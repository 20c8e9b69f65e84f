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
use crate::front::HeadFrame;
use crate::ledger::LedgerHandle;
use crate::types::DropReason;

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
        while let Ok(head) = self.input.recv() {
            if self.abort.is_cancelled() {
                self.ledger.blocking_drop(head.frame_id, DropReason::Shutdown);
                continue;
            }
            let HeadFrame { frame_id, plan, tensor, shape, label, mut timeline } = head;
            let started = Instant::now();
            timeline.encode_start = Some(started);
            if let Err(e) = codec.encode_into(&tensor, &shape, plan.choice.coding, &mut scratch) {
                tracing::warn!(frame_id, error = %e, "tensor refused");
                self.ledger.blocking_drop(frame_id, DropReason::EncodeError);
                continue;
            }
            let meta = FrameMeta {
                frame_id,
                plan_epoch: plan.epoch,
                model_id: plan.choice.model_id,
                point: plan.choice.point,
            };
            let frame = Frame { meta, body: Body::Tensor(std::mem::take(&mut scratch)) };
            let mut bytes = Vec::with_capacity(frame::HEADER_LEN + tensor.len());
            let written = frame::write(&frame, &mut bytes);
            if let Body::Tensor(t) = frame.body {
                scratch = t;
            }
            if let Err(e) = written {
                tracing::warn!(frame_id, error = %e, "framing failed");
                self.ledger.blocking_drop(frame_id, DropReason::EncodeError);
                continue;
            }
            self.slowdown.stretch(started);
            timeline.encoded = Some(Instant::now());
            if let Err(e) = self.out.blocking_send(WireFrame { frame_id, plan, bytes, label, timeline }) {
                self.ledger.blocking_drop(e.0.frame_id, DropReason::Shutdown);
            }
        }
        tracing::debug!("front queue closed");
    }
}
