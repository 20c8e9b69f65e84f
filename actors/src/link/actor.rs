//! The link actor: the reconnect loop ([`Link::run`]) and the session loop ([`Link::session`]).
//! Dialling and the handshake are [`super::connect`]'s, the probe protocol is
//! [`super::probe::Prober`]'s, and every frame goes out through a [`FrameWriter`] (encode, timed
//! write, byte count).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tandem_codec::{Body, Control, ErrorCode, Frame, Limits, PlanResult};
use tokio::io::WriteHalf;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::connect::{Backoff, Stream, connect};
use super::msg::{ConnectError, ConnectFailure, LinkCommand, LinkError, LinkState, TransferSample};
use super::probe::{PROBE_WAIT_MAX, Prober};
use super::shaper::Shaper;
use crate::encoder::WireFrame;
use crate::faults;
use crate::ledger::{DropReason, FrameResult, LedgerHandle, Outcome};
use crate::metrics::DeviceMetrics;
use crate::plan::ActivePlan;
use crate::security::{ClientTls, Token};
use crate::types::Origin;
use crate::wire::{FrameReader, FrameWriter, Read};

/// How the link behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkSettings {
    /// Edge address, `host:port`.
    pub edge: String,
    /// Sent in `Hello`.
    pub device_id: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Hello → HelloAck timeout.
    pub handshake_timeout: Duration,
    /// Timeout for writing one frame.
    pub write_timeout: Duration,
    /// First reconnect delay (before jitter; no delay is shorter).
    pub backoff_min: Duration,
    /// Largest reconnect delay: the delay doubles up to it, plus a jitter of up to its own
    /// length, and never exceeds it.
    pub backoff_max: Duration,
    /// Frames sent and not yet answered, at most.
    pub max_in_flight: usize,
    /// A frame without a result this long after capture is dropped as `deadline`.
    pub deadline: Duration,
    /// Send a `Ping` after this long without sending anything.
    pub keepalive: Duration,
    /// Limits on frames read from the edge.
    pub limits: Limits,
    /// Shape the connection with a bandwidth trace (in-process token bucket + delay); `None`
    /// = the bare socket.
    pub shaper: Option<Shaper>,
    /// Sent in `Hello` when the edge requires one.
    pub token: Option<Token>,
    /// Run the session over TLS, trusting these CAs for this server name; `None` = plain TCP.
    pub tls: Option<ClientTls>,
    /// What the edge's results should carry (sent in `Hello`).
    pub results: tandem_codec::ResultSpec,
}

type Writer = FrameWriter<WriteHalf<Stream>>;

/// A frame sent and awaiting its answer (the bytes are gone; their count stays).
struct InFlight {
    frame: WireFrame,
    wire_len: u64,
    /// Whether its transfer time is a fair sample of the link: only when nothing else (a frame,
    /// a probe) was in flight as it was written — otherwise its time includes waiting behind
    /// them, which read as a slower link or a longer round trip.
    sample: bool,
}

/// How a session ended.
enum SessionEnd {
    /// The connection failed; reconnect.
    Lost,
    /// Inbox closed and drained, or aborted: the link is done.
    Finished,
}

/// What one session holds besides the link's own state: its writer, what is in flight, the
/// plan acknowledgements awaited, the probe.
struct Session {
    wr: Writer,
    in_flight: HashMap<u64, InFlight>,
    acks: HashMap<u32, oneshot::Sender<Result<PlanResult, LinkError>>>,
    /// The newest plan epoch announced to the edge.
    announced: Option<u32>,
    probe: Prober,
    /// When anything was last written (the keepalive pings after `keepalive` of silence).
    last_sent: Instant,
}

impl Session {
    fn new(wr: Writer) -> Session {
        Session {
            wr,
            in_flight: HashMap::new(),
            acks: HashMap::new(),
            announced: None,
            probe: Prober::default(),
            last_sent: Instant::now(),
        }
    }

    /// Write a control message; false when the session is lost. A message that cannot be
    /// encoded is logged and skipped (the stream is intact).
    async fn control(&mut self, msg: &Control) -> bool {
        match self.wr.control(msg).await {
            Ok(_) => {
                self.last_sent = Instant::now();
                true
            }
            Err(e) if !e.is_fatal() => {
                tracing::error!(error = %e, "could not encode a control message");
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "link write failed");
                false
            }
        }
    }

    /// Write a probe's bursts, once its ping is answered; false when the session is lost.
    async fn bursts(&mut self, bursts: Vec<Control>) -> bool {
        for burst in bursts {
            let start = Instant::now();
            match self.wr.control(&burst).await {
                Ok(n) => self.probe.burst_sent(n as u64, start),
                Err(e) if !e.is_fatal() => {
                    tracing::error!(error = %e, "could not encode a probe");
                    return false;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "link write failed");
                    return false;
                }
            }
            self.last_sent = Instant::now();
        }
        true
    }

    /// Write a tensor frame and keep it in flight (with its bytes, for a local re-run should
    /// the session be lost); the frame back if the session is lost.
    async fn send_frame(&mut self, mut f: WireFrame, sample: bool) -> Result<(), Box<WireFrame>> {
        let frame_id = f.frame_id;
        f.timeline.sent_start = Some(Instant::now());
        // A fault alters a copy: the frame kept for a re-run stays intact.
        let faulted = match faults::fired(faults::LINK_SEND) {
            Some(fault) => {
                let mut bytes = f.bytes.clone();
                if !inject_send_fault(&fault, &mut bytes, &mut self.wr).await {
                    return Err(Box::new(f));
                }
                Some(bytes)
            }
            None => None,
        };
        let written = self.wr.frame(faulted.as_deref().unwrap_or(&f.bytes)).await;
        self.last_sent = Instant::now();
        match written {
            Ok(n) => {
                f.timeline.sent_end = Some(self.last_sent);
                self.in_flight.insert(frame_id, InFlight { frame: f, wire_len: n as u64, sample });
                Ok(())
            }
            Err(_) => Err(Box::new(f)),
        }
    }

    async fn say_bye(&mut self) {
        self.control(&Control::Bye).await;
        self.wr.shutdown().await;
    }
}

/// The link actor (a tokio task).
#[derive(Debug)]
pub struct Link {
    settings: LinkSettings,
    inbox: mpsc::Receiver<WireFrame>,
    inbox_open: bool,
    commands: mpsc::Receiver<LinkCommand>,
    commands_open: bool,
    state: watch::Sender<LinkState>,
    ledger: LedgerHandle,
    abort: CancellationToken,
    metrics: DeviceMetrics,
    samples: Option<mpsc::Sender<TransferSample>>,
    next_nonce: u64,
    /// Frames the link could not get answered (the session was lost with them in flight, or
    /// they arrived while it was down), still within their deadline, go back to the device's
    /// front thread to be finished locally (`rerun_local`). Bounded; full or absent: `link_down`.
    rerun: Option<crossbeam_channel::Sender<WireFrame>>,
}

impl Link {
    /// A link reading `inbox` (encoder output) and `commands`; publishes its state on the
    /// returned receiver. Once `abort` is cancelled it drops what it holds as `shutdown`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: LinkSettings,
        inbox: mpsc::Receiver<WireFrame>,
        commands: mpsc::Receiver<LinkCommand>,
        ledger: LedgerHandle,
        abort: CancellationToken,
        metrics: DeviceMetrics,
        samples: Option<mpsc::Sender<TransferSample>>,
    ) -> (Link, watch::Receiver<LinkState>) {
        let (state, state_rx) = watch::channel(LinkState::Connecting);
        let link = Link {
            settings,
            inbox,
            inbox_open: true,
            commands,
            commands_open: true,
            state,
            ledger,
            abort,
            metrics,
            samples,
            next_nonce: 0,
            rerun: None,
        };
        (link, state_rx)
    }

    /// Send frames lost to a link drop to `rerun` (the front thread's rerun queue) instead of
    /// dropping them, when their deadline still allows.
    pub fn with_rerun(mut self, rerun: crossbeam_channel::Sender<WireFrame>) -> Link {
        self.rerun = Some(rerun);
        self
    }

    /// A frame the link cannot get answered: re-run locally if its deadline allows and the
    /// rerun queue has room (DropNewest: else `link_down`, as before).
    async fn lost(&self, f: WireFrame) {
        let frame_id = f.frame_id;
        if f.timeline.captured.elapsed() < self.settings.deadline
            && let Some(tx) = &self.rerun
            && tx.try_send(f).is_ok()
        {
            tracing::debug!(frame_id, "link lost; frame re-run locally");
            return;
        }
        self.drop_frame(frame_id, DropReason::LinkDown).await;
    }

    /// Run until the inbox is closed and every frame answered, or the abort signal.
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(self.settings.backoff_min, self.settings.backoff_max);
        let mut last_failure: Option<ConnectFailure> = None;
        loop {
            if !self.inbox_open || self.abort.is_cancelled() {
                self.drain_inbox(DropReason::Shutdown).await;
                break;
            }
            // A refusal stays visible while retrying (it is what an operator must see).
            if !matches!(*self.state.borrow(), LinkState::Rejected { .. }) {
                self.state.send_replace(LinkState::Connecting);
            }
            let abort = self.abort.clone();
            let attempt = tokio::select! {
                r = connect(&self.settings) => r,
                _ = abort.cancelled() => continue,
            };
            match attempt {
                Ok((session_id, stream)) => {
                    backoff.reset();
                    last_failure = None;
                    tracing::info!(edge = %self.settings.edge, session_id, "link up");
                    self.metrics.connects.inc();
                    self.metrics.connected.set(1);
                    self.state.send_replace(LinkState::Up { session_id });
                    let end = self.session(stream).await;
                    self.metrics.connected.set(0);
                    self.metrics.in_flight.set(0);
                    self.state.send_replace(LinkState::Down);
                    if let SessionEnd::Finished = end {
                        break;
                    }
                    tracing::warn!(edge = %self.settings.edge, "link lost; running locally until it is back");
                }
                Err(e) => {
                    let delay = self.connect_failed(&e, last_failure, &mut backoff);
                    last_failure = Some(e.failure());
                    self.wait_down(delay).await;
                }
            }
        }
        self.state.send_replace(LinkState::Down);
        tracing::debug!("link finished");
    }

    /// Count, publish and log a failed attempt; the delay before the next one.
    fn connect_failed(&self, e: &ConnectError, last: Option<ConnectFailure>, backoff: &mut Backoff) -> Duration {
        let failure = e.failure();
        self.metrics.connect_failure(failure);
        self.state.send_replace(match e {
            ConnectError::Rejected { code, .. } => LinkState::Rejected { code: *code },
            _ => LinkState::Down,
        });
        let edge = &self.settings.edge;
        let reason = failure.as_str();
        if failure.needs_operator() {
            // Retrying soon cannot help: wait the longest backoff, and say it loudly once.
            let delay = backoff.longest();
            let retry_in_ms = delay.as_millis() as u64;
            if last != Some(failure) {
                tracing::error!(%edge, error = %e, reason, retry_in_ms, "the edge refuses this device; running locally");
            } else {
                tracing::warn!(%edge, error = %e, reason, retry_in_ms, "the edge still refuses this device");
            }
            delay
        } else {
            let delay = backoff.next_delay();
            tracing::warn!(%edge, error = %e, reason, retry_in_ms = delay.as_millis() as u64, "edge unreachable");
            delay
        }
    }

    /// While down: wait `delay`, dropping frames that arrive (`link_down`) and refusing commands.
    async fn wait_down(&mut self, delay: Duration) {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        let abort = self.abort.clone();
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = abort.cancelled() => return,
                f = self.inbox.recv(), if self.inbox_open => match f {
                    Some(f) => self.lost(f).await,
                    None => {
                        self.inbox_open = false;
                        return;
                    }
                },
                c = self.commands.recv(), if self.commands_open => self.refuse(c),
            }
        }
    }

    fn refuse(&mut self, c: Option<LinkCommand>) {
        match c {
            Some(LinkCommand::Prepare { reply, .. }) => {
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(Err(LinkError::Down));
            }
            Some(LinkCommand::Probe { reply, .. }) => {
                let _ = reply.send(Err(LinkError::Down));
            }
            None => self.commands_open = false,
        }
    }

    async fn drain_inbox(&mut self, reason: DropReason) {
        self.inbox.close();
        while let Ok(f) = self.inbox.try_recv() {
            self.drop_frame(f.frame_id, reason).await;
        }
        self.inbox_open = false;
    }

    async fn session(&mut self, stream: Stream) -> SessionEnd {
        let (rd, wr) = tokio::io::split(stream);
        let mut reader = FrameReader::new(rd, self.settings.limits);
        let wr = FrameWriter::new(wr, self.settings.write_timeout).counting(self.metrics.bytes_sent.clone());
        let mut s = Session::new(wr);
        let period = (self.settings.deadline / 4).min(PROBE_WAIT_MAX).max(Duration::from_millis(10));
        let mut sweep = tokio::time::interval(period);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut keepalive = tokio::time::interval(self.settings.keepalive);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let abort = self.abort.clone();
        let end = loop {
            let nonce = self.next_nonce + 1;
            if let Some(ping) = s.probe.start(!s.in_flight.is_empty(), nonce, Instant::now()) {
                self.next_nonce = nonce;
                if !s.control(&ping).await {
                    break SessionEnd::Lost;
                }
            }
            if !self.inbox_open && s.in_flight.is_empty() {
                s.say_bye().await;
                break SessionEnd::Finished;
            }
            let can_send = self.inbox_open
                && s.in_flight.len() < self.settings.max_in_flight
                && !s.probe.holds_frames(Instant::now());
            tokio::select! {
                _ = abort.cancelled() => {
                    for (id, _) in s.in_flight.drain() {
                        self.drop_frame(id, DropReason::Shutdown).await;
                    }
                    self.drain_inbox(DropReason::Shutdown).await;
                    s.say_bye().await;
                    break SessionEnd::Finished;
                }
                r = reader.next() => match r {
                    Ok(Some(Read::Frame { frame, wire_len })) => {
                        if recv_fault() {
                            break SessionEnd::Lost;
                        }
                        self.metrics.bytes_received.inc_by(wire_len as u64);
                        if !self.on_frame(&mut s, frame).await {
                            break SessionEnd::Lost;
                        }
                    }
                    Ok(Some(Read::Bad { error, .. })) => {
                        tracing::warn!(%error, "bad frame from the edge; closing the session");
                        break SessionEnd::Lost;
                    }
                    Ok(None) => break SessionEnd::Lost,
                    Err(e) => {
                        tracing::debug!(error = %e, "link read failed");
                        break SessionEnd::Lost;
                    }
                },
                f = self.inbox.recv(), if can_send => match f {
                    None => self.inbox_open = false,
                    Some(f) => {
                        if !self.offload(&mut s, f).await {
                            break SessionEnd::Lost;
                        }
                    }
                },
                c = self.commands.recv(), if self.commands_open => match c {
                    Some(LinkCommand::Prepare { plan, reply }) => {
                        if s.control(&plan_switch(&plan)).await {
                            s.announced = Some(s.announced.map_or(plan.epoch, |a| a.max(plan.epoch)));
                            s.acks.insert(plan.epoch, reply);
                        } else {
                            let _ = reply.send(Err(LinkError::Down));
                            break SessionEnd::Lost;
                        }
                    }
                    // Started at the top of the loop, once the link is idle enough.
                    Some(LinkCommand::Probe { burst_bytes, count, reply }) => {
                        s.probe.request(burst_bytes, count, reply, Instant::now());
                    }
                    None => self.commands_open = false,
                },
                _ = sweep.tick() => {
                    s.probe.on_tick(self.settings.deadline, Instant::now());
                    let deadline = self.settings.deadline;
                    let expired: Vec<u64> = s.in_flight.iter().filter(|(_, f)| f.frame.timeline.captured.elapsed() > deadline).map(|(&id, _)| id).collect();
                    for id in expired {
                        s.in_flight.remove(&id);
                        self.drop_frame(id, DropReason::Deadline).await;
                    }
                    self.metrics.in_flight.set(s.in_flight.len() as i64);
                }
                _ = keepalive.tick() => {
                    if s.last_sent.elapsed() >= self.settings.keepalive {
                        self.next_nonce += 1;
                        if !s.control(&Control::Ping { nonce: self.next_nonce }).await {
                            break SessionEnd::Lost;
                        }
                    }
                }
            }
        };
        if matches!(end, SessionEnd::Lost) {
            for (_, f) in s.in_flight.drain() {
                self.lost(f.frame).await;
            }
        }
        for (_, reply) in s.acks.drain() {
            let _ = reply.send(Err(LinkError::Down));
        }
        s.probe.session_ended();
        end
    }

    /// A frame from the encoder: dropped past its deadline, else (after announcing a newer plan
    /// epoch) sent. False when the session is lost.
    async fn offload(&mut self, s: &mut Session, f: WireFrame) -> bool {
        if f.timeline.captured.elapsed() > self.settings.deadline {
            self.drop_frame(f.frame_id, DropReason::Deadline).await;
            return true;
        }
        // Announce each newer epoch once, before its first frame. Frames of an older epoch
        // still in the pipeline need no announcement: they carry their model id and point.
        if s.announced.is_none_or(|a| f.plan.epoch > a) {
            s.announced = Some(f.plan.epoch);
            if !s.control(&plan_switch(&f.plan)).await {
                self.lost(f).await;
                return false;
            }
        }
        let alone = !s.probe.is_running() && s.in_flight.is_empty();
        match s.send_frame(f, alone).await {
            Ok(()) => {
                self.metrics.in_flight.set(s.in_flight.len() as i64);
                true
            }
            Err(f) => {
                self.lost(*f).await;
                false
            }
        }
    }

    /// Handle one frame from the edge; false when the session must end.
    async fn on_frame(&mut self, s: &mut Session, frame: Frame) -> bool {
        let msg = match frame.body {
            Body::Control(msg) => msg,
            Body::Tensor(_) => {
                tracing::warn!("edge sent a tensor frame; closing the session");
                return false;
            }
        };
        match msg {
            Control::Pong { nonce } => {
                let bursts = s.probe.on_pong(nonce, Instant::now());
                bursts.is_empty() || s.bursts(bursts).await
            }
            Control::ProbeReply { seq, .. } => {
                s.probe.on_reply(seq, Instant::now());
                true
            }
            Control::InferResult { frame_id, top, logits, edge_decode_us, edge_infer_us, .. } => {
                let now = Instant::now();
                let Some(InFlight { frame, wire_len, sample }) = s.in_flight.remove(&frame_id) else {
                    tracing::debug!(frame_id, "late result ignored (already dropped)");
                    return true;
                };
                self.metrics.in_flight.set(s.in_flight.len() as i64);
                let mut timeline = frame.timeline;
                timeline.done = Some(now);
                let edge_time = Duration::from_micros(u64::from(edge_decode_us) + u64::from(edge_infer_us));
                if let (Some(samples), Some(start), true) = (&self.samples, timeline.sent_start, sample) {
                    let sample = TransferSample {
                        bytes: wire_len,
                        duration: now.saturating_duration_since(start).saturating_sub(edge_time),
                        at: now,
                    };
                    // DropNewest: the consumer lags; samples are advisory.
                    let _ = samples.try_send(sample);
                }
                self.ledger
                    .record(Outcome::Result(Box::new(FrameResult {
                        frame_id,
                        origin: Origin::Edge,
                        plan: frame.plan,
                        // A result carries at least one class (checked when decoded).
                        class: top.first().map_or(0, |c| c.class),
                        confidence: top.first().map_or(0.0, |c| c.p),
                        top,
                        logits,
                        label: frame.label,
                        timeline,
                        bytes_sent: wire_len,
                        edge_decode_us,
                        edge_infer_us,
                    })))
                    .await;
                true
            }
            Control::FrameError { frame_id, code } => {
                if s.in_flight.remove(&frame_id).is_some() {
                    tracing::warn!(frame_id, code = code.as_str(), "edge refused a frame");
                    let reason = if code == ErrorCode::Panic { DropReason::Panic } else { DropReason::EdgeError };
                    self.drop_frame(frame_id, reason).await;
                } else {
                    tracing::warn!(frame_id, code = code.as_str(), "edge reported an error for an unknown frame");
                }
                true
            }
            Control::PlanAck { epoch, result } => {
                if result != PlanResult::Applied {
                    tracing::warn!(epoch, ?result, "edge did not apply the plan");
                }
                if let Some(reply) = s.acks.remove(&epoch) {
                    let _ = reply.send(Ok(result));
                }
                true
            }
            Control::Bye => {
                tracing::info!("edge said bye");
                false
            }
            other => {
                tracing::debug!(?other, "unexpected control message from the edge ignored");
                true
            }
        }
    }

    async fn drop_frame(&self, frame_id: u64, reason: DropReason) {
        self.ledger.record(Outcome::Dropped { frame_id, reason }).await;
    }
}

/// The read-side fail points, evaluated on every frame read from the edge: true when one fired
/// and the session is to be treated as lost ([`faults::LINK_RECV`]: the connection fails there;
/// [`faults::LINK_DECODE_REPLY`]: the reply is taken for a corrupt frame).
fn recv_fault() -> bool {
    if faults::fired(faults::LINK_RECV).is_some() {
        tracing::warn!("link read failed (fail point {})", faults::LINK_RECV);
        return true;
    }
    if faults::fired(faults::LINK_DECODE_REPLY).is_some() {
        tracing::warn!("bad frame from the edge (fail point {}); closing the session", faults::LINK_DECODE_REPLY);
        return true;
    }
    false
}

/// Apply a [`faults::LINK_SEND`] action to a frame about to be written; false = the connection
/// is to be treated as lost (after the first half of the frame went out).
async fn inject_send_fault(fault: &str, bytes: &mut Vec<u8>, wr: &mut Writer) -> bool {
    match fault {
        "corrupt" => {
            if let Some(b) = bytes.last_mut() {
                *b ^= 0xff;
            }
            tracing::warn!("frame corrupted (fail point {})", faults::LINK_SEND);
            true
        }
        "oversize" => {
            // The encoder's frames always hold a whole header, so this cannot fail.
            let _ = tandem_codec::frame::declare_payload_len(bytes, u64::MAX / 2);
            tracing::warn!("frame declared oversize (fail point {})", faults::LINK_SEND);
            true
        }
        _ => {
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            let _ = wr.write_partial(half).await;
            tracing::warn!("link cut mid-frame (fail point {})", faults::LINK_SEND);
            false
        }
    }
}

fn plan_switch(plan: &ActivePlan) -> Control {
    Control::PlanSwitch {
        epoch: plan.epoch,
        model_id: plan.choice.model_id,
        point: plan.choice.point,
        coding: plan.choice.coding,
    }
}
