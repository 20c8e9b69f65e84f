use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tandem_codec::Limits;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::admission::{Admission, AdmissionRules};
use super::conn::{self, HandshakeEnd, Shared};
use super::msg::StoreMsg;
use super::{store, worker};
use crate::error::ActorError;
use crate::metrics::EdgeMetrics;
use crate::models::ModelCache;
use crate::security::{ServerTls, Token};
use crate::types::RejectReason;

/// Intra-op threads of each of `workers` edge workers: each runs its own session of a tail, and
/// the cores are split between them (at least one each). `tandem profile --role edge` is timed at
/// this count too, so the edge's prices are for the sessions it runs.
pub fn worker_threads(workers: usize) -> usize {
    (tandem_engine::default_threads() / workers.max(1)).max(1)
}

/// How the edge server behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeSettings {
    /// Series directory (models are loaded from it by id).
    pub series: PathBuf,
    /// Authenticated devices served at once; more are rejected with `Reject { Busy }` (after
    /// their handshake, so strangers can never take these slots).
    pub max_connections: usize,
    /// Limits on connections that have not completed their handshake, and bad-token bans.
    pub admission: AdmissionRules,
    /// Inference threads.
    pub workers: usize,
    /// Tensor frames queued or in inference, over all connections.
    pub queue: usize,
    /// Replies queued per connection.
    pub outbox: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Time a new connection has, from accept, to complete TLS (when configured) and `Hello`.
    pub handshake_timeout: Duration,
    /// Timeout for writing one reply.
    pub write_timeout: Duration,
    /// Limits on incoming frames.
    pub limits: Limits,
    /// Devices must present this token in `Hello` (`Reject { BadToken }` otherwise); `None` =
    /// no authentication.
    pub token: Option<Token>,
    /// Serve TLS with this certificate; `None` = plain TCP.
    pub tls: Option<ServerTls>,
    /// Inference engine of the tails.
    pub engine: tandem_engine::Choice,
}

/// Starts the edge server.
#[derive(Debug)]
pub struct EdgeServer;

/// A running edge server.
#[derive(Debug)]
pub struct EdgeHandle {
    /// Where it accepts devices.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl EdgeServer {
    /// Serve devices on `listener` with models from `settings.series`.
    pub async fn start(
        listener: TcpListener,
        settings: EdgeSettings,
        metrics: EdgeMetrics,
    ) -> Result<EdgeHandle, ActorError> {
        let workers = settings.workers.max(1);
        let engine = tandem_engine::Engine::open(&tandem_engine::EngineOptions {
            choice: settings.engine,
            threads: worker_threads(workers),
            ..tandem_engine::EngineOptions::default()
        })
        .map_err(|source| ActorError::Engine { model_id: u32::MAX, source })?;
        tracing::info!(engine = %engine.kind(), threads = engine.threads(), "edge inference engine");
        let cache = ModelCache::open(&settings.series, engine, workers)?.with_metrics(metrics.engine.clone());
        let addr = listener.local_addr().map_err(|source| ActorError::Io {
            what: "address of",
            addr: ([0, 0, 0, 0], 0).into(),
            source,
        })?;
        let queue = settings.queue.max(1);
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(queue);
        let (store_tx, store_rx) = crossbeam_channel::bounded::<StoreMsg>(64);
        let mut threads = vec![store::spawn(cache, store_rx, metrics.clone())?];
        for i in 0..settings.workers.max(1) {
            threads.push(worker::spawn(i, jobs_rx.clone(), store_tx.clone(), metrics.clone())?);
        }
        drop(jobs_rx);
        let (shared_tls, shared_token) = (settings.tls.is_some(), settings.token.is_some());
        let shared = Shared {
            settings: Arc::new(settings),
            jobs: jobs_tx,
            pool: Arc::new(Semaphore::new(queue)),
            store: store_tx,
            metrics,
        };
        let (stop, stop_rx) = watch::channel(false);
        let accept =
            tokio::spawn(accept_loop(listener, shared, stop_rx).instrument(tracing::info_span!("edge", %addr)));
        tracing::info!(%addr, tls = shared_tls, token = shared_token, "edge listening");
        Ok(EdgeHandle { addr, stop, accept, threads })
    }
}

impl EdgeHandle {
    /// Stop accepting, say `Bye` to every device, close the connections, stop the threads.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.accept.await {
            tracing::warn!(error = %e, "edge accept loop ended abnormally");
        }
        // The job and store senders are gone with the connections: the threads end.
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Refusals at accept are logged at most this often (with the count since): a flood must not
/// flood the log too.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

async fn accept_loop(listener: TcpListener, shared: Shared, mut stop: watch::Receiver<bool>) {
    let limit = shared.settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(limit));
    let mut admission = Admission::new(shared.settings.admission);
    // Pending connections (handshake in progress) and sessions are separate task sets: a
    // finished handshake comes back here with its peer, so the admission table is only
    // touched by this loop.
    let mut pending: JoinSet<(SocketAddr, HandshakeEnd)> = JoinSet::new();
    let mut pending_peers: std::collections::HashMap<tokio::task::Id, std::net::IpAddr> =
        std::collections::HashMap::new();
    let mut sessions = JoinSet::new();
    let mut next_session: u64 = 1;
    let mut refused_since_log: u64 = 0;
    let mut last_refusal_log: Option<std::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = async { let _ = stop.wait_for(|&v| v).await; } => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            Some(done) = pending.join_next_with_id(), if !pending.is_empty() => {
                let (peer, end) = match done {
                    Ok((id, (peer, end))) => {
                        pending_peers.remove(&id);
                        (peer, end)
                    }
                    // A handshake task that panicked or was aborted still frees its place.
                    Err(e) => {
                        if let Some(ip) = pending_peers.remove(&e.id()) {
                            admission.release(ip);
                        }
                        continue;
                    }
                };
                admission.release(peer.ip());
                match end {
                    HandshakeEnd::Authed(authed) => {
                        admission.authenticated(peer.ip());
                        match slots.clone().try_acquire_owned() {
                            Ok(slot) => {
                                let session_id = next_session;
                                next_session += 1;
                                let span = tracing::info_span!("edge_conn", session_id, %peer);
                                sessions.spawn(conn::session(authed, peer, session_id, shared.clone(), stop.clone(), slot).instrument(span));
                            }
                            Err(_) => {
                                shared.metrics.reject(RejectReason::Busy);
                                tracing::warn!(%peer, limit, device_id = %authed.device_id, "session limit reached; rejecting");
                                sessions.spawn(conn::reject_busy(authed.io, limit, shared.settings.write_timeout));
                            }
                        }
                    }
                    HandshakeEnd::BadToken(refusal) => {
                        if let Some(ban) = admission.bad_token(peer.ip(), std::time::Instant::now()) {
                            tracing::warn!(peer = %peer.ip(), ban_ms = ban.as_millis() as u64, "repeated bad tokens: address banned");
                        }
                        // Sent after the strike is recorded (see `HandshakeEnd::BadToken`).
                        sessions.spawn(refusal.send());
                    }
                    HandshakeEnd::Failed => {}
                }
                continue;
            }
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match admission.admit(peer.ip(), std::time::Instant::now()) {
            Ok(()) => {
                let span = tracing::debug_span!("edge_handshake", %peer);
                let (s, m, stop) = (shared.settings.clone(), shared.metrics.clone(), stop.clone());
                let task = pending
                    .spawn(async move { (peer, conn::handshake(stream, peer, s, m, stop).await) }.instrument(span));
                pending_peers.insert(task.id(), peer.ip());
            }
            Err(reason) => {
                // Closed at once, before any TLS handshake or read: a refusal costs one accept.
                drop(stream);
                shared.metrics.reject(reason);
                refused_since_log += 1;
                let now = std::time::Instant::now();
                if last_refusal_log.is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_EVERY) {
                    tracing::warn!(%peer, reason = reason.as_str(), refused = refused_since_log, pending = admission.pending(), "connections refused before their handshake");
                    refused_since_log = 0;
                    last_refusal_log = Some(now);
                }
            }
        }
    }
    drop(listener);
    pending.abort_all();
    // Connections see the stop signal and close; give them the write timeout to say Bye.
    let deadline = shared.settings.write_timeout;
    if tokio::time::timeout(deadline, async { while sessions.join_next().await.is_some() {} }).await.is_err() {
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
    }
    while pending.join_next().await.is_some() {}
}
