//! The coding descriptor: how a tensor is quantised and compressed.
//!
//! A [`Coding`] is three closed choices — element width ([`Bits`]), quantisation granularity
//! ([`Granularity`]) and lossless stage ([`Compression`]) — with a compact name used in configs,
//! logs, metrics labels and the control protocol (`"q8-lz4"`, `"q4c-none"`, `"f32"`, …).
//!
//! Name grammar: `<bits>[c][-<compression>]` where `<bits>` is `f32`, `q8` or `q4`, the `c`
//! suffix selects per-channel quantisation (not allowed with `f32`), and `<compression>` is
//! `none`, `lz4` or `zstd` (omitted means `none`). [`Display`](fmt::Display) writes the canonical
//! form: `f32` without compression is plain `"f32"`, every quantised coding names its compression.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CodecError;

/// Width of one coded element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bits {
    /// No quantisation: little-endian IEEE-754 f32, lossless.
    F32,
    /// Uniform affine 8-bit quantisation, one byte per element.
    Q8,
    /// Uniform affine 4-bit quantisation, two elements per byte (element `2i` in the low nibble).
    Q4,
}

impl Bits {
    /// Largest quantised level (`2^bits - 1`), or `None` for [`Bits::F32`].
    pub const fn qmax(self) -> Option<u8> {
        match self {
            Bits::F32 => None,
            Bits::Q8 => Some(u8::MAX),
            Bits::Q4 => Some(15),
        }
    }

    /// Wire code (bits 0-1 of the frame header's coding byte).
    pub(crate) const fn code(self) -> u8 {
        match self {
            Bits::F32 => 1,
            Bits::Q8 => 2,
            Bits::Q4 => 3,
        }
    }

    pub(crate) const fn from_code(code: u8) -> Option<Bits> {
        match code {
            1 => Some(Bits::F32),
            2 => Some(Bits::Q8),
            3 => Some(Bits::Q4),
            _ => None,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Bits::F32 => "f32",
            Bits::Q8 => "q8",
            Bits::Q4 => "q4",
        }
    }
}

/// Where the quantisation scale and zero point apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// One scale/zero point for the whole tensor (travels in the frame header).
    PerTensor,
    /// One scale/zero point per channel — dim 1 of an NCHW tensor, dim 0 of a CHW tensor
    /// (travels at the start of the payload). Needs rank 3 or 4.
    PerChannel,
}

/// The lossless stage applied to the (quantised) payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    /// Payload bytes sent as they are.
    None,
    /// lz4 block format (lz4_flex); the uncompressed length is the header's raw length.
    Lz4,
    /// zstd (level 1); only encodable/decodable when the crate is built with feature `zstd`,
    /// but always recognised on the wire so a peer gets a precise error.
    Zstd,
    /// The q8 levels as a grey (1 channel) or RGB (3 channels) PNG image (lossless at the
    /// level). Only with q8 per-channel, on `[C, H, W]` or `[1, C, H, W]` tensors, C ∈ {1, 3}.
    Png,
    /// The q8 levels as a baseline JPEG at `quality` (1..=100; lossy). Same tensors as `Png`.
    Jpeg { quality: u8 },
}

impl Compression {
    /// Wire code (bits 3-5 of the frame header's coding byte).
    pub(crate) const fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
            Compression::Zstd => 2,
            Compression::Png => 3,
            Compression::Jpeg { .. } => 4,
        }
    }

    pub(crate) const fn from_code(code: u8) -> Option<Compression> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4),
            2 => Some(Compression::Zstd),
            3 => Some(Compression::Png),
            // The quality travels in the byte after the coding byte (see `frame`).
            _ => None,
        }
    }

    /// Whether this build can encode and decode it (`Zstd` needs feature `zstd`).
    pub const fn is_available(self) -> bool {
        match self {
            Compression::None | Compression::Lz4 | Compression::Png | Compression::Jpeg { .. } => true,
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// Whether it is an image stage (PNG or JPEG of the q8 levels).
    pub const fn is_image(self) -> bool {
        matches!(self, Compression::Png | Compression::Jpeg { .. })
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Lz4 => f.write_str("lz4"),
            Compression::Zstd => f.write_str("zstd"),
            Compression::Png => f.write_str("png"),
            Compression::Jpeg { quality } => write!(f, "jpeg{quality}"),
        }
    }
}

/// A complete coding: bits × granularity × compression.
///
/// Fields are private so that every value is valid: `f32` is always per-tensor (there is nothing
/// to scale). Build one with [`Coding::new`], a constant such as [`Coding::Q8_LZ4`], or by
/// parsing its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coding {
    bits: Bits,
    granularity: Granularity,
    compression: Compression,
}

/// Longest accepted coding name; anything longer is rejected before parsing.
const MAX_NAME_LEN: usize = 16;

impl Coding {
    /// Raw little-endian f32.
    pub const F32: Coding = Coding::raw(Bits::F32, Granularity::PerTensor, Compression::None);
    /// f32 + lz4 (lossless; only helps on sparse tensors).
    pub const F32_LZ4: Coding = Coding::raw(Bits::F32, Granularity::PerTensor, Compression::Lz4);
    /// 8-bit per-tensor, uncompressed.
    pub const Q8: Coding = Coding::raw(Bits::Q8, Granularity::PerTensor, Compression::None);
    /// 8-bit per-tensor + lz4 — the default data-plane coding.
    pub const Q8_LZ4: Coding = Coding::raw(Bits::Q8, Granularity::PerTensor, Compression::Lz4);
    /// 8-bit per-channel + lz4.
    pub const Q8C_LZ4: Coding = Coding::raw(Bits::Q8, Granularity::PerChannel, Compression::Lz4);
    /// 4-bit per-tensor + lz4.
    pub const Q4_LZ4: Coding = Coding::raw(Bits::Q4, Granularity::PerTensor, Compression::Lz4);
    /// 4-bit per-channel + lz4.
    pub const Q4C_LZ4: Coding = Coding::raw(Bits::Q4, Granularity::PerChannel, Compression::Lz4);

    const fn raw(bits: Bits, granularity: Granularity, compression: Compression) -> Coding {
        Coding { bits, granularity, compression }
    }

    /// PNG of the per-channel q8 levels (lossless at the level).
    pub const PNG: Coding = Coding::raw(Bits::Q8, Granularity::PerChannel, Compression::Png);

    /// JPEG at `quality` (1..=100) of the per-channel q8 levels.
    pub const fn jpeg(quality: u8) -> Result<Coding, CodecError> {
        Coding::new(Bits::Q8, Granularity::PerChannel, Compression::Jpeg { quality })
    }

    /// Builds a coding; `f32` with per-channel granularity is meaningless and refused, image
    /// stages need q8 per-channel, and a JPEG quality must be in 1..=100.
    pub const fn new(bits: Bits, granularity: Granularity, compression: Compression) -> Result<Coding, CodecError> {
        match (bits, granularity, compression) {
            (Bits::F32, Granularity::PerChannel, _) => Err(CodecError::InvalidCoding { bits, granularity }),
            (_, _, Compression::Jpeg { quality }) if quality == 0 || quality > 100 => {
                Err(CodecError::JpegQuality { got: quality })
            }
            (Bits::Q8, Granularity::PerChannel, _) => Ok(Coding::raw(bits, granularity, compression)),
            (_, _, Compression::Png | Compression::Jpeg { .. }) => Err(CodecError::InvalidCoding { bits, granularity }),
            _ => Ok(Coding::raw(bits, granularity, compression)),
        }
    }

    /// The image codings offered for an input-like point, in a stable order: `png`, `jpeg50`,
    /// `jpeg75`, `jpeg90`.
    pub const IMAGE: [Coding; 4] = [
        Coding::PNG,
        Coding::raw(Bits::Q8, Granularity::PerChannel, Compression::Jpeg { quality: 50 }),
        Coding::raw(Bits::Q8, Granularity::PerChannel, Compression::Jpeg { quality: 75 }),
        Coding::raw(Bits::Q8, Granularity::PerChannel, Compression::Jpeg { quality: 90 }),
    ];

    /// Whether a tensor of `shape` can take this coding: per-channel needs rank 3 or 4, image
    /// codings a `[C, H, W]` or `[1, C, H, W]` tensor with 1 or 3 channels; the others take
    /// any shape.
    pub fn applies_to(self, shape: &[usize]) -> bool {
        if self.compression.is_image() {
            return matches!(shape, [1 | 3, _, _] | [1, 1 | 3, _, _]);
        }
        self.granularity == Granularity::PerTensor || matches!(shape.len(), 3 | 4)
    }

    /// Element width.
    pub const fn bits(self) -> Bits {
        self.bits
    }

    /// Quantisation granularity (always `PerTensor` for `f32`).
    pub const fn granularity(self) -> Granularity {
        self.granularity
    }

    /// Lossless stage.
    pub const fn compression(self) -> Compression {
        self.compression
    }

    /// Whether decoding reproduces the input exactly.
    pub const fn is_lossless(self) -> bool {
        matches!(self.bits, Bits::F32)
    }

    /// The standard set offered to the planner, in a stable order: every bits × granularity ×
    /// compression combination this build can encode (zstd ones only with feature `zstd`).
    pub fn all() -> Vec<Coding> {
        let mut out = Vec::with_capacity(15);
        let compressions = [Compression::None, Compression::Lz4, Compression::Zstd];
        for compression in compressions.into_iter().filter(|c| c.is_available()) {
            out.push(Coding::raw(Bits::F32, Granularity::PerTensor, compression));
        }
        for bits in [Bits::Q8, Bits::Q4] {
            for granularity in [Granularity::PerTensor, Granularity::PerChannel] {
                for compression in compressions.into_iter().filter(|c| c.is_available()) {
                    out.push(Coding::raw(bits, granularity, compression));
                }
            }
        }
        out
    }
}

impl Default for Coding {
    fn default() -> Self {
        Coding::Q8_LZ4
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.compression.is_image() {
            // Image codings are always q8 per-channel: the stage alone names them.
            return write!(f, "{}", self.compression);
        }
        f.write_str(self.bits.name())?;
        if self.granularity == Granularity::PerChannel {
            f.write_str("c")?;
        }
        if self.bits == Bits::F32 && self.compression == Compression::None {
            return Ok(());
        }
        write!(f, "-{}", self.compression)
    }
}

impl FromStr for Coding {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || CodecError::UnknownCoding { got: s.chars().take(MAX_NAME_LEN).collect() };
        if s.len() > MAX_NAME_LEN {
            return Err(unknown());
        }
        if s == "png" {
            return Ok(Coding::PNG);
        }
        if let Some(q) = s.strip_prefix("jpeg") {
            // Canonical decimal only ("jpeg75", not "jpeg075" or "jpeg+75").
            return match q.parse::<u8>() {
                Ok(quality) if q == quality.to_string() => Coding::jpeg(quality),
                _ => Err(unknown()),
            };
        }
        let (head, compression) = match s.split_once('-') {
            None => (s, Compression::None),
            Some((head, "none")) => (head, Compression::None),
            Some((head, "lz4")) => (head, Compression::Lz4),
            Some((head, "zstd")) => (head, Compression::Zstd),
            Some(_) => return Err(unknown()),
        };
        let (bits, granularity) = match head {
            "f32" => (Bits::F32, Granularity::PerTensor),
            "q8" => (Bits::Q8, Granularity::PerTensor),
            "q8c" => (Bits::Q8, Granularity::PerChannel),
            "q4" => (Bits::Q4, Granularity::PerTensor),
            "q4c" => (Bits::Q4, Granularity::PerChannel),
            _ => return Err(unknown()),
        };
        Ok(Coding::raw(bits, granularity, compression))
    }
}

impl Serialize for Coding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Coding {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Coding;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a coding name such as \"q8-lz4\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Coding, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_for_every_combination() {
        let compressions = [Compression::None, Compression::Lz4, Compression::Zstd];
        for bits in [Bits::F32, Bits::Q8, Bits::Q4] {
            for granularity in [Granularity::PerTensor, Granularity::PerChannel] {
                for compression in compressions {
                    let Ok(coding) = Coding::new(bits, granularity, compression) else {
                        assert_eq!((bits, granularity), (Bits::F32, Granularity::PerChannel));
                        continue;
                    };
                    let name = coding.to_string();
                    assert_eq!(name.parse::<Coding>().ok(), Some(coding), "{name}");
                }
            }
        }
    }

    #[test]
    fn canonical_names() {
        assert_eq!(Coding::F32.to_string(), "f32");
        assert_eq!(Coding::F32_LZ4.to_string(), "f32-lz4");
        assert_eq!(Coding::Q8.to_string(), "q8-none");
        assert_eq!(Coding::Q8_LZ4.to_string(), "q8-lz4");
        assert_eq!(Coding::Q8C_LZ4.to_string(), "q8c-lz4");
        assert_eq!(Coding::Q4_LZ4.to_string(), "q4-lz4");
        let q4c_none = Coding::new(Bits::Q4, Granularity::PerChannel, Compression::None);
        assert_eq!(q4c_none.map(|c| c.to_string()).ok().as_deref(), Some("q4c-none"));
        assert_eq!("f32-none".parse::<Coding>().ok(), Some(Coding::F32));
        assert_eq!("q8".parse::<Coding>().ok(), Some(Coding::Q8));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "f32c", "f32c-lz4", "q16", "q8-lz5", "q8-", "Q8-LZ4", "q8-lz4-x", "q8cc-lz4"] {
            assert!(matches!(bad.parse::<Coding>(), Err(CodecError::UnknownCoding { .. })), "{bad:?} parsed");
        }
        let long = "q".repeat(1000);
        match long.parse::<Coding>() {
            Err(CodecError::UnknownCoding { got }) => assert!(got.len() <= MAX_NAME_LEN),
            other => panic!("expected UnknownCoding, got {other:?}"),
        }
    }

    #[test]
    fn f32_per_channel_is_invalid() {
        assert!(matches!(
            Coding::new(Bits::F32, Granularity::PerChannel, Compression::Lz4),
            Err(CodecError::InvalidCoding { .. })
        ));
    }

    #[test]
    fn all_is_unique_and_available() {
        let all = Coding::all();
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        assert!(all.iter().all(|c| c.compression().is_available()));
        assert!(all.contains(&Coding::Q8_LZ4));
        assert_eq!(all.len(), if cfg!(feature = "zstd") { 15 } else { 10 });
    }

    #[test]
    fn serde_as_string() {
        let bytes = postcard::to_allocvec(&Coding::Q8C_LZ4).ok();
        let expected: Vec<u8> = [&[7u8][..], b"q8c-lz4"].concat();
        assert_eq!(bytes.as_deref(), Some(&expected[..]));
        let back: Option<Coding> = postcard::from_bytes(&expected).ok();
        assert_eq!(back, Some(Coding::Q8C_LZ4));
        assert!(postcard::from_bytes::<Coding>(&[3, b'q', b'9', b'9']).is_err());
    }
}
