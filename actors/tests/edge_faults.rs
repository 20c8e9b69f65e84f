use tandem_codec::control::PROTOCOL_VERSION;
use tandem_codec::{Coding, Control, ErrorCode, FrameMeta, PlanResult, RejectCode};

use crate::common::*;

/// A malformed frame from one device gets an error reply; another device keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_gets_an_error_reply_and_does_not_disturb_another_device() {
    let s = series();
    let (edge, edge_registry) = start_edge(&s.path, &edge_config()).await;
    let settings = device_settings(&s, &edge.addr.to_string(), "0:pool2:q8-lz4", 100.0, None);
    let (device, _) = start_device(settings, 16).await;
    wait_counts(&device, "results before the fault", |c| c.edge >= 2).await;

    let mut raw = RawClient::hello(edge.addr).await;
    let pool2 = [1, 4, 8, 8]; // model 0 of the tiny series at pool2
    let meta = |frame_id, model_id, point| FrameMeta { frame_id, plan_epoch: 1, model_id, point };
    // 1. Corrupted payload, valid header: Checksum error, the stream continues.
    let mut bad = tensor_frame(meta(7, 0, 6), &pool2, Coding::Q8_LZ4);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    raw.send_raw(&bad).await;
    assert_eq!(raw.recv().await, Some(Control::FrameError { frame_id: 7, code: ErrorCode::Checksum }));
    // 2. A model the series does not have.
    raw.send_raw(&tensor_frame(meta(8, 42, 6), &pool2, Coding::Q8_LZ4)).await;
    assert_eq!(raw.recv().await, Some(Control::FrameError { frame_id: 8, code: ErrorCode::UnknownModel }));
    // 3. A point past the end of the model.
    raw.send_raw(&tensor_frame(meta(9, 0, 200), &pool2, Coding::Q8_LZ4)).await;
    assert_eq!(raw.recv().await, Some(Control::FrameError { frame_id: 9, code: ErrorCode::BadPoint }));
    // 4. A tensor whose shape is not the model's at that point.
    raw.send_raw(&tensor_frame(meta(10, 0, 6), &[1, 3, 5, 5], Coding::F32)).await;
    assert_eq!(raw.recv().await, Some(Control::FrameError { frame_id: 10, code: ErrorCode::Malformed }));
    // 5. Plan switches naming bad models or points are refused, not fatal.
    raw.send_control(Control::PlanSwitch { epoch: 2, model_id: 42, point: 3, coding: Coding::Q8_LZ4 }).await;
    assert_eq!(raw.recv().await, Some(Control::PlanAck { epoch: 2, result: PlanResult::UnknownModel }));
    raw.send_control(Control::PlanSwitch { epoch: 3, model_id: 1, point: 500, coding: Coding::Q8_LZ4 }).await;
    assert_eq!(raw.recv().await, Some(Control::PlanAck { epoch: 3, result: PlanResult::BadPoint }));
    raw.send_control(Control::Ping { nonce: 5 }).await;
    assert_eq!(raw.recv().await, Some(Control::Pong { nonce: 5 }));
    // 6. Garbage where a header should be: an error reply, then this connection is closed.
    raw.send_raw(b"GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE!!").await;
    assert_eq!(raw.recv().await, Some(Control::FrameError { frame_id: 0, code: ErrorCode::Malformed }));
    assert_eq!(raw.recv().await, None, "the edge closes a stream it cannot resynchronise");

    // The well-behaved device keeps getting results.
    let before = *device.snapshot().borrow();
    wait_counts(&device, "results after the fault", |c| c.edge >= before.edge + 3).await;
    device.stopper().stop();
    let summary = guarded("the device run", device.finish()).await.expect("finish");
    assert!(summary.balanced());
    assert_eq!(summary.dropped.get(&tandem_actors::ledger::DropReason::EdgeError), None, "{summary}");
    let text = prometheus::TextEncoder::new().encode_to_string(&edge_registry.gather()).expect("encode");
    for reason in ["checksum", "unknown_model", "bad_point"] {
        assert!(text.contains(&format!("tandem_edge_frame_errors_total{{reason=\"{reason}\"}} 1")), "{reason}: {text}");
    }
    assert!(text.contains("tandem_edge_frame_errors_total{reason=\"malformed\"} 2"), "{text}");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_protocol_check_connection_limit_and_idle_timeout() {
    let s = series();
    let cfg = tandem_actors::config::EdgeConfig { max_connections: 1, idle_timeout_ms: 300, ..edge_config() };
    let (edge, _) = start_edge(&s.path, &cfg).await;

    // A future protocol version is refused.
    let mut old = RawClient::connect(edge.addr).await;
    old.send_control(Control::Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        device_id: "future".into(),
        token: None,
        results: tandem_codec::ResultSpec::default(),
    })
    .await;
    assert!(matches!(old.recv().await, Some(Control::Reject { code: RejectCode::UnsupportedProtocol, .. })));
    assert_eq!(old.recv().await, None);

    // The one slot is taken; a second device is told the edge is busy (after its Hello: the
    // session limit applies to authenticated connections only).
    let mut first = RawClient::hello(edge.addr).await;
    let mut second = RawClient::connect(edge.addr).await;
    second
        .send_control(Control::Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: "second".into(),
            token: None,
            results: tandem_codec::ResultSpec::default(),
        })
        .await;
    assert!(matches!(second.recv().await, Some(Control::Reject { code: RejectCode::Busy, .. })));

    // The first device says nothing: after the idle timeout the edge closes it.
    assert_eq!(first.recv().await, None);
    // The slot is free again.
    let mut third = RawClient::hello(edge.addr).await;
    third.send_control(Control::Bye).await;
    assert_eq!(third.recv().await, None);
    edge.shutdown().await;
}
