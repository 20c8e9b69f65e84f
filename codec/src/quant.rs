//! Uniform affine quantisation kernels.
//!
//! `q = clamp(round(x / scale) + zp, 0, qmax)`, `x' = (q - zp) · scale`, with an *integer* zero
//! point so `0.0` encodes to `zp` and decodes to exactly `0.0` (ReLU features are mostly zeros).
//! The represented range always contains 0: `[min(lo, 0), max(hi, 0)]`. Then every element's error
//! is at most `scale / 2` (plus float rounding of a few ulps), including the clamped extremes,
//! because the rounded zero point moves the representable range by at most half a step.
//!
//! The loops are written for auto-vectorisation on baseline x86-64 (SSE2): fixed-width lane
//! arrays for min/max, branch-free clamps, and rounding by adding 2²³ (the FPU's
//! round-to-nearest-even does the work, the low mantissa byte is the level) instead of
//! `f32::round`, which has no SSE2 instruction.

use crate::error::CodecError;

/// Largest magnitude a quantised coding accepts. Far beyond any activation; it keeps
/// `range / qmax` and `qmax · scale` finite so decoding can never produce infinities.
pub const MAX_QUANT_ABS: f32 = 1e30;

/// Per-tensor or per-channel quantisation parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Step between adjacent levels; positive and finite.
    pub scale: f32,
    /// The level that decodes to exactly 0.0; at most `qmax`.
    pub zero_point: u8,
}

impl QParams {
    /// Parameters for values in `[lo, hi]` (finite, |·| ≤ [`MAX_QUANT_ABS`]) with levels `0..=qmax`.
    pub(crate) fn from_range(lo: f32, hi: f32, qmax: u8) -> QParams {
        // f64 so that hi - lo cannot overflow and the zero point is computed exactly enough.
        let lo = f64::from(lo).min(0.0);
        let hi = f64::from(hi).max(0.0);
        let range = hi - lo;
        if range <= 0.0 {
            // All zeros (or empty): any positive scale represents them exactly.
            return QParams { scale: 1.0, zero_point: 0 };
        }
        let wanted = range / f64::from(qmax);
        // Round the scale up so qmax · scale still covers the range, and keep it normal so its
        // reciprocal is finite.
        let mut scale = wanted as f32;
        if f64::from(scale) < wanted {
            scale = scale.next_up();
        }
        let scale = scale.max(f32::MIN_POSITIVE);
        let zp = (-lo / f64::from(scale)).round().clamp(0.0, f64::from(qmax));
        // zp is an integer in 0..=qmax ≤ 255 after the clamp, so the cast is exact.
        QParams { scale, zero_point: zp as u8 }
    }

    /// Rejects parameters the encoder cannot have produced; these come from the wire.
    pub(crate) fn validate(self, qmax: u8, channel: Option<usize>) -> Result<QParams, CodecError> {
        let ok = self.scale.is_finite()
            && self.scale >= f32::MIN_POSITIVE
            && (self.scale * f32::from(qmax)).is_finite()
            && self.zero_point <= qmax;
        if ok {
            Ok(self)
        } else {
            Err(CodecError::BadQuantParams { channel, scale: self.scale, zero_point: self.zero_point })
        }
    }
}

/// Min, max and finiteness of a set of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Range {
    pub lo: f32,
    pub hi: f32,
    /// False when any value was NaN or infinite.
    pub finite: bool,
}

impl Range {
    pub const EMPTY: Range = Range { lo: f32::INFINITY, hi: f32::NEG_INFINITY, finite: true };

    pub fn merge(self, other: Range) -> Range {
        Range {
            lo: if other.lo < self.lo { other.lo } else { self.lo },
            hi: if other.hi > self.hi { other.hi } else { self.hi },
            finite: self.finite && other.finite,
        }
    }

    /// Whether a quantised coding can take these values.
    pub fn quantisable(self) -> bool {
        self.finite && self.lo >= -MAX_QUANT_ABS && self.hi <= MAX_QUANT_ABS
    }
}

const LANES: usize = 16;

/// One pass: min, max, and whether all values are finite.
pub(crate) fn scan(xs: &[f32]) -> Range {
    let (chunks, rest) = xs.as_chunks::<LANES>();
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    // x - x is 0 for finite x and NaN for NaN/±inf; NaN is sticky under addition.
    let mut nan = [0.0f32; LANES];
    for chunk in chunks {
        for i in 0..LANES {
            let x = chunk[i];
            lo[i] = if x < lo[i] { x } else { lo[i] };
            hi[i] = if x > hi[i] { x } else { hi[i] };
            #[allow(clippy::eq_op, reason = "x - x is the branch-free NaN/inf detector")]
            {
                nan[i] += x - x;
            }
        }
    }
    let mut r = Range::EMPTY;
    for i in 0..LANES {
        r = r.merge(Range { lo: lo[i], hi: hi[i], finite: nan[i] == 0.0 });
    }
    for &x in rest {
        r = r.merge(Range { lo: x, hi: x, finite: x.is_finite() });
    }
    r
}

/// The first value a quantised (`quantised == true`) or f32 coding refuses, as an error.
/// Only called after [`scan`] reported a problem, so it may be slow.
pub(crate) fn first_bad(xs: &[f32], offset: usize, quantised: bool) -> Option<CodecError> {
    xs.iter().enumerate().find_map(|(i, &x)| {
        if !x.is_finite() {
            Some(CodecError::NonFinite { index: offset + i, value: x })
        } else if quantised && x.abs() > MAX_QUANT_ABS {
            Some(CodecError::OutOfRange { index: offset + i, value: x, limit: MAX_QUANT_ABS })
        } else {
            None
        }
    })
}

/// 2²³: adding it to a value in `[0, 2²³)` leaves round-to-nearest(value) in the low mantissa bits.
const ROUND_MAGIC: f32 = 8_388_608.0;

/// Quantises `src` into `dst` (same length) with levels `0..=qmax`, one level per byte.
pub(crate) fn quantize(src: &[f32], p: QParams, qmax: u8, dst: &mut [u8]) {
    let inv = 1.0 / p.scale;
    let zp = f32::from(p.zero_point);
    let top = f32::from(qmax);
    for (d, &x) in dst.iter_mut().zip(src) {
        let v = x * inv + zp;
        let v = if v > 0.0 { v } else { 0.0 };
        let v = if v < top { v } else { top };
        // v ∈ [0, 255]: the sum is exact up to the rounding we want; the low byte is the level.
        *d = (v + ROUND_MAGIC).to_bits() as u8;
    }
}

/// Appends the dequantised levels to `out`.
pub(crate) fn dequantize_extend(src: &[u8], p: QParams, out: &mut Vec<f32>) {
    let zp = f32::from(p.zero_point);
    let scale = p.scale;
    // (q - zp) is an exact small integer, so q == zp yields exactly 0.0.
    out.extend(src.iter().map(|&q| (f32::from(q) - zp) * scale));
}

/// Packs 4-bit levels two per byte: element 2i in the low nibble, 2i+1 in the high nibble; an
/// odd tail leaves the last high nibble zero. `dst.len()` must be `src.len().div_ceil(2)`.
pub(crate) fn pack_nibbles(src: &[u8], dst: &mut [u8]) {
    let (pairs, tail) = src.as_chunks::<2>();
    for (d, pair) in dst.iter_mut().zip(pairs) {
        *d = (pair[0] & 0x0f) | (pair[1] << 4);
    }
    if let (Some(&last), Some(d)) = (tail.first(), dst.get_mut(pairs.len())) {
        *d = last & 0x0f;
    }
}

/// Unpacks `n` 4-bit levels from `src` (at least `n.div_ceil(2)` bytes) into `dst`.
pub(crate) fn unpack_nibbles(src: &[u8], n: usize, dst: &mut Vec<u8>) {
    dst.clear();
    dst.resize(src.len().saturating_mul(2), 0);
    let (pairs, _) = dst.as_chunks_mut::<2>();
    for (pair, &b) in pairs.iter_mut().zip(src) {
        *pair = [b & 0x0f, b >> 4];
    }
    dst.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_decodes_to_exact_zero() {
        for (lo, hi) in [(-1.0f32, 3.0f32), (0.0, 7.3), (-5.0, 0.0), (-1e-3, 1e-7), (-1e29, 1e30)] {
            for qmax in [15u8, 255] {
                let p = QParams::from_range(lo, hi, qmax);
                let mut q = [0u8; 1];
                quantize(&[0.0], p, qmax, &mut q);
                assert_eq!(q[0], p.zero_point);
                let mut out = Vec::new();
                dequantize_extend(&q, p, &mut out);
                assert_eq!(out[0].to_bits(), 0.0f32.to_bits(), "lo {lo} hi {hi} qmax {qmax}");
            }
        }
    }

    #[test]
    fn extremes_within_half_a_step() {
        for (lo, hi) in [(-1.0f32, 3.0f32), (0.1, 0.2), (-0.2, -0.1), (-MAX_QUANT_ABS, MAX_QUANT_ABS)] {
            for qmax in [15u8, 255] {
                let p = QParams::from_range(lo, hi, qmax);
                let xs = [lo, hi];
                let mut q = [0u8; 2];
                quantize(&xs, p, qmax, &mut q);
                let mut out = Vec::new();
                dequantize_extend(&q, p, &mut out);
                for (x, y) in xs.iter().zip(&out) {
                    let tol = 0.5 * p.scale * (1.0 + 1e-4);
                    assert!((x - y).abs() <= tol, "x {x} y {y} scale {} qmax {qmax}", p.scale);
                    assert!(y.is_finite());
                }
            }
        }
    }

    #[test]
    fn tiny_ranges_keep_a_normal_scale() {
        let p = QParams::from_range(0.0, f32::from_bits(1), 255);
        assert!(p.scale >= f32::MIN_POSITIVE && (1.0 / p.scale).is_finite());
        assert!(p.validate(255, None).is_ok());
    }

    #[test]
    fn scan_reports_min_max_and_non_finite() {
        let mut xs: Vec<f32> = (0..100).map(|i| i as f32 - 30.0).collect();
        let r = scan(&xs);
        assert_eq!((r.lo, r.hi, r.finite), (-30.0, 69.0, true));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 17, 99] {
                let keep = xs[at];
                xs[at] = bad;
                assert!(!scan(&xs).finite, "{bad} at {at}");
                xs[at] = keep;
            }
        }
        assert_eq!(scan(&[]), Range::EMPTY);
    }

    #[test]
    fn nibbles_round_trip() {
        for n in 0..9usize {
            let src: Vec<u8> = (0..n as u8).map(|i| (i * 7) & 0x0f).collect();
            let mut packed = vec![0u8; n.div_ceil(2)];
            pack_nibbles(&src, &mut packed);
            let mut back = Vec::new();
            unpack_nibbles(&packed, n, &mut back);
            assert_eq!(back, src);
        }
    }

    #[test]
    fn validate_refuses_impossible_params() {
        let bad = [
            QParams { scale: 0.0, zero_point: 0 },
            QParams { scale: -1.0, zero_point: 0 },
            QParams { scale: f32::NAN, zero_point: 0 },
            QParams { scale: f32::INFINITY, zero_point: 0 },
            QParams { scale: f32::MAX, zero_point: 0 },
            QParams { scale: 1.0, zero_point: 16 },
        ];
        for p in bad {
            assert!(matches!(p.validate(15, Some(3)), Err(CodecError::BadQuantParams { channel: Some(3), .. })));
        }
        assert!(QParams { scale: 1.0, zero_point: 15 }.validate(15, None).is_ok());
    }
}
