//! The wire format, version 2: a compact variable-length header, then the payload.
//!
//! Every header starts with the same three bytes in every version from 2 on — magic `b"TN"` and
//! a version byte — so a reader names a peer's version before anything else. Integers marked
//! *varint* are unsigned LEB128 (7 bits a byte, low group first, high bit = "more follows"),
//! canonical (no redundant trailing zero group) and at most as long as their type needs.
//!
//! ```text
//! size      field
//!    2      magic b"TN"
//!    1      version (u8) = 2
//!    1      type: bits 0-1 kind (1 tensor, 2 control); bits 2-4 rank 0..=4 (control: 0);
//!           bits 5-7 flags (none defined; must be 0)
//!  1-10     frame id (varint u64)
//!   1-5     plan epoch (varint u32)
//!   1-5     model id (varint u32)
//!   1-3     partition point (varint u16)
//!   --- tensor frames only ---
//!    1      coding: bits 0-1 element (1 f32, 2 q8, 3 q4); bit 2 per-channel;
//!           bits 3-5 stage (0 none, 1 lz4, 2 zstd, 3 png, 4 jpeg); bits 6-7 must be 0
//!   (1)     JPEG quality 1..=100                 jpeg only
//!  rank×1-5 dims (varint u32 each)
//!    5      scale (f32 LE) + zero point (u8)     per-tensor quantised codings only
//!   --- all frames ---
//!  1-10     payload length (varint u64): bytes after the header
//!    4      CRC32 (IEEE, crc32fast) of every header byte before it, then the payload
//!           payload (tensor: see `tensor` module; control: postcard message + probe padding)
//! ```
//!
//! Sizes ([`MAX_HEADER_LEN`] is the worst case, 67 B): a per-tensor q8-lz4 frame of a rank-4
//! tensor whose dims are < 128 each, frame id < 16 384, epoch/model/point < 128 and payload
//! < 128 B (the ¼-width pool4 point) has a **24 B** header; the 32×32 grey input as q8-lz4
//! (payload ≥ 128 B) has 25 B; f32 and per-channel codings carry no scale (−5 B); a control
//! frame (meta all zero, message < 128 B) has 13 B. Version 1's fixed 80 B header carried the same
//! information plus a raw length, which is a function of shape and coding and is now
//! computed, not sent.
//!
//! **Where per-tensor quantisation parameters live.** In the header, as in version 1: they are
//! 5 B either way, and in the header they are validated (positive finite scale, zero point ≤
//! the top level) by [`check`] before the payload is awaited, so a frame whose parameters could
//! not have come from an encoder is refused from its header alone. Per-channel parameters (5 B
//! × channels) stay at the start of the raw payload, where their size scales with the tensor.
//!
//! **Other versions.** A version-1 frame (`b"TNDM"`, then a u16 version at offset 4) is
//! recognised by its third byte `b'D'`, which no version-2+ header can have (`b'D'` = 68 is
//! reserved), and refused as [`FrameError::UnsupportedVersion`] `{ expected: 2, got: 1 }`, as is
//! any other version byte. The edge answers a `Hello` in an unsupported frame version with
//! `Reject { UnsupportedProtocol }` naming both versions; a device reading an edge's frame in
//! another version surfaces the same error.
//!
//! Reading is two steps (mini-redis style): [`check`] looks at the header only — O(header),
//! at most [`MAX_HEADER_LEN`] bytes read, no allocation — validates every field against
//! [`Limits`] and returns the total frame length, or [`FrameError::Incomplete`] when more bytes
//! are needed (every proper prefix of a valid frame is `Incomplete`, a varint cut short
//! included). A receiver therefore learns that a peer declares 4 GiB from at most 67 bytes and
//! never buffers it. [`parse`] then verifies the CRC and builds an owned [`Frame`]. [`write()`]
//! is the inverse. [`peek_meta`] reads a header's provenance without validating the rest (to
//! name the frame in an error reply), so that no other crate needs to know where a field lives.

use crate::coding::{Bits, Coding, Compression, Granularity};
use crate::control::Control;
use crate::error::{CodecError, FrameError};
use crate::quant::QParams;
use crate::tensor::{self, EncodedTensor, MAX_RANK, Shape};

/// First two bytes of every frame (version 2 on).
pub const MAGIC: [u8; 2] = *b"TN";
/// Header version this build reads and writes.
pub const VERSION: u8 = 2;
/// Version 1's magic: `MAGIC` followed by `b"DM"`; its version is the u16 LE at offset 4.
const V1_MAGIC: [u8; 4] = *b"TNDM";
/// Offset of version 1's u16 version field.
const V1_VERSION_AT: usize = 4;

/// Kind codes (type byte bits 0-1).
const KIND_TENSOR: u8 = 1;
const KIND_CONTROL: u8 = 2;
/// Type byte: rank in bits 2-4, flags in bits 5-7.
const RANK_SHIFT: u8 = 2;
const RANK_MASK: u8 = 0b111;
const FLAGS_SHIFT: u8 = 5;
/// Coding byte: element in bits 0-1, per-channel bit 2, stage in bits 3-5, bits 6-7 zero.
const PER_CHANNEL_BIT: u8 = 1 << 2;
const STAGE_SHIFT: u8 = 3;
const STAGE_MASK: u8 = 0b111;
const CODING_RESERVED: u8 = 0b1100_0000;
/// Stage code of JPEG, which a quality byte follows.
const JPEG_STAGE: u8 = 4;

/// Longest varint of a `bits`-bit integer.
const fn varint_max(bits: u32) -> usize {
    bits.div_ceil(7) as usize
}

/// Longest possible header: magic, version, type, the four meta varints, coding, four dims,
/// scale + zero point, payload length, CRC. (A JPEG quality byte never comes with a scale:
/// image codings are per-channel.)
pub const MAX_HEADER_LEN: usize = 2
    + 1
    + 1
    + varint_max(64)
    + varint_max(32)
    + varint_max(32)
    + varint_max(16)
    + 1
    + MAX_RANK * varint_max(32)
    + 5
    + varint_max(64)
    + 4;

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

/// Reads header bytes in order; running out is `Incomplete`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, FrameError> {
        let b = *self.buf.get(self.pos).ok_or(FrameError::Incomplete)?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let bytes = self.buf.get(self.pos..).and_then(|rest| rest.first_chunk::<N>()).ok_or(FrameError::Incomplete)?;
        self.pos += N;
        Ok(*bytes)
    }

    /// A canonical LEB128 varint of at most `bits` bits. Cut short: `Incomplete`; overlong,
    /// non-canonical or overflowing: [`FrameError::BadVarint`].
    fn varint(&mut self, bits: u32, field: &'static str) -> Result<u64, FrameError> {
        let mut value = 0u64;
        for i in 0..varint_max(bits) {
            let b = self.byte()?;
            let group = u64::from(b & 0x7f);
            let shift = 7 * i as u32;
            // shift < bits ≤ 64 here; the group's bits above `bits` must be clear.
            if bits - shift < 7 && group >> (bits - shift) != 0 {
                return Err(FrameError::BadVarint { field });
            }
            value |= group << shift;
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(FrameError::BadVarint { field });
                }
                return Ok(value);
            }
        }
        Err(FrameError::BadVarint { field })
    }
}

/// A header as laid out, structurally read but not validated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Fields {
    kind: u8,
    rank: u8,
    flags: u8,
    meta: FrameMeta,
    /// Tensor frames: the coding (an unknown coding byte ends the read: the fields after it
    /// depend on it).
    coding: Coding,
    dims: [u32; MAX_RANK],
    /// Present for per-tensor quantised codings (by the coding byte's element and granularity).
    params: Option<(u32, u8)>,
    payload_len: u64,
    /// Where the payload length varint sits (for [`declare_payload_len`]).
    payload_len_at: (usize, usize),
    crc: u32,
    /// Header length, CRC included.
    len: usize,
}

/// Whether a per-tensor scale and zero point follow the dims.
fn has_header_params(coding: Coding) -> bool {
    coding.bits().qmax().is_some() && coding.granularity() == Granularity::PerTensor
}

/// Magic and version: `BadMagic` as soon as the bytes seen differ from the magic,
/// `UnsupportedVersion` for version 1 (`TNDM…`) or any version byte but [`VERSION`].
fn read_prefix(r: &mut Reader<'_>) -> Result<(), FrameError> {
    let seen = r.buf.get(..r.buf.len().min(MAGIC.len())).unwrap_or_default();
    if MAGIC.get(..seen.len()) != Some(seen) {
        let mut got = [0u8; 2];
        if let Some(dst) = got.get_mut(..seen.len()) {
            dst.copy_from_slice(seen);
        }
        return Err(FrameError::BadMagic { got });
    }
    let _: [u8; 2] = r.array()?;
    let version = r.byte()?;
    if version == V1_MAGIC[2] {
        // A version-1 header: name its version (or whatever stands there) once it is in.
        let at = r.buf.get(..V1_VERSION_AT + 2).ok_or(FrameError::Incomplete)?;
        let got = match at.split_last_chunk::<2>() {
            Some((magic, v)) if magic == V1_MAGIC => u16::from_le_bytes(*v),
            _ => u16::from(version),
        };
        return Err(FrameError::UnsupportedVersion { expected: VERSION.into(), got });
    }
    if version != VERSION {
        return Err(FrameError::UnsupportedVersion { expected: VERSION.into(), got: version.into() });
    }
    Ok(())
}

fn read_meta(r: &mut Reader<'_>) -> Result<FrameMeta, FrameError> {
    // Each varint is bounded to its type's width, so the casts are exact.
    Ok(FrameMeta {
        frame_id: r.varint(64, "frame id")?,
        plan_epoch: r.varint(32, "plan epoch")? as u32,
        model_id: r.varint(32, "model id")? as u32,
        point: r.varint(16, "point")? as u16,
    })
}

/// Reads the header at the start of `buf` by its structure alone; validation is [`validate`].
fn read_fields(buf: &[u8]) -> Result<Fields, FrameError> {
    let mut r = Reader { buf, pos: 0 };
    read_prefix(&mut r)?;
    let ty = r.byte()?;
    let mut f =
        Fields { kind: ty & 0b11, rank: (ty >> RANK_SHIFT) & RANK_MASK, flags: ty >> FLAGS_SHIFT, ..Fields::default() };
    if f.kind != KIND_TENSOR && f.kind != KIND_CONTROL {
        return Err(FrameError::UnknownKind { got: f.kind });
    }
    if usize::from(f.rank) > MAX_RANK {
        return Err(too_large("rank", MAX_RANK as u64, f.rank.into()));
    }
    f.meta = read_meta(&mut r)?;
    if f.kind == KIND_TENSOR {
        let byte = r.byte()?;
        let quality = if (byte >> STAGE_SHIFT) & STAGE_MASK == JPEG_STAGE { Some(r.byte()?) } else { None };
        f.coding = coding_of(byte, quality)?;
        for d in f.dims.iter_mut().take(f.rank.into()) {
            // Bounded to 32 bits.
            *d = r.varint(32, "dimension")? as u32;
        }
        if has_header_params(f.coding) {
            f.params = Some((u32::from_le_bytes(r.array()?), r.byte()?));
        }
    }
    let start = r.pos;
    f.payload_len = r.varint(64, "payload length")?;
    f.payload_len_at = (start, r.pos);
    f.crc = u32::from_le_bytes(r.array()?);
    f.len = r.pos;
    Ok(f)
}

/// Writes header fields into a stack buffer (no allocation).
struct HeaderBytes {
    buf: [u8; MAX_HEADER_LEN],
    len: usize,
}

impl HeaderBytes {
    fn new() -> HeaderBytes {
        HeaderBytes { buf: [0; MAX_HEADER_LEN], len: 0 }
    }

    /// Every header is at most MAX_HEADER_LEN bytes by construction (the field list above), so
    /// the slot always exists.
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            // The low 7 bits with the continuation bit; the cast keeps exactly those bits.
            self.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The header bytes before the CRC.
fn header_bytes(f: &Fields) -> HeaderBytes {
    let mut h = HeaderBytes::new();
    h.extend(&MAGIC);
    h.push(VERSION);
    h.push(f.kind | (f.rank << RANK_SHIFT) | (f.flags << FLAGS_SHIFT));
    h.varint(f.meta.frame_id);
    h.varint(f.meta.plan_epoch.into());
    h.varint(f.meta.model_id.into());
    h.varint(f.meta.point.into());
    if f.kind == KIND_TENSOR {
        h.push(coding_byte(f.coding));
        if let Compression::Jpeg { quality } = f.coding.compression() {
            h.push(quality);
        }
        for &d in f.dims.iter().take(f.rank.into()) {
            h.varint(d.into());
        }
        if let Some((scale, zero_point)) = f.params {
            h.extend(&scale.to_le_bytes());
            h.push(zero_point);
        }
    }
    h.varint(f.payload_len);
    h
}

/// The coding byte of `coding`.
fn coding_byte(coding: Coding) -> u8 {
    let per_channel = if coding.granularity() == Granularity::PerChannel { PER_CHANNEL_BIT } else { 0 };
    coding.bits().code() | per_channel | (coding.compression().code() << STAGE_SHIFT)
}

/// The coding a coding byte (and, for JPEG, the quality byte after it) names.
fn coding_of(byte: u8, quality: Option<u8>) -> Result<Coding, FrameError> {
    let unknown = FrameError::UnknownField { field: "coding", got: byte };
    if byte & CODING_RESERVED != 0 {
        return Err(unknown);
    }
    let bits = Bits::from_code(byte & 0b11).ok_or(FrameError::UnknownField { field: "coding", got: byte })?;
    let granularity = if byte & PER_CHANNEL_BIT != 0 { Granularity::PerChannel } else { Granularity::PerTensor };
    let compression = match quality {
        Some(quality) => Compression::Jpeg { quality },
        None => Compression::from_code((byte >> STAGE_SHIFT) & STAGE_MASK).ok_or(unknown)?,
    };
    Ok(Coding::new(bits, granularity, compression)?)
}

/// What a valid header describes.
enum Described {
    Tensor { coding: Coding, params: Option<QParams>, raw_len: u64 },
    Control,
}

fn too_large(what: &'static str, limit: u64, got: u64) -> FrameError {
    FrameError::TooLarge { what, limit, got }
}

/// Validates every header field against the format and `limits`. No allocation.
fn validate(h: &Fields, limits: &Limits) -> Result<Described, FrameError> {
    if h.flags != 0 {
        return Err(FrameError::UnknownFlags { got: h.flags });
    }
    if h.payload_len > limits.max_payload_bytes {
        return Err(too_large("payload", limits.max_payload_bytes, h.payload_len));
    }
    if h.kind == KIND_CONTROL {
        if h.rank != 0 {
            return Err(FrameError::NonZeroReserved { field: "rank" });
        }
        return Ok(Described::Control);
    }
    let coding = h.coding;

    let rank = usize::from(h.rank);
    let max_rank = limits.max_rank.min(MAX_RANK);
    if rank > max_rank {
        return Err(too_large("rank", max_rank as u64, rank as u64));
    }
    let dims = h.dims.get(..rank).unwrap_or_default();
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
    let channels = match (coding.granularity(), dims) {
        (Granularity::PerTensor, _) => 0,
        (Granularity::PerChannel, [_, c, _, _] | [c, _, _]) => u64::from(*c),
        (Granularity::PerChannel, _) => return Err(CodecError::PerChannelRank { rank }.into()),
    };
    let raw_len = tensor::raw_len(elements, channels, coding).unwrap_or(u64::MAX);
    if raw_len > limits.max_payload_bytes {
        return Err(too_large("raw payload", limits.max_payload_bytes, raw_len));
    }
    match coding.compression() {
        Compression::None if h.payload_len != raw_len => {
            return Err(FrameError::LengthMismatch { expected: raw_len, got: h.payload_len });
        }
        Compression::Lz4 if raw_len > tensor::lz4_max_expansion(h.payload_len) => {
            return Err(too_large("lz4 expansion", tensor::lz4_max_expansion(h.payload_len), raw_len));
        }
        _ => {}
    }
    let params = match (coding.bits().qmax(), h.params) {
        (Some(qmax), Some((scale, zero_point))) => {
            let p = QParams { scale: f32::from_bits(scale), zero_point };
            Some(p.validate(qmax, None)?)
        }
        _ => None,
    };
    Ok(Described::Tensor { coding, params, raw_len })
}

/// The provenance ([`FrameMeta`]: frame id, plan epoch, model id, point) that the header at the
/// start of `buf` declares, read without validating anything after it but the magic and
/// version — for answering a frame that failed [`check`] or [`parse`] with an error naming its
/// frame id. `Incomplete` while the fields are not all there, `BadMagic` when the bytes are not
/// a frame at all, `UnsupportedVersion` for another version's frame. Like [`check`], cheap and
/// allocation-free.
pub fn peek_meta(buf: &[u8]) -> Result<FrameMeta, FrameError> {
    let mut r = Reader { buf, pos: 0 };
    read_prefix(&mut r)?;
    let _type = r.byte()?;
    read_meta(&mut r)
}

/// Makes the frame at the start of `frame` declare a payload of `len` bytes, leaving its CRC
/// and payload as they are: a frame that lies about its size. For fault injection (a peer
/// declaring more than any receiver accepts must be refused by [`check`] before anything is
/// buffered). The length is a varint, so the header may grow or shrink; bytes after the header
/// move with it. Errors as [`peek_meta`] when `frame` does not start with a whole header.
pub fn declare_payload_len(frame: &mut Vec<u8>, len: u64) -> Result<(), FrameError> {
    let fields = read_fields(frame)?;
    let mut h = HeaderBytes::new();
    h.varint(len);
    let (start, end) = fields.payload_len_at;
    frame.splice(start..end, h.bytes().iter().copied());
    Ok(())
}

/// Recomputes the CRC of the frame at the start of `frame` over its header and the payload
/// bytes present (up to the declared length), as if the frame had been sent so: lets a fuzzer
/// or a fault test reach the checks behind the CRC. Errors as [`peek_meta`] when `frame` does
/// not start with a whole header it can read.
pub fn refresh_crc(frame: &mut [u8]) -> Result<(), FrameError> {
    let f = read_fields(frame)?;
    let end = usize::try_from(f.payload_len).map_or(frame.len(), |p| f.len.saturating_add(p).min(frame.len()));
    let crc_at = f.len - 4;
    let header = frame.get(..crc_at).unwrap_or_default();
    let payload = frame.get(f.len..end).unwrap_or_default();
    let crc = crc(header, payload).to_le_bytes();
    if let Some(dst) = frame.get_mut(crc_at..f.len) {
        dst.copy_from_slice(&crc);
    }
    Ok(())
}

/// A validated header: its fields, what it describes and the frame's total length.
struct Checked {
    fields: Fields,
    described: Described,
    total: usize,
}

/// Header-level validation shared by [`check`] and [`parse`].
fn check_header(buf: &[u8], limits: &Limits) -> Result<Checked, FrameError> {
    let fields = read_fields(buf)?;
    let described = validate(&fields, limits)?;
    let total = usize::try_from(fields.payload_len).ok().and_then(|p| p.checked_add(fields.len)).ok_or(too_large(
        "payload",
        usize::MAX as u64,
        fields.payload_len,
    ))?;
    if buf.len() < total {
        return Err(FrameError::Incomplete);
    }
    Ok(Checked { fields, described, total })
}

/// Is there a complete, plausible frame at the start of `buf`? Returns its total length.
///
/// Looks at the header only (at most [`MAX_HEADER_LEN`] bytes, allocation-free): magic,
/// version, kind, flags, varints, coding, rank/dims/elements/payload sizes against `limits`,
/// payload length against shape and coding. `Err(Incomplete)` means "read more"; the CRC is
/// verified by [`parse`].
pub fn check(buf: &[u8], limits: &Limits) -> Result<usize, FrameError> {
    check_header(buf, limits).map(|c| c.total)
}

fn crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Parses the frame at the start of `buf` (bytes after it are ignored): [`check`], CRC, then an
/// owned [`Frame`]. The only allocation is the payload copy, bounded by `limits`.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Frame, FrameError> {
    let Checked { fields, described, total } = check_header(buf, limits)?;
    let header = buf.get(..fields.len - 4).ok_or(FrameError::Incomplete)?;
    let payload = buf.get(fields.len..total).ok_or(FrameError::Incomplete)?;
    let computed = crc(header, payload);
    if computed != fields.crc {
        return Err(FrameError::Checksum { expected: fields.crc, got: computed });
    }
    let body = match described {
        Described::Control => Body::Control(Control::decode(payload)?),
        Described::Tensor { coding, params, raw_len } => {
            let mut dims = [0usize; MAX_RANK];
            for (d, &h) in dims.iter_mut().zip(&fields.dims) {
                *d = h as usize;
            }
            let shape = Shape::new(dims.get(..usize::from(fields.rank)).unwrap_or_default())?;
            Body::Tensor(EncodedTensor {
                shape,
                coding,
                params,
                // ≤ max_payload_bytes, which fit in memory as a payload.
                raw_len: usize::try_from(raw_len).map_err(|_| too_large("raw payload", usize::MAX as u64, raw_len))?,
                payload: payload.to_vec(),
            })
        }
    };
    Ok(Frame { meta: fields.meta, body })
}

/// Appends `frame` to `out`; returns the number of bytes written. On error `out` is left as it
/// was. See [`write_tensor`] / [`write_control`] to write without owning a [`Frame`].
pub fn write(frame: &Frame, out: &mut Vec<u8>) -> Result<usize, FrameError> {
    match &frame.body {
        Body::Tensor(t) => Ok(write_tensor(&frame.meta, t, out)),
        Body::Control(msg) => write_control(&frame.meta, msg, out),
    }
}

/// The header fields of a tensor frame.
fn tensor_fields(meta: &FrameMeta, t: &EncodedTensor) -> Fields {
    let coding = t.coding();
    let mut f = Fields {
        kind: KIND_TENSOR,
        // Shape guarantees rank ≤ 4 and every dim ≤ u32::MAX.
        rank: t.shape().rank() as u8,
        meta: *meta,
        coding,
        params: t.params().map(|p| (p.scale.to_bits(), p.zero_point)),
        payload_len: t.payload().len() as u64,
        ..Fields::default()
    };
    for (slot, &d) in f.dims.iter_mut().zip(t.shape().dims()) {
        *slot = d as u32;
    }
    f
}

/// Header length of the tensor frame `meta` + `t` would make (CRC included).
pub fn tensor_header_len(meta: &FrameMeta, t: &EncodedTensor) -> usize {
    header_bytes(&tensor_fields(meta, t)).len + 4
}

/// Appends a tensor frame; returns the number of bytes written ([`EncodedTensor::wire_len`]).
/// Infallible: an [`EncodedTensor`] is valid by construction.
pub fn write_tensor(meta: &FrameMeta, t: &EncodedTensor, out: &mut Vec<u8>) -> usize {
    let header = header_bytes(&tensor_fields(meta, t));
    let crc = crc(header.bytes(), t.payload());
    let start = out.len();
    out.extend_from_slice(header.bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(t.payload());
    out.len() - start
}

/// Appends a control frame; returns the number of bytes written. On error (a bound exceeded)
/// `out` is left as it was.
pub fn write_control(meta: &FrameMeta, msg: &Control, out: &mut Vec<u8>) -> Result<usize, FrameError> {
    let start = out.len();
    if let Err(e) = msg.encode(out) {
        out.truncate(start);
        return Err(e.into());
    }
    let payload = out.get(start..).unwrap_or_default();
    let fields = Fields { kind: KIND_CONTROL, meta: *meta, payload_len: payload.len() as u64, ..Fields::default() };
    let header = header_bytes(&fields);
    let crc = crc(header.bytes(), payload).to_le_bytes();
    // The payload is encoded first (its length is in the header); the header goes in front.
    out.splice(start..start, header.bytes().iter().chain(&crc).copied());
    Ok(out.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(buf: &[u8]) -> Reader<'_> {
        Reader { buf, pos: 0 }
    }

    #[test]
    fn max_header_len_is_the_sum_of_the_longest_fields() {
        // 2 + 1 + 1 + 10 + 5 + 5 + 3 + 1 + 4 × 5 + 5 + 10 + 4.
        assert_eq!(MAX_HEADER_LEN, 67);
        let worst = Fields {
            kind: KIND_TENSOR,
            rank: 4,
            meta: FrameMeta { frame_id: u64::MAX, plan_epoch: u32::MAX, model_id: u32::MAX, point: u16::MAX },
            coding: Coding::Q8_LZ4,
            dims: [u32::MAX; 4],
            params: Some((u32::MAX, u8::MAX)),
            payload_len: u64::MAX,
            ..Fields::default()
        };
        let h = header_bytes(&worst);
        assert_eq!(h.len + 4, MAX_HEADER_LEN);
        let mut bytes = h.bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let back = read_fields(&bytes).unwrap();
        assert_eq!(
            (back.meta, back.dims, back.params, back.payload_len),
            (worst.meta, worst.dims, worst.params, u64::MAX)
        );
        assert_eq!(back.len, MAX_HEADER_LEN);
    }

    #[test]
    fn varints_round_trip_at_every_width_boundary() {
        for bits in [16u32, 32, 64] {
            let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
            let mut values = vec![0, 1, 127, 128, 16_383, 16_384, max];
            values.extend((1..bits / 7 + 1).map(|k| (1u64 << (7 * k)).min(max)));
            for v in values {
                let mut h = HeaderBytes::new();
                h.varint(v);
                let mut r = reader(h.bytes());
                assert_eq!(r.varint(bits, "x").unwrap(), v, "{v} in {bits} bits");
                assert_eq!(r.pos, h.len);
                // Cut short: Incomplete.
                for k in 0..h.len {
                    assert!(matches!(reader(&h.bytes()[..k]).varint(bits, "x"), Err(FrameError::Incomplete)));
                }
            }
        }
    }

    #[test]
    fn bad_varints_are_refused() {
        let cases: [(&[u8], u32); 5] = [
            (&[0x80, 0x00], 32),                                                 // 0 with a redundant group
            (&[0xff, 0xff, 0x04], 16),                                           // 2^16 + … overflows u16
            (&[0xff, 0xff, 0xff, 0xff, 0x10], 32),                               // 2^32 overflows u32
            (&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 32),                         // six bytes for a u32
            (&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 64), // 2^64
        ];
        for (bytes, bits) in cases {
            assert!(
                matches!(reader(bytes).varint(bits, "x"), Err(FrameError::BadVarint { field: "x" })),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn coding_bytes_round_trip() {
        for coding in Coding::all().into_iter().chain(Coding::IMAGE) {
            let quality = match coding.compression() {
                Compression::Jpeg { quality } => Some(quality),
                _ => None,
            };
            assert_eq!(coding_of(coding_byte(coding), quality).unwrap(), coding);
        }
        assert_eq!(coding_byte(Coding::Q8_LZ4), 0b0000_1010);
    }
}
