use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tandem_codec::ClassProb;
use tandem_codec::control::MAX_TOP_K;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::msg::HeadFrame;
use crate::camera::CapturedFrame;
use crate::emulation::Slowdown;
use crate::encoder::WireFrame;
use crate::error::ActorError;
use crate::faults;
use crate::ledger::{FrameResult, LedgerHandle, Outcome, Timeline};
use crate::link::LinkState;
use crate::metrics::DeviceMetrics;
use crate::models::{ModelCache, classify};
use crate::plan::{PlanChoice, PrepareRequest};
use crate::supervise::{self, Budget, Restarts};
use crate::types::{ActivePlan, DropReason, Origin, Supervised};

/// The front-inference actor (a thread).
#[derive(Debug)]
pub struct Front {
    /// Models by id, loaded on first use.
    pub cache: ModelCache,
    /// Camera queue.
    pub input: Receiver<CapturedFrame>,
    /// Encoder queue (Block).
    pub out: Sender<HeadFrame>,
    /// Control plane.
    pub plan: watch::Receiver<ActivePlan>,
    /// Whether the edge is reachable.
    pub link: watch::Receiver<LinkState>,
    /// Accounting.
    pub ledger: LedgerHandle,
    /// Cancelled when the drain deadline passes: what is still held is dropped as `shutdown`.
    pub abort: CancellationToken,
    /// Metrics.
    pub metrics: DeviceMetrics,
    /// Emulated device speed: inference is stretched to R times its measured time.
    pub slowdown: Slowdown,
    /// Frames the link lost with the session, to finish here (the tail on the head's output,
    /// decoded from the frame): `rerun_local`. `None`: no reruns.
    pub rerun: Option<Receiver<WireFrame>>,
    /// The controller's requests to prepare a plan's heads before it publishes the plan
    /// ([`PlanHandle::prepare`](crate::plan::PlanHandle::prepare)). `None`: no requests.
    pub prepare: Option<Receiver<PrepareRequest>>,
}

impl Front {
    /// Start the thread. It ends when the camera queue is closed and empty.
    pub fn spawn(self) -> Result<JoinHandle<()>, ActorError> {
        std::thread::Builder::new()
            .name("front".into())
            .spawn(move || self.run())
            .map_err(|source| ActorError::Spawn { name: "front", source })
    }

    fn run(mut self) {
        let span = tracing::info_span!("front");
        let _enter = span.enter();
        let first = *self.plan.borrow();
        self.prepare_first(first);
        let mut last_epoch = 0;
        let mut restarts = Restarts::new(Budget::default());
        let input = self.input.clone();
        let mut rerun = self.rerun.take().unwrap_or_else(crossbeam_channel::never);
        let mut prepare = self.prepare.take().unwrap_or_else(crossbeam_channel::never);
        loop {
            let frame = crossbeam_channel::select! {
                recv(input) -> f => match f {
                    Ok(f) => f,
                    Err(_) => break,
                },
                recv(prepare) -> req => {
                    match req {
                        Ok(PrepareRequest { choice, reply }) => {
                            // Between frames: the plan is not in force yet, no frame waits on it.
                            let ready = match supervise::catch(|| self.prepare_heads(choice)) {
                                Ok(r) => r,
                                Err(why) => {
                                    self.metrics.restart(Supervised::Front);
                                    supervise::after_panic(Supervised::Front, &mut restarts, &why);
                                    Err(format!("preparing panicked: {why}"))
                                }
                            };
                            // The controller may have given up waiting; nothing to do then.
                            let _ = reply.send(ready);
                        }
                        Err(_) => prepare = crossbeam_channel::never(),
                    }
                    continue;
                }
                recv(rerun) -> w => {
                    match w {
                        Ok(w) => self.supervised_rerun(w, &mut restarts),
                        // The link is gone: no more reruns.
                        Err(_) => rerun = crossbeam_channel::never(),
                    }
                    continue;
                }
            };
            if self.abort.is_cancelled() {
                self.ledger.blocking_drop(frame.frame_id, DropReason::Shutdown);
                continue;
            }
            // The plan is read once per frame: a switch takes effect at a frame boundary.
            let plan = *self.plan.borrow();
            if plan.epoch != last_epoch {
                last_epoch = plan.epoch;
                self.metrics.plan(&plan);
                tracing::info!(epoch = plan.epoch, plan = %plan.choice, "plan in force");
            }
            let link_up = self.link.borrow().is_up();
            let frame_id = frame.frame_id;
            // The job boundary: a panic in inference is this frame's outcome.
            match supervise::catch(|| self.process(frame, plan, link_up)) {
                Ok(Ok(())) => {}
                // `process` has already reported the outcome; the error is only for logs.
                Ok(Err(reason)) => tracing::debug!(?reason, "frame not processed"),
                Err(why) => self.panicked(frame_id, &mut restarts, &why),
            }
        }
        // Reruns already queued are finished too; later ones find the queue gone (`link_down`).
        while let Ok(w) = rerun.try_recv() {
            self.supervised_rerun(w, &mut restarts);
        }
        tracing::debug!("camera queue closed");
    }

    /// Prepare the first plan's head and its whole model (the local fallback) before the first
    /// frame arrives. A failure is only logged: the frame path reports it per frame.
    fn prepare_first(&mut self, plan: ActivePlan) {
        if let Err(e) = self.prepare_heads(plan.choice) {
            tracing::warn!(model_id = plan.choice.model_id, error = %e, "preparing the first plan's heads failed");
        }
    }

    /// Prepare what a plan runs on this device: its head `0..point` and its whole model (the
    /// local fallback when the link is down).
    fn prepare_heads(&mut self, choice: PlanChoice) -> Result<(), String> {
        let id = choice.model_id;
        let end = self.cache.get(id).map_err(|e| e.to_string())?.end();
        for to in [usize::from(choice.point).min(end), end] {
            if to > 0 {
                self.cache.segment(id, 0, to).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The head `0..to` of `model_id` on the engine, prepared on first use; `to = 0` (offload
    /// everything) is the input itself.
    fn head(
        &mut self,
        model_id: u32,
        to: usize,
        image: Vec<f32>,
        shape: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 4]), String> {
        if to == 0 {
            return Ok((image, shape));
        }
        if !self.cache.is_prepared(model_id, 0, to) {
            self.metrics.prepared_on_frame.inc();
        }
        let head = self.cache.segment(model_id, 0, to).map_err(|e| e.to_string())?;
        head.run(image, shape).map_err(|e| e.to_string())
    }

    fn panicked(&mut self, frame_id: u64, restarts: &mut Restarts, why: &str) {
        self.ledger.blocking_drop(frame_id, DropReason::Panic);
        self.metrics.restart(Supervised::Front);
        // The restart keeps the model cache: it only gains whole entries, so a panic cannot
        // leave it half-updated; the rest of the state is per frame.
        supervise::after_panic(Supervised::Front, restarts, why);
    }

    fn supervised_rerun(&mut self, w: WireFrame, restarts: &mut Restarts) {
        let frame_id = w.frame_id;
        if self.abort.is_cancelled() {
            self.ledger.blocking_drop(frame_id, DropReason::Shutdown);
            return;
        }
        match supervise::catch(|| self.rerun_local(w)) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => self.ledger.blocking_drop(frame_id, reason),
            Err(why) => self.panicked(frame_id, restarts, &why),
        }
    }

    /// Finish a frame the link lost: decode its head tensor from the frame it was sent as, run
    /// the tail here, record the result as `rerun_local`. A frame that no longer decodes (only
    /// possible if it was built wrong) is dropped `link_down`, as it would have been.
    fn rerun_local(&mut self, w: WireFrame) -> Result<(), DropReason> {
        let WireFrame { frame_id, plan, bytes, label, mut timeline } = w;
        let frame = tandem_codec::frame::parse(&bytes, &tandem_codec::Limits::default()).map_err(|e| {
            tracing::warn!(frame_id, error = %e, "a lost frame does not parse; not re-run");
            DropReason::LinkDown
        })?;
        let tandem_codec::Body::Tensor(tensor) = frame.body else { return Err(DropReason::LinkDown) };
        let mut head = Vec::new();
        tandem_codec::decode_into(&tensor, &mut head).map_err(|e| {
            tracing::warn!(frame_id, error = %e, "a lost frame does not decode; not re-run");
            DropReason::LinkDown
        })?;
        let &[n, c, h, wd] = tensor.shape().dims() else { return Err(DropReason::LinkDown) };
        let id = plan.choice.model_id;
        let end = self.cache.get(id).map_err(|_| DropReason::ModelError)?.end();
        let started = Instant::now();
        // The tail is prepared on the first rerun of this plan (a link drop is rare; the device
        // does not keep every plan's tail prepared in advance).
        if !self.cache.is_prepared(id, usize::from(plan.choice.point), end) {
            self.metrics.prepared_on_frame.inc();
        }
        let tail = self.cache.segment(id, usize::from(plan.choice.point), end).map_err(|e| {
            tracing::warn!(frame_id, error = %e, "preparing the local tail failed");
            DropReason::ModelError
        })?;
        let (logits, _) = tail.run(head, [n, c, h, wd]).map_err(|e| {
            tracing::warn!(frame_id, error = %e, "local tail failed");
            DropReason::ModelError
        })?;
        self.slowdown.stretch(started);
        timeline.done = Some(Instant::now());
        let (class, confidence) = classify(&logits);
        self.ledger.blocking_record(Outcome::Result(Box::new(FrameResult {
            frame_id,
            origin: Origin::RerunLocal,
            plan,
            class: u16::try_from(class).unwrap_or(u16::MAX),
            confidence,
            top: ClassProb::top_k(&logits, MAX_TOP_K),
            logits,
            label,
            timeline,
            bytes_sent: 0,
            edge_decode_us: 0,
            edge_infer_us: 0,
        })));
        Ok(())
    }

    fn process(&mut self, frame: CapturedFrame, plan: ActivePlan, link_up: bool) -> Result<(), DropReason> {
        let CapturedFrame { frame_id, captured_at, pts, image, shape, label } = frame;
        let mut timeline = Timeline::starting(captured_at).with_pts(pts);
        let end = match self.cache.get(plan.choice.model_id) {
            Ok(m) => m.end(),
            Err(e) => {
                tracing::warn!(error = %e, "model unavailable");
                self.ledger.blocking_drop(frame_id, DropReason::ModelError);
                return Err(DropReason::ModelError);
            }
        };
        let point = usize::from(plan.choice.point);
        let local = point >= end || !link_up;
        let to = if local { end } else { point };
        let started = Instant::now();
        timeline.front_start = Some(started);
        // `panic` here panics this thread on this frame (the supervision test).
        let _ = faults::fired(faults::FRONT_INFER);
        let out = self.head(plan.choice.model_id, to, image, shape);
        self.slowdown.stretch(started);
        timeline.front_end = Some(Instant::now());
        let (tensor, dims) = match out {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "inference failed");
                self.ledger.blocking_drop(frame_id, DropReason::ModelError);
                return Err(DropReason::ModelError);
            }
        };
        if local {
            let (class, confidence) = classify(&tensor);
            timeline.done = timeline.front_end;
            self.ledger.blocking_record(Outcome::Result(Box::new(FrameResult {
                frame_id,
                origin: Origin::Local,
                plan,
                class: u16::try_from(class).unwrap_or(u16::MAX),
                confidence,
                top: ClassProb::top_k(&tensor, MAX_TOP_K),
                logits: tensor,
                label,
                timeline,
                bytes_sent: 0,
                edge_decode_us: 0,
                edge_infer_us: 0,
            })));
            return Ok(());
        }
        let head = HeadFrame { frame_id, plan, tensor, shape: dims, label, timeline };
        if let Err(e) = self.out.send(head) {
            self.ledger.blocking_drop(e.0.frame_id, DropReason::Shutdown);
            return Err(DropReason::Shutdown);
        }
        Ok(())
    }
}
