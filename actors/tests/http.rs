//! The HTTP endpoint (hyper) over real sockets on 127.0.0.1: each kind of bad request gets its
//! 4xx, and the same server then still answers `GET /metrics`.

use std::net::SocketAddr;

use prometheus::{IntCounter, Registry};
use tandem_actors::http::{serve, serve_with_floor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// A registry with one known counter, so a 200 can be told from any other reply.
fn registry() -> Registry {
    let registry = Registry::new();
    let c = IntCounter::new("tandem_test_marker_total", "A marker").expect("counter");
    c.inc_by(7);
    registry.register(Box::new(c)).expect("register");
    registry
}

/// Send `request` without half-closing, read until the server closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    guarded("an HTTP reply", async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        // The server may answer (and stop reading) before all of an oversize request is in.
        let _ = s.write_all(request).await;
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
}

/// Send `request`, half-close, read until the server closes.
async fn exchange_half_closed(addr: SocketAddr, request: &[u8]) -> String {
    guarded("an HTTP reply", async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        s.shutdown().await.expect("half-close");
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
}

async fn assert_still_serves_metrics(addr: SocketAddr, after: &str) {
    let (line, body) = http_get(addr, "/metrics").await;
    assert!(line.starts_with("HTTP/1.1 200"), "after {after}: {line}");
    assert!(body.contains("tandem_test_marker_total 7"), "after {after}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_request_head_gets_431_and_the_server_keeps_serving() {
    let http = serve("127.0.0.1:0".parse().expect("addr"), registry()).await.expect("http");
    // 9 KiB of headers, over the 8 KiB bound.
    let filler = "x".repeat(9 << 10);
    let request = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    let reply = exchange(http.addr, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply:.80}");
    assert_still_serves_metrics(http.addr, "a 431").await;
    http.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_gets_413_and_the_server_keeps_serving() {
    let http = serve("127.0.0.1:0".parse().expect("addr"), registry()).await.expect("http");
    let request =
        [b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n".as_slice(), &[b'a'; 4096]].concat();
    let reply = exchange(http.addr, &request).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply:.80}");
    assert!(!reply.contains("tandem_test_marker_total"), "a refused request is not served: {reply}");
    assert_still_serves_metrics(http.addr, "a 413").await;
    http.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_gets_400_and_the_server_keeps_serving() {
    let http = serve("127.0.0.1:0".parse().expect("addr"), registry()).await.expect("http");
    for (what, request) in [
        ("a header without a colon", b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n".as_slice()),
        ("a bad content length", b"GET /metrics HTTP/1.1\r\nContent-Length: lots\r\n\r\n".as_slice()),
        ("binary garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".as_slice()),
    ] {
        let reply = exchange(http.addr, request).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{what}: {reply:.80}");
        assert_still_serves_metrics(http.addr, what).await;
    }
    http.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_controller_the_floor_is_not_served_and_metrics_still_are() {
    let http = serve_with_floor("127.0.0.1:0".parse().expect("addr"), registry(), None, None).await.expect("http");
    let reply = exchange(http.addr, b"POST /floor?0.9 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply:.80}");
    let reply = exchange(http.addr, b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("tandem_test_marker_total 7"), "{reply:.200}");
    assert_still_serves_metrics(http.addr, "a 404").await;
    http.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let http = serve("127.0.0.1:0".parse().expect("addr"), registry()).await.expect("http");
    for _ in 0..20 {
        let reply = exchange_half_closed(http.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("tandem_test_marker_total 7"), "{reply:.200}");
        let reply = exchange_half_closed(http.addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply:.80}");
    }
    http.stop();
}

/// A client that starts a request and never finishes it is cut off by the head timeout (5 s),
/// not served forever; others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_ends_is_cut_off_and_others_are_served_meanwhile() {
    let http = serve("127.0.0.1:0".parse().expect("addr"), registry()).await.expect("http");
    let mut stalled = TcpStream::connect(http.addr).await.expect("connect");
    stalled.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    assert_still_serves_metrics(http.addr, "a stalled request started").await;
    let mut reply = Vec::new();
    let _ = guarded("the stalled connection to be closed", stalled.read_to_end(&mut reply)).await;
    assert!(reply.is_empty() || String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 4"), "{reply:?}");
    assert_still_serves_metrics(http.addr, "a stalled request cut off").await;
    http.stop();
}
