//! One test per error variant, named after what must be refused. Frames are forged from a valid
//! one; where the check under test sits behind the CRC, the CRC is recomputed.

use tandem_codec::frame::{self, HEADER_LEN, Limits};
use tandem_codec::{
    Bits, Body, CodecError, Coding, Compression, Control, ControlError, Frame, FrameError, Granularity,
};

use crate::common::{meta, off, put, refresh_crc, relu_like, sample_frame};

fn parse(buf: &[u8]) -> Result<Frame, FrameError> {
    frame::parse(buf, &Limits::default())
}

fn forged(coding: Coding, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = sample_frame(coding);
    edit(&mut buf);
    refresh_crc(&mut buf);
    buf
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
    let buf = sample_frame(Coding::Q8_LZ4);
    assert!(matches!(frame::check(&buf[..HEADER_LEN - 1], &Limits::default()), Err(FrameError::Incomplete)));
    assert!(matches!(frame::check(&buf[..HEADER_LEN], &Limits::default()), Err(FrameError::Incomplete)));
}

#[test]
fn peek_meta_of_a_truncated_header_is_incomplete_not_a_panic() {
    let buf = sample_frame(Coding::Q8_LZ4);
    for k in 0..HEADER_LEN {
        assert!(matches!(frame::peek_meta(&buf[..k]), Err(FrameError::Incomplete)), "{k} bytes");
    }
    assert!(frame::peek_meta(&buf[..HEADER_LEN]).is_ok());
}

#[test]
fn peek_meta_of_bytes_that_are_no_frame_is_bad_magic() {
    assert!(matches!(frame::peek_meta(b"HTTP/1.1 200 OK"), Err(FrameError::BadMagic { got }) if &got == b"HTTP"));
    assert!(matches!(frame::peek_meta(b"TX"), Err(FrameError::BadMagic { .. })));
}

#[test]
fn frame_bad_magic_reports_the_bytes_seen() {
    assert!(matches!(parse(b"HTTP/1.1 200 OK"), Err(FrameError::BadMagic { got }) if &got == b"HTTP"));
    // Fails fast on a short prefix that cannot become a frame.
    assert!(matches!(parse(b"TX"), Err(FrameError::BadMagic { got: [b'T', b'X', 0, 0] })));
}

#[test]
fn frame_unsupported_version() {
    let buf = forged(Coding::Q8_LZ4, |b| put(b, off::VERSION, &2u16.to_le_bytes()));
    assert!(matches!(parse(&buf), Err(FrameError::UnsupportedVersion { got: 2, supported: 1 })));
}

#[test]
fn frame_unknown_kind() {
    let buf = forged(Coding::Q8_LZ4, |b| b[off::KIND] = 9);
    assert!(matches!(parse(&buf), Err(FrameError::UnknownKind { got: 9 })));
}

#[test]
fn frame_unknown_flags() {
    let buf = forged(Coding::Q8_LZ4, |b| b[off::FLAGS] = 0x40);
    assert!(matches!(parse(&buf), Err(FrameError::UnknownFlags { got: 0x40 })));
}

#[test]
fn frame_unknown_enum_codes() {
    for (at, field) in [(off::BITS, "bits"), (off::GRANULARITY, "granularity"), (off::COMPRESSION, "compression")] {
        let buf = forged(Coding::Q8_LZ4, |b| b[at] = 0xee);
        assert!(matches!(parse(&buf), Err(FrameError::UnknownField { field: f, got: 0xee }) if f == field), "{field}");
    }
}

#[test]
fn frame_nonzero_reserved_fields() {
    let buf = forged(Coding::Q8_LZ4, |b| b[off::RESERVED0] = 1);
    assert!(matches!(parse(&buf), Err(FrameError::NonZeroReserved { field: "reserved@30" })));
    // A dim beyond the rank.
    let buf = forged(Coding::Q8_LZ4, |b| b[off::RANK] = 3);
    assert!(matches!(parse(&buf), Err(FrameError::NonZeroReserved { field: "dims" })));
    // Per-tensor parameters on a per-channel frame.
    let buf = forged(Coding::Q8C_LZ4, |b| b[off::ZERO_POINT] = 1);
    assert!(matches!(parse(&buf), Err(FrameError::NonZeroReserved { field: "zero point" })));
}

#[test]
fn frame_too_large_declarations() {
    let buf = forged(Coding::Q8_LZ4, |b| put(b, off::DIMS, &100_000u32.to_le_bytes()));
    assert!(matches!(parse(&buf), Err(FrameError::TooLarge { what: "dimension", limit: 65536, got: 100_000 })));
    let buf = forged(Coding::Q8_LZ4, |b| b[off::RANK] = 5);
    assert!(matches!(parse(&buf), Err(FrameError::TooLarge { what: "rank", limit: 4, got: 5 })));
    // An lz4 payload cannot expand 144 bytes from 0 bytes.
    let mut buf = sample_frame(Coding::Q8_LZ4);
    buf.truncate(HEADER_LEN);
    put(&mut buf, off::PAYLOAD_LEN, &0u64.to_le_bytes());
    refresh_crc(&mut buf);
    assert!(matches!(parse(&buf), Err(FrameError::TooLarge { what: "lz4 expansion", .. })));
}

#[test]
fn frame_shape_mismatch_between_dims_and_raw_length() {
    // [1, 4, 6, 6] → [1, 4, 6, 5]: q8 raw length 144 no longer matches 120.
    let buf = forged(Coding::Q8_LZ4, |b| put(b, off::DIMS + 12, &5u32.to_le_bytes()));
    assert!(matches!(parse(&buf), Err(FrameError::ShapeMismatch { expected: 120, got: 144 })));
}

#[test]
fn frame_length_mismatch_for_uncompressed_payloads() {
    let mut buf = Vec::new();
    frame::write(&Frame { meta: meta(), body: Body::Control(Control::Bye) }, &mut buf).unwrap();
    put(&mut buf, off::RAW_LEN, &5u64.to_le_bytes());
    refresh_crc(&mut buf);
    assert!(matches!(parse(&buf), Err(FrameError::LengthMismatch { expected: 5, got: 1 })));
}

#[test]
fn frame_checksum_catches_payload_corruption() {
    let mut buf = sample_frame(Coding::Q8_LZ4);
    let stored = u32::from_le_bytes(buf[off::CRC..off::CRC + 4].try_into().unwrap());
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
    let buf = forged(Coding::Q8_LZ4, |b| put(b, off::SCALE, &(-1.0f32).to_le_bytes()));
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::BadQuantParams { channel: None, .. }))));
    // f32 per-channel.
    let buf = forged(Coding::F32, |b| b[off::GRANULARITY] = 1);
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::InvalidCoding { bits: Bits::F32, .. }))));
    // Per-channel on a rank-2 shape (channels 4 × 36 kept consistent with the raw length).
    let buf = forged(Coding::Q8C_LZ4, |b| {
        b[off::RANK] = 2;
        put(b, off::DIMS, &4u32.to_le_bytes());
        put(b, off::DIMS + 4, &36u32.to_le_bytes());
        put(b, off::DIMS + 8, &0u32.to_le_bytes());
        put(b, off::DIMS + 12, &0u32.to_le_bytes());
    });
    assert!(matches!(parse(&buf), Err(FrameError::Codec(CodecError::PerChannelRank { rank: 2 }))));
}

#[test]
fn frame_control_payload_garbage() {
    let mut buf = Vec::new();
    frame::write(&Frame { meta: meta(), body: Body::Control(Control::Bye) }, &mut buf).unwrap();
    buf[HEADER_LEN] = 200; // unknown variant
    refresh_crc(&mut buf);
    assert!(matches!(parse(&buf), Err(FrameError::Control(ControlError::Postcard(_)))));
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
    let mut buf = sample_frame(Coding::Q8_LZ4);
    buf.truncate(HEADER_LEN);
    buf.push(0xff); // 15+ literals announced, no length byte follows
    put(&mut buf, off::PAYLOAD_LEN, &1u64.to_le_bytes());
    refresh_crc(&mut buf);
    let res = decode_forged(&buf);
    assert!(matches!(res, Err(CodecError::Decompress { compression: Compression::Lz4, .. })), "{res:?}");
}

#[test]
fn codec_payload_length_when_lz4_output_is_short() {
    let short = lz4_flex::block::compress(&[0u8; 100]); // header says 144 raw bytes
    let mut buf = sample_frame(Coding::Q8_LZ4);
    buf.truncate(HEADER_LEN);
    buf.extend_from_slice(&short);
    put(&mut buf, off::PAYLOAD_LEN, &(short.len() as u64).to_le_bytes());
    refresh_crc(&mut buf);
    let res = decode_forged(&buf);
    assert!(matches!(res, Err(CodecError::PayloadLength { expected: 144, got: 100 })), "{res:?}");
}

#[test]
fn codec_bad_per_channel_params_in_the_payload() {
    let q8c_none = Coding::new(Bits::Q8, Granularity::PerChannel, Compression::None).unwrap();
    // Channel 2's scale (payload offset 8) becomes NaN; zero point of channel 3 exceeds 15 for q4.
    let buf = forged(q8c_none, |b| put(b, HEADER_LEN + 8, &f32::NAN.to_le_bytes()));
    let res = decode_forged(&buf);
    assert!(matches!(res, Err(CodecError::BadQuantParams { channel: Some(2), .. })), "{res:?}");
    let q4c_none = Coding::new(Bits::Q4, Granularity::PerChannel, Compression::None).unwrap();
    let buf = forged(q4c_none, |b| b[HEADER_LEN + 16 + 3] = 16);
    let res = decode_forged(&buf);
    assert!(matches!(res, Err(CodecError::BadQuantParams { channel: Some(3), zero_point: 16, .. })), "{res:?}");
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
