use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Body, Control, ErrorCode, FrameError, Limits, PlanResult, RejectCode, ResultSpec};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::msg::{Job, StoreMsg};
use super::server::EdgeSettings;
use crate::faults;
use crate::metrics::EdgeMetrics;
use crate::types::RejectReason;
use crate::wire::{FrameReader, FrameWriter, Read};

/// What a connection shares with the server (all handles; no shared mutable state).
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub settings: Arc<EdgeSettings>,
    pub jobs: Sender<Job>,
    pub pool: Arc<Semaphore>,
    pub store: Sender<StoreMsg>,
    pub metrics: EdgeMetrics,
}

/// The two halves of an authenticated connection, with the reader's buffer (frames the device
/// sent right after its `Hello` are already in it). Plain TCP keeps the socket's own split
/// halves (no lock between reader and writer); a TLS stream is one state machine, split with
/// `tokio::io::split`.
pub(crate) enum AuthedIo {
    Plain(FrameReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf),
    Tls(
        FrameReader<ReadHalf<tokio_rustls::server::TlsStream<TcpStream>>>,
        WriteHalf<tokio_rustls::server::TlsStream<TcpStream>>,
    ),
}

/// A connection that proved itself: TLS (when configured) and a `Hello` with the right token.
pub(crate) struct Authed {
    pub io: AuthedIo,
    pub device_id: String,
    /// What the device's results carry (its `Hello`).
    pub results: ResultSpec,
}

/// How a pending connection's handshake ended, for the accept loop's [`super::admission`].
pub(crate) enum HandshakeEnd {
    Authed(Authed),
    /// A wrong or missing token. The `Reject` is not sent yet: the accept loop sends it after
    /// recording the strike, so a client that reads its refusal and reconnects at once is
    /// judged with that strike counted.
    BadToken(Refusal),
    /// Anything else: TLS failure, no `Hello` in time, garbage, an old protocol, server stop.
    Failed,
}

/// The writing half of a pending connection.
pub(crate) enum Writer {
    Plain(tokio::net::tcp::OwnedWriteHalf),
    Tls(WriteHalf<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A refusal still to be sent (then the connection is closed).
pub(crate) struct Refusal {
    wr: Writer,
    reply: Control,
    timeout: Duration,
}

impl Refusal {
    /// Send it (bounded by what was left of the handshake deadline) and close.
    pub(crate) async fn send(self) {
        match self.wr {
            Writer::Plain(w) => write_reject(w, self.reply, self.timeout).await,
            Writer::Tls(w) => write_reject(w, self.reply, self.timeout).await,
        }
    }
}

enum HelloEnd<W> {
    BadToken(W, Control, Duration),
    Failed,
}

impl<W> HelloEnd<W> {
    fn into_end(self, wrap: impl FnOnce(W) -> Writer) -> HandshakeEnd {
        match self {
            HelloEnd::BadToken(wr, reply, timeout) => HandshakeEnd::BadToken(Refusal { wr: wrap(wr), reply, timeout }),
            HelloEnd::Failed => HandshakeEnd::Failed,
        }
    }
}

/// Largest payload read before the peer is authenticated: a `Hello` is a few hundred bytes, so
/// a stranger cannot make the edge buffer a tensor's worth (16 MiB by default) per pending
/// connection; the session's limits apply from the frame after `Hello`.
const HELLO_MAX_PAYLOAD: u64 = 4 << 10;

/// The limits a pending connection's `Hello` is read under.
fn hello_limits(session: Limits) -> Limits {
    Limits { max_payload_bytes: HELLO_MAX_PAYLOAD.min(session.max_payload_bytes), ..session }
}

/// Run the whole handshake of a pending connection under one deadline (`handshake_timeout`,
/// counted from accept): the TLS handshake when the edge speaks TLS, then `Hello`. Refusals
/// other than a bad token are written here, inside the deadline too.
pub(crate) async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    s: Arc<EdgeSettings>,
    m: EdgeMetrics,
    mut stop: watch::Receiver<bool>,
) -> HandshakeEnd {
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + s.handshake_timeout;
    let work = async {
        match s.tls.clone() {
            None => {
                let (rd, wr) = stream.into_split();
                match hello(FrameReader::new(rd, hello_limits(s.limits)), wr, peer, &s, &m, deadline).await {
                    Ok((r, w, (device_id, results))) => {
                        HandshakeEnd::Authed(Authed { io: AuthedIo::Plain(r, w), device_id, results })
                    }
                    Err(e) => e.into_end(Writer::Plain),
                }
            }
            Some(tls) => match tls.accept(stream).await {
                Ok(stream) => {
                    let (rd, wr) = tokio::io::split(stream);
                    match hello(FrameReader::new(rd, hello_limits(s.limits)), wr, peer, &s, &m, deadline).await {
                        Ok((r, w, (device_id, results))) => {
                            HandshakeEnd::Authed(Authed { io: AuthedIo::Tls(r, w), device_id, results })
                        }
                        Err(e) => e.into_end(Writer::Tls),
                    }
                }
                Err(e) => {
                    m.reject(RejectReason::Tls);
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    HandshakeEnd::Failed
                }
            },
        }
    };
    let tls = s.tls.is_some();
    tokio::select! {
        r = tokio::time::timeout_at(deadline, work) => r.unwrap_or_else(|_| {
            // Whichever step it was stuck in (TLS or Hello), it ran out of time.
            m.reject(if tls { RejectReason::Tls } else { RejectReason::Handshake });
            tracing::debug!(%peer, "handshake timed out");
            HandshakeEnd::Failed
        }),
        _ = stopped(&mut stop) => HandshakeEnd::Failed,
    }
}

/// Read and check the `Hello`; on a refusal other than a bad token, say why and close.
async fn hello<R, W>(
    mut reader: FrameReader<R>,
    wr: W,
    peer: SocketAddr,
    s: &EdgeSettings,
    m: &EdgeMetrics,
    deadline: tokio::time::Instant,
) -> Result<(FrameReader<R>, W, (String, ResultSpec)), HelloEnd<W>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The caller bounds the whole handshake; this read has no timeout of its own.
    let read = reader.next().await;
    match check_hello(read, s, m) {
        Ok(id) => {
            reader.set_limits(s.limits);
            Ok((reader, wr, id))
        }
        Err((reason, reply)) => {
            m.reject(reason);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now()).min(s.write_timeout);
            if reason == RejectReason::Unauthorized {
                // DEBUG: a stranger guessing is counted and, repeated, banned; the ban is logged
                // (once) by the accept loop. At WARN each guess would flood the log.
                tracing::debug!(%peer, reply = ?reply, "device refused: bad token");
                return Err(HelloEnd::BadToken(wr, reply, left));
            }
            tracing::info!(%peer, reply = ?reply, "handshake failed");
            if !matches!(reply, Control::Bye) {
                write_reject(wr, reply, left).await;
            }
            Err(HelloEnd::Failed)
        }
    }
}

/// Refuse an authenticated device over the session limit with `Reject { Busy }`, then close.
/// Counted by the caller.
pub(crate) async fn reject_busy(io: AuthedIo, limit: usize, write_timeout: Duration) {
    let reject = Control::Reject { code: RejectCode::Busy, reason: format!("connection limit {limit} reached") };
    match io {
        AuthedIo::Plain(_, wr) => write_reject(wr, reject, write_timeout).await,
        AuthedIo::Tls(_, wr) => write_reject(wr, reject, write_timeout).await,
    }
}

async fn write_reject<S: AsyncWrite + Unpin>(stream: S, reject: Control, write_timeout: Duration) {
    let mut wr = FrameWriter::new(stream, write_timeout);
    if wr.control(&reject).await.is_ok() {
        wr.shutdown().await;
    }
}

/// Serve an authenticated device in its session slot.
pub(crate) async fn session(
    authed: Authed,
    peer: SocketAddr,
    session_id: u64,
    shared: Shared,
    stop: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) {
    let Authed { io, device_id, results } = authed;
    match io {
        AuthedIo::Plain(rd, wr) => serve(rd, wr, device_id, results, peer, session_id, shared, stop, slot).await,
        AuthedIo::Tls(rd, wr) => serve(rd, wr, device_id, results, peer, session_id, shared, stop, slot).await,
    }
}

/// The `Hello` verdict: the device id and what its results carry, or the reason and the reply
/// (`Bye` = close silently).
fn check_hello(
    read: Result<Option<Read>, crate::wire::ReadError>,
    s: &EdgeSettings,
    m: &EdgeMetrics,
) -> Result<(String, ResultSpec), (RejectReason, Control)> {
    let reject = |reason, code, text: String| Err((reason, Control::Reject { code, reason: text }));
    match read {
        Ok(Some(Read::Frame { frame, wire_len })) => {
            m.bytes_received.inc_by(wire_len as u64);
            match frame.body {
                Body::Control(Control::Hello { protocol_version, .. }) if protocol_version != PROTOCOL_VERSION => {
                    reject(
                        RejectReason::Protocol,
                        RejectCode::UnsupportedProtocol,
                        format!("protocol {protocol_version} not supported (this edge speaks {PROTOCOL_VERSION})"),
                    )
                }
                Body::Control(Control::Hello { device_id, token, results, .. }) => match (&s.token, token) {
                    (None, _) => Ok((device_id, results)),
                    (Some(want), Some(got)) if want.matches(&got) => Ok((device_id, results)),
                    (Some(_), Some(_)) => {
                        reject(RejectReason::Unauthorized, RejectCode::BadToken, "wrong token".into())
                    }
                    (Some(_), None) => {
                        reject(RejectReason::Unauthorized, RejectCode::BadToken, "this edge requires a token".into())
                    }
                },
                _ => reject(RejectReason::Handshake, RejectCode::Other, "expected Hello".into()),
            }
        }
        // A device speaking another frame-header version (a v1 `TNDM` header included): say so,
        // in this edge's version, naming both.
        Ok(Some(Read::Bad { error: error @ FrameError::UnsupportedVersion { .. }, .. })) => {
            reject(RejectReason::Protocol, RejectCode::UnsupportedProtocol, error.to_string())
        }
        Ok(Some(Read::Bad { error, .. })) => {
            reject(RejectReason::Handshake, RejectCode::Other, format!("bad frame: {error}"))
        }
        Ok(None) | Err(_) => Err((RejectReason::Handshake, Control::Bye)),
    }
}

/// Serve one device until it leaves, misbehaves beyond repair, idles out or the server stops.
#[allow(clippy::too_many_arguments)]
async fn serve<R, W>(
    mut reader: FrameReader<R>,
    wr: W,
    device_id: String,
    results: ResultSpec,
    peer: SocketAddr,
    session_id: u64,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let s = shared.settings.clone();
    let m = shared.metrics.clone();
    let (outbox, outbox_rx) = mpsc::channel::<Control>(s.outbox.max(1));
    let writer = tokio::spawn(write_loop(wr, outbox_rx, s.write_timeout, m.clone()));
    if outbox.send(Control::HelloAck { protocol_version: PROTOCOL_VERSION, session_id }).await.is_err() {
        return;
    }
    m.accepted.inc();
    m.connections.inc();
    tracing::info!(session_id, %device_id, %peer, top_k = results.top_k, logits = results.logits, "device connected");

    let mut epoch: Option<u32> = None;
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stop) => {
                let _ = outbox.send(Control::Bye).await;
                break;
            }
            r = tokio::time::timeout(s.idle_timeout, reader.next()) => r,
        };
        let read = match next {
            // The edge-side decode fault: a tensor frame that arrived intact is treated as corrupt.
            Ok(Ok(Some(Read::Frame { frame, wire_len })))
                if matches!(frame.body, Body::Tensor(_)) && faults::fired(faults::EDGE_DECODE).is_some() =>
            {
                Read::Bad {
                    meta: Some(frame.meta),
                    error: FrameError::Checksum { expected: 0, got: 0 },
                    resync: true,
                    wire_len,
                }
            }
            Err(_) => {
                m.idle_closed.inc();
                tracing::info!(session_id, idle_ms = s.idle_timeout.as_millis() as u64, "idle device disconnected");
                break;
            }
            Ok(Err(e)) => {
                tracing::info!(session_id, error = %e, "connection lost");
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(r))) => r,
        };
        match read {
            Read::Bad { meta, error, resync, wire_len } => {
                m.bytes_received.inc_by(wire_len as u64);
                let code = ErrorCode::from(&error);
                m.error(code);
                let frame_id = meta.map_or(0, |m| m.frame_id);
                tracing::warn!(session_id, frame_id, %error, resync, "bad frame");
                if outbox.send(Control::FrameError { frame_id, code }).await.is_err() || !resync {
                    break;
                }
            }
            Read::Frame { frame, wire_len } => {
                m.bytes_received.inc_by(wire_len as u64);
                let received_at = Instant::now();
                match frame.body {
                    Body::Tensor(tensor) => {
                        // Block until the pool has room (backpressure to this device only).
                        let permit = tokio::select! {
                            p = shared.pool.clone().acquire_owned() => p,
                            _ = stopped(&mut stop) => break,
                        };
                        let Ok(permit) = permit else { break };
                        let job = Job {
                            meta: frame.meta,
                            tensor,
                            results,
                            received_at,
                            reply: outbox.clone(),
                            _permit: permit,
                        };
                        if let Err(e) = shared.jobs.try_send(job) {
                            // Permits equal the queue's capacity, so Full cannot happen;
                            // Disconnected means the pool is shutting down.
                            let (job, code) = match e {
                                TrySendError::Full(j) => (j, ErrorCode::Overloaded),
                                TrySendError::Disconnected(j) => (j, ErrorCode::Internal),
                            };
                            m.error(code);
                            let _ = outbox.send(Control::FrameError { frame_id: job.meta.frame_id, code }).await;
                        }
                    }
                    Body::Control(msg) => {
                        let reply = match msg {
                            Control::PlanSwitch { epoch: e, model_id, point, coding } => {
                                let result = if epoch.is_some_and(|cur| e <= cur) {
                                    PlanResult::StaleEpoch
                                } else if !coding.compression().is_available() {
                                    PlanResult::UnsupportedCoding
                                } else {
                                    prepare(&shared.store, model_id, point).await
                                };
                                if result == PlanResult::Applied {
                                    epoch = Some(e);
                                    tracing::info!(session_id, epoch = e, model_id, point, %coding, "plan applied");
                                }
                                Some(Control::PlanAck { epoch: e, result })
                            }
                            Control::Ping { nonce } => Some(Control::Pong { nonce }),
                            Control::Probe { seq, .. } if faults::fired(faults::EDGE_PROBE_REPLY).is_some() => {
                                tracing::debug!(session_id, seq, "probe left unanswered (fail point)");
                                None
                            }
                            Control::Probe { seq, sent_at_us, .. } => Some(Control::ProbeReply {
                                seq,
                                sent_at_us,
                                received_len: u32::try_from(wire_len).unwrap_or(u32::MAX),
                            }),
                            Control::Bye => break,
                            other => {
                                m.error(ErrorCode::Malformed);
                                // The kind only: a repeated Hello carries the token.
                                let kind = match &other {
                                    Control::Hello { .. } => "Hello",
                                    _ => "other",
                                };
                                tracing::warn!(session_id, kind, "unexpected control message");
                                Some(Control::FrameError { frame_id: frame.meta.frame_id, code: ErrorCode::Malformed })
                            }
                        };
                        if let Some(reply) = reply
                            && outbox.send(reply).await.is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }
    }
    // Replies still owed by the pool keep the writer alive through their outbox clones.
    drop(outbox);
    if tokio::time::timeout(s.write_timeout, writer).await.is_err() {
        tracing::debug!(session_id, "writer did not finish in time");
    }
    m.connections.dec();
    tracing::info!(session_id, "device disconnected");
}

/// Resolves when the server stops (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&v| v).await;
}

async fn prepare(store: &Sender<StoreMsg>, model_id: u32, point: u16) -> PlanResult {
    let (tx, rx) = oneshot::channel();
    match store.try_send(StoreMsg::Prepare { model_id, point, reply: tx }) {
        Ok(()) => rx.await.unwrap_or(PlanResult::Busy),
        Err(_) => PlanResult::Busy,
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut outbox: mpsc::Receiver<Control>,
    write_timeout: Duration,
    m: EdgeMetrics,
) {
    let mut wr = FrameWriter::new(wr, write_timeout).counting(m.bytes_sent.clone());
    while let Some(msg) = outbox.recv().await {
        match wr.control(&msg).await {
            Ok(_) => {}
            Err(e) if !e.is_fatal() => tracing::error!(error = %e, "could not encode a reply"),
            Err(_) => break,
        }
        if matches!(msg, Control::Bye) {
            break;
        }
    }
    wr.shutdown().await;
}
