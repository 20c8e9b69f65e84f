//! `tandem edge`: serve devices — decode their frames, run model tails, return results.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use prometheus::Registry;
use tandem_actors::config::{self, EdgeConfig};
use tandem_actors::edge::EdgeServer;
use tandem_actors::http::{listen_addr, serve};
use tandem_actors::metrics::EdgeMetrics;
use tandem_actors::report::{EdgeReady, write_json};

#[derive(Args, Debug)]
pub struct EdgeArgs {
    /// Address to accept devices on [config `listen`; default 127.0.0.1:7878].
    #[arg(long)]
    listen: Option<String>,
    /// Series directory (series.toml + model directories) [config `series`].
    #[arg(long)]
    series: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics [config `metrics`].
    #[arg(long)]
    metrics: Option<String>,
    /// Devices served at once; more are rejected [config `max_connections`; default 16].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Inference threads [config `workers`; default 2].
    #[arg(long)]
    workers: Option<usize>,
    /// Require devices to present the token in this file (one line, chmod 600) [config `token_file`].
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM; needs --tls-key) [config `tls_cert`].
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) [config `tls_key`].
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TOML config (see configs/edge.toml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Once listening, write the bound addresses (frame listener and metrics) to FILE as JSON,
    /// atomically, before printing anything (what `tandem run` waits for).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Shut down when standard input closes (used by `tandem run`).
    #[arg(long, hide = true)]
    exit_on_stdin_eof: bool,
}

pub fn run(a: EdgeArgs) -> anyhow::Result<()> {
    let mut cfg: EdgeConfig = match &a.config {
        Some(p) => config::load(p)?,
        None => EdgeConfig::default(),
    };
    if let Some(v) = a.listen {
        cfg.listen = v;
    }
    if let Some(v) = a.series {
        cfg.series = Some(v);
    }
    if let Some(v) = a.metrics {
        cfg.metrics = Some(v);
    }
    if let Some(v) = a.max_connections {
        cfg.max_connections = v;
    }
    if let Some(v) = a.workers {
        cfg.workers = v;
    }
    if a.token_file.is_some() {
        cfg.token_file = a.token_file;
    }
    if a.tls_cert.is_some() {
        cfg.tls_cert = a.tls_cert;
        cfg.tls_key = a.tls_key;
    }
    cfg.validate()?;
    let series = cfg.series.clone().context("no series directory: pass --series DIR or set `series` in the config")?;
    // Reads the token and certificate files now, so a bad one stops the edge before it listens.
    let settings = cfg.settings(series.clone())?;
    let rt = super::device::runtime()?;
    rt.block_on(async move {
        let listen = super::device::resolve(&cfg.listen).await?;
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let registry = Registry::new();
        let metrics = EdgeMetrics::register(&registry)?;
        let http = match &cfg.metrics {
            Some(m) => Some(serve(super::device::resolve(&listen_addr(m)).await?, registry.clone()).await?),
            None => None,
        };
        let security = match (settings.tls.is_some(), settings.token.is_some()) {
            (true, true) => "TLS + token",
            (true, false) => "TLS, no token",
            (false, true) => "token, no TLS: the token crosses the network in clear",
            (false, false) => "plain TCP, no token",
        };
        let edge = EdgeServer::start(listener, settings, metrics.clone()).await?;
        if let Some(path) = &a.ready_file {
            write_json(path, &EdgeReady { listen: edge.addr, metrics: http.as_ref().map(|h| h.addr) })?;
        }
        println!(
            "edge listening on {} (series {}, {} workers, max {} devices; {security})",
            edge.addr,
            series.display(),
            cfg.workers,
            cfg.max_connections
        );
        if let Some(h) = &http {
            println!("metrics on http://{}/metrics", h.addr);
        }
        std::io::stdout().flush()?;
        if a.exit_on_stdin_eof {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                // Read to EOF; the parent closes our stdin when it wants us gone.
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = tx.send(());
            });
            tokio::select! {
                _ = rx => {}
                _ = super::device::terminated() => {}
            }
        } else {
            super::device::terminated().await;
        }
        tracing::info!("edge shutting down");
        edge.shutdown().await;
        if let Some(h) = http {
            h.stop();
        }
        println!(
            "edge stopped: {} devices served ({} rejected), {} frames answered, {} bytes received",
            metrics.accepted.get(),
            metrics.rejected.get(),
            metrics.frames.get(),
            metrics.bytes_received.get()
        );
        Ok(())
    })
}
