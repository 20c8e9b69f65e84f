use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Body, Control, ErrorCode, FrameError, PlanResult, RejectCode};
use tokio::io::{AsyncRead, AsyncWrite};
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

/// Refuse a connection over the limit: `Reject { Busy }` then close on plain TCP; on a TLS edge
/// just close (no handshake is spent on it). Counted by the caller.
pub(crate) async fn reject_busy(stream: TcpStream, limit: usize, settings: Arc<EdgeSettings>) {
    let reject = Control::Reject { code: RejectCode::Busy, reason: format!("connection limit {limit} reached") };
    // On a TLS edge the refusal is a plain close: a full handshake per refused connection would
    // let anyone over the limit spend the edge's CPU on signatures, without bound. The device
    // reads the close as a failed handshake and retries with backoff.
    if settings.tls.is_none() {
        write_reject(stream, reject, settings.write_timeout).await;
    }
}

async fn write_reject<S: AsyncWrite + Unpin>(stream: S, reject: Control, write_timeout: Duration) {
    // Uncounted, as the connection was never taken.
    let mut wr = FrameWriter::new(stream, write_timeout);
    if wr.control(&reject).await.is_ok() {
        wr.shutdown().await;
    }
}

/// Take over an accepted connection: the TLS handshake first when the edge speaks TLS (under the
/// handshake timeout), then [`serve`]. Plain TCP keeps the socket's own split halves (no lock
/// between reader and writer); a TLS stream is one state machine, split with `tokio::io::split`.
pub(crate) async fn accept(
    stream: TcpStream,
    session_id: u64,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let Some(tls) = shared.settings.tls.clone() else {
        let (rd, wr) = stream.into_split();
        return serve(rd, wr, peer, session_id, shared, stop, slot).await;
    };
    let handshake = tokio::select! {
        r = tokio::time::timeout(shared.settings.handshake_timeout, tls.accept(stream)) => r,
        _ = stopped(&mut stop) => return,
    };
    match handshake {
        Ok(Ok(stream)) => {
            let (rd, wr) = tokio::io::split(stream);
            serve(rd, wr, peer, session_id, shared, stop, slot).await;
        }
        Ok(Err(e)) => {
            shared.metrics.reject(RejectReason::Tls);
            tracing::info!(session_id, ?peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            shared.metrics.reject(RejectReason::Tls);
            tracing::info!(session_id, ?peer, "TLS handshake timed out");
        }
    }
}

/// The `Hello` verdict: the device id, or the reason and the reply (`Bye` = close silently).
fn check_hello(
    read: Result<Result<Option<Read>, crate::wire::ReadError>, tokio::time::error::Elapsed>,
    s: &EdgeSettings,
    m: &EdgeMetrics,
) -> Result<String, (RejectReason, Control)> {
    let reject = |reason, code, text: String| Err((reason, Control::Reject { code, reason: text }));
    match read {
        Ok(Ok(Some(Read::Frame { frame, wire_len }))) => {
            m.bytes_received.inc_by(wire_len as u64);
            match frame.body {
                Body::Control(Control::Hello { protocol_version, .. }) if protocol_version != PROTOCOL_VERSION => {
                    reject(
                        RejectReason::Protocol,
                        RejectCode::UnsupportedProtocol,
                        format!("protocol {protocol_version} not supported (this edge speaks {PROTOCOL_VERSION})"),
                    )
                }
                Body::Control(Control::Hello { device_id, token, .. }) => match (&s.token, token) {
                    (None, _) => Ok(device_id),
                    (Some(want), Some(got)) if want.matches(&got) => Ok(device_id),
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
        Ok(Ok(Some(Read::Bad { error, .. }))) => {
            reject(RejectReason::Handshake, RejectCode::Other, format!("bad frame: {error}"))
        }
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Err((RejectReason::Handshake, Control::Bye)),
    }
}

/// Serve one device until it leaves, misbehaves beyond repair, idles out or the server stops.
async fn serve<R, W>(
    rd: R,
    wr: W,
    peer: Option<SocketAddr>,
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
    let mut reader = FrameReader::new(rd, s.limits);

    // Handshake, before anything else is accepted.
    let hello = tokio::time::timeout(s.handshake_timeout, reader.next()).await;
    let (outbox, outbox_rx) = mpsc::channel::<Control>(s.outbox.max(1));
    let writer = tokio::spawn(write_loop(wr, outbox_rx, s.write_timeout, m.clone()));
    let device_id = match check_hello(hello, &s, &m) {
        Ok(id) => id,
        Err((reason, reply)) => {
            m.reject(reason);
            if reason == RejectReason::Unauthorized {
                tracing::warn!(session_id, ?peer, reply = ?reply, "device refused: bad token");
            } else {
                tracing::info!(session_id, ?peer, reply = ?reply, "handshake failed");
            }
            if !matches!(reply, Control::Bye) {
                let _ = outbox.send(reply).await;
            }
            drop(outbox);
            let _ = tokio::time::timeout(s.write_timeout, writer).await;
            return;
        }
    };
    if outbox.send(Control::HelloAck { protocol_version: PROTOCOL_VERSION, session_id }).await.is_err() {
        return;
    }
    m.accepted.inc();
    m.connections.inc();
    tracing::info!(session_id, %device_id, ?peer, "device connected");

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
                        let job = Job { meta: frame.meta, tensor, received_at, reply: outbox.clone(), _permit: permit };
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
