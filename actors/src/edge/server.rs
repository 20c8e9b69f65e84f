use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tandem_codec::Limits;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::conn::{self, Shared};
use super::msg::StoreMsg;
use super::{store, worker};
use crate::error::ActorError;
use crate::metrics::EdgeMetrics;
use crate::models::ModelCache;
use crate::security::{ServerTls, Token};
use crate::types::RejectReason;

/// How the edge server behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeSettings {
    /// Series directory (models are loaded from it by id).
    pub series: PathBuf,
    /// Devices served at once; more are rejected with `Reject { Busy }`.
    pub max_connections: usize,
    /// Inference threads.
    pub workers: usize,
    /// Tensor frames queued or in inference, over all connections.
    pub queue: usize,
    /// Replies queued per connection.
    pub outbox: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Time a new connection has to say `Hello`.
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
        // Each worker runs its own session of a tail; the cores are split between them.
        let workers = settings.workers.max(1);
        let engine = tandem_engine::Engine::open(&tandem_engine::EngineOptions {
            choice: settings.engine,
            threads: (tandem_engine::default_threads() / workers).max(1),
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

async fn accept_loop(listener: TcpListener, shared: Shared, mut stop: watch::Receiver<bool>) {
    let limit = shared.settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(limit));
    let mut conns = JoinSet::new();
    let mut next_session: u64 = 1;
    loop {
        let accepted = tokio::select! {
            _ = async { let _ = stop.wait_for(|&v| v).await; } => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
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
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let session_id = next_session;
                next_session += 1;
                let span = tracing::info_span!("edge_conn", session_id, %peer);
                conns.spawn(conn::accept(stream, session_id, shared.clone(), stop.clone(), slot).instrument(span));
            }
            Err(_) => {
                shared.metrics.reject(RejectReason::Busy);
                tracing::warn!(%peer, limit, "connection limit reached; rejecting");
                conns.spawn(conn::reject_busy(stream, limit, shared.settings.clone()));
            }
        }
    }
    drop(listener);
    // Connections see the stop signal and close; give them the write timeout to say Bye.
    let deadline = shared.settings.write_timeout;
    if tokio::time::timeout(deadline, async { while conns.join_next().await.is_some() {} }).await.is_err() {
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}
