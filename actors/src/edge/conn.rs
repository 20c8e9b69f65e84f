use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Body, Control, ErrorCode, PlanResult, RejectCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use super::msg::{Job, StoreMsg};
use super::server::EdgeSettings;
use crate::metrics::EdgeMetrics;
use crate::wire::{FrameReader, Read, put_control};

/// What a connection shares with the server (all handles; no shared mutable state).
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub settings: Arc<EdgeSettings>,
    pub jobs: Sender<Job>,
    pub pool: Arc<Semaphore>,
    pub store: Sender<StoreMsg>,
    pub metrics: EdgeMetrics,
}

/// Refuse a connection over the limit: `Reject { Busy }`, then close.
pub(crate) async fn reject_busy(mut stream: TcpStream, limit: usize, write_timeout: Duration) {
    let mut buf = Vec::new();
    if put_control(Control::Reject { code: RejectCode::Busy, reason: format!("connection limit {limit} reached") }, &mut buf).is_ok() {
        let _ = tokio::time::timeout(write_timeout, async {
            stream.write_all(&buf).await?;
            stream.shutdown().await
        })
        .await;
    }
}

/// Serve one device until it leaves, misbehaves beyond repair, idles out or the server stops.
pub(crate) async fn serve(stream: TcpStream, session_id: u64, shared: Shared, mut stop: watch::Receiver<bool>, _slot: OwnedSemaphorePermit) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let s = shared.settings.clone();
    let m = shared.metrics.clone();
    let (rd, wr) = stream.into_split();
    let mut reader = FrameReader::new(rd, s.limits);

    // Handshake, before anything else is accepted.
    let hello = tokio::time::timeout(s.handshake_timeout, reader.next()).await;
    let (outbox, outbox_rx) = mpsc::channel::<Control>(s.outbox.max(1));
    let writer = tokio::spawn(write_loop(wr, outbox_rx, s.write_timeout, m.clone()));
    let verdict = match hello {
        Ok(Ok(Some(Read::Frame { frame, wire_len }))) => {
            m.bytes_received.inc_by(wire_len as u64);
            match frame.body {
                Body::Control(Control::Hello { protocol_version, device_id, .. }) if protocol_version == PROTOCOL_VERSION => Ok(device_id),
                Body::Control(Control::Hello { protocol_version, .. }) => Err(Control::Reject {
                    code: RejectCode::UnsupportedProtocol,
                    reason: format!("protocol {protocol_version} not supported (this edge speaks {PROTOCOL_VERSION})"),
                }),
                _ => Err(Control::Reject { code: RejectCode::Other, reason: "expected Hello".into() }),
            }
        }
        Ok(Ok(Some(Read::Bad { error, .. }))) => Err(Control::Reject { code: RejectCode::Other, reason: format!("bad frame: {error}") }),
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Err(Control::Bye),
    };
    let device_id = match verdict {
        Ok(id) => id,
        Err(reply) => {
            m.rejected.inc();
            tracing::info!(session_id, ?peer, reply = ?reply, "handshake failed");
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
                            Control::Probe { seq, sent_at_us, .. } => {
                                Some(Control::ProbeReply { seq, sent_at_us, received_len: u32::try_from(wire_len).unwrap_or(u32::MAX) })
                            }
                            Control::Bye => break,
                            other => {
                                m.error(ErrorCode::Malformed);
                                tracing::warn!(session_id, ?other, "unexpected control message");
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

async fn write_loop(mut wr: OwnedWriteHalf, mut outbox: mpsc::Receiver<Control>, write_timeout: Duration, m: EdgeMetrics) {
    let mut buf = Vec::with_capacity(1024);
    while let Some(msg) = outbox.recv().await {
        buf.clear();
        let bye = matches!(msg, Control::Bye);
        if let Err(e) = put_control(msg, &mut buf) {
            tracing::error!(error = %e, "could not encode a reply");
            continue;
        }
        match tokio::time::timeout(write_timeout, wr.write_all(&buf)).await {
            Ok(Ok(())) => m.bytes_sent.inc_by(buf.len() as u64),
            _ => break,
        }
        if bye {
            break;
        }
    }
    let _ = wr.shutdown().await;
}
