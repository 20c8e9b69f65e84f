//! check → parse → decode on arbitrary bytes, plus the same bytes with a valid CRC so the fuzzer
//! reaches the checks behind it. Invariants: no panic; `check` never claims more bytes than it was
//! given; a parsed tensor frame re-writes to identical bytes (varints are canonical) and decodes
//! to `elements` values; `peek_meta` agrees with `parse` on every valid frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_codec::frame::{self, Limits};
use tandem_codec::{Body, Codec};

fn exercise(data: &[u8]) {
    let limits = Limits::default();
    let total = match frame::check(data, &limits) {
        Ok(n) => {
            assert!(n > 0 && n <= data.len());
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
    assert_eq!(frame::peek_meta(data).ok(), Some(parsed.meta));
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
    let mut fixed = data.to_vec();
    if frame::refresh_crc(&mut fixed).is_ok() {
        exercise(&fixed);
    }
});
