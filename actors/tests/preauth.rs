//! The edge's pre-authentication limits, attacked over real sockets on loopback, with addresses
//! across 127.0.0.0/8 playing different peers: strangers that never finish a handshake can fill
//! the pending pool at worst, never a device's session slot; repeated bad tokens get an address
//! banned, counted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tandem_actors::config::EdgeConfig;
use tandem_actors::ledger::{DropReason, Summary};
use tandem_actors::security::Token;
use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Control, RejectCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::common::*;
use crate::fixtures::*;

fn peer(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Hold a connection from `from` open and idle, reopening it whenever the edge closes it, until
/// the task is aborted: a stranger trying to keep the edge's handshake slots busy. `first`
/// (written, then idle) lets it start with garbage.
async fn squat(from: IpAddr, edge: SocketAddr, first: &'static [u8]) {
    loop {
        let mut s = connect_from(from, edge).await;
        let _ = s.write_all(first).await;
        let mut sink = [0u8; 256];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        // Pacing only (the attacker's rate); nothing waits on it.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn assert_served_without_loss(summary: &Summary) {
    assert!(summary.balanced(), "{summary}");
    assert!(summary.edge > 0, "{summary}");
    assert_eq!(summary.local, 0, "every frame went to the edge: {summary}");
    for reason in summary.dropped.keys() {
        // A camera overrun is the loaded test machine's front stage, not the link.
        assert_eq!(*reason, DropReason::CameraOverrun, "{summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_idle_connections_from_one_address_do_not_keep_a_device_out() {
    let s = series();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path(), "edge.token", "pre-auth-s3cret");
    let cfg = EdgeConfig { token_file: Some(token.clone()), ..edge_config() };
    let (edge, edge_registry) = start_edge(&s.path, &cfg).await;

    // 100 idle connections from 127.0.0.2, reopened as soon as the edge closes them.
    let mut attackers = JoinSet::new();
    for _ in 0..100 {
        attackers.spawn(squat(peer(2), edge.addr, b""));
    }
    // All of its connections beyond its share were closed at accept…
    wait_metric(&edge_registry, "tandem_edge_rejections_total{reason=\"peer_limit\"}", |v| v >= 96.0).await;

    // …so a device on 127.0.0.1 gets in on its first attempt and streams without loss.
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 30.0, Some(30));
    settings.link.token = Some(Token::load(&token).expect("token"));
    let (device, registry) = start_device(settings, 30).await;
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    attackers.abort_all();
    assert_served_without_loss(&summary);
    assert_eq!(metric(&registry, "tandem_link_connects_total"), 1.0, "one session, never refused");
    for reason in tandem_actors::types::ConnectFailure::ALL {
        let series = format!("tandem_link_connect_failures_total{{reason=\"{}\"}}", reason.as_str());
        assert_eq!(metric(&registry, &series), 0.0, "{series}");
    }
    // The attacker's admitted connections run out of time (within the 1 s handshake deadline;
    // waited for, as the device may finish first).
    wait_metric(&edge_registry, "tandem_edge_rejections_total{reason=\"handshake\"}", |v| v >= 1.0).await;
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_then_idle_from_many_addresses_cannot_push_an_authenticated_device_out() {
    let s = series();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path(), "edge.token", "pre-auth-s3cret");
    // Room for one device only: if strangers could take session slots, it would be refused.
    let cfg = EdgeConfig { token_file: Some(token.clone()), max_connections: 1, ..edge_config() };
    let (edge, edge_registry) = start_edge(&s.path, &cfg).await;
    let mut settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 30.0, None);
    settings.link.token = Some(Token::load(&token).expect("token"));
    let (device, registry) = start_device(settings, 16).await;
    wait_counts(&device, "results before the flood", |c| c.edge >= 3).await;

    // 50 addresses × 4 connections: half start with the first bytes of a frame header and go
    // quiet (held until the handshake deadline), half send garbage (refused at once) and reopen.
    let mut attackers = JoinSet::new();
    for i in 0..50u8 {
        for j in 0..4 {
            let first: &'static [u8] = if j % 2 == 0 { b"TND" } else { b"GET / HTTP/1.1\r\n\r\n" };
            attackers.spawn(squat(peer(10 + i), edge.addr, first));
        }
    }
    // The pending pool (64) was full: strangers were turned away at accept…
    wait_metric(&edge_registry, "tandem_edge_rejections_total{reason=\"handshakes_full\"}", |v| v >= 1.0).await;
    wait_metric(&edge_registry, "tandem_edge_rejections_total{reason=\"handshake\"}", |v| v >= 50.0).await;
    // …while the device kept being served.
    let at = device.snapshot().borrow().edge;
    wait_counts(&device, "results during the flood", |c| c.edge >= at + 10).await;
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    attackers.abort_all();
    assert_served_without_loss(&summary);
    assert_eq!(metric(&registry, "tandem_link_connects_total"), 1.0, "never pushed out");
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"busy\"}"), 0.0);
    edge.shutdown().await;
}

async fn hello_from(from: IpAddr, edge: SocketAddr, token: &str) -> Option<Control> {
    let mut c = RawClient::connect_from(from, edge).await;
    c.send_control(Control::Hello {
        protocol_version: PROTOCOL_VERSION,
        device_id: "raw".into(),
        token: Some(token.into()),
        results: tandem_codec::ResultSpec::default(),
    })
    .await;
    c.recv().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_bad_tokens_ban_the_address_counted_and_other_addresses_are_served() {
    let s = series();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path(), "edge.token", "right-token");
    // A long first ban, so the test cannot outlive it.
    let cfg = EdgeConfig {
        token_file: Some(token),
        bad_token_strikes: 3,
        ban_min_ms: 600_000,
        ban_max_ms: 600_000,
        ..edge_config()
    };
    let (edge, edge_registry) = start_edge(&s.path, &cfg).await;
    let guesser = peer(5);
    for _ in 0..3 {
        let reply = hello_from(guesser, edge.addr, "guess").await;
        assert!(matches!(reply, Some(Control::Reject { code: RejectCode::BadToken, .. })), "{reply:?}");
    }
    // Banned: closed at accept, without an answer — even with the right token.
    assert_eq!(hello_from(guesser, edge.addr, "guess").await, None);
    assert_eq!(hello_from(guesser, edge.addr, "right-token").await, None);
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"unauthorized\"}"), 3.0);
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"banned\"}"), 2.0);
    // Another address is not affected, and a good token clears a record before it bans.
    let other = peer(6);
    for _ in 0..2 {
        assert!(matches!(hello_from(other, edge.addr, "guess").await, Some(Control::Reject { .. })));
    }
    assert!(matches!(hello_from(other, edge.addr, "right-token").await, Some(Control::HelloAck { .. })));
    for _ in 0..2 {
        assert!(matches!(hello_from(other, edge.addr, "guess").await, Some(Control::Reject { .. })));
    }
    assert!(matches!(hello_from(other, edge.addr, "right-token").await, Some(Control::HelloAck { .. })));
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"banned\"}"), 2.0);
    edge.shutdown().await;
}

/// Before authentication the edge reads only a `Hello`-sized payload: the header of a 256 KiB
/// tensor frame (within the session limit of 16 MiB) from a stranger is refused at once with a
/// reason, instead of the edge buffering the payload until the handshake deadline (which would
/// close the connection without an answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_make_the_edge_buffer_a_tensor_before_hello() {
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let meta = tandem_codec::FrameMeta { frame_id: 1, plan_epoch: 1, model_id: 0, point: 6 };
    let frame = tensor_frame(meta, &[1, 16, 64, 64], tandem_codec::Coding::F32);
    assert!(frame.len() > 256 << 10, "the frame carries a 256 KiB payload");
    let mut c = RawClient::connect_from(peer(9), edge.addr).await;
    // Only the header and a few payload bytes: the rest never comes.
    c.send_raw(&frame[..128]).await;
    let reply = c.recv().await;
    assert!(matches!(reply, Some(Control::Reject { .. })), "{reply:?}");
    assert_eq!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"handshake\"}"), 1.0);
    // A device is still served afterwards.
    let _device = RawClient::hello(edge.addr).await;
    edge.shutdown().await;
}
