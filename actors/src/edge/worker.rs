use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tandem_codec::{ClassProb, Codec, Control, ErrorCode, FrameMeta, ResultSpec};
use tokio::sync::{mpsc, oneshot};

use super::msg::{Job, StoreMsg};
use crate::error::ActorError;
use crate::faults;
use crate::metrics::EdgeMetrics;
use crate::supervise::{self, Budget, Restarts};
use crate::types::{Stage, Supervised};
use tandem_engine::Segment;

/// Start inference thread `index`; it ends when the job queue is closed.
pub(crate) fn spawn(
    index: usize,
    jobs: Receiver<Job>,
    store: Sender<StoreMsg>,
    metrics: EdgeMetrics,
) -> Result<JoinHandle<()>, ActorError> {
    std::thread::Builder::new()
        .name(format!("edge-worker-{index}"))
        .spawn(move || {
            Worker { store, metrics, models: HashMap::new(), codec: Codec::new(), decoded: Vec::new() }.run(jobs)
        })
        .map_err(|source| ActorError::Spawn { name: "edge-worker", source })
}

struct Worker {
    store: Sender<StoreMsg>,
    metrics: EdgeMetrics,
    /// This thread's handles on the tails it has served, by (model, point) (clones share the
    /// prepared runtime state).
    models: HashMap<(u32, u16), Segment>,
    codec: Codec,
    decoded: Vec<f32>,
}

impl Worker {
    fn run(mut self, jobs: Receiver<Job>) {
        let span = tracing::info_span!("edge_worker");
        let _enter = span.enter();
        let mut restarts = Restarts::new(Budget::default());
        for job in jobs.iter() {
            let picked = Instant::now();
            self.metrics.stage(Stage::EdgeQueue, picked.saturating_duration_since(job.received_at).as_secs_f64());
            let frame_id = job.meta.frame_id;
            // The job boundary: a panic in decode or inference is this frame's answer.
            let reply = match supervise::catch(|| self.infer(&job)) {
                Ok(Ok(msg)) => {
                    self.metrics.frames.inc();
                    msg
                }
                Ok(Err(code)) => {
                    self.metrics.error(code);
                    tracing::debug!(frame_id, code = code.as_str(), "frame refused");
                    Control::FrameError { frame_id, code }
                }
                Err(why) => {
                    self.metrics.error(ErrorCode::Panic);
                    send(&job.reply, Control::FrameError { frame_id, code: ErrorCode::Panic }, &self.metrics);
                    drop(job);
                    self.metrics.restart(Supervised::EdgeWorker);
                    supervise::after_panic(Supervised::EdgeWorker, &mut restarts, &why);
                    // The restart: this thread's state starts over (the tails are fetched from
                    // the store again; the codec's buffers are fresh).
                    self.models.clear();
                    self.codec = Codec::new();
                    self.decoded = Vec::new();
                    continue;
                }
            };
            send(&job.reply, reply, &self.metrics);
        }
    }

    /// The prepared tail; the store has prepared it when the plan was (a miss asks it).
    fn tail(&mut self, model_id: u32, point: u16) -> Result<&Segment, ErrorCode> {
        let key = (model_id, point);
        if !self.models.contains_key(&key) {
            let (tx, rx) = oneshot::channel();
            self.store.send(StoreMsg::Get { model_id, point, reply: tx }).map_err(|_| ErrorCode::Internal)?;
            let tail = rx.blocking_recv().map_err(|_| ErrorCode::Internal)??;
            self.models.insert(key, tail);
        }
        self.models.get(&key).ok_or(ErrorCode::Internal)
    }

    fn infer(&mut self, job: &Job) -> Result<Control, ErrorCode> {
        let meta = job.meta;
        let t0 = Instant::now();
        // Decode first: a corrupt payload is reported as such even for a valid model.
        self.codec.decode_into(&job.tensor, &mut self.decoded).map_err(|e| ErrorCode::from(&e))?;
        let decoded = std::mem::take(&mut self.decoded);
        let t1 = Instant::now();
        let model = self.tail(meta.model_id, meta.point)?;
        let dims = job.tensor.shape().dims();
        let expected = model.input();
        let [n, rest @ ..] = dims else { return Err(ErrorCode::Malformed) };
        if *n != 1 || rest != expected || rest.len() != 3 {
            return Err(ErrorCode::Malformed);
        }
        let shape = [1, rest[0], rest[1], rest[2]];
        let t2 = Instant::now();
        // `sleep(MS)` here makes a slow edge (this is an inference thread, not a runtime thread).
        if faults::fired(faults::EDGE_INFER).is_some() {
            return Err(ErrorCode::Inference);
        }
        let (logits, _) = model.run(decoded, shape).map_err(|e| {
            tracing::warn!(error = %e, "tail inference failed");
            ErrorCode::Inference
        })?;
        let t3 = Instant::now();
        let decode = t1.saturating_duration_since(t0);
        let infer = t3.saturating_duration_since(t2);
        self.metrics.stage(Stage::EdgeDecode, decode.as_secs_f64());
        self.metrics.stage(Stage::EdgeInfer, infer.as_secs_f64());
        let us = |d: std::time::Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        Ok(result_message(&meta, logits, job.results, us(decode), us(infer)))
    }
}

fn send(reply: &mpsc::Sender<Control>, msg: Control, metrics: &EdgeMetrics) {
    match reply.try_send(msg) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics.replies_dropped.inc();
            tracing::warn!("connection outbox full; reply dropped");
        }
        // The connection is gone; its device has counted the frame as link_down.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// The answer to one frame: the softmax and the top-k computed here, at the edge; the logits
/// only when the device asked for them. Pure.
fn result_message(meta: &FrameMeta, logits: Vec<f32>, spec: ResultSpec, decode_us: u32, infer_us: u32) -> Control {
    Control::InferResult {
        frame_id: meta.frame_id,
        epoch: meta.plan_epoch,
        top: ClassProb::top_k(&logits, usize::from(spec.top_k)),
        logits: if spec.logits { logits } else { Vec::new() },
        edge_decode_us: decode_us,
        edge_infer_us: infer_us,
    }
}

#[cfg(test)]
mod tests {
    use tandem_codec::frame;

    use super::*;

    fn framed(msg: &Control) -> usize {
        let mut buf = Vec::new();
        frame::write_control(&FrameMeta::default(), msg, &mut buf).expect("frame")
    }

    #[test]
    fn a_default_result_fits_the_planners_result_size_and_logits_are_opt_in() {
        // A long run's frame id and epoch, a slow edge's times: the larger varints.
        let meta = FrameMeta { frame_id: 1_000_000, plan_epoch: 1_000, model_id: 3, point: 6 };
        let logits: Vec<f32> = (0..10).map(|i| i as f32 * 0.3 - 1.0).collect();
        let top3 = result_message(&meta, logits.clone(), ResultSpec::default(), 20_000, 200_000);
        let Control::InferResult { top, logits: sent, .. } = &top3 else { panic!("a result") };
        assert_eq!((top.len(), sent.len()), (3, 0));
        assert_eq!(top.first().map(|c| c.class), Some(9));
        let bytes = framed(&top3);
        assert!(bytes as f64 <= tandem_planner::RESULT_MESSAGE_BYTES, "{bytes} B");
        assert!(bytes as f64 >= 0.75 * tandem_planner::RESULT_MESSAGE_BYTES, "{bytes} B: the constant is stale");
        let full = result_message(&meta, logits, ResultSpec { top_k: 3, logits: true }, 20_000, 200_000);
        let with_logits = framed(&full);
        assert_eq!(with_logits, bytes + 40, "10 f32 logits");
        // A 1000-class model: 4 KB more per result with logits, nothing more without.
        let many: Vec<f32> = (0..1000).map(|i| (i % 17) as f32).collect();
        assert_eq!(framed(&result_message(&meta, many.clone(), ResultSpec::default(), 20_000, 200_000)), bytes);
        let big = framed(&result_message(&meta, many, ResultSpec { top_k: 3, logits: true }, 20_000, 200_000));
        assert!(big > 4_000, "{big}");
    }
}
