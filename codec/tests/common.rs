//! Shared helpers: deterministic test tensors and a forger of headers field by field.

use tandem_codec::frame;
use tandem_codec::{Bits, Body, Coding, Compression, Control, EncodedTensor, Frame, FrameMeta, Granularity};

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

pub const SAMPLE_SHAPE: [usize; 4] = [1, 4, 6, 6];

pub fn sample_tensor(coding: Coding) -> EncodedTensor {
    tandem_codec::encode(&relu_like(&SAMPLE_SHAPE, 1), &SAMPLE_SHAPE, coding).unwrap()
}

/// A valid tensor frame of a [1, 4, 6, 6] ReLU-like tensor.
pub fn sample_frame(coding: Coding) -> Vec<u8> {
    tensor_frame(sample_tensor(coding))
}

/// The coding byte, from the table in the `frame` module docs (written independently of
/// codec's own mapping).
pub fn coding_byte(c: Coding) -> u8 {
    let element = match c.bits() {
        Bits::F32 => 1,
        Bits::Q8 => 2,
        Bits::Q4 => 3,
    };
    let per_channel = if c.granularity() == Granularity::PerChannel { 4 } else { 0 };
    let stage = match c.compression() {
        Compression::None => 0,
        Compression::Lz4 => 1,
        Compression::Zstd => 2,
        Compression::Png => 3,
        Compression::Jpeg { .. } => 4,
    };
    element | per_channel | (stage << 3)
}

/// A version-2 header written field by field — a second implementation of the layout in the
/// `frame` module docs — to forge frames a hostile or broken peer could send.
#[derive(Clone, Debug)]
pub struct Forge {
    pub magic: [u8; 2],
    pub version: u8,
    pub kind: u8,
    pub rank: u8,
    pub flags: u8,
    pub meta: FrameMeta,
    /// Tensor frames only.
    pub coding: u8,
    /// Written after the coding byte when `Some` (JPEG's quality).
    pub quality: Option<u8>,
    pub dims: Vec<u64>,
    /// Written when `Some`, whatever the coding says.
    pub params: Option<(f32, u8)>,
    /// `None`: the payload's length.
    pub payload_len: Option<u64>,
    pub payload: Vec<u8>,
    /// `None`: the correct CRC.
    pub crc: Option<u32>,
}

pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Forge {
    /// The sample tensor frame (see [`sample_frame`]) as fields.
    pub fn tensor(coding: Coding) -> Forge {
        let t = sample_tensor(coding);
        Forge {
            magic: *b"TN",
            version: 2,
            kind: 1,
            rank: t.shape().rank() as u8,
            flags: 0,
            meta: meta(),
            coding: coding_byte(coding),
            quality: None,
            dims: t.shape().dims().iter().map(|&d| d as u64).collect(),
            params: t.params().map(|p| (p.scale, p.zero_point)),
            payload_len: None,
            payload: t.payload().to_vec(),
            crc: None,
        }
    }

    pub fn control(msg: &Control) -> Forge {
        let mut payload = Vec::new();
        msg.encode(&mut payload).unwrap();
        Forge {
            magic: *b"TN",
            version: 2,
            kind: 2,
            rank: 0,
            flags: 0,
            meta: meta(),
            coding: 0,
            quality: None,
            dims: Vec::new(),
            params: None,
            payload_len: None,
            payload,
            crc: None,
        }
    }

    /// Header bytes before the CRC.
    fn head(&self) -> Vec<u8> {
        let mut h = self.magic.to_vec();
        h.push(self.version);
        h.push(self.kind | (self.rank << 2) | (self.flags << 5));
        varint(&mut h, self.meta.frame_id);
        varint(&mut h, self.meta.plan_epoch.into());
        varint(&mut h, self.meta.model_id.into());
        varint(&mut h, self.meta.point.into());
        if self.kind == 1 {
            h.push(self.coding);
            h.extend(self.quality);
            for &d in &self.dims {
                varint(&mut h, d);
            }
            if let Some((scale, zp)) = self.params {
                h.extend_from_slice(&scale.to_le_bytes());
                h.push(zp);
            }
        }
        varint(&mut h, self.payload_len.unwrap_or(self.payload.len() as u64));
        h
    }

    /// Where the meta varints end.
    pub fn meta_end(&self) -> usize {
        let mut h = Vec::new();
        varint(&mut h, self.meta.frame_id);
        varint(&mut h, self.meta.plan_epoch.into());
        varint(&mut h, self.meta.model_id.into());
        varint(&mut h, self.meta.point.into());
        4 + h.len()
    }

    /// The whole header, CRC included.
    pub fn header(&self) -> Vec<u8> {
        let mut h = self.head();
        let crc = self.crc.unwrap_or_else(|| {
            let mut c = crc32fast::Hasher::new();
            c.update(&h);
            c.update(&self.payload);
            c.finalize()
        });
        h.extend_from_slice(&crc.to_le_bytes());
        h
    }

    /// Header, then payload.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.header();
        b.extend_from_slice(&self.payload);
        b
    }
}

/// A version-1 header (80 bytes, `TNDM`, u16 version 1) of a small q8-lz4 tensor, as a v1 peer
/// sends it.
pub fn v1_header() -> Vec<u8> {
    let mut h = vec![0u8; 80];
    h[0..4].copy_from_slice(b"TNDM");
    h[4..6].copy_from_slice(&1u16.to_le_bytes());
    h[6] = 1; // tensor
    h[8..16].copy_from_slice(&7u64.to_le_bytes());
    h[26] = 2; // q8
    h[28] = 1; // lz4
    h[29] = 4;
    for (i, d) in [1u32, 4, 2, 2].iter().enumerate() {
        h[32 + 4 * i..36 + 4 * i].copy_from_slice(&d.to_le_bytes());
    }
    h
}
