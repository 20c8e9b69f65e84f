//! Control-message decoding on arbitrary bytes. Invariants: no panic; whatever decodes is within
//! the protocol's bounds and re-encodes stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_codec::Control;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Control::decode(data) {
        msg.validate().expect("decoded messages are within bounds");
        let mut once = Vec::new();
        msg.encode(&mut once)
            .expect("a decoded message can be encoded");
        let again = Control::decode(&once).expect("an encoded message decodes");
        let mut twice = Vec::new();
        again.encode(&mut twice).expect("re-encode");
        assert_eq!(once, twice);
    }
});
