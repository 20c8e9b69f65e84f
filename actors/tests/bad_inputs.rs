//! Bad inputs from devices and operators: wrong or missing tokens, an old protocol, a model the
//! edge cannot load, garbage on the HTTP control endpoint. Each gets a clear refusal, counted,
//! while a well-behaved device (or request) keeps being served.

use std::sync::Arc;

use prometheus::Registry;
use tandem_actors::config::EdgeConfig;
use tandem_actors::controller::{Controller, ControllerMetrics, ControllerSettings, Feedback};
use tandem_actors::http::serve_with_floor;
use tandem_actors::ledger::{DropReason, Summary, timing_queue};
use tandem_actors::link::{LinkState, command_queue, sample_queue};
use tandem_actors::metrics::DeviceMetrics;
use tandem_actors::plan::PlanHandle;
use tandem_actors::security::Token;
use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Control, RejectCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;
use crate::fixtures::*;

fn assert_only(summary: &Summary, allowed: &[DropReason]) {
    assert!(summary.balanced(), "{summary}");
    for reason in summary.dropped.keys() {
        assert!(allowed.contains(reason), "unexpected drop reason {reason:?}: {summary}");
    }
}

async fn raw_hello(addr: std::net::SocketAddr, protocol_version: u16, token: Option<&str>) -> Option<Control> {
    let mut c = RawClient::connect(addr).await;
    c.send_control(Control::Hello {
        protocol_version,
        device_id: "raw".into(),
        token: token.map(str::to_string),
        results: tandem_codec::ResultSpec::default(),
    })
    .await;
    let reply = c.recv().await;
    if matches!(reply, Some(Control::Reject { .. })) {
        assert_eq!(c.recv().await, None, "the edge closes a refused connection");
    }
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_and_old_protocols_are_refused_while_a_good_device_is_served() {
    let s = series();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path(), "edge.token", "s3cret-token");
    let wrong = token_file(dir.path(), "wrong.token", "s3cret-tokem");
    // Every client here is on 127.0.0.1, the good device too: no bans (preauth.rs tests them).
    let cfg = EdgeConfig { token_file: Some(token.clone()), bad_token_strikes: 0, ..edge_config() };
    let (edge, edge_registry) = start_edge(&s.path, &cfg).await;
    let addr = edge.addr.to_string();

    let mut good = device_settings(&s, &addr, "0:pool2:q8-lz4", 50.0, None);
    good.link.token = Some(Token::load(&token).expect("token"));
    let (good, _) = start_device(good, 16).await;
    wait_counts(&good, "results for the good device", |c| c.edge >= 3).await;

    // Real devices with a wrong token and with none: refused, visibly, and running locally.
    let mut bad = device_settings(&s, &addr, "0:pool2:q8-lz4", 50.0, None);
    bad.link.token = Some(Token::load(&wrong).expect("token"));
    bad.connect_wait = std::time::Duration::ZERO;
    let mut none = device_settings(&s, &addr, "1:pool3:q8-lz4", 50.0, None);
    none.connect_wait = std::time::Duration::ZERO;
    let ((bad, bad_registry), (none, none_registry)) = tokio::join!(start_device(bad, 8), start_device(none, 8));
    for d in [&bad, &none] {
        let mut state = d.link_state();
        let st = *guarded("a rejection", state.wait_for(|s| matches!(s, LinkState::Rejected { .. })))
            .await
            .expect("link alive");
        assert_eq!(st, LinkState::Rejected { code: RejectCode::BadToken });
        wait_counts(d, "local results while refused", |c| c.local >= 2).await;
    }
    for r in [&bad_registry, &none_registry] {
        assert!(metric(r, "tandem_link_connect_failures_total{reason=\"unauthorized\"}") >= 1.0);
        assert_eq!(metric(r, "tandem_link_connects_total"), 0.0);
    }

    // The handshake by hand: each refusal says why.
    let reply = raw_hello(edge.addr, PROTOCOL_VERSION, None).await;
    assert!(
        matches!(&reply, Some(Control::Reject { code: RejectCode::BadToken, reason }) if reason.contains("requires a token")),
        "{reply:?}"
    );
    let reply = raw_hello(edge.addr, PROTOCOL_VERSION, Some("guess")).await;
    assert!(
        matches!(&reply, Some(Control::Reject { code: RejectCode::BadToken, reason }) if reason == "wrong token"),
        "{reply:?}"
    );
    // An old protocol is refused as such, even with the right token.
    let reply = raw_hello(edge.addr, PROTOCOL_VERSION - 1, Some("s3cret-token")).await;
    assert!(
        matches!(&reply, Some(Control::Reject { code: RejectCode::UnsupportedProtocol, reason }) if reason.contains("not supported")),
        "{reply:?}"
    );
    // The right token is let in.
    assert!(matches!(
        raw_hello(edge.addr, PROTOCOL_VERSION, Some("s3cret-token")).await,
        Some(Control::HelloAck { .. })
    ));

    // The good device was served throughout, and still is.
    let at = good.snapshot().borrow().edge;
    wait_counts(&good, "results after the refusals", |c| c.edge >= at + 3).await;
    for d in [&good, &bad, &none] {
        d.stopper().stop();
    }
    let (g, b, n) =
        tokio::join!(guarded("good", good.finish()), guarded("bad", bad.finish()), guarded("none", none.finish()));
    let (g, b, n) = (g.expect("good"), b.expect("bad"), n.expect("none"));
    assert_only(&g, &[DropReason::CameraOverrun, DropReason::Shutdown]);
    for refused in [&b, &n] {
        assert_only(refused, &[DropReason::CameraOverrun, DropReason::LinkDown, DropReason::Shutdown]);
        assert_eq!(refused.edge, 0, "{refused}");
        assert!(refused.local > 0, "{refused}");
    }
    assert!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"unauthorized\"}") >= 4.0);
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"protocol\"}"), 1.0);
    assert_eq!(
        metric(&edge_registry, "tandem_edge_connections_total{outcome=\"accepted\"}"),
        2.0,
        "the good device and the raw client"
    );
    edge.shutdown().await;
}

/// A device whose plan names a model the edge cannot load: every frame is refused
/// (`unknown_model`, dropped as `edge_error`), and another device is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_asking_for_a_model_the_edge_lacks_is_refused_per_frame_while_another_is_served() {
    let s = series();
    let edge_series = copy_series_keeping(&s.path, &["m0"]);
    let (edge, edge_registry) = start_edge(edge_series.path(), &edge_config()).await;
    let addr = edge.addr.to_string();
    let (good, _) = start_device(device_settings(&s, &addr, "0:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&good, "results for the good device", |c| c.edge >= 3).await;
    let (stray, _) = start_device(device_settings(&s, &addr, "1:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&stray, "refused frames", |c| c.dropped >= 3).await;
    let at = good.snapshot().borrow().edge;
    wait_counts(&good, "results meanwhile", |c| c.edge >= at + 3).await;
    good.stopper().stop();
    stray.stopper().stop();
    let (g, st) = tokio::join!(guarded("good", good.finish()), guarded("stray", stray.finish()));
    let (g, st) = (g.expect("good"), st.expect("stray"));
    assert_only(&g, &[DropReason::CameraOverrun, DropReason::Shutdown]);
    assert_only(&st, &[DropReason::CameraOverrun, DropReason::EdgeError, DropReason::Shutdown]);
    assert_eq!(st.edge, 0, "{st}");
    assert!(st.dropped.get(&DropReason::EdgeError).copied().unwrap_or(0) >= 3, "{st}");
    assert!(metric(&edge_registry, "tandem_edge_frame_errors_total{reason=\"unknown_model\"}") >= 3.0);
    edge.shutdown().await;
}

/// Send `request` (then half-close), read the whole reply.
async fn http_raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    guarded("an HTTP reply", async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        // The server may answer (and stop reading) before all of an oversized request is in.
        let _ = s.write_all(request).await;
        let _ = s.shutdown().await;
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_control_endpoint_gets_4xx_and_the_server_keeps_serving() {
    let s = series();
    // A controller with its link down: enough to take floors.
    let (state_tx, state_rx) = tokio::sync::watch::channel(LinkState::Down);
    let (link_tx, _link_rx) = command_queue();
    let (_samples_tx, samples) = sample_queue(4);
    let (_timings_tx, timings) = timing_queue(4);
    let registry = Registry::new();
    let ctl = Controller::spawn(
        ControllerSettings::default(),
        planner(two_models(&s)),
        Arc::new(PlanHandle::new(plan(&s, "0:pool2:q8-lz4"))),
        state_rx,
        link_tx,
        Feedback { samples, timings },
        ControllerMetrics::register(&registry).expect("metrics"),
        DeviceMetrics::register(&registry).expect("metrics"),
        None,
    )
    .expect("controller");
    let http = serve_with_floor("127.0.0.1:0".parse().expect("addr"), registry, Some(ctl.floor_setter()), None)
        .await
        .expect("http");
    let addr = http.addr;
    // A client that connects and says nothing does not hold the others up.
    let _silent = TcpStream::connect(addr).await.expect("connect");

    let status = |reply: &str| reply.lines().next().unwrap_or_default().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a floor that is not a number", b"POST /floor?abc HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        ("a floor out of range", b"POST /floor?1.5 HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        ("an empty floor", b"POST /floor? HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (
            "a huge body",
            [
                b"POST /floor?0.9 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".as_slice(),
                &vec![b'9'; 64 << 10],
            ]
            .concat(),
            "HTTP/1.1 413",
        ),
        (
            "a chunked body",
            b"POST /floor?0.9 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            "HTTP/1.1 413",
        ),
        // A malformed request: hyper answers it 400 (the hand-written responder said 413).
        ("a bad content length", b"POST /floor?0.9 HTTP/1.1\r\nContent-Length: lots\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (
            "a 10 KiB request line",
            [b"GET /metrics?".as_slice(), &vec![b'a'; 10 << 10], b" HTTP/1.1\r\n\r\n"].concat(),
            "HTTP/1.1 431",
        ),
        ("an unknown path", b"GET /admin HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 404"),
        ("another method", b"DELETE /floor?0.9 HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 404"),
        // Not HTTP at all: hyper answers 400 (the hand-written responder said 404).
        ("binary garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), "HTTP/1.1 400"),
    ];
    for (what, request, want) in &cases {
        let reply = http_raw(addr, request).await;
        assert!(reply.starts_with(want), "{what}: expected {want}, got {:?}", status(&reply));
    }
    // Nothing asked, nothing answered: hyper closes a connection that sent no request (the
    // hand-written responder answered it 404).
    assert_eq!(http_raw(addr, b"").await, "", "nothing at all");
    // Still serving, and the floor still works.
    let (line, body) = http_get(addr, "/metrics").await;
    assert!(line.contains("200"), "{line}");
    assert!(body.contains("tandem_plan_swaps_total"));
    let reply = http_raw(addr, b"POST /floor?0.9 HTTP/1.1\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(ctl.status().borrow().floor.is_some_and(|f| f == tandem_planner::AccuracyFloor::Absolute(0.9)));
    http.stop();
    ctl.stop().await;
    drop(state_tx);
}

/// With a device token, `POST /floor` needs it as a bearer token: none or a wrong one → 401
/// (and the floor is unchanged), the right one → 200; `/metrics` stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_needs_the_device_token_as_a_bearer_token() {
    let s = series();
    let (state_tx, state_rx) = tokio::sync::watch::channel(LinkState::Down);
    let (link_tx, _link_rx) = command_queue();
    let (_samples_tx, samples) = sample_queue(4);
    let (_timings_tx, timings) = timing_queue(4);
    let registry = Registry::new();
    let ctl = Controller::spawn(
        ControllerSettings::default(),
        planner(two_models(&s)),
        Arc::new(PlanHandle::new(plan(&s, "0:pool2:q8-lz4"))),
        state_rx,
        link_tx,
        Feedback { samples, timings },
        ControllerMetrics::register(&registry).expect("metrics"),
        DeviceMetrics::register(&registry).expect("metrics"),
        None,
    )
    .expect("controller");
    let token = Token::new("floor-s3cret").expect("token");
    let http = serve_with_floor("127.0.0.1:0".parse().expect("addr"), registry, Some(ctl.floor_setter()), Some(token))
        .await
        .expect("http");
    let floor = || ctl.status().borrow().floor;
    let before = floor();
    let reply = http_raw(http.addr, b"POST /floor?0.5 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 401"), "no token: {reply}");
    assert!(reply.to_ascii_lowercase().contains("www-authenticate: bearer"), "{reply}");
    let reply =
        http_raw(http.addr, b"POST /floor?0.5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer floor-s3creT\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 401"), "wrong token: {reply}");
    let reply =
        http_raw(http.addr, b"POST /floor?0.5 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic floor-s3cret\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 401"), "not a bearer token: {reply}");
    assert_eq!(floor(), before, "a refused request changes nothing");
    let reply =
        http_raw(http.addr, b"POST /floor?0.5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer floor-s3cret\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 200"), "the right token: {reply}");
    assert!(floor().is_some_and(|f| f == tandem_planner::AccuracyFloor::Absolute(0.5)));
    let (line, body) = http_get(http.addr, "/metrics").await;
    assert!(line.contains("200") && body.contains("tandem_plan_swaps_total"), "{line}");
    http.stop();
    ctl.stop().await;
    drop(state_tx);
}

/// A version-1 frame (`TNDM`, u16 version 1, fixed 80-byte header) carrying `payload` as a v1
/// peer writes it: what an old device says, or an old edge answers.
fn v1_control_frame(payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 80];
    h[0..4].copy_from_slice(b"TNDM");
    h[4..6].copy_from_slice(&1u16.to_le_bytes());
    h[6] = 2; // control
    h[56..64].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[64..72].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    // CRC (bytes 76..80) left 0: a version-2 reader refuses the header at its version field,
    // before any CRC.
    h.extend_from_slice(payload);
    h
}

/// Version-1 frames both ways: an old device's `Hello` is refused with `UnsupportedProtocol`
/// naming both header versions (counted as a protocol rejection) while a current device is
/// served; a current device talking to an old edge surfaces the version mismatch (a protocol
/// failure, the longest backoff) and runs locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_peers_are_refused_with_both_versions_named() {
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let (good, _) = start_device(device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None), 16).await;
    wait_counts(&good, "results for the good device", |c| c.edge >= 2).await;

    let mut hello = Vec::new();
    Control::Hello {
        protocol_version: PROTOCOL_VERSION,
        device_id: "old".into(),
        token: None,
        results: tandem_codec::ResultSpec::default(),
    }
    .encode(&mut hello)
    .expect("hello");
    let mut old = RawClient::connect(edge.addr).await;
    old.send_raw(&v1_control_frame(&hello)).await;
    let reply = old.recv().await;
    assert!(
        matches!(&reply, Some(Control::Reject { code: RejectCode::UnsupportedProtocol, reason })
            if reason.contains("expected version 2, got 1")),
        "{reply:?}"
    );
    assert_eq!(old.recv().await, None, "the edge closes a refused connection");
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"protocol\"}"), 1.0);

    // An "edge" that answers every Hello the way a version-1 edge does (a v1 Reject of the
    // unreadable header).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let old_edge = listener.local_addr().expect("addr");
    let mut reject = Vec::new();
    Control::Reject { code: RejectCode::Other, reason: "bad frame: bad magic".into() }
        .encode(&mut reject)
        .expect("reject");
    let v1_reject = v1_control_frame(&reject);
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut first = [0u8; 16];
            let _ = stream.read(&mut first).await;
            let _ = stream.write_all(&v1_reject).await;
        }
    });
    let mut current = device_settings(&s, &old_edge.to_string(), "0:pool2:q8-lz4", 50.0, None);
    current.connect_wait = std::time::Duration::ZERO;
    let (current, current_registry) = start_device(current, 8).await;
    wait_counts(&current, "local results beside an old edge", |c| c.local >= 2).await;
    wait_metric(&current_registry, "tandem_link_connect_failures_total{reason=\"protocol\"}", |v| v >= 1.0).await;
    assert_eq!(metric(&current_registry, "tandem_link_connects_total"), 0.0);

    let at = good.snapshot().borrow().edge;
    wait_counts(&good, "results after the refusals", |c| c.edge >= at + 2).await;
    for d in [&good, &current] {
        d.stopper().stop();
    }
    let (g, c) = tokio::join!(guarded("good", good.finish()), guarded("current", current.finish()));
    assert_only(&g.expect("good"), &[DropReason::CameraOverrun, DropReason::Shutdown]);
    let c = c.expect("current");
    assert_eq!(c.edge, 0, "{c}");
    server.abort();
    edge.shutdown().await;
}
