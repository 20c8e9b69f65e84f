//! Shapes, encoded tensors and the [`Codec`] that turns one into the other.
//!
//! The *raw payload* of an encoded tensor is what the lossless stage compresses:
//!
//! | bits | per-tensor            | per-channel (C channels)                          |
//! |------|-----------------------|---------------------------------------------------|
//! | f32  | n × f32 LE            | —                                                 |
//! | q8   | n × u8                | C × f32 LE scale, C × u8 zero point, n × u8       |
//! | q4   | ⌈n/2⌉ × u8 (2 per B)  | C × f32 LE scale, C × u8 zero point, ⌈n/2⌉ × u8   |
//!
//! Its length is therefore a function of shape and coding alone (`raw_len`), which lets the
//! frame layer validate declared sizes before allocating anything.

use std::fmt;

use lz4_flex::block::CompressTable;

use crate::coding::{Bits, Coding, Compression, Granularity};
use crate::error::CodecError;
use crate::quant::{self, QParams, Range};

/// Largest supported rank (the frame header's rank field holds 0..=4).
pub const MAX_RANK: usize = 4;

/// Bytes of per-channel parameters per channel (f32 scale + u8 zero point).
pub(crate) const CHANNEL_PARAM_BYTES: u64 = 5;

/// A tensor shape of rank ≤ [`MAX_RANK`], every dim ≤ `u32::MAX`, with a checked element count.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
    elements: usize,
}

impl Shape {
    /// Validates `dims`: rank ≤ 4, each dim fits the header's u32, and the f32 byte size of the
    /// tensor fits `usize`.
    pub fn new(dims: &[usize]) -> Result<Shape, CodecError> {
        if dims.len() > MAX_RANK {
            return Err(CodecError::RankTooLarge { rank: dims.len(), max: MAX_RANK });
        }
        let mut inline = [0usize; MAX_RANK];
        let mut elements: usize = 1;
        for (slot, &d) in inline.iter_mut().zip(dims) {
            if u32::try_from(d).is_err() {
                return Err(CodecError::TooLarge { what: "dimension", limit: u32::MAX.into(), got: d as u64 });
            }
            *slot = d;
            elements = elements.checked_mul(d).ok_or(CodecError::TooLarge {
                what: "element count",
                limit: usize::MAX as u64,
                got: u64::MAX,
            })?;
        }
        if elements.checked_mul(4).is_none() {
            return Err(CodecError::TooLarge {
                what: "element count",
                limit: (usize::MAX / 4) as u64,
                got: elements as u64,
            });
        }
        // dims.len() ≤ MAX_RANK = 4, checked above.
        Ok(Shape { dims: inline, rank: dims.len() as u8, elements })
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.dims.get(..usize::from(self.rank)).unwrap_or(&[])
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        usize::from(self.rank)
    }

    /// Product of the dims (1 for rank 0).
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// Channel layout for per-channel quantisation: rank 4 (NCHW) → channel dim 1, rank 3 (CHW)
    /// → dim 0; other ranks have none.
    pub fn channels(&self) -> Option<ChannelLayout> {
        match *self.dims() {
            [n, c, h, w] => Some(ChannelLayout { outer: n, channels: c, inner: h.saturating_mul(w) }),
            [c, h, w] => Some(ChannelLayout { outer: 1, channels: c, inner: h.saturating_mul(w) }),
            _ => None,
        }
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.dims()).finish()
    }
}

impl Default for Shape {
    /// The empty vector `[0]`.
    fn default() -> Self {
        Shape { dims: [0; MAX_RANK], rank: 1, elements: 0 }
    }
}

/// How a rank-3/4 tensor splits into channels: `outer` blocks of `channels` contiguous runs of
/// `inner` elements; run `k` (in memory order) belongs to channel `k % channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelLayout {
    pub outer: usize,
    pub channels: usize,
    pub inner: usize,
}

/// Raw (uncompressed) payload length for `elements` values in `channels` channels.
/// `None` on overflow. `channels` is ignored for per-tensor codings.
pub(crate) fn raw_len(elements: u64, channels: u64, coding: Coding) -> Option<u64> {
    let data = match coding.bits() {
        Bits::F32 => elements.checked_mul(4)?,
        Bits::Q8 => elements,
        Bits::Q4 => elements.div_ceil(2),
    };
    let params = match coding.granularity() {
        Granularity::PerTensor => 0,
        Granularity::PerChannel => channels.checked_mul(CHANNEL_PARAM_BYTES)?,
    };
    data.checked_add(params)
}

/// Largest raw length an lz4 block of `compressed` bytes can expand to (a match grows by at most
/// 255 bytes per input byte), used to refuse absurd declarations before allocating.
pub(crate) fn lz4_max_expansion(compressed: u64) -> u64 {
    compressed.saturating_mul(255).saturating_add(64)
}

fn raw_len_of(shape: &Shape, coding: Coding) -> Result<usize, CodecError> {
    let channels = shape.channels().map_or(0, |l| l.channels);
    raw_len(shape.elements() as u64, channels as u64, coding)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(CodecError::TooLarge { what: "raw payload", limit: usize::MAX as u64, got: u64::MAX })
}

/// A coded tensor: shape, coding, per-tensor parameters and the (possibly compressed) payload.
///
/// Only [`Codec::encode_into`] and [`crate::frame::parse`] build one, so its fields are
/// consistent: `raw_len` matches shape and coding, `params` is `Some` exactly for per-tensor
/// quantised codings, and (for uncompressed codings) the payload is `raw_len` bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedTensor {
    pub(crate) shape: Shape,
    pub(crate) coding: Coding,
    pub(crate) params: Option<QParams>,
    pub(crate) raw_len: usize,
    pub(crate) payload: Vec<u8>,
}

impl Default for EncodedTensor {
    /// An empty `[0]` tensor coded as raw f32: valid, decodes to `[]`. Use it as the reusable
    /// output of [`Codec::encode_into`].
    fn default() -> Self {
        EncodedTensor { shape: Shape::default(), coding: Coding::F32, params: None, raw_len: 0, payload: Vec::new() }
    }
}

impl EncodedTensor {
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn coding(&self) -> Coding {
        self.coding
    }

    /// Per-tensor quantisation parameters (`None` for f32 and per-channel codings).
    pub fn params(&self) -> Option<QParams> {
        self.params
    }

    /// Length of the payload before the lossless stage.
    pub fn raw_len(&self) -> usize {
        self.raw_len
    }

    /// The bytes that travel after the frame header.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Bytes on the wire as a tensor frame with provenance `meta` (header + payload); the
    /// header's varints make it depend on the frame id, epoch, model id and point.
    pub fn wire_len(&self, meta: &crate::frame::FrameMeta) -> usize {
        crate::frame::tensor_header_len(meta, self).saturating_add(self.payload.len())
    }
}

/// Reusable scratch state for encoding and decoding. Keep one per thread on the hot path: after
/// the first tensor of a given size, encode and decode allocate nothing (beyond growing the
/// caller's output buffers once).
#[derive(Default)]
pub struct Codec {
    /// Raw payload before compression / after decompression.
    raw: Vec<u8>,
    /// 4-bit levels one per byte, before packing / after unpacking.
    levels: Vec<u8>,
    ranges: Vec<Range>,
    channel_params: Vec<QParams>,
    lz4: Option<CompressTable>,
    #[cfg(feature = "zstd")]
    zstd: crate::compress::Zstd,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("raw_capacity", &self.raw.capacity())
            .field("levels_capacity", &self.levels.capacity())
            .finish_non_exhaustive()
    }
}

impl Codec {
    pub fn new() -> Codec {
        Codec::default()
    }

    /// Encodes `data` (row-major, `shape`) into `out`, reusing `out`'s payload buffer.
    ///
    /// Refuses NaN/±inf for every coding ([`CodecError::NonFinite`], first offending index) and
    /// |x| > [`quant::MAX_QUANT_ABS`] for quantised ones. Empty tensors encode to an empty
    /// payload (plus per-channel parameters when there are channels).
    pub fn encode_into(
        &mut self,
        data: &[f32],
        shape: &[usize],
        coding: Coding,
        out: &mut EncodedTensor,
    ) -> Result<(), CodecError> {
        let shape = Shape::new(shape)?;
        if shape.elements() != data.len() {
            return Err(CodecError::ShapeMismatch { expected: shape.elements(), got: data.len() });
        }
        let compression = coding.compression();
        if !compression.is_available() {
            return Err(CodecError::CompressionUnavailable { compression });
        }
        if compression.is_image() && !coding.applies_to(shape.dims()) {
            return Err(CodecError::ImageShape { shape: shape.dims().to_vec() });
        }
        let layout = match coding.granularity() {
            Granularity::PerTensor => None,
            Granularity::PerChannel => Some(shape.channels().ok_or(CodecError::PerChannelRank { rank: shape.rank() })?),
        };
        let qmax = coding.bits().qmax();

        // 1. Scan: validate values and derive parameters.
        self.channel_params.clear();
        let params = match (qmax, layout) {
            (None, _) => {
                if !quant::scan(data).finite {
                    return Err(first_bad(data, 0, false));
                }
                None
            }
            (Some(qmax), None) => {
                let r = quant::scan(data);
                if !r.quantisable() {
                    return Err(first_bad(data, 0, true));
                }
                Some(QParams::from_range(r.lo, r.hi, qmax))
            }
            (Some(qmax), Some(l)) => {
                self.ranges.clear();
                self.ranges.resize(l.channels, Range::EMPTY);
                if l.inner > 0 && l.channels > 0 {
                    for (k, run) in data.chunks_exact(l.inner).enumerate() {
                        let r = quant::scan(run);
                        if !r.quantisable() {
                            return Err(first_bad(run, k * l.inner, true));
                        }
                        if let Some(acc) = self.ranges.get_mut(k % l.channels) {
                            *acc = acc.merge(r);
                        }
                    }
                }
                self.channel_params.extend(self.ranges.iter().map(|r| QParams::from_range(r.lo, r.hi, qmax)));
                None
            }
        };

        // 2. Raw payload: straight into the output when there is no lossless stage.
        let raw = match compression {
            Compression::None => &mut out.payload,
            Compression::Lz4 | Compression::Zstd | Compression::Png | Compression::Jpeg { .. } => &mut self.raw,
        };
        write_raw(data, coding, params, layout, &self.channel_params, &mut self.levels, raw);
        let raw_len = raw.len();
        debug_assert_eq!(raw_len_of(&shape, coding).ok(), Some(raw_len));

        // 3. Lossless stage.
        match compression {
            Compression::None => {}
            Compression::Lz4 => {
                let table = self.lz4.get_or_insert_with(CompressTable::default);
                out.payload.resize(lz4_flex::block::get_maximum_output_size(raw_len), 0);
                let written = lz4_flex::block::compress_into_with_table(&self.raw, &mut out.payload, table)
                    .map_err(|e| CodecError::Compress { compression, source: Box::new(e) })?;
                out.payload.truncate(written);
            }
            Compression::Zstd => {
                #[cfg(feature = "zstd")]
                self.zstd.compress(&self.raw, &mut out.payload)?;
            }
            Compression::Png | Compression::Jpeg { .. } => {
                crate::image_stage::encode(&self.raw, &shape, compression, &mut self.levels, &mut out.payload)?;
            }
        }
        out.shape = shape;
        out.coding = coding;
        out.params = params;
        out.raw_len = raw_len;
        Ok(())
    }

    /// Decodes `t` into `out` (cleared first; its capacity is reused).
    pub fn decode_into(&mut self, t: &EncodedTensor, out: &mut Vec<f32>) -> Result<(), CodecError> {
        out.clear();
        let coding = t.coding;
        let expected = raw_len_of(&t.shape, coding)?;
        if expected != t.raw_len {
            return Err(CodecError::PayloadLength { expected, got: t.raw_len });
        }
        let raw: &[u8] = match coding.compression() {
            Compression::None => &t.payload,
            Compression::Lz4 => {
                if t.raw_len as u64 > lz4_max_expansion(t.payload.len() as u64) {
                    return Err(CodecError::PayloadLength { expected: t.raw_len, got: t.payload.len() });
                }
                // Bounded by the declared raw length, never by anything inside the payload.
                self.raw.resize(t.raw_len, 0);
                let written = lz4_flex::block::decompress_into(&t.payload, &mut self.raw)
                    .map_err(|e| CodecError::Decompress { compression: Compression::Lz4, source: Box::new(e) })?;
                self.raw.truncate(written);
                &self.raw
            }
            Compression::Zstd => {
                #[cfg(feature = "zstd")]
                {
                    self.zstd.decompress(&t.payload, t.raw_len, &mut self.raw)?;
                    &self.raw
                }
                #[cfg(not(feature = "zstd"))]
                return Err(CodecError::CompressionUnavailable { compression: Compression::Zstd });
            }
            Compression::Png | Compression::Jpeg { .. } => {
                crate::image_stage::decode(
                    &t.payload,
                    &t.shape,
                    coding.compression(),
                    &mut self.levels,
                    &mut self.raw,
                )?;
                &self.raw
            }
        };
        if raw.len() != t.raw_len {
            return Err(CodecError::PayloadLength { expected: t.raw_len, got: raw.len() });
        }
        let n = t.shape.elements();
        out.reserve(n);
        let Some(qmax) = coding.bits().qmax() else {
            let (words, _) = raw.as_chunks::<4>();
            out.extend(words.iter().map(|b| f32::from_le_bytes(*b)));
            return Ok(());
        };
        let layout = match coding.granularity() {
            Granularity::PerTensor => None,
            Granularity::PerChannel => {
                Some(t.shape.channels().ok_or(CodecError::PerChannelRank { rank: t.shape.rank() })?)
            }
        };
        let param_bytes = layout.map_or(0, |l| l.channels * CHANNEL_PARAM_BYTES as usize);
        let (param_bytes, packed) = raw
            .split_at_checked(param_bytes)
            .ok_or(CodecError::PayloadLength { expected: t.raw_len, got: raw.len() })?;
        let levels: &[u8] = match coding.bits() {
            Bits::Q4 => {
                quant::unpack_nibbles(packed, n, &mut self.levels);
                &self.levels
            }
            Bits::Q8 | Bits::F32 => packed,
        };
        if levels.len() != n {
            return Err(CodecError::PayloadLength { expected: t.raw_len, got: raw.len() });
        }
        match layout {
            None => {
                let p = t
                    .params
                    .ok_or(CodecError::BadQuantParams { channel: None, scale: 0.0, zero_point: 0 })?
                    .validate(qmax, None)?;
                quant::dequantize_extend(levels, p, out);
            }
            Some(l) => {
                read_channel_params(param_bytes, l.channels, qmax, &mut self.channel_params)?;
                if l.inner > 0 && l.channels > 0 {
                    for (k, run) in levels.chunks_exact(l.inner).enumerate() {
                        if let Some(&p) = self.channel_params.get(k % l.channels) {
                            quant::dequantize_extend(run, p, out);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn first_bad(xs: &[f32], offset: usize, quantised: bool) -> CodecError {
    // scan() said something is wrong, so first_bad finds it; the fallback is unreachable but
    // keeps this function total.
    quant::first_bad(xs, offset, quantised).unwrap_or(CodecError::NonFinite { index: offset, value: f32::NAN })
}

/// Writes the raw payload (see the module table) into `dst`, replacing its contents.
fn write_raw(
    data: &[f32],
    coding: Coding,
    params: Option<QParams>,
    layout: Option<ChannelLayout>,
    channel_params: &[QParams],
    levels: &mut Vec<u8>,
    dst: &mut Vec<u8>,
) {
    dst.clear();
    let Some(qmax) = coding.bits().qmax() else {
        dst.resize(data.len() * 4, 0);
        let (words, _) = dst.as_chunks_mut::<4>();
        for (w, x) in words.iter_mut().zip(data) {
            *w = x.to_le_bytes();
        }
        return;
    };
    for p in channel_params {
        dst.extend_from_slice(&p.scale.to_le_bytes());
    }
    dst.extend(channel_params.iter().map(|p| p.zero_point));
    let start = dst.len();
    let n = data.len();
    let q: &mut [u8] = match coding.bits() {
        Bits::Q4 => {
            levels.clear();
            levels.resize(n, 0);
            levels
        }
        Bits::Q8 | Bits::F32 => {
            dst.resize(start + n, 0);
            dst.get_mut(start..).unwrap_or_default()
        }
    };
    match (params, layout) {
        (Some(p), _) => quant::quantize(data, p, qmax, q),
        (None, Some(l)) if l.inner > 0 && l.channels > 0 => {
            for (k, (src, q)) in data.chunks_exact(l.inner).zip(q.chunks_exact_mut(l.inner)).enumerate() {
                if let Some(&p) = channel_params.get(k % l.channels) {
                    quant::quantize(src, p, qmax, q);
                }
            }
        }
        (None, _) => {}
    }
    if coding.bits() == Bits::Q4 {
        dst.resize(start + n.div_ceil(2), 0);
        if let Some(packed) = dst.get_mut(start..) {
            quant::pack_nibbles(levels, packed);
        }
    }
}

fn read_channel_params(bytes: &[u8], channels: usize, qmax: u8, out: &mut Vec<QParams>) -> Result<(), CodecError> {
    out.clear();
    let (scales, zero_points) = bytes.split_at_checked(channels * 4).unwrap_or((&[], &[]));
    let (scales, _) = scales.as_chunks::<4>();
    for (c, (s, &zp)) in scales.iter().zip(zero_points).enumerate() {
        let p = QParams { scale: f32::from_le_bytes(*s), zero_point: zp };
        out.push(p.validate(qmax, Some(c))?);
    }
    if out.len() != channels {
        return Err(CodecError::PayloadLength { expected: channels * 5, got: bytes.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_limits() {
        assert!(matches!(Shape::new(&[1, 2, 3, 4, 5]), Err(CodecError::RankTooLarge { rank: 5, max: 4 })));
        assert!(matches!(Shape::new(&[u32::MAX as usize + 1]), Err(CodecError::TooLarge { what: "dimension", .. })));
        let big = u32::MAX as usize;
        assert!(matches!(Shape::new(&[big, big, big, big]), Err(CodecError::TooLarge { .. })));
        let s = Shape::new(&[]).expect("scalar shape");
        assert_eq!((s.rank(), s.elements()), (0, 1));
        let s = Shape::new(&[2, 3, 4, 5]).expect("nchw");
        assert_eq!(s.channels(), Some(ChannelLayout { outer: 2, channels: 3, inner: 20 }));
        assert_eq!(Shape::new(&[3, 4, 5]).expect("chw").channels().map(|l| l.channels), Some(3));
        assert_eq!(Shape::new(&[3, 4]).expect("2d").channels(), None);
    }

    #[test]
    fn raw_len_table() {
        let q8c = Coding::Q8C_LZ4;
        assert_eq!(raw_len(10, 3, Coding::F32), Some(40));
        assert_eq!(raw_len(10, 3, Coding::Q8), Some(10));
        assert_eq!(raw_len(11, 3, Coding::Q4_LZ4), Some(6));
        assert_eq!(raw_len(10, 3, q8c), Some(25));
        assert_eq!(raw_len(u64::MAX, 0, Coding::F32), None);
    }

    #[test]
    fn default_encoded_tensor_is_valid() {
        let t = EncodedTensor::default();
        assert_eq!(Codec::new().decode_into(&t, &mut Vec::new()).ok(), Some(()));
    }

    #[test]
    fn lz4_expansion_bound_holds_for_zeros() {
        let zeros = vec![0u8; 4 << 20];
        let c = lz4_flex::block::compress(&zeros);
        assert!((zeros.len() as u64) <= lz4_max_expansion(c.len() as u64), "ratio {}", zeros.len() / c.len());
    }
}
