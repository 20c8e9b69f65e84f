//! Wire-format robustness: truncation, corruption, garbage, limits.

use proptest::prelude::*;
use tandem_codec::frame::{self, HEADER_LEN, Limits};
use tandem_codec::{Body, Coding, Control, Frame, FrameError};

use crate::common::{meta, off, put, refresh_crc, sample_frame};

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
    let buf = sample_frame(Coding::Q8_LZ4);
    let four_gib = 4u64 << 30;
    for field in [off::PAYLOAD_LEN, off::RAW_LEN] {
        let mut header = buf[..HEADER_LEN].to_vec();
        put(&mut header, field, &four_gib.to_le_bytes());
        // Only the 80 header bytes exist: a TooLarge (not Incomplete) proves nothing was awaited
        // or allocated for the declared size.
        match frame::check(&header, &Limits::default()) {
            Err(FrameError::TooLarge { limit, got, .. }) => {
                assert_eq!((limit, got), (16 << 20, four_gib))
            }
            other => panic!("field @{field}: expected TooLarge, got {other:?}"),
        }
    }
    // Dims whose product is 2^64-ish: refused without overflow.
    let mut header = buf[..HEADER_LEN].to_vec();
    for d in 0..4 {
        put(&mut header, off::DIMS + 4 * d, &u32::MAX.to_le_bytes());
    }
    let res = frame::check(&header, &Limits { max_dim: u64::MAX, max_elements: u64::MAX - 1, ..Limits::default() });
    assert!(matches!(res, Err(FrameError::TooLarge { what: "elements", .. })), "{res:?}");
}

#[test]
fn limits_are_the_receivers() {
    let buf = sample_frame(Coding::Q8_LZ4); // [1, 4, 6, 6]
    let cases = [
        (Limits { max_rank: 3, ..Limits::default() }, "rank"),
        (Limits { max_dim: 5, ..Limits::default() }, "dimension"),
        (Limits { max_elements: 100, ..Limits::default() }, "elements"),
        (Limits { max_payload_bytes: 100, ..Limits::default() }, "payload"),
    ];
    for (limits, what) in cases {
        let res = frame::check(&buf, &limits);
        assert!(matches!(res, Err(FrameError::TooLarge { what: w, .. }) if w == what), "{what}: {res:?}");
    }
}

/// Header + payload edits with a recomputed CRC, i.e. a well-formed frame from a hostile peer:
/// every field combination must be refused or decode cleanly, never panic.
fn mutate_and_decode(base: &[u8], edits: &[(usize, u8)]) {
    let mut buf = base.to_vec();
    for &(at, v) in edits {
        let i = at % buf.len();
        buf[i] = v;
    }
    if buf.len() >= HEADER_LEN {
        refresh_crc(&mut buf);
    }
    let limits = Limits::default();
    let _ = frame::check(&buf, &limits);
    if let Ok(Frame { body: Body::Tensor(t), .. }) = frame::parse(&buf, &limits)
        && let Ok(values) = tandem_codec::decode(&t)
    {
        assert_eq!(values.len(), t.shape().elements());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame::check(&bytes, &Limits::default());
        let _ = frame::parse(&bytes, &Limits::default());
        let mut with_magic = b"TNDM".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = frame::parse(&with_magic, &Limits::default());
    }

    #[test]
    fn hostile_but_checksummed_frames_never_panic(
        which in 0usize..16,
        edits in prop::collection::vec((0usize..400, any::<u8>()), 1..6),
    ) {
        let frames = valid_frames();
        mutate_and_decode(&frames[which % frames.len()], &edits);
    }
}

#[test]
fn peek_meta_reads_the_provenance_of_every_valid_frame() {
    for buf in valid_frames() {
        assert_eq!(frame::peek_meta(&buf).unwrap(), meta());
        // The header alone is enough: the payload is not looked at.
        assert_eq!(frame::peek_meta(&buf[..HEADER_LEN]).unwrap(), meta());
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
    let payload = (buf.len() - HEADER_LEN) as u64;
    let mut lying = buf.clone();
    frame::declare_payload_len(&mut lying, payload + 1).unwrap();
    // One byte more declared than sent (a compressed payload's length is free): the frame now
    // waits for a byte that never comes.
    assert!(matches!(frame::check(&lying, &Limits::default()), Err(FrameError::Incomplete)));
    // Uncompressed, the declared length must match the shape: refused outright.
    let mut f32_frame = sample_frame(Coding::F32);
    let f32_payload = (f32_frame.len() - HEADER_LEN) as u64;
    frame::declare_payload_len(&mut f32_frame, f32_payload + 1).unwrap();
    assert!(frame::check(&f32_frame, &Limits::default()).is_err());
    frame::declare_payload_len(&mut lying, payload).unwrap();
    assert_eq!(lying, buf);
    assert!(matches!(frame::declare_payload_len(&mut lying[..HEADER_LEN - 1], 0), Err(FrameError::Incomplete)));
}
