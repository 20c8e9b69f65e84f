use std::collections::HashMap;
use std::time::{Duration, Instant};

use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Control, Limits, PlanResult};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use super::msg::{Burst, ConnectError, ConnectFailure, LinkCommand, LinkError, LinkState, ProbeReport, TransferSample};
use super::shaper::Shaper;
use crate::Abort;
use crate::encoder::WireFrame;
use crate::faults;
use crate::ledger::{DropReason, FrameResult, LedgerHandle, Outcome};
use crate::metrics::{DeviceMetrics, Origin};
use crate::plan::ActivePlan;
use crate::security::{ClientTls, Token};
use crate::wire::{FrameReader, Read, as_control, put_control};

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
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Largest reconnect delay (the delay doubles up to it).
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
}

/// A byte stream to the edge: the socket, or a shaped pipe in front of it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type Stream = Box<dyn Io>;
type Writer = WriteHalf<Stream>;

/// The longest a probe waits for the frames in flight to be answered before it starts anyway.
const PROBE_WAIT_MAX: Duration = Duration::from_millis(250);

/// An active probe in progress: a `Ping`, then — once it is answered — `count` `Probe` bursts,
/// answered in order.
struct PendingProbe {
    nonce: u64,
    ping_sent: Instant,
    rtt: Option<Duration>,
    /// Padding per burst.
    padding_len: u32,
    /// Per burst: wire bytes and when its first byte was written (empty until the pong).
    sent: Vec<(u64, Instant)>,
    /// Per burst: its transfer time and whether it ran from the previous reply, once its reply
    /// is in (one slot per burst to send).
    times: Vec<Option<(Duration, bool)>>,
    last_reply: Option<Instant>,
    reply: oneshot::Sender<Result<ProbeReport, LinkError>>,
}

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
    abort: Abort,
    metrics: DeviceMetrics,
    samples: Option<mpsc::Sender<TransferSample>>,
    next_nonce: u64,
}

impl Link {
    /// A link reading `inbox` (encoder output) and `commands`; publishes its state on the
    /// returned receiver.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: LinkSettings,
        inbox: mpsc::Receiver<WireFrame>,
        commands: mpsc::Receiver<LinkCommand>,
        ledger: LedgerHandle,
        abort: Abort,
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
        };
        (link, state_rx)
    }

    /// Run until the inbox is closed and every frame answered, or the abort signal.
    pub async fn run(mut self) {
        let mut backoff = self.settings.backoff_min;
        let mut last_failure: Option<ConnectFailure> = None;
        loop {
            if !self.inbox_open || self.abort.is_set() {
                self.drain_inbox(DropReason::Shutdown).await;
                break;
            }
            // A refusal stays visible while retrying (it is what an operator must see).
            if !matches!(*self.state.borrow(), LinkState::Rejected { .. }) {
                self.state.send_replace(LinkState::Connecting);
            }
            let mut abort = self.abort.clone();
            let attempt = tokio::select! {
                r = self.connect() => r,
                _ = abort.wait() => continue,
            };
            match attempt {
                Ok((session_id, stream)) => {
                    backoff = self.settings.backoff_min;
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
                    let failure = e.failure();
                    self.metrics.connect_failure(failure);
                    self.state.send_replace(match &e {
                        ConnectError::Rejected { code, .. } => LinkState::Rejected { code: *code },
                        _ => LinkState::Down,
                    });
                    if failure.needs_operator() {
                        // Retrying soon cannot help: wait the longest backoff, and say it loudly once.
                        backoff = self.settings.backoff_max;
                        if last_failure != Some(failure) {
                            tracing::error!(edge = %self.settings.edge, error = %e, reason = failure.as_str(), retry_in_ms = backoff.as_millis() as u64, "the edge refuses this device; running locally");
                        } else {
                            tracing::warn!(edge = %self.settings.edge, error = %e, reason = failure.as_str(), retry_in_ms = backoff.as_millis() as u64, "the edge still refuses this device");
                        }
                    } else {
                        tracing::warn!(edge = %self.settings.edge, error = %e, reason = failure.as_str(), retry_in_ms = backoff.as_millis() as u64, "edge unreachable");
                    }
                    last_failure = Some(failure);
                    self.wait_down(backoff).await;
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                }
            }
        }
        self.state.send_replace(LinkState::Down);
        tracing::debug!("link finished");
    }

    /// While down: wait `delay`, dropping frames that arrive (`link_down`) and refusing commands.
    async fn wait_down(&mut self, delay: Duration) {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        let mut abort = self.abort.clone();
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = abort.wait() => return,
                f = self.inbox.recv(), if self.inbox_open => match f {
                    Some(f) => self.ledger.record(Outcome::Dropped { frame_id: f.frame_id, reason: DropReason::LinkDown }).await,
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

    async fn connect(&mut self) -> Result<(u64, Stream), ConnectError> {
        let s = &self.settings;
        let tcp = tokio::time::timeout(s.connect_timeout, TcpStream::connect(&s.edge))
            .await
            .map_err(|_| ConnectError::Timeout { stage: "connect", after: s.connect_timeout })?
            .map_err(ConnectError::Unreachable)?;
        tcp.set_nodelay(true).map_err(ConnectError::Unreachable)?;
        // The handshake goes through the shaper too: it is part of the link. TLS runs over the
        // shaper, so the trace shapes the bytes TLS really sends.
        let shaped: Stream = match &s.shaper {
            Some(shaper) => Box::new(shaper.wrap(tcp)),
            None => Box::new(tcp),
        };
        let mut stream: Stream = match &s.tls {
            None => shaped,
            Some(tls) => {
                let tls_stream = tokio::time::timeout(s.handshake_timeout, tls.connect(shaped))
                    .await
                    .map_err(|_| ConnectError::Timeout { stage: "TLS handshake", after: s.handshake_timeout })?
                    .map_err(|source| ConnectError::Tls { server_name: tls.server_name(), source })?;
                Box::new(tls_stream)
            }
        };
        let mut buf = Vec::new();
        let hello = Control::Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: s.device_id.clone(),
            token: s.token.as_ref().map(|t| t.expose().to_owned()),
        };
        put_control(hello, &mut buf).map_err(|e| ConnectError::Handshake(format!("hello: {e}")))?;
        let handshake = async {
            stream.write_all(&buf).await.map_err(|e| ConnectError::Handshake(format!("hello: {e}")))?;
            let mut reader = FrameReader::new(&mut stream, s.limits);
            match reader.next().await {
                Ok(Some(Read::Frame { frame, .. })) => match as_control(&frame) {
                    Some(Control::HelloAck { protocol_version, session_id })
                        if *protocol_version == PROTOCOL_VERSION =>
                    {
                        Ok(*session_id)
                    }
                    Some(Control::HelloAck { protocol_version, .. }) => Err(ConnectError::Handshake(format!(
                        "edge speaks protocol {protocol_version}, we speak {PROTOCOL_VERSION}"
                    ))),
                    Some(Control::Reject { code, reason }) => {
                        Err(ConnectError::Rejected { code: *code, reason: reason.clone() })
                    }
                    other => Err(ConnectError::Handshake(format!("unexpected handshake reply {other:?}"))),
                },
                Ok(Some(Read::Bad { error, .. })) => {
                    let hint = if s.tls.is_none() { " (does the edge expect TLS?)" } else { "" };
                    Err(ConnectError::Handshake(format!("bad handshake frame: {error}{hint}")))
                }
                Ok(None) => {
                    let hint = if s.tls.is_none() { " (an edge that expects TLS does this)" } else { "" };
                    Err(ConnectError::Handshake(format!("edge closed the connection during the handshake{hint}")))
                }
                Err(e) => Err(ConnectError::Handshake(e.to_string())),
            }
        };
        let session_id = tokio::time::timeout(s.handshake_timeout, handshake)
            .await
            .map_err(|_| ConnectError::Timeout { stage: "handshake", after: s.handshake_timeout })??;
        Ok((session_id, stream))
    }

    async fn session(&mut self, stream: Stream) -> SessionEnd {
        let (rd, mut wr) = tokio::io::split(stream);
        let mut probe: Option<PendingProbe> = None;
        // A probe asked for while frames were in flight: it starts once they are answered (the
        // link takes no new frame meanwhile), so its ping and bursts meet an idle link — or
        // after PROBE_WAIT_MAX anyway, so that a slow edge cannot hold frames back for long.
        let mut queued_probe: Option<(Instant, u32, u32, oneshot::Sender<Result<ProbeReport, LinkError>>)> = None;
        let mut reader = FrameReader::new(rd, self.settings.limits);
        let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
        let mut acks: HashMap<u32, oneshot::Sender<Result<PlanResult, LinkError>>> = HashMap::new();
        let mut announced: Option<u32> = None;
        let period = (self.settings.deadline / 4).min(PROBE_WAIT_MAX).max(Duration::from_millis(10));
        let mut sweep = tokio::time::interval(period);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut keepalive = tokio::time::interval(self.settings.keepalive);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_sent = Instant::now();
        let mut abort = self.abort.clone();
        let end = loop {
            if queued_probe.as_ref().is_some_and(|q| in_flight.is_empty() || q.0.elapsed() >= PROBE_WAIT_MAX)
                && let Some((_, burst_bytes, count, reply)) = queued_probe.take()
            {
                match self.send_probe(&mut wr, burst_bytes, count, reply).await {
                    Some(p) => {
                        probe = Some(p);
                        last_sent = Instant::now();
                    }
                    None => break SessionEnd::Lost,
                }
            }
            if !self.inbox_open && in_flight.is_empty() {
                self.say_bye(&mut wr).await;
                break SessionEnd::Finished;
            }
            // Nor while a probe waits for its pong (at most PROBE_WAIT_MAX, in case it is lost): a
            // frame sent then would sit in front of its bursts.
            let awaiting_pong =
                probe.as_ref().is_some_and(|p| p.rtt.is_none() && p.ping_sent.elapsed() < PROBE_WAIT_MAX);
            let can_send = self.inbox_open
                && in_flight.len() < self.settings.max_in_flight
                && queued_probe.is_none()
                && !awaiting_pong;
            tokio::select! {
                _ = abort.wait() => {
                    for (id, _) in in_flight.drain() {
                        self.drop_frame(id, DropReason::Shutdown).await;
                    }
                    self.drain_inbox(DropReason::Shutdown).await;
                    self.say_bye(&mut wr).await;
                    break SessionEnd::Finished;
                }
                r = reader.next() => match r {
                    Ok(Some(Read::Frame { .. })) if faults::fired(faults::LINK_RECV).is_some() => {
                        tracing::warn!("link read failed (fail point {})", faults::LINK_RECV);
                        break SessionEnd::Lost;
                    }
                    Ok(Some(Read::Frame { .. })) if faults::fired(faults::LINK_DECODE_REPLY).is_some() => {
                        tracing::warn!("bad frame from the edge (fail point {}); closing the session", faults::LINK_DECODE_REPLY);
                        break SessionEnd::Lost;
                    }
                    Ok(Some(Read::Frame { frame, wire_len })) => {
                        self.metrics.bytes_received.inc_by(wire_len as u64);
                        match as_control(&frame) {
                            Some(Control::Pong { nonce }) => {
                                if let Some(mut p) = probe.take_if(|p| p.nonce == *nonce && p.rtt.is_none()) {
                                    p.rtt = Some(p.ping_sent.elapsed());
                                    if !self.send_bursts(&mut wr, &mut p).await {
                                        let _ = p.reply.send(Err(LinkError::Down));
                                        break SessionEnd::Lost;
                                    }
                                    last_sent = Instant::now();
                                    probe = Some(p);
                                }
                            }
                            Some(Control::ProbeReply { seq, .. }) => {
                                let now = Instant::now();
                                if let Some(p) = probe.as_mut()
                                    && let Some(&(_, start)) = p.sent.get(*seq as usize)
                                {
                                    // Bursts queue behind each other: time each from when the
                                    // link could start on it (its first byte, or the previous reply).
                                    let queued = p.last_reply.is_some_and(|r| r > start);
                                    let from = if queued { p.last_reply.unwrap_or(start) } else { start };
                                    p.times[*seq as usize] = Some((now.saturating_duration_since(from), queued));
                                    p.last_reply = Some(now);
                                    if p.times.iter().all(Option::is_some) {
                                        finish_probe(probe.take());
                                    }
                                }
                            }
                            Some(msg) => {
                                if !self.on_control(msg.clone(), &mut in_flight, &mut acks).await {
                                    break SessionEnd::Lost;
                                }
                            }
                            None => {
                                tracing::warn!("edge sent a tensor frame; closing the session");
                                break SessionEnd::Lost;
                            }
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
                        if f.timeline.captured.elapsed() > self.settings.deadline {
                            self.drop_frame(f.frame_id, DropReason::Deadline).await;
                            continue;
                        }
                        // Announce each newer epoch once, before its first frame. Frames of an
                        // older epoch still in the pipeline need no announcement: they carry
                        // their model id and point.
                        if announced.is_none_or(|a| f.plan.epoch > a) {
                            announced = Some(f.plan.epoch);
                            if !self.write_control(&mut wr, plan_switch(&f.plan)).await {
                                self.drop_frame(f.frame_id, DropReason::LinkDown).await;
                                break SessionEnd::Lost;
                            }
                        }
                        let alone = probe.is_none() && in_flight.is_empty();
                        let (frame_id, ok) = self.send_frame(&mut wr, f, &mut in_flight, alone).await;
                        last_sent = Instant::now();
                        if !ok {
                            self.drop_frame(frame_id, DropReason::LinkDown).await;
                            break SessionEnd::Lost;
                        }
                    }
                },
                c = self.commands.recv(), if self.commands_open => match c {
                    Some(LinkCommand::Prepare { plan, reply }) => {
                        if self.write_control(&mut wr, plan_switch(&plan)).await {
                            announced = Some(announced.map_or(plan.epoch, |a| a.max(plan.epoch)));
                            acks.insert(plan.epoch, reply);
                            last_sent = Instant::now();
                        } else {
                            let _ = reply.send(Err(LinkError::Down));
                            break SessionEnd::Lost;
                        }
                    }
                    Some(LinkCommand::Probe { burst_bytes, count, reply }) => {
                        if probe.is_some() || queued_probe.is_some() {
                            let _ = reply.send(Err(LinkError::Busy));
                            continue;
                        }
                        if !in_flight.is_empty() {
                            queued_probe = Some((Instant::now(), burst_bytes, count, reply));
                            continue;
                        }
                        match self.send_probe(&mut wr, burst_bytes, count, reply).await {
                            Some(p) => {
                                probe = Some(p);
                                last_sent = Instant::now();
                            }
                            None => break SessionEnd::Lost,
                        }
                    }
                    None => self.commands_open = false,
                },
                _ = sweep.tick() => {
                    if probe.as_ref().is_some_and(|p| p.ping_sent.elapsed() > self.settings.deadline) {
                        // Report what came back; missing bursts are simply absent.
                        finish_probe(probe.take());
                    }
                    let deadline = self.settings.deadline;
                    let expired: Vec<u64> = in_flight.iter().filter(|(_, f)| f.frame.timeline.captured.elapsed() > deadline).map(|(&id, _)| id).collect();
                    for id in expired {
                        in_flight.remove(&id);
                        self.drop_frame(id, DropReason::Deadline).await;
                    }
                    self.metrics.in_flight.set(in_flight.len() as i64);
                }
                _ = keepalive.tick() => {
                    if last_sent.elapsed() >= self.settings.keepalive {
                        self.next_nonce += 1;
                        if !self.write_control(&mut wr, Control::Ping { nonce: self.next_nonce }).await {
                            break SessionEnd::Lost;
                        }
                        last_sent = Instant::now();
                    }
                }
            }
        };
        if matches!(end, SessionEnd::Lost) {
            for (id, _) in in_flight.drain() {
                self.drop_frame(id, DropReason::LinkDown).await;
            }
        }
        for (_, reply) in acks.drain() {
            let _ = reply.send(Err(LinkError::Down));
        }
        if let Some(p) = probe.take() {
            let _ = p.reply.send(Err(LinkError::Down));
        }
        if let Some((_, _, _, reply)) = queued_probe.take() {
            let _ = reply.send(Err(LinkError::Down));
        }
        end
    }

    /// Start a probe: write its `Ping`; the bursts follow its `Pong` ([`Link::send_bursts`]).
    /// `None` if the session failed (the reply has been answered then).
    async fn send_probe(
        &mut self,
        wr: &mut Writer,
        burst_bytes: u32,
        count: u32,
        reply: oneshot::Sender<Result<ProbeReport, LinkError>>,
    ) -> Option<PendingProbe> {
        self.next_nonce += 1;
        let nonce = self.next_nonce;
        let ping_sent = Instant::now();
        if !self.write_control(wr, Control::Ping { nonce }).await {
            let _ = reply.send(Err(LinkError::Down));
            return None;
        }
        let count = count.clamp(1, 16) as usize;
        let padding_len = burst_bytes.min(tandem_codec::control::MAX_PROBE_PADDING);
        Some(PendingProbe {
            nonce,
            ping_sent,
            rtt: None,
            padding_len,
            sent: Vec::with_capacity(count),
            times: vec![None; count],
            last_reply: None,
            reply,
        })
    }

    /// Write a probe's bursts, once its ping is answered: written right behind the ping, a burst
    /// would share the ping's packets and its round trip would include the burst's
    /// serialisation (12 ms per 1,500 bytes at 1 Mbit/s). False if the session failed.
    async fn send_bursts(&mut self, wr: &mut Writer, p: &mut PendingProbe) -> bool {
        for seq in 0..p.times.len() as u32 {
            let mut buf = Vec::new();
            let msg = Control::Probe { seq, sent_at_us: 0, padding_len: p.padding_len };
            if let Err(e) = put_control(msg, &mut buf) {
                tracing::error!(error = %e, "could not encode a probe");
                return false;
            }
            let start = Instant::now();
            let ok = matches!(tokio::time::timeout(self.settings.write_timeout, wr.write_all(&buf)).await, Ok(Ok(())));
            if !ok {
                return false;
            }
            self.metrics.bytes_sent.inc_by(buf.len() as u64);
            p.sent.push((buf.len() as u64, start));
        }
        true
    }

    /// Handle one control message; false when the session must end.
    async fn on_control(
        &mut self,
        msg: Control,
        in_flight: &mut HashMap<u64, InFlight>,
        acks: &mut HashMap<u32, oneshot::Sender<Result<PlanResult, LinkError>>>,
    ) -> bool {
        match msg {
            Control::InferResult { frame_id, class, confidence, logits, edge_decode_us, edge_infer_us, .. } => {
                let now = Instant::now();
                let Some(InFlight { frame, wire_len, sample }) = in_flight.remove(&frame_id) else {
                    tracing::debug!(frame_id, "late result ignored (already dropped)");
                    return true;
                };
                self.metrics.in_flight.set(in_flight.len() as i64);
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
                        class,
                        confidence,
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
                if in_flight.remove(&frame_id).is_some() {
                    tracing::warn!(frame_id, code = code.as_str(), "edge refused a frame");
                    self.drop_frame(frame_id, DropReason::EdgeError).await;
                } else {
                    tracing::warn!(frame_id, code = code.as_str(), "edge reported an error for an unknown frame");
                }
                true
            }
            Control::PlanAck { epoch, result } => {
                if result != PlanResult::Applied {
                    tracing::warn!(epoch, ?result, "edge did not apply the plan");
                }
                if let Some(reply) = acks.remove(&epoch) {
                    let _ = reply.send(Ok(result));
                }
                true
            }
            Control::Pong { .. } => true,
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

    async fn send_frame(
        &mut self,
        wr: &mut Writer,
        mut f: WireFrame,
        in_flight: &mut HashMap<u64, InFlight>,
        sample: bool,
    ) -> (u64, bool) {
        let frame_id = f.frame_id;
        f.timeline.sent_start = Some(Instant::now());
        let mut bytes = std::mem::take(&mut f.bytes);
        if let Some(fault) = faults::fired(faults::LINK_SEND)
            && !inject_send_fault(&fault, &mut bytes, wr, self.settings.write_timeout).await
        {
            return (frame_id, false);
        }
        let ok = matches!(tokio::time::timeout(self.settings.write_timeout, wr.write_all(&bytes)).await, Ok(Ok(())));
        if ok {
            f.timeline.sent_end = Some(Instant::now());
            self.metrics.bytes_sent.inc_by(bytes.len() as u64);
            in_flight.insert(frame_id, InFlight { frame: f, wire_len: bytes.len() as u64, sample });
            self.metrics.in_flight.set(in_flight.len() as i64);
        }
        (frame_id, ok)
    }

    async fn write_control(&mut self, wr: &mut Writer, msg: Control) -> bool {
        let mut buf = Vec::new();
        if let Err(e) = put_control(msg, &mut buf) {
            tracing::error!(error = %e, "could not encode a control message");
            return true;
        }
        let ok = matches!(tokio::time::timeout(self.settings.write_timeout, wr.write_all(&buf)).await, Ok(Ok(())));
        if ok {
            self.metrics.bytes_sent.inc_by(buf.len() as u64);
        }
        ok
    }

    async fn say_bye(&mut self, wr: &mut Writer) {
        self.write_control(wr, Control::Bye).await;
        // Best effort: the edge may already be gone.
        let _ = wr.shutdown().await;
    }

    async fn drop_frame(&self, frame_id: u64, reason: DropReason) {
        self.ledger.record(Outcome::Dropped { frame_id, reason }).await;
    }
}

/// Apply a [`faults::LINK_SEND`] action to a frame about to be written; false = the connection
/// is to be treated as lost (after the first half of the frame went out).
async fn inject_send_fault(fault: &str, bytes: &mut [u8], wr: &mut Writer, write_timeout: Duration) -> bool {
    match fault {
        "corrupt" => {
            if let Some(b) = bytes.last_mut() {
                *b ^= 0xff;
            }
            tracing::warn!("frame corrupted (fail point {})", faults::LINK_SEND);
            true
        }
        "oversize" => {
            // payload_len lives at header bytes 64..72 (codec::frame's layout test pins it).
            if let Some(len) = bytes.get_mut(64..72) {
                len.copy_from_slice(&(u64::MAX / 2).to_le_bytes());
            }
            tracing::warn!("frame declared oversize (fail point {})", faults::LINK_SEND);
            true
        }
        _ => {
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            let _ = tokio::time::timeout(write_timeout, async {
                wr.write_all(half).await?;
                wr.flush().await
            })
            .await;
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

/// Answer a probe with the bursts that came back.
fn finish_probe(p: Option<PendingProbe>) {
    let Some(p) = p else { return };
    let bursts = p
        .sent
        .iter()
        .zip(&p.times)
        .filter_map(|(&(bytes, _), t)| t.map(|(took, queued)| Burst { bytes, took, queued }))
        .collect();
    // The controller may have stopped waiting.
    let _ = p.reply.send(Ok(ProbeReport { rtt: p.rtt, bursts, at: Instant::now() }));
}
