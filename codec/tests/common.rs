//! Shared helpers: deterministic test tensors and header surgery.

use tandem_codec::frame::{self, HEADER_LEN};
use tandem_codec::{Body, Coding, EncodedTensor, Frame, FrameMeta};

/// Header offsets (see `frame` module docs) used to forge frames.
pub mod off {
    pub const VERSION: usize = 4;
    pub const KIND: usize = 6;
    pub const FLAGS: usize = 7;
    pub const BITS: usize = 26;
    pub const GRANULARITY: usize = 27;
    pub const COMPRESSION: usize = 28;
    pub const RANK: usize = 29;
    pub const RESERVED0: usize = 30;
    pub const DIMS: usize = 32;
    pub const SCALE: usize = 48;
    pub const ZERO_POINT: usize = 52;
    pub const RAW_LEN: usize = 56;
    pub const PAYLOAD_LEN: usize = 64;
    pub const CRC: usize = 76;
}

/// A small deterministic ReLU-like NCHW tensor: ~60 % zeros, channel c scaled by (c + 1).
pub fn relu_like(shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let inner: usize = shape.iter().skip(2).product();
    let channels = shape.get(1).copied().unwrap_or(1).max(1);
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            let c = (i / inner.max(1)) % channels;
            if u < 0.6 { 0.0 } else { (u - 0.6) * 5.0 * (c as f32 + 1.0) }
        })
        .collect()
}

pub fn meta() -> FrameMeta {
    FrameMeta { frame_id: 0x0102_0304_0506_0708, plan_epoch: 7, model_id: 3, point: 5 }
}

pub fn tensor_frame(t: EncodedTensor) -> Vec<u8> {
    let mut buf = Vec::new();
    frame::write(&Frame { meta: meta(), body: Body::Tensor(t) }, &mut buf).unwrap();
    buf
}

/// A valid q8-lz4 tensor frame of a [1, 4, 6, 6] ReLU-like tensor.
pub fn sample_frame(coding: Coding) -> Vec<u8> {
    let shape = [1, 4, 6, 6];
    tensor_frame(tandem_codec::encode(&relu_like(&shape, 1), &shape, coding).unwrap())
}

pub fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Recomputes the CRC after deliberate edits, to reach the checks behind it.
pub fn refresh_crc(buf: &mut [u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..off::CRC]);
    h.update(&buf[HEADER_LEN..]);
    let crc = h.finalize();
    put(buf, off::CRC, &crc.to_le_bytes());
}
