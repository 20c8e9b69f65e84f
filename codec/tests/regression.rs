//! One test per error variant, named after what must be refused. Frames are forged field by
//! field ([`Forge`]) with a correct CRC, so the check under test is the one reached.

use tandem_codec::frame::{self, Limits};
use tandem_codec::{
    Bits, Body, CodecError, Coding, Compression, Control, ControlError, Frame, FrameError, Granularity,
};

use crate::common::{Forge, coding_byte, meta, relu_like, sample_frame};

fn parse(buf: &[u8]) -> Result<Frame, FrameError> {
    frame::parse(buf, &Limits::default())
}

fn decode_forged(buf: &[u8]) -> Result<Vec<f32>, CodecError> {
    match parse(buf).expect("forged frame passes the frame layer").body {
        Body::Tensor(t) => tandem_codec::decode(&t),
        Body::Control(c) => panic!("expected a tensor, got {c:?}"),
    }
}

// ---- FrameError ----

#[test]
fn frame_incomplete_header_is_not_an_error() {
    let f = Forge::tensor(Coding::Q8_LZ4);
    let header = f.header();
    assert!(matches!(frame::check(&header[..header.len() - 1], &Limits::default()), Err(FrameError::Incomplete)));
    assert!(matches!(frame::check(&header, &Limits::default()), Err(FrameError::Incomplete)));
}

#[test]
fn frame_varint_cut_short_is_incomplete_overlong_is_an_error() {
    // A frame id of 2^20 takes three varint bytes; cut after the first two, it is Incomplete.
    let f = Forge { meta: tandem_codec::FrameMeta { frame_id: 1 << 20, ..meta() }, ..Forge::tensor(Coding::Q8_LZ4) };
    let buf = f.bytes();
    assert!(matches!(frame::check(&buf[..6], &Limits::default()), Err(FrameError::Incomplete)));
    // The same frame id with a redundant zero group (non-canonical): refused.
    let mut overlong = buf[..4].to_vec();
    overlong.extend_from_slice(&[0x80, 0x80, 0xc0, 0x00]);
    assert!(matches!(frame::check(&overlong, &Limits::default()), Err(FrameError::BadVarint { field: "frame id" })));
    // A point above u16::MAX.
    let mut wide = buf[..4].to_vec();
    wide.extend_from_slice(&[1, 1, 1, 0xff, 0xff, 0x04]);
    assert!(matches!(frame::check(&wide, &Limits::default()), Err(FrameError::BadVarint { field: "point" })));
}

#[test]
fn peek_meta_of_bytes_that_are_no_frame_is_bad_magic() {
    assert!(matches!(frame::peek_meta(b"HTTP/1.1 200 OK"), Err(FrameError::BadMagic { got }) if &got == b"HT"));
    assert!(matches!(frame::peek_meta(b"X"), Err(FrameError::BadMagic { .. })));
}

#[test]
fn frame_bad_magic_reports_the_bytes_seen() {
    assert!(matches!(parse(b"HTTP/1.1 200 OK"), Err(FrameError::BadMagic { got }) if &got == b"HT"));
    // Fails fast on a short prefix that cannot become a frame.
    assert!(matches!(parse(b"TX"), Err(FrameError::BadMagic { got: [b'T', b'X'] })));
    assert!(matches!(parse(b"X"), Err(FrameError::BadMagic { got: [b'X', 0] })));
}

#[test]
fn frame_unsupported_version() {
    let buf = Forge { version: 3, ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::UnsupportedVersion { expected: 2, got: 3 })));
}

#[test]
fn frame_unknown_kind() {
    for kind in [0u8, 3] {
        let buf = Forge { kind, ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
        assert!(matches!(parse(&buf), Err(FrameError::UnknownKind { got }) if got == kind), "{kind}");
    }
}

#[test]
fn frame_unknown_flags() {
    let buf = Forge { flags: 0b100, ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::UnknownFlags { got: 0b100 })));
}

#[test]
fn frame_unknown_coding_codes() {
    // Element 0, stage 7, a reserved high bit.
    for coding in [0b0000_1000u8, 0b0011_1010, 0b0100_1010] {
        let buf = Forge { coding, ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
        let res = parse(&buf);
        assert!(matches!(res, Err(FrameError::UnknownField { field: "coding", got }) if got == coding), "{res:?}");
    }
}

#[test]
fn frame_control_with_a_rank() {
    let buf = Forge { rank: 1, ..Forge::control(&Control::Bye) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::NonZeroReserved { field: "rank" })));
}

#[test]
fn frame_too_large_declarations() {
    let buf = Forge { dims: vec![1, 100_000, 6, 6], ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::TooLarge { what: "dimension", limit: 65536, got: 100_000 })));
    let buf = Forge { rank: 5, dims: vec![1, 1, 4, 6, 6], ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::TooLarge { what: "rank", limit: 4, got: 5 })));
    // An lz4 payload cannot expand 144 bytes from 0 bytes.
    let buf = Forge { payload: Vec::new(), ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::TooLarge { what: "lz4 expansion", .. })));
}

#[test]
fn frame_length_mismatch_for_uncompressed_payloads() {
    // [1, 4, 6, 6] → [1, 4, 6, 5]: q8 without compression needs 120 bytes, 144 are declared.
    let buf = Forge { dims: vec![1, 4, 6, 5], ..Forge::tensor(Coding::Q8) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::LengthMismatch { expected: 120, got: 144 })));
}

#[test]
fn frame_shape_disagreeing_with_a_compressed_payload_fails_to_decode() {
    // lz4: the payload's length is free, so the frame layer accepts it; decoding into the
    // 120 bytes the shape implies does not.
    let buf = Forge { dims: vec![1, 4, 6, 5], ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    let res = decode_forged(&buf);
    assert!(
        matches!(res, Err(CodecError::Decompress { .. } | CodecError::PayloadLength { expected: 120, .. })),
        "{res:?}"
    );
}

#[test]
fn frame_checksum_catches_payload_corruption() {
    let f = Forge::tensor(Coding::Q8_LZ4);
    let header = f.header();
    let stored = u32::from_le_bytes(header[header.len() - 4..].try_into().unwrap());
    let mut buf = f.bytes();
    let last = buf.len() - 1;
    buf[last] ^= 0x20;
    match parse(&buf) {
        Err(FrameError::Checksum { expected, got }) => {
            assert_eq!(expected, stored);
            assert_ne!(got, stored);
        }
        other => panic!("expected Checksum, got {other:?}"),
    }
}

#[test]
fn frame_codec_errors_in_the_header() {
    // Negative per-tensor scale.
    let buf = Forge { params: Some((-1.0, 0)), ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::BadQuantParams { channel: None, .. }))));
    // A zero point above q4's top level.
    let buf = Forge { params: Some((1.0, 16)), ..Forge::tensor(Coding::Q4_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::BadQuantParams { zero_point: 16, .. }))));
    // f32 per-channel.
    let f32c = coding_byte(Coding::F32) | 0b100;
    let buf = Forge { coding: f32c, ..Forge::tensor(Coding::F32) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::InvalidCoding { bits: Bits::F32, .. }))));
    // Per-channel on a rank-2 shape (4 × 36 keeps the element count).
    let buf = Forge { rank: 2, dims: vec![4, 36], ..Forge::tensor(Coding::Q8C_LZ4) }.bytes();
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::PerChannelRank { rank: 2 }))));
}

#[test]
fn frame_control_payload_garbage() {
    let mut f = Forge::control(&Control::Bye);
    f.payload[0] = 200; // unknown variant
    assert!(matches!(parse(&f.bytes()), Err(FrameError::Control(ControlError::Postcard(_)))));
}

// ---- CodecError ----

#[test]
fn codec_rank_too_large() {
    let res = tandem_codec::encode(&[0.0; 32], &[2, 2, 2, 2, 2], Coding::Q8_LZ4);
    assert!(matches!(res, Err(CodecError::RankTooLarge { rank: 5, max: 4 })));
}

#[test]
fn codec_dimension_too_large() {
    let res = tandem_codec::encode(&[], &[0, 1 << 33], Coding::Q8_LZ4);
    assert!(matches!(res, Err(CodecError::TooLarge { what: "dimension", .. })));
}

#[test]
fn codec_shape_mismatch() {
    let res = tandem_codec::encode(&[1.0, 2.0, 3.0], &[2, 2], Coding::Q8_LZ4);
    assert!(matches!(res, Err(CodecError::ShapeMismatch { expected: 4, got: 3 })));
}

#[test]
fn codec_non_finite_is_refused_by_every_coding_with_its_index() {
    let shape = [2, 3, 4, 4];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for at in [0usize, 37, 95] {
            let mut data = relu_like(&shape, 5);
            data[at] = bad;
            for coding in Coding::all() {
                match tandem_codec::encode(&data, &shape, coding) {
                    Err(CodecError::NonFinite { index, value }) => {
                        assert_eq!(index, at, "{coding}");
                        assert_eq!(value.to_bits(), bad.to_bits());
                    }
                    other => panic!("{coding} {bad} at {at}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn codec_out_of_range_only_for_quantised_codings() {
    let mut data = vec![0.5f32; 16];
    data[9] = -2e30;
    let res = tandem_codec::encode(&data, &[1, 1, 4, 4], Coding::Q4C_LZ4);
    assert!(matches!(res, Err(CodecError::OutOfRange { index: 9, .. })), "{res:?}");
    let exact = tandem_codec::encode(&data, &[1, 1, 4, 4], Coding::F32_LZ4).unwrap();
    assert_eq!(tandem_codec::decode(&exact).unwrap(), data);
}

#[test]
fn codec_per_channel_needs_rank_3_or_4() {
    let res = tandem_codec::encode(&[0.0; 8], &[8], Coding::Q8C_LZ4);
    assert!(matches!(res, Err(CodecError::PerChannelRank { rank: 1 })));
}

#[test]
fn codec_invalid_and_unknown_codings() {
    let res = Coding::new(Bits::F32, Granularity::PerChannel, Compression::None);
    assert!(matches!(res, Err(CodecError::InvalidCoding { .. })));
    assert!(matches!("q7-lz4".parse::<Coding>(), Err(CodecError::UnknownCoding { got }) if got == "q7-lz4"));
}

#[cfg(not(feature = "zstd"))]
#[test]
fn codec_zstd_unavailable_without_the_feature() {
    let coding = Coding::new(Bits::Q8, Granularity::PerTensor, Compression::Zstd).unwrap();
    let res = tandem_codec::encode(&[1.0], &[1], coding);
    assert!(matches!(res, Err(CodecError::CompressionUnavailable { compression: Compression::Zstd })));
}

#[test]
fn codec_decompress_failure_on_bad_lz4() {
    // 15+ literals announced, no length byte follows.
    let buf = Forge { payload: vec![0xff], ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    let res = decode_forged(&buf);
    assert!(matches!(res, Err(CodecError::Decompress { compression: Compression::Lz4, .. })), "{res:?}");
}

#[test]
fn codec_payload_length_when_lz4_output_is_short() {
    let short = lz4_flex::block::compress(&[0u8; 100]); // the shape says 144 raw bytes
    let buf = Forge { payload: short, ..Forge::tensor(Coding::Q8_LZ4) }.bytes();
    let res = decode_forged(&buf);
    assert!(matches!(res, Err(CodecError::PayloadLength { expected: 144, got: 100 })), "{res:?}");
}

#[test]
fn codec_bad_per_channel_params_in_the_payload() {
    let q8c_none = Coding::new(Bits::Q8, Granularity::PerChannel, Compression::None).unwrap();
    // Channel 2's scale (payload offset 8) becomes NaN; zero point of channel 3 exceeds 15 for q4.
    let mut f = Forge::tensor(q8c_none);
    f.payload[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    let res = decode_forged(&f.bytes());
    assert!(matches!(res, Err(CodecError::BadQuantParams { channel: Some(2), .. })), "{res:?}");
    let q4c_none = Coding::new(Bits::Q4, Granularity::PerChannel, Compression::None).unwrap();
    let mut f = Forge::tensor(q4c_none);
    f.payload[16 + 3] = 16;
    let res = decode_forged(&f.bytes());
    assert!(matches!(res, Err(CodecError::BadQuantParams { channel: Some(3), zero_point: 16, .. })), "{res:?}");
}

#[test]
fn sample_frames_are_what_the_forger_describes() {
    assert_eq!(Forge::tensor(Coding::Q8_LZ4).bytes(), sample_frame(Coding::Q8_LZ4));
}

// ---- ControlError ----

#[test]
fn control_errors() {
    assert!(matches!(Control::decode(&[]), Err(ControlError::Postcard(_))));
    assert!(matches!(Control::decode(&[9, 1, 0xaa]), Err(ControlError::Trailing { expected: 0, got: 1 })));
    let long = Control::Reject { code: tandem_codec::RejectCode::Other, reason: "x".repeat(1000) };
    assert!(matches!(
        long.encode(&mut Vec::new()),
        Err(ControlError::TooLong { field: "reason", limit: 256, got: 1000 })
    ));
}
