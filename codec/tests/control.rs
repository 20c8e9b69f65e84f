//! Control protocol: round trips (bare and framed), garbage refused.

use proptest::prelude::*;
use tandem_codec::control::{MAX_DEVICE_ID_LEN, MAX_LOGITS, MAX_REASON_LEN, MAX_TOKEN_LEN, MAX_TOP_K};
use tandem_codec::frame::{self, Limits};
use tandem_codec::{
    Body, ClassProb, Coding, Control, ControlError, ErrorCode, Frame, FrameError, PlanResult, RejectCode, ResultSpec,
};

use crate::common::meta;

fn coding() -> impl Strategy<Value = Coding> {
    let all = Coding::all();
    (0..all.len()).prop_map(move |i| all[i])
}

fn control() -> impl Strategy<Value = Control> {
    let reject = prop_oneof![
        Just(RejectCode::UnsupportedProtocol),
        Just(RejectCode::BadToken),
        Just(RejectCode::Busy),
        Just(RejectCode::UnknownDevice),
        Just(RejectCode::Other),
    ];
    let plan = prop_oneof![
        Just(PlanResult::Applied),
        Just(PlanResult::UnknownModel),
        Just(PlanResult::BadPoint),
        Just(PlanResult::UnsupportedCoding),
        Just(PlanResult::StaleEpoch),
        Just(PlanResult::Busy),
    ];
    let code = prop_oneof![
        Just(ErrorCode::Checksum),
        Just(ErrorCode::Malformed),
        Just(ErrorCode::StalePlan),
        Just(ErrorCode::Decode),
        Just(ErrorCode::Internal),
    ];
    prop_oneof![
        (any::<u16>(), "[a-z0-9-]{0,64}", prop::option::of("[ -~]{0,256}"), 1u8..=MAX_TOP_K as u8, any::<bool>())
            .prop_map(|(protocol_version, device_id, token, top_k, logits)| Control::Hello {
                protocol_version,
                device_id,
                token,
                results: ResultSpec { top_k, logits }
            }),
        (any::<u16>(), any::<u64>())
            .prop_map(|(protocol_version, session_id)| Control::HelloAck { protocol_version, session_id }),
        (reject, "\\PC{0,60}").prop_map(|(code, reason)| Control::Reject { code, reason }),
        (any::<u32>(), any::<u32>(), any::<u16>(), coding())
            .prop_map(|(epoch, model_id, point, coding)| Control::PlanSwitch { epoch, model_id, point, coding }),
        (any::<u32>(), plan).prop_map(|(epoch, result)| Control::PlanAck { epoch, result }),
        (
            any::<u64>(),
            any::<u32>(),
            prop::collection::vec((any::<u16>(), 0.0f32..1.0), 1..=MAX_TOP_K),
            prop::collection::vec(-50.0f32..50.0, 0..20),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(frame_id, epoch, top, logits, edge_decode_us, edge_infer_us)| {
                let top = top.into_iter().map(|(class, p)| ClassProb { class, p }).collect();
                Control::InferResult { frame_id, epoch, top, logits, edge_decode_us, edge_infer_us }
            }),
        (any::<u64>(), code).prop_map(|(frame_id, code)| Control::FrameError { frame_id, code }),
        (any::<u32>(), any::<u64>(), 0u32..5000)
            .prop_map(|(seq, sent_at_us, padding_len)| { Control::Probe { seq, sent_at_us, padding_len } }),
        (any::<u32>(), any::<u64>(), any::<u32>())
            .prop_map(|(seq, sent_at_us, received_len)| { Control::ProbeReply { seq, sent_at_us, received_len } }),
        any::<u64>().prop_map(|nonce| Control::Ping { nonce }),
        any::<u64>().prop_map(|nonce| Control::Pong { nonce }),
        Just(Control::Bye),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn messages_round_trip_bare_and_framed(msg in control()) {
        let mut bare = Vec::new();
        msg.encode(&mut bare).unwrap();
        prop_assert_eq!(&Control::decode(&bare).unwrap(), &msg);

        let mut buf = Vec::new();
        let f = Frame { meta: meta(), body: Body::Control(msg.clone()) };
        let n = frame::write(&f, &mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(frame::parse(&buf, &Limits::default()).unwrap(), f);

        // Every strict prefix of the message (beyond its padding) is an error, never a panic.
        let msg_len = bare.len() - msg.padding_len();
        for k in 0..msg_len {
            prop_assert!(Control::decode(&bare[..k]).is_err(), "prefix {} of {:?}", k, msg);
        }
    }

    #[test]
    fn garbage_payloads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(msg) = Control::decode(&bytes) {
            // Whatever decodes is within bounds and re-encodes stably.
            msg.validate().unwrap();
            // (compared as bytes: decoded floats may be NaN)
            let mut again = Vec::new();
            msg.encode(&mut again).unwrap();
            let mut twice = Vec::new();
            Control::decode(&again).unwrap().encode(&mut twice).unwrap();
            prop_assert_eq!(again, twice);
        }
    }
}

#[test]
fn garbage_control_payloads_are_errors() {
    let cases: [&[u8]; 6] = [
        &[],                                   // nothing
        &[200],                                // unknown variant
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80], // runaway varint
        &[11, 0],                              // Bye followed by a stray byte
        &[3, 1, 2, 3, 99, b'q'],               // PlanSwitch with a too-short coding string
        &[3, 1, 2, 3, 3, b'q', b'9', b'9'],    // PlanSwitch with an unknown coding
    ];
    for bytes in cases {
        assert!(Control::decode(bytes).is_err(), "{bytes:?}");
    }
    assert!(matches!(Control::decode(&[11, 0]), Err(ControlError::Trailing { expected: 0, got: 1 })));
}

#[test]
fn oversized_fields_are_refused_before_sending() {
    let msgs = [
        Control::Hello {
            protocol_version: 1,
            device_id: "x".repeat(MAX_DEVICE_ID_LEN + 1),
            token: None,
            results: ResultSpec::default(),
        },
        Control::Hello {
            protocol_version: 1,
            device_id: String::new(),
            token: Some("t".repeat(MAX_TOKEN_LEN + 1)),
            results: ResultSpec::default(),
        },
        Control::Hello {
            protocol_version: 1,
            device_id: String::new(),
            token: None,
            results: ResultSpec { top_k: MAX_TOP_K as u8 + 1, logits: false },
        },
        Control::Reject { code: RejectCode::Other, reason: "r".repeat(MAX_REASON_LEN + 1) },
        Control::InferResult {
            frame_id: 0,
            epoch: 0,
            top: vec![ClassProb { class: 0, p: 1.0 }],
            logits: vec![0.0; MAX_LOGITS + 1],
            edge_decode_us: 0,
            edge_infer_us: 0,
        },
        Control::Probe { seq: 0, sent_at_us: 0, padding_len: u32::MAX },
    ];
    for msg in msgs {
        let mut buf = vec![1, 2, 3];
        let f = Frame { meta: meta(), body: Body::Control(msg) };
        let res = frame::write(&f, &mut buf);
        assert!(matches!(res, Err(FrameError::Control(ControlError::TooLong { .. }))), "{res:?}");
        assert_eq!(buf, [1, 2, 3], "write leaves the buffer as it was on error");
    }
}

#[test]
fn error_codes_have_stable_labels() {
    assert_eq!(ErrorCode::StalePlan.as_str(), "stale_plan");
    let e = FrameError::Checksum { expected: 1, got: 2 };
    assert_eq!(ErrorCode::from(&e), ErrorCode::Checksum);
    assert_eq!(ErrorCode::from(&FrameError::BadMagic { got: *b"HT" }), ErrorCode::Malformed);
}
