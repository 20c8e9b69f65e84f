//! A minimal HTTP/1.1 responder for `GET /metrics` (Prometheus text format). One request per
//! connection, request head bounded to 8 KiB and read under a timeout; anything but
//! `GET /metrics` (and `POST /floor?…` on the device) gets a 404. Enough for a scraper and
//! `curl`; no web framework.
//!
//! Bad input gets a 4xx and the listener keeps serving: a head over 8 KiB is answered 431, a
//! request with a body (nothing here takes one) 413, a floor that does not parse 400. The
//! connection is then closed after reading (and discarding, boundedly) what the client still
//! sends, so the client reads its error instead of a reset.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus::{Encoder, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::controller::FloorSetter;
use crate::controller::policy::parse_floor;
use crate::error::ActorError;

const MAX_REQUEST_HEAD: usize = 8 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering, read and discard at most this much of what the client still sends…
const MAX_DISCARD: usize = 1 << 20;
/// …for at most this long.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(1);

/// A running responder; dropping it does not stop it — call [`MetricsServer::stop`].
#[derive(Debug)]
pub struct MetricsServer {
    /// Where it listens (useful with port 0).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Stop accepting (open responses are cut).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Bind `addr` and serve `registry` at `/metrics` until stopped.
pub async fn serve(addr: SocketAddr, registry: Registry) -> Result<MetricsServer, ActorError> {
    serve_with_floor(addr, registry, None).await
}

/// As [`serve`], plus `POST /floor?0.92` / `POST /floor?loss=0.018` to change the controller's
/// accuracy floor when `floor` is given.
pub async fn serve_with_floor(
    addr: SocketAddr,
    registry: Registry,
    floor: Option<FloorSetter>,
) -> Result<MetricsServer, ActorError> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ActorError::Io { what: "binding metrics on", addr, source })?;
    let addr = listener.local_addr().map_err(|source| ActorError::Io { what: "metrics address of", addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    let floor = floor.clone();
                    tokio::spawn(async move {
                        if let Err(e) = respond(stream, &registry, floor.as_ref()).await {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    // Out of descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(MetricsServer { addr, task })
}

async fn respond(mut stream: TcpStream, registry: &Registry, floor: Option<&FloorSetter>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n");
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let (status, content_type, body) = if end.is_none() && head.len() >= MAX_REQUEST_HEAD {
        (
            "431 Request Header Fields Too Large",
            "text/plain",
            format!("request head over {MAX_REQUEST_HEAD} bytes\n").into_bytes(),
        )
    } else if has_body(head.get(..end.unwrap_or(head.len())).unwrap_or_default()) {
        ("413 Payload Too Large", "text/plain", b"request bodies are not accepted\n".to_vec())
    } else if method == b"GET" && (path == b"/metrics" || path.starts_with(b"/metrics?")) {
        let mut body = Vec::new();
        match TextEncoder::new().encode(&registry.gather(), &mut body) {
            Ok(()) => ("200 OK", prometheus::TEXT_FORMAT, body),
            Err(e) => ("500 Internal Server Error", "text/plain", e.to_string().into_bytes()),
        }
    } else if let (b"POST", Some(query), Some(setter)) = (method, path.strip_prefix(b"/floor?"), floor) {
        match std::str::from_utf8(query).ok().and_then(parse_floor) {
            Some(f) if setter.set(f).await => ("200 OK", "text/plain", format!("floor set to {f:?}\n").into_bytes()),
            Some(_) => ("503 Service Unavailable", "text/plain", b"the controller is not running\n".to_vec()),
            None => ("400 Bad Request", "text/plain", b"expected /floor?0.92 or /floor?loss=0.018\n".to_vec()),
        }
    } else {
        ("404 Not Found", "text/plain", b"only GET /metrics is served\n".to_vec())
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await?;
    // Closing with unread input makes the kernel send a reset, which can destroy the response
    // before the client reads it: drain (boundedly) first.
    let drain = async {
        let mut chunk = [0u8; 8192];
        let mut left = MAX_DISCARD;
        while left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIMEOUT, drain).await;
    Ok(())
}

/// Whether a request head announces a body (`Content-Length` above 0, or any
/// `Transfer-Encoding`). A malformed length counts as a body.
fn has_body(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n').skip(1).any(|line| {
        let Some(colon) = line.iter().position(|&b| b == b':') else { return false };
        let (name, value) = line.split_at(colon);
        let value = std::str::from_utf8(value.get(1..).unwrap_or_default()).unwrap_or("x").trim();
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            true
        } else if name.eq_ignore_ascii_case(b"content-length") {
            value.parse::<u64>().map_or(true, |n| n > 0)
        } else {
            false
        }
    })
}
