//! The wire format: one fixed 80-byte little-endian header, then the payload.
//!
//! ```text
//! off size field
//!   0   4  magic b"TNDM"
//!   4   2  version (u16) = 1
//!   6   1  kind: 1 tensor, 2 control
//!   7   1  flags (none defined; must be 0)
//!   8   8  frame id (u64)
//!  16   4  plan epoch (u32)
//!  20   4  model id (u32)
//!  24   2  partition point (u16)
//!  26   1  bits: 1 f32, 2 q8, 3 q4            (control: 0)
//!  27   1  granularity: 0 per-tensor, 1 per-channel   (control: 0)
//!  28   1  compression: 0 none, 1 lz4, 2 zstd  (control: 0)
//!  29   1  rank 0..=4                          (control: 0)
//!  30   2  reserved (0)
//!  32  16  dims: 4 × u32, unused = 0
//!  48   4  scale (f32)       per-tensor quantised only, else 0
//!  52   1  zero point (u8)   per-tensor quantised only, else 0
//!  53   3  reserved (0)
//!  56   8  raw payload length (u64): before the lossless stage; = payload length for control
//!  64   8  payload length (u64): bytes after the header
//!  72   4  reserved (0)
//!  76   4  CRC32 (IEEE, crc32fast) of bytes 0..76 followed by the payload
//!  80      payload (tensor: see `tensor` module; control: postcard message + probe padding)
//! ```
//!
//! Reading is two steps (mini-redis style): [`check`] looks at the header only — O(1), no
//! allocation — validates every field against [`Limits`] and returns the total frame length, or
//! [`FrameError::Incomplete`] when more bytes are needed. A receiver therefore learns that a
//! peer declares 4 GiB from the first 80 bytes and never buffers it. [`parse`] then verifies the
//! CRC and builds an owned [`Frame`]. [`write()`] is the inverse. [`peek_meta`] reads a header's
//! provenance without validating it (to name the frame in an error reply), so that no other
//! crate needs to know where a field lives.

use crate::coding::{Bits, Coding, Compression, Granularity};
use crate::control::Control;
use crate::error::{CodecError, FrameError};
use crate::quant::QParams;
use crate::tensor::{self, EncodedTensor, MAX_RANK, Shape};

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"TNDM";
/// Header version this build reads and writes.
pub const VERSION: u16 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 80;
/// Offset of the CRC field; the CRC covers the header bytes before it.
const CRC_OFFSET: usize = 76;

/// Receiver-side limits, enforced by [`check`] on the header before anything is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest tensor rank accepted (at most 4, the header's capacity).
    pub max_rank: usize,
    /// Largest single dimension.
    pub max_dim: u64,
    /// Largest element count (product of dims).
    pub max_elements: u64,
    /// Largest payload, both as sent and after decompression.
    pub max_payload_bytes: u64,
}

impl Default for Limits {
    /// rank 4, dims ≤ 65 536, 4 Mi elements, 16 MiB payloads (a 4 Mi-element f32 tensor).
    fn default() -> Self {
        Limits { max_rank: MAX_RANK, max_dim: 1 << 16, max_elements: 1 << 22, max_payload_bytes: 16 << 20 }
    }
}

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Tensor,
    Control,
}

impl FrameKind {
    const fn code(self) -> u8 {
        match self {
            FrameKind::Tensor => 1,
            FrameKind::Control => 2,
        }
    }
}

/// Provenance carried by every frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameMeta {
    pub frame_id: u64,
    pub plan_epoch: u32,
    pub model_id: u32,
    /// Partition point: index of the layer boundary where the device stopped.
    pub point: u16,
}

/// A frame's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Tensor(EncodedTensor),
    Control(Control),
}

/// One frame, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub meta: FrameMeta,
    pub body: Body,
}

impl Frame {
    pub fn kind(&self) -> FrameKind {
        match self.body {
            Body::Tensor(_) => FrameKind::Tensor,
            Body::Control(_) => FrameKind::Control,
        }
    }
}

/// The header's fields as stored, before validation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct RawHeader {
    magic: [u8; 4],
    version: u16,
    kind: u8,
    flags: u8,
    meta: FrameMeta,
    bits: u8,
    granularity: u8,
    compression: u8,
    rank: u8,
    reserved0: u16,
    dims: [u32; MAX_RANK],
    scale: u32,
    zero_point: u8,
    reserved1: [u8; 3],
    raw_len: u64,
    payload_len: u64,
    reserved2: u32,
    crc: u32,
}

/// Reads fixed-size fields in order; the header array is exactly as long as the fields, so the
/// zero fallback is never taken (the layout test pins every offset).
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        match self.0.split_first_chunk::<N>() {
            Some((head, rest)) => {
                self.0 = rest;
                *head
            }
            None => [0; N],
        }
    }
    fn u8(&mut self) -> u8 {
        u8::from_le_bytes(self.take())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

impl RawHeader {
    fn read(h: &[u8; HEADER_LEN]) -> RawHeader {
        let mut c = Cursor(h);
        RawHeader {
            magic: c.take(),
            version: c.u16(),
            kind: c.u8(),
            flags: c.u8(),
            meta: FrameMeta { frame_id: c.u64(), plan_epoch: c.u32(), model_id: c.u32(), point: c.u16() },
            bits: c.u8(),
            granularity: c.u8(),
            compression: c.u8(),
            rank: c.u8(),
            reserved0: c.u16(),
            dims: [c.u32(), c.u32(), c.u32(), c.u32()],
            scale: c.u32(),
            zero_point: c.u8(),
            reserved1: c.take(),
            raw_len: c.u64(),
            payload_len: c.u64(),
            reserved2: c.u32(),
            crc: c.u32(),
        }
    }

    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = 0usize;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = out.get_mut(w..w + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            w += bytes.len();
        };
        put(&self.magic);
        put(&self.version.to_le_bytes());
        put(&[self.kind, self.flags]);
        put(&self.meta.frame_id.to_le_bytes());
        put(&self.meta.plan_epoch.to_le_bytes());
        put(&self.meta.model_id.to_le_bytes());
        put(&self.meta.point.to_le_bytes());
        put(&[self.bits, self.granularity, self.compression, self.rank]);
        put(&self.reserved0.to_le_bytes());
        for d in self.dims {
            put(&d.to_le_bytes());
        }
        put(&self.scale.to_le_bytes());
        put(&[self.zero_point]);
        put(&self.reserved1);
        put(&self.raw_len.to_le_bytes());
        put(&self.payload_len.to_le_bytes());
        put(&self.reserved2.to_le_bytes());
        put(&self.crc.to_le_bytes());
        out
    }
}

/// What a valid header describes.
enum Described {
    Tensor { coding: Coding, params: Option<QParams> },
    Control,
}

fn too_large(what: &'static str, limit: u64, got: u64) -> FrameError {
    FrameError::TooLarge { what, limit, got }
}

fn require_zero(value: u64, field: &'static str) -> Result<(), FrameError> {
    if value == 0 { Ok(()) } else { Err(FrameError::NonZeroReserved { field }) }
}

/// Validates every header field against the format and `limits`. No allocation.
fn validate(h: &RawHeader, limits: &Limits) -> Result<Described, FrameError> {
    if h.version != VERSION {
        return Err(FrameError::UnsupportedVersion { got: h.version, supported: VERSION });
    }
    if h.flags != 0 {
        return Err(FrameError::UnknownFlags { got: h.flags });
    }
    require_zero(h.reserved0.into(), "reserved@30")?;
    require_zero(u32::from_le_bytes([h.reserved1[0], h.reserved1[1], h.reserved1[2], 0]).into(), "reserved@53")?;
    require_zero(h.reserved2.into(), "reserved@72")?;
    if h.payload_len > limits.max_payload_bytes {
        return Err(too_large("payload", limits.max_payload_bytes, h.payload_len));
    }
    if h.raw_len > limits.max_payload_bytes {
        return Err(too_large("raw payload", limits.max_payload_bytes, h.raw_len));
    }
    let kind = match h.kind {
        k if k == FrameKind::Tensor.code() => FrameKind::Tensor,
        k if k == FrameKind::Control.code() => FrameKind::Control,
        got => return Err(FrameError::UnknownKind { got }),
    };
    if kind == FrameKind::Control {
        for (value, field) in [
            (h.bits, "bits"),
            (h.granularity, "granularity"),
            (h.compression, "compression"),
            (h.rank, "rank"),
            (h.zero_point, "zero point"),
        ] {
            require_zero(value.into(), field)?;
        }
        require_zero(h.dims.iter().map(|&d| u64::from(d)).sum(), "dims")?;
        require_zero(h.scale.into(), "scale")?;
        if h.raw_len != h.payload_len {
            return Err(FrameError::LengthMismatch { expected: h.raw_len, got: h.payload_len });
        }
        return Ok(Described::Control);
    }

    let bits = Bits::from_code(h.bits).ok_or(FrameError::UnknownField { field: "bits", got: h.bits })?;
    let granularity = Granularity::from_code(h.granularity)
        .ok_or(FrameError::UnknownField { field: "granularity", got: h.granularity })?;
    let compression = Compression::from_code(h.compression)
        .ok_or(FrameError::UnknownField { field: "compression", got: h.compression })?;
    let coding = Coding::new(bits, granularity, compression)?;

    let rank = usize::from(h.rank);
    let max_rank = limits.max_rank.min(MAX_RANK);
    if rank > max_rank {
        return Err(too_large("rank", max_rank as u64, rank as u64));
    }
    let (dims, unused) = h.dims.split_at(rank);
    require_zero(unused.iter().map(|&d| u64::from(d)).sum(), "dims")?;
    let mut elements: u64 = 1;
    for &d in dims {
        let d = u64::from(d);
        if d > limits.max_dim {
            return Err(too_large("dimension", limits.max_dim, d));
        }
        // Each factor ≤ u32::MAX and the running product is ≤ max_elements after each step
        // unless it overflows, which saturates into the TooLarge below.
        elements = elements.saturating_mul(d);
        if elements > limits.max_elements {
            return Err(too_large("elements", limits.max_elements, elements));
        }
    }
    let channels = match (granularity, dims) {
        (Granularity::PerTensor, _) => 0,
        (Granularity::PerChannel, [_, c, _, _] | [c, _, _]) => u64::from(*c),
        (Granularity::PerChannel, _) => return Err(CodecError::PerChannelRank { rank }.into()),
    };
    let expected = tensor::raw_len(elements, channels, coding).unwrap_or(u64::MAX);
    if expected != h.raw_len {
        return Err(FrameError::ShapeMismatch { expected, got: h.raw_len });
    }
    match compression {
        Compression::None if h.payload_len != h.raw_len => {
            return Err(FrameError::LengthMismatch { expected: h.raw_len, got: h.payload_len });
        }
        Compression::Lz4 if h.raw_len > tensor::lz4_max_expansion(h.payload_len) => {
            return Err(too_large("lz4 expansion", tensor::lz4_max_expansion(h.payload_len), h.raw_len));
        }
        _ => {}
    }
    let params = match (bits.qmax(), granularity) {
        (Some(qmax), Granularity::PerTensor) => {
            let p = QParams { scale: f32::from_bits(h.scale), zero_point: h.zero_point };
            Some(p.validate(qmax, None)?)
        }
        _ => {
            require_zero(h.scale.into(), "scale")?;
            require_zero(h.zero_point.into(), "zero point")?;
            None
        }
    };
    Ok(Described::Tensor { coding, params })
}

/// The header at the start of `buf`, unvalidated: `BadMagic` as soon as the bytes seen differ
/// from the magic (even before a whole header is in), `Incomplete` while fewer than
/// [`HEADER_LEN`] bytes are there.
fn read_header(buf: &[u8]) -> Result<(&[u8; HEADER_LEN], RawHeader), FrameError> {
    let prefix = buf.get(..buf.len().min(MAGIC.len())).unwrap_or_default();
    if MAGIC.get(..prefix.len()) != Some(prefix) {
        let mut got = [0u8; 4];
        if let Some(dst) = got.get_mut(..prefix.len()) {
            dst.copy_from_slice(prefix);
        }
        return Err(FrameError::BadMagic { got });
    }
    let Some(bytes) = buf.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Incomplete);
    };
    Ok((bytes, RawHeader::read(bytes)))
}

/// The provenance ([`FrameMeta`]: frame id, plan epoch, model id, point) that the header at the
/// start of `buf` declares, read without validating anything but the magic — for answering a
/// frame that failed [`check`] or [`parse`] with an error naming its frame id. `Incomplete`
/// while the header is not all there, `BadMagic` when the bytes are not a frame at all. Like
/// [`check`], O(1) and allocation-free.
pub fn peek_meta(buf: &[u8]) -> Result<FrameMeta, FrameError> {
    read_header(buf).map(|(_, header)| header.meta)
}

/// Makes the frame at the start of `frame` declare a payload of `len` bytes, leaving its CRC
/// and payload as they are: a frame that lies about its size. For fault injection (a peer
/// declaring more than any receiver accepts must be refused by [`check`] before anything is
/// buffered). `Incomplete` if `frame` does not hold a whole header; the magic is not checked.
pub fn declare_payload_len(frame: &mut [u8], len: u64) -> Result<(), FrameError> {
    let Some(bytes) = frame.first_chunk_mut::<HEADER_LEN>() else {
        return Err(FrameError::Incomplete);
    };
    let mut header = RawHeader::read(bytes);
    header.payload_len = len;
    *bytes = header.to_bytes();
    Ok(())
}

/// Header-level validation shared by [`check`] and [`parse`].
fn check_header<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<(&'a [u8; HEADER_LEN], RawHeader, Described, usize), FrameError> {
    let (bytes, header) = read_header(buf)?;
    let described = validate(&header, limits)?;
    let total = usize::try_from(header.payload_len).ok().and_then(|p| p.checked_add(HEADER_LEN)).ok_or(too_large(
        "payload",
        usize::MAX as u64,
        header.payload_len,
    ))?;
    if buf.len() < total {
        return Err(FrameError::Incomplete);
    }
    Ok((bytes, header, described, total))
}

/// Is there a complete, plausible frame at the start of `buf`? Returns its total length.
///
/// Looks at the header only (O(1), allocation-free): magic, version, kind, flags, reserved
/// fields, enum codes, rank/dims/elements/payload sizes against `limits`, raw length against
/// shape and coding. `Err(Incomplete)` means "read more"; the CRC is verified by [`parse`].
pub fn check(buf: &[u8], limits: &Limits) -> Result<usize, FrameError> {
    check_header(buf, limits).map(|(_, _, _, total)| total)
}

fn crc(header: &[u8; HEADER_LEN], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header.get(..CRC_OFFSET).unwrap_or_default());
    hasher.update(payload);
    hasher.finalize()
}

/// Parses the frame at the start of `buf` (bytes after it are ignored): [`check`], CRC, then an
/// owned [`Frame`]. The only allocation is the payload copy, bounded by `limits`.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Frame, FrameError> {
    let (header_bytes, header, described, total) = check_header(buf, limits)?;
    let payload = buf.get(HEADER_LEN..total).ok_or(FrameError::Incomplete)?;
    let computed = crc(header_bytes, payload);
    if computed != header.crc {
        return Err(FrameError::Checksum { expected: header.crc, got: computed });
    }
    let body = match described {
        Described::Control => Body::Control(Control::decode(payload)?),
        Described::Tensor { coding, params } => {
            let rank = usize::from(header.rank);
            let mut dims = [0usize; MAX_RANK];
            for (d, &h) in dims.iter_mut().zip(&header.dims) {
                *d = h as usize;
            }
            let shape = Shape::new(dims.get(..rank).unwrap_or_default())?;
            Body::Tensor(EncodedTensor {
                shape,
                coding,
                params,
                // ≤ max_payload_bytes, which fit in memory as a payload.
                raw_len: usize::try_from(header.raw_len)
                    .map_err(|_| too_large("raw payload", usize::MAX as u64, header.raw_len))?,
                payload: payload.to_vec(),
            })
        }
    };
    Ok(Frame { meta: header.meta, body })
}

/// Appends `frame` to `out`; returns the number of bytes written. On error `out` is left as it
/// was. See [`write_tensor`] / [`write_control`] to write without owning a [`Frame`].
pub fn write(frame: &Frame, out: &mut Vec<u8>) -> Result<usize, FrameError> {
    match &frame.body {
        Body::Tensor(t) => Ok(write_tensor(&frame.meta, t, out)),
        Body::Control(msg) => write_control(&frame.meta, msg, out),
    }
}

/// Appends a tensor frame; returns the number of bytes written ([`EncodedTensor::wire_len`]).
/// Infallible: an [`EncodedTensor`] is valid by construction.
pub fn write_tensor(meta: &FrameMeta, t: &EncodedTensor, out: &mut Vec<u8>) -> usize {
    let coding = t.coding();
    let mut header = RawHeader {
        magic: MAGIC,
        version: VERSION,
        kind: FrameKind::Tensor.code(),
        meta: *meta,
        bits: coding.bits().code(),
        granularity: coding.granularity().code(),
        compression: coding.compression().code(),
        // Shape guarantees rank ≤ 4 and every dim ≤ u32::MAX.
        rank: t.shape().rank() as u8,
        raw_len: t.raw_len() as u64,
        ..RawHeader::default()
    };
    for (slot, &d) in header.dims.iter_mut().zip(t.shape().dims()) {
        *slot = d as u32;
    }
    if let Some(p) = t.params() {
        header.scale = p.scale.to_bits();
        header.zero_point = p.zero_point;
    }
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    out.extend_from_slice(t.payload());
    finish(header, start, out)
}

/// Appends a control frame; returns the number of bytes written. On error (a bound exceeded)
/// `out` is left as it was.
pub fn write_control(meta: &FrameMeta, msg: &Control, out: &mut Vec<u8>) -> Result<usize, FrameError> {
    let header = RawHeader {
        magic: MAGIC,
        version: VERSION,
        kind: FrameKind::Control.code(),
        meta: *meta,
        ..RawHeader::default()
    };
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    if let Err(e) = msg.encode(out) {
        out.truncate(start);
        return Err(e.into());
    }
    let mut header = header;
    header.raw_len = (out.len() - start - HEADER_LEN) as u64;
    Ok(finish(header, start, out))
}

/// Fills in the lengths and CRC of the header reserved at `out[start..]`, payload after it.
fn finish(mut header: RawHeader, start: usize, out: &mut [u8]) -> usize {
    // The caller reserved HEADER_LEN bytes at `start`, so the split point is in bounds.
    let (head, payload) = out.split_at_mut(start + HEADER_LEN);
    header.payload_len = payload.len() as u64;
    header.crc = crc(&header.to_bytes(), payload);
    if let Some(dst) = head.get_mut(start..) {
        dst.copy_from_slice(&header.to_bytes());
    }
    HEADER_LEN + payload.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_offsets() {
        // Every byte after the magic holds (offset - 3), so any misplaced field shows up.
        let h = RawHeader {
            magic: MAGIC,
            version: 0x0201,
            kind: 3,
            flags: 4,
            meta: FrameMeta {
                frame_id: 0x0c0b_0a09_0807_0605,
                plan_epoch: 0x100f_0e0d,
                model_id: 0x1413_1211,
                point: 0x1615,
            },
            bits: 0x17,
            granularity: 0x18,
            compression: 0x19,
            rank: 0x1a,
            reserved0: 0x1c1b,
            dims: [0x201f_1e1d, 0x2423_2221, 0x2827_2625, 0x2c2b_2a29],
            scale: 0x302f_2e2d,
            zero_point: 0x31,
            reserved1: [0x32, 0x33, 0x34],
            raw_len: 0x3c3b_3a39_3837_3635,
            payload_len: 0x4443_4241_403f_3e3d,
            reserved2: 0x4847_4645,
            crc: 0x4c4b_4a49,
        };
        let bytes = h.to_bytes();
        assert_eq!(&bytes[0..4], b"TNDM");
        for (i, &b) in bytes.iter().enumerate().skip(4) {
            assert_eq!(b as usize, i - 3, "offset {i}");
        }
        assert_eq!(RawHeader::read(&bytes), h);
        assert_eq!(CRC_OFFSET, 76);
    }
}
