//! check → parse → decode on arbitrary bytes, plus the same bytes with a valid CRC so the fuzzer
//! reaches the checks behind it. Invariants: no panic; `check` never claims more bytes than it was
//! given; a parsed tensor frame re-writes to identical bytes and decodes to `elements` values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_codec::frame::{self, HEADER_LEN, Limits};
use tandem_codec::{Body, Codec};

const CRC_OFFSET: usize = 76;

fn exercise(data: &[u8]) {
    let limits = Limits::default();
    let total = match frame::check(data, &limits) {
        Ok(n) => {
            assert!((HEADER_LEN..=data.len()).contains(&n));
            n
        }
        Err(_) => {
            assert!(frame::parse(data, &limits).is_err());
            return;
        }
    };
    let Ok(parsed) = frame::parse(data, &limits) else {
        return;
    };
    let mut again = Vec::new();
    frame::write(&parsed, &mut again).expect("a parsed frame can be written");
    match &parsed.body {
        Body::Tensor(t) => {
            assert_eq!(&again[..], &data[..total], "tensor frames are canonical");
            let mut out = Vec::new();
            if Codec::new().decode_into(t, &mut out).is_ok() {
                assert_eq!(out.len(), t.shape().elements());
            }
        }
        Body::Control(_) => {
            assert!(frame::parse(&again, &limits).is_ok());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let mut h = crc32fast::Hasher::new();
        h.update(&fixed[..CRC_OFFSET]);
        h.update(&fixed[HEADER_LEN..]);
        fixed[CRC_OFFSET..HEADER_LEN].copy_from_slice(&h.finalize().to_le_bytes());
        exercise(&fixed);
    }
});
