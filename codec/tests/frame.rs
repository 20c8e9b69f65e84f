//! Wire-format robustness: truncation, corruption, garbage, limits, versions, sizes.

use proptest::prelude::*;
use tandem_codec::frame::{self, Limits, MAX_HEADER_LEN};
use tandem_codec::{Body, Coding, Control, Frame, FrameError, FrameMeta};

use crate::common::{Forge, meta, relu_like, sample_frame, v1_header};

fn control_frame(msg: Control) -> Vec<u8> {
    let mut buf = Vec::new();
    frame::write(&Frame { meta: meta(), body: Body::Control(msg) }, &mut buf).unwrap();
    buf
}

fn valid_frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = Coding::all().into_iter().map(sample_frame).collect();
    frames.push(control_frame(Control::Ping { nonce: 9 }));
    frames.push(control_frame(Control::Probe { seq: 1, sent_at_us: 2, padding_len: 33 }));
    frames
}

fn header_len(buf: &[u8]) -> usize {
    let Ok(Frame { meta, body: Body::Tensor(t) }) = frame::parse(buf, &Limits::default()) else {
        panic!("not a tensor frame");
    };
    frame::tensor_header_len(&meta, &t)
}

#[test]
fn the_forger_writes_what_codec_writes() {
    // Two independent implementations of the documented layout agree byte for byte.
    for coding in Coding::all() {
        assert_eq!(Forge::tensor(coding).bytes(), sample_frame(coding), "{coding}");
    }
    assert_eq!(Forge::control(&Control::Ping { nonce: 9 }).bytes(), control_frame(Control::Ping { nonce: 9 }));
}

#[test]
fn every_truncation_is_incomplete() {
    for buf in valid_frames() {
        for k in 0..buf.len() {
            assert!(
                matches!(frame::check(&buf[..k], &Limits::default()), Err(FrameError::Incomplete)),
                "check of {k}/{} bytes",
                buf.len()
            );
            assert!(matches!(frame::parse(&buf[..k], &Limits::default()), Err(FrameError::Incomplete)));
        }
        assert_eq!(frame::check(&buf, &Limits::default()).unwrap(), buf.len());
    }
}

#[test]
fn every_single_byte_corruption_is_an_error() {
    for buf in valid_frames() {
        for i in 0..buf.len() {
            for mask in [0x01u8, 0x10, 0x80, 0xff] {
                let mut bad = buf.clone();
                bad[i] ^= mask;
                // A following frame, so a corrupted length cannot hide behind Incomplete forever.
                bad.extend_from_slice(&buf);
                let res = frame::parse(&bad, &Limits::default());
                assert!(res.is_err(), "byte {i} ^ {mask:#04x} accepted: {res:?}");
            }
        }
    }
}

#[test]
fn frames_back_to_back_are_split_by_check() {
    let frames = valid_frames();
    let stream: Vec<u8> = frames.concat();
    let mut at = 0;
    for expected in &frames {
        let n = frame::check(&stream[at..], &Limits::default()).unwrap();
        assert_eq!(&stream[at..at + n], &expected[..]);
        assert!(frame::parse(&stream[at..], &Limits::default()).is_ok());
        at += n;
    }
    assert_eq!(at, stream.len());
}

#[test]
fn four_gib_declarations_are_refused_from_the_header_alone() {
    let four_gib = 4u64 << 30;
    // Only the header exists: a TooLarge (not Incomplete) proves nothing was awaited or
    // allocated for the declared size.
    let header = Forge { payload_len: Some(four_gib), ..Forge::tensor(Coding::Q8_LZ4) }.header();
    match frame::check(&header, &Limits::default()) {
        Err(FrameError::TooLarge { what: "payload", limit, got }) => assert_eq!((limit, got), (16 << 20, four_gib)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Dims whose product is 2^128-ish: refused without overflow.
    let header = Forge { dims: vec![u32::MAX.into(); 4], ..Forge::tensor(Coding::Q8_LZ4) }.header();
    let res = frame::check(&header, &Limits { max_dim: u64::MAX, max_elements: u64::MAX - 1, ..Limits::default() });
    assert!(matches!(res, Err(FrameError::TooLarge { what: "elements", .. })), "{res:?}");
    // A shape whose decoded size is over the limit, however small the payload.
    let header = Forge { dims: vec![1, 1, 1024, 1024], ..Forge::tensor(Coding::F32_LZ4) }.header();
    let res = frame::check(&header, &Limits { max_payload_bytes: 1 << 20, ..Limits::default() });
    assert!(matches!(res, Err(FrameError::TooLarge { what: "raw payload", got, .. }) if got == 4 << 20), "{res:?}");
}

#[test]
fn limits_are_the_receivers() {
    let buf = sample_frame(Coding::Q8_LZ4); // [1, 4, 6, 6]
    let cases = [
        (Limits { max_rank: 3, ..Limits::default() }, "rank"),
        (Limits { max_dim: 5, ..Limits::default() }, "dimension"),
        (Limits { max_elements: 100, ..Limits::default() }, "elements"),
        (Limits { max_payload_bytes: 140, ..Limits::default() }, "raw payload"), // 136 B sent, 144 B raw
        (Limits { max_payload_bytes: 10, ..Limits::default() }, "payload"),
    ];
    for (limits, what) in cases {
        let res = frame::check(&buf, &limits);
        assert!(matches!(res, Err(FrameError::TooLarge { what: w, .. }) if w == what), "{what}: {res:?}");
    }
}

#[test]
fn old_and_unknown_versions_are_refused_with_both_versions_named() {
    let v1 = v1_header();
    for k in 0..6 {
        // "TNDM" and the version are not all there yet.
        assert!(matches!(frame::check(&v1[..k], &Limits::default()), Err(FrameError::Incomplete)), "{k}");
    }
    for bytes in [&v1[..6], &v1[..]] {
        let res = frame::check(bytes, &Limits::default());
        assert!(matches!(res, Err(FrameError::UnsupportedVersion { expected: 2, got: 1 })), "{res:?}");
        assert!(matches!(frame::peek_meta(bytes), Err(FrameError::UnsupportedVersion { expected: 2, got: 1 })));
    }
    let msg = frame::check(&v1, &Limits::default()).unwrap_err().to_string();
    assert!(msg.contains("expected version 2, got 1"), "{msg}");
    for version in [0u8, 1, 3, 255] {
        let buf = Forge { version, ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
        let res = frame::parse(&buf, &Limits::default());
        assert!(
            matches!(res, Err(FrameError::UnsupportedVersion { expected: 2, got }) if got == u16::from(version)),
            "{version}: {res:?}"
        );
        // From the first three bytes on.
        assert!(matches!(frame::check(&buf[..3], &Limits::default()), Err(FrameError::UnsupportedVersion { .. })));
    }
}

/// Header sizes at real points of the ¼-width VGG-16 on 32×32 grey input: pool4 (point 14)
/// after step 2 (4 channels, 16 elements: 98 B as a version-1 frame) and the input. Frame id
/// 10 000 (a steady-state run), epoch 1, model id 3.
#[test]
fn header_sizes_of_the_real_points() {
    let m = |point| FrameMeta { frame_id: 10_000, plan_epoch: 1, model_id: 3, point };
    let pool4 = tandem_codec::encode(&relu_like(&[1, 4, 2, 2], 3), &[1, 4, 2, 2], Coding::Q8_LZ4).unwrap();
    assert_eq!(frame::tensor_header_len(&m(14), &pool4), 24);
    assert!(pool4.payload().len() < 128);
    let input: Vec<f32> = (0..1024).map(|i| ((i * 37) % 255) as f32 / 255.0).collect();
    let input = tandem_codec::encode(&input, &[1, 1, 32, 32], Coding::Q8_LZ4).unwrap();
    assert!(input.payload().len() >= 128);
    assert_eq!(frame::tensor_header_len(&m(0), &input), 25);
    // f32 and per-channel codings carry no scale.
    let f32_pool4 = tandem_codec::encode(&relu_like(&[1, 4, 2, 2], 3), &[1, 4, 2, 2], Coding::F32).unwrap();
    assert_eq!(frame::tensor_header_len(&m(14), &f32_pool4), 19);
    // A control frame (meta all zero) with a one-byte message: 13 B header.
    let mut bye = Vec::new();
    frame::write_control(&FrameMeta::default(), &Control::Bye, &mut bye).unwrap();
    assert_eq!(bye.len(), 13 + 1);
}

#[test]
fn peek_meta_reads_the_provenance_of_every_valid_frame() {
    for buf in valid_frames() {
        assert_eq!(frame::peek_meta(&buf).unwrap(), meta());
    }
    let f = Forge::tensor(Coding::Q8_LZ4);
    let buf = f.bytes();
    // The meta fields alone are enough: nothing after them is looked at.
    assert_eq!(frame::peek_meta(&buf[..f.meta_end()]).unwrap(), meta());
    for k in 0..f.meta_end() {
        assert!(matches!(frame::peek_meta(&buf[..k]), Err(FrameError::Incomplete)), "{k} bytes");
    }
}

#[test]
fn peek_meta_reads_frames_that_fail_validation() {
    let mut buf = sample_frame(Coding::Q8_LZ4);
    // A payload byte flipped: parse refuses the CRC, the header still names the frame.
    *buf.last_mut().unwrap() ^= 0xff;
    assert!(matches!(frame::parse(&buf, &Limits::default()), Err(FrameError::Checksum { .. })));
    assert_eq!(frame::peek_meta(&buf).unwrap(), meta());
    // A header that declares too much: check refuses it, peek_meta still reads it.
    frame::declare_payload_len(&mut buf, u64::MAX / 2).unwrap();
    assert!(matches!(frame::check(&buf, &Limits::default()), Err(FrameError::TooLarge { .. })));
    assert_eq!(frame::peek_meta(&buf).unwrap(), meta());
}

#[test]
fn declare_payload_len_changes_only_the_declared_length() {
    let buf = sample_frame(Coding::Q8_LZ4);
    let payload = (buf.len() - header_len(&buf)) as u64;
    let mut lying = buf.clone();
    frame::declare_payload_len(&mut lying, payload + 1).unwrap();
    // One byte more declared than sent (a compressed payload's length is free): the frame now
    // waits for a byte that never comes.
    assert!(matches!(frame::check(&lying, &Limits::default()), Err(FrameError::Incomplete)));
    // Uncompressed, the declared length must match the shape: refused outright.
    let mut f32_frame = sample_frame(Coding::F32);
    let f32_payload = (f32_frame.len() - header_len(&f32_frame)) as u64;
    frame::declare_payload_len(&mut f32_frame, f32_payload + 1).unwrap();
    assert!(matches!(frame::check(&f32_frame, &Limits::default()), Err(FrameError::LengthMismatch { .. })));
    // A longer varint grows the header; declaring the true length restores the frame.
    frame::declare_payload_len(&mut lying, u64::MAX / 2).unwrap();
    assert!(lying.len() > buf.len());
    frame::declare_payload_len(&mut lying, payload).unwrap();
    assert_eq!(lying, buf);
    let mut short = buf[..5].to_vec();
    assert!(matches!(frame::declare_payload_len(&mut short, 0), Err(FrameError::Incomplete)));
}

fn any_coding() -> impl Strategy<Value = Coding> {
    prop::sample::select(Coding::all())
}

fn any_meta() -> impl Strategy<Value = FrameMeta> {
    (any::<u64>(), any::<u32>(), any::<u32>(), any::<u16>())
        .prop_map(|(frame_id, plan_epoch, model_id, point)| FrameMeta { frame_id, plan_epoch, model_id, point })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn headers_round_trip(
        meta in any_meta(),
        coding in any_coding(),
        dims in prop::collection::vec(1usize..9, 3..=4),
        seed in any::<u64>(),
    ) {
        let data = relu_like(&dims, seed);
        let t = tandem_codec::encode(&data, &dims, coding).unwrap();
        let mut buf = Vec::new();
        let n = frame::write_tensor(&meta, &t, &mut buf);
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(n, t.wire_len(&meta));
        prop_assert!(frame::tensor_header_len(&meta, &t) <= MAX_HEADER_LEN);
        prop_assert_eq!(frame::check(&buf, &Limits::default()).unwrap(), n);
        prop_assert_eq!(frame::peek_meta(&buf).unwrap(), meta);
        let back = frame::parse(&buf, &Limits::default()).unwrap();
        prop_assert_eq!(back, Frame { meta, body: Body::Tensor(t) });
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame::check(&bytes, &Limits::default());
        let _ = frame::parse(&bytes, &Limits::default());
        let _ = frame::peek_meta(&bytes);
        let mut with_magic = b"TN\x02".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = frame::parse(&with_magic, &Limits::default());
        let _ = frame::peek_meta(&with_magic);
    }

    /// Well-formed (checksummed) frames from a hostile peer: every field combination is
    /// refused or decodes cleanly to as many values as its shape, never a panic.
    #[test]
    fn hostile_but_checksummed_frames_never_panic(
        base in any_coding(),
        kind in 0u8..4,
        rank in 0u8..8,
        flags in 0u8..2,
        coding in any::<u8>(),
        dims in prop::collection::vec(0u64..70_000, 0..6),
        params in prop::option::of((any::<f32>(), any::<u8>())),
        payload_len in prop::option::of(0u64..400),
        edits in prop::collection::vec((0usize..400, any::<u8>()), 0..6),
    ) {
        let mut f = Forge { kind, rank, flags, coding, dims, params, payload_len, ..Forge::tensor(base) };
        for (at, v) in edits {
            if !f.payload.is_empty() {
                let i = at % f.payload.len();
                f.payload[i] = v;
            }
        }
        let mut buf = f.bytes();
        buf.extend_from_slice(&sample_frame(base));
        let limits = Limits::default();
        let _ = frame::check(&buf, &limits);
        let _ = frame::peek_meta(&buf);
        if let Ok(Frame { body: Body::Tensor(t), .. }) = frame::parse(&buf, &limits)
            && let Ok(values) = tandem_codec::decode(&t)
        {
            prop_assert_eq!(values.len(), t.shape().elements());
        }
    }
}
