//! The link with TLS and a shared token: a real device ↔ edge exchange over rustls with a
//! certificate made at run time, and a device that trusts the wrong CA failing clearly.

use std::time::Duration;

use tandem_actors::config::{DeviceConfig, EdgeConfig};
use tandem_actors::ledger::DropReason;
use tandem_actors::link::{ConnectError, LinkState};
use tandem_actors::security::{ClientTls, Token};
use tokio::net::TcpStream;

use crate::common::*;
use crate::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_token_serves_devices_and_a_wrong_ca_is_refused_clearly() {
    let s = series();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path(), "edge");
    let (other_ca, _) = self_signed(dir.path(), "impostor");
    let token = token_file(dir.path(), "edge.token", "correct horse battery staple");
    let cfg = EdgeConfig {
        token_file: Some(token.clone()),
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        ..edge_config()
    };
    let (edge, edge_registry) = start_edge(&s.path, &cfg).await;
    let addr = edge.addr.to_string();

    // A device configured the way the CLI does it: token and CA files, the server name taken
    // from the edge address (an IP, matched against the certificate's IP SAN).
    let mut dcfg = DeviceConfig::default();
    dcfg.link.token_file = Some(token.clone());
    dcfg.link.tls_ca = Some(cert.clone());
    dcfg.validate().expect("device config");
    let mut settings = device_settings(&s, &addr, "0:pool2:q8-lz4", 50.0, Some(10));
    let secured = dcfg.link_settings(addr.clone()).expect("link settings");
    assert_eq!(secured.tls.as_ref().map(ClientTls::server_name).as_deref(), Some("127.0.0.1"));
    settings.link.token = secured.token;
    settings.link.tls = secured.tls;
    let (device, _) = start_device(settings, 10).await;
    let summary = guarded("the TLS device run", device.finish()).await.expect("finish");
    assert!(summary.balanced(), "{summary}");
    assert!(summary.edge > 0, "no result came back over TLS: {summary}");

    // A DNS name from the certificate works too.
    let mut settings = device_settings(&s, &addr, "1:pool3:q8-lz4", 50.0, Some(4));
    settings.link.token = Some(Token::load(&token).expect("token"));
    settings.link.tls = Some(ClientTls::load(&cert, "localhost").expect("ca"));
    let (device, _) = start_device(settings, 4).await;
    let summary = guarded("the TLS device run by name", device.finish()).await.expect("finish");
    assert!(summary.balanced() && summary.edge > 0, "{summary}");

    // The right CA but the wrong token: refused inside the TLS session, and the device says so.
    let wrong_token = token_file(dir.path(), "wrong.token", "correct horse battery stapler");
    let mut settings = device_settings(&s, &addr, "0:pool2:q8-lz4", 50.0, None);
    settings.link.token = Some(Token::load(&wrong_token).expect("token"));
    settings.link.tls = Some(ClientTls::load(&cert, "127.0.0.1").expect("ca"));
    settings.connect_wait = Duration::ZERO;
    let (device, _) = start_device(settings, 8).await;
    let mut state = device.link_state();
    let st = *guarded("a rejection over TLS", state.wait_for(|s| matches!(s, LinkState::Rejected { .. })))
        .await
        .expect("link alive");
    assert_eq!(st, LinkState::Rejected { code: tandem_codec::RejectCode::BadToken });
    drop(state);
    let summary = stop_device(device).await;
    assert!(summary.balanced() && summary.edge == 0, "{summary}");

    // A device that trusts another CA: the handshake fails, counted and clear; it runs locally.
    let mut settings = device_settings(&s, &addr, "0:pool2:q8-lz4", 50.0, None);
    settings.link.token = Some(Token::load(&token).expect("token"));
    settings.link.tls = Some(ClientTls::load(&other_ca, "127.0.0.1").expect("ca"));
    settings.connect_wait = Duration::ZERO;
    let (device, registry) = start_device(settings, 8).await;
    wait_metric(&registry, "tandem_link_connect_failures_total{reason=\"tls\"}", |v| v >= 1.0).await;
    wait_counts(&device, "local results", |c| c.local >= 2).await;
    assert!(!device.link_state().borrow().is_up());
    device.stopper().stop();
    let summary = guarded("the wrong-CA device run", device.finish()).await.expect("finish");
    assert!(summary.balanced(), "{summary}");
    assert_eq!(summary.edge, 0, "{summary}");
    for reason in summary.dropped.keys() {
        assert!(
            matches!(reason, DropReason::CameraOverrun | DropReason::LinkDown | DropReason::Shutdown),
            "{reason:?}: {summary}"
        );
    }
    assert!(metric(&edge_registry, "tandem_edge_rejections_total{reason=\"tls\"}") >= 1.0);

    // What the operator reads: the error names the certificate problem and what to check.
    let wrong = ClientTls::load(&other_ca, "127.0.0.1").expect("ca");
    let tcp = TcpStream::connect(edge.addr).await.expect("connect");
    let source = wrong.connect(tcp).await.expect_err("a certificate from another CA must be refused");
    assert!(
        // Which certificate error depends on the two CAs (same subject: `BadSignature`).
        matches!(rustls_error(&source), Some(rustls::Error::InvalidCertificate(_))),
        "{source}"
    );
    let text = ConnectError::Tls { server_name: wrong.server_name(), source }.to_string();
    assert!(text.contains("configured CA"), "the error says what to check: {text}");
    // The right CA but a name the certificate does not carry.
    let misnamed = ClientTls::load(&cert, "edge.example").expect("ca");
    let tcp = TcpStream::connect(edge.addr).await.expect("connect");
    let source = misnamed.connect(tcp).await.expect_err("a name not in the certificate must be refused");
    assert!(
        matches!(
            rustls_error(&source),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{source}"
    );
    edge.shutdown().await;
}

/// The rustls verdict inside a TLS handshake's I/O error (matched by kind, not by wording).
fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

async fn stop_device(device: tandem_actors::device::DeviceHandle) -> tandem_actors::ledger::Summary {
    device.stopper().stop();
    guarded("the device run", device.finish()).await.expect("finish")
}

/// A device that speaks plain TCP to a TLS edge, and one that expects TLS from a plain edge:
/// neither hangs; both fail the session set-up with a reason and run locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mismatches_fail_the_handshake_not_the_device() {
    let s = series();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(dir.path(), "edge");
    let cfg = EdgeConfig { tls_cert: Some(cert.clone()), tls_key: Some(key), ..edge_config() };
    let (tls_edge, _) = start_edge(&s.path, &cfg).await;
    let (plain_edge, _) = start_edge(&s.path, &edge_config()).await;

    let mut plain_to_tls = device_settings(&s, &tls_edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None);
    plain_to_tls.connect_wait = Duration::ZERO;
    let mut tls_to_plain = device_settings(&s, &plain_edge.addr.to_string(), "0:pool2:q8-lz4", 50.0, None);
    tls_to_plain.link.tls = Some(ClientTls::load(&cert, "127.0.0.1").expect("ca"));
    tls_to_plain.connect_wait = Duration::ZERO;
    let ((a, ra), (b, rb)) = tokio::join!(start_device(plain_to_tls, 8), start_device(tls_to_plain, 8));
    wait_metric(&ra, "tandem_link_connect_failures_total{reason=\"handshake\"}", |v| v >= 1.0).await;
    wait_metric(&rb, "tandem_link_connect_failures_total{reason=\"tls\"}", |v| v >= 1.0).await;
    for d in [&a, &b] {
        wait_counts(d, "local results", |c| c.local >= 2).await;
        assert!(matches!(*d.link_state().borrow(), LinkState::Down | LinkState::Connecting));
        d.stopper().stop();
    }
    for d in [a, b] {
        let summary = guarded("the device run", d.finish()).await.expect("finish");
        assert!(summary.balanced() && summary.edge == 0, "{summary}");
    }
    tls_edge.shutdown().await;
    plain_edge.shutdown().await;
}
