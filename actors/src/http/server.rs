//! The listener, hyper's HTTP/1.1 connection settings, and the routes.
//!
//! One request per connection (`keep_alive(false)`: scrapers and `curl` reconnect, and a
//! connection never outlives its answer), answered also when the client half-closed after
//! sending it (`half_close(true)`). The request head is bounded (hyper's
//! `max_header_size`, answered 431) and must arrive within [`HEAD_TIMEOUT`] (hyper's
//! `header_read_timeout` on tokio's timer). Connections are bounded too: at most
//! [`MAX_CONNECTIONS`] are served at once; full-policy **Block** — the accept loop waits for a
//! slot, and further clients wait in the kernel's listen backlog.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::controller::FloorSetter;
use crate::error::ActorError;
use crate::security::Token;

/// Largest request head (request line + headers); larger ones are answered 431.
const MAX_REQUEST_HEAD: usize = 8 << 10;
/// hyper's read buffer per connection (its minimum is 8 KiB; a head must fit with room to spare).
const MAX_READ_BUFFER: usize = 16 << 10;
/// Whole-connection deadline: head, answer and the drain after it.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// A client must send its whole request head within this time.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// After answering, read and discard at most this much of what the client still sends…
const MAX_DISCARD: usize = 1 << 20;
/// …for at most this long.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(1);

/// A response with its whole body in memory.
pub(super) type Reply = Response<Full<Bytes>>;

/// A response of `status` with `body` of type `content_type`.
pub(super) fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A running HTTP endpoint; dropping it does not stop it — call [`HttpServer::stop`].
#[derive(Debug)]
pub struct HttpServer {
    /// Where it listens (useful with port 0).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Stop accepting (connections being answered finish on their own tasks).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// What the routes serve.
#[derive(Debug)]
struct Routes {
    registry: Registry,
    floor: Option<FloorSetter>,
    /// Control routes (`POST /floor`) require `Authorization: Bearer <token>` when set.
    token: Option<Token>,
}

/// Whether `req` may use a control route: always without a token; with one, only when it carries
/// `Authorization: Bearer <token>` (compared in constant time).
fn authorized(token: Option<&Token>, req: &Request<Incoming>) -> bool {
    let Some(token) = token else { return true };
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| token.matches(presented.trim()))
}

fn unauthorized() -> Reply {
    let mut r = reply(
        StatusCode::UNAUTHORIZED,
        "text/plain",
        "control routes need `Authorization: Bearer TOKEN` (the device's link token)\n",
    );
    r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

impl Routes {
    async fn respond(&self, req: Request<Incoming>) -> Reply {
        // Nothing here takes a body: refuse one (a length above 0, or chunked) before routing.
        if !req.body().is_end_stream() {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "request bodies are not accepted\n");
        }
        match (req.method(), req.uri().path(), &self.floor) {
            (&Method::GET, "/metrics", _) => super::metrics::render(&self.registry),
            (&Method::POST, "/floor", Some(_)) if !authorized(self.token.as_ref(), &req) => {
                tracing::debug!("POST /floor refused: missing or wrong bearer token");
                unauthorized()
            }
            (&Method::POST, "/floor", Some(setter)) => super::control::set_floor(setter, req.uri().query()).await,
            _ => {
                let served = if self.floor.is_some() { "GET /metrics and POST /floor" } else { "GET /metrics" };
                reply(StatusCode::NOT_FOUND, "text/plain", format!("only {served} are served\n"))
            }
        }
    }
}

/// The address to bind for an HTTP endpoint given as `text`: a bare port (`9102` or `:9102`)
/// means loopback (`127.0.0.1:9102`), so only an explicit host exposes the endpoint.
pub fn listen_addr(text: &str) -> String {
    let t = text.trim();
    let port = t.strip_prefix(':').unwrap_or(t);
    if port.parse::<u16>().is_ok() { format!("127.0.0.1:{port}") } else { t.to_string() }
}

/// Bind `addr` and serve `registry` at `/metrics` until stopped.
pub async fn serve(addr: SocketAddr, registry: Registry) -> Result<HttpServer, ActorError> {
    serve_with_floor(addr, registry, None, None).await
}

/// As [`serve`], plus `POST /floor?0.92` / `POST /floor?loss=0.018` to change the controller's
/// accuracy floor when `floor` is given. With a `token` (the device's link token), the floor
/// route answers 401 unless the request carries `Authorization: Bearer <token>`; `/metrics`
/// stays open (the Prometheus convention: scrapers carry no secret).
pub async fn serve_with_floor(
    addr: SocketAddr,
    registry: Registry,
    floor: Option<FloorSetter>,
    token: Option<Token>,
) -> Result<HttpServer, ActorError> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ActorError::Io { what: "binding metrics on", addr, source })?;
    let addr = listener.local_addr().map_err(|source| ActorError::Io { what: "metrics address of", addr, source })?;
    if floor.is_some() && token.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "POST /floor is served without a token on a non-loopback address: anyone who reaches it can change the accuracy floor");
    }
    let routes = Arc::new(Routes { registry, floor, token });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(MAX_REQUEST_HEAD)
        .max_buf_size(MAX_READ_BUFFER)
        // A client may shut down its write side once the request is out (`curl` does not, but
        // scripts and our tests do): still answer it, instead of closing at the read EOF.
        .half_close(true)
        .keep_alive(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            // The semaphore is never closed, so this only fails if it were.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (http, routes) = (http.clone(), Arc::clone(&routes));
                    tokio::spawn(async move {
                        // The head has its own deadline inside hyper; this one bounds the rest (a
                        // client that never reads its answer), so a stalled client gives its slot
                        // back instead of holding one of the MAX_CONNECTIONS for ever.
                        if tokio::time::timeout(CONNECTION_TIMEOUT, connection(&http, stream, routes)).await.is_err() {
                            tracing::debug!("metrics connection timed out");
                        }
                        drop(slot);
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
    Ok(HttpServer { addr, task })
}

/// Serve one connection, then close it without losing the answer.
async fn connection(http: &http1::Builder, mut stream: TcpStream, routes: Arc<Routes>) {
    let service = service_fn(move |req| {
        let routes = Arc::clone(&routes);
        async move { Ok::<_, Infallible>(routes.respond(req).await) }
    });
    // hyper borrows the stream, so it stays ours for the close below.
    if let Err(e) = http.serve_connection(TokioIo::new(&mut stream), service).await {
        tracing::debug!(error = %e, "metrics request failed");
    }
    let _ = stream.shutdown().await;
    // Closing with unread input (a refused body, the rest of an oversize head) makes the kernel
    // send a reset, which can destroy the answer before the client reads it: drain (boundedly).
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
}

#[cfg(test)]
mod tests {
    use super::listen_addr;

    #[test]
    fn a_bare_port_binds_loopback() {
        assert_eq!(listen_addr("9102"), "127.0.0.1:9102");
        assert_eq!(listen_addr(":9102"), "127.0.0.1:9102");
        assert_eq!(listen_addr("0.0.0.0:9102"), "0.0.0.0:9102");
        assert_eq!(listen_addr("[::1]:9102"), "[::1]:9102");
        assert_eq!(listen_addr("localhost:9102"), "localhost:9102");
    }
}
