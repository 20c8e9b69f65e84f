//! Error types. Every variant carries what went wrong (expected/got, which field, which limit) so
//! a log line or a metric `reason` label can be derived without string matching.

use crate::coding::{Bits, Compression, Granularity};

/// Errors from quantisation, compression and their inverses ([`crate::encode`],
/// [`crate::decode`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The shape has more dimensions than a frame can carry.
    #[error("rank {rank} exceeds the maximum {max}")]
    RankTooLarge { rank: usize, max: usize },

    /// A size (dimension, element count, byte length) exceeds what can be represented.
    #[error("{what} too large: {got} > limit {limit}")]
    TooLarge { what: &'static str, limit: u64, got: u64 },

    /// The data length does not match the element count implied by the shape.
    #[error("shape implies {expected} elements, got {got}")]
    ShapeMismatch { expected: usize, got: usize },

    /// A NaN or infinity in the input; no coding accepts them (features after BN/ReLU are
    /// finite, so a non-finite value means an upstream bug worth surfacing, not hiding).
    #[error("non-finite value {value} at element {index}")]
    NonFinite { index: usize, value: f32 },

    /// A finite value too large in magnitude for a quantised coding (|x| > limit).
    #[error("value {value} at element {index} exceeds the quantisable magnitude {limit}")]
    OutOfRange { index: usize, value: f32, limit: f32 },

    /// Per-channel quantisation needs an NCHW (rank 4) or CHW (rank 3) tensor.
    #[error("per-channel quantisation needs rank 3 (CHW) or 4 (NCHW), got rank {rank}")]
    PerChannelRank { rank: usize },

    /// A bits/granularity combination that has no meaning (f32 per-channel).
    #[error("invalid coding: {bits:?} with {granularity:?}")]
    InvalidCoding { bits: Bits, granularity: Granularity },

    /// A JPEG quality outside 1..=100.
    #[error("JPEG quality {got} is not in 1..=100")]
    JpegQuality { got: u8 },

    /// An image coding (png, jpeg) on a tensor that is not `[C, H, W]` or `[1, C, H, W]` with 1 or
    /// 3 channels.
    #[error("image codings need a [C, H, W] or [1, C, H, W] tensor with 1 or 3 channels, got shape {shape:?}")]
    ImageShape { shape: Vec<usize> },

    /// An image payload whose width, height or channels differ from the tensor's.
    #[error("image payload is {got:?} (width, height, channels), the tensor needs {expected:?}")]
    ImageMismatch { expected: [u32; 3], got: [u32; 3] },

    /// A coding name that does not parse (truncated to 16 characters).
    #[error("unknown coding name {got:?}")]
    UnknownCoding { got: String },

    /// The compression is recognised but this build cannot run it (zstd without the feature).
    #[error("{compression} compression is not available in this build")]
    CompressionUnavailable { compression: Compression },

    /// The lossless stage failed while compressing (should not happen: buffers are sized by the
    /// library's own bound).
    #[error("{compression} compression failed")]
    Compress {
        compression: Compression,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The lossless stage failed on the compressed payload.
    #[error("{compression} decompression failed")]
    Decompress {
        compression: Compression,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The uncompressed payload length differs from what the shape and coding imply.
    #[error("payload length: expected {expected} bytes, got {got}")]
    PayloadLength { expected: usize, got: usize },

    /// A scale/zero point that cannot have come from the encoder (scale not a positive finite
    /// number or too large to dequantise without overflow, zero point above the top level).
    /// `channel` is `None` for per-tensor parameters.
    #[error("bad quantisation parameters (channel {channel:?}): scale {scale}, zero point {zero_point}")]
    BadQuantParams { channel: Option<usize>, scale: f32, zero_point: u8 },
}

/// Errors from decoding and encoding control messages (postcard payload of a control frame).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// postcard could not (de)serialise the message: truncated, unknown variant, bound exceeded.
    #[error("control message: {0}")]
    Postcard(#[from] postcard::Error),

    /// Bytes after the message other than the declared probe padding.
    #[error("control payload has {got} bytes after the message, expected {expected}")]
    Trailing { expected: usize, got: usize },

    /// A list shorter (a number smaller) than the protocol allows.
    #[error("control field {field} too short: {got} < {min}")]
    TooShort { field: &'static str, min: usize, got: usize },

    /// A string or list longer than the protocol allows.
    #[error("control field {field} too long: {got} > {limit}")]
    TooLong { field: &'static str, limit: usize, got: usize },
}

/// Errors from [`crate::frame::check`], [`crate::frame::parse`] and [`crate::frame::write`].
///
/// [`FrameError::Incomplete`] is not a failure: the buffer holds a valid prefix and more bytes
/// are needed. Every other variant means the stream is unusable from this point.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Need more bytes; not an error.
    #[error("incomplete frame")]
    Incomplete,

    /// The stream does not start with `TN` (only the bytes present are compared).
    #[error("bad magic {got:02x?}")]
    BadMagic { got: [u8; 2] },

    /// A frame of another header version (version 1's `TNDM` headers included).
    #[error("unsupported frame header: expected version {expected}, got {got}")]
    UnsupportedVersion { expected: u16, got: u16 },

    /// A header varint that is overlong, not canonical, or too large for its field.
    #[error("header field {field}: malformed varint")]
    BadVarint { field: &'static str },

    #[error("unknown frame kind {got}")]
    UnknownKind { got: u8 },

    /// Flag bits this version does not define.
    #[error("unknown frame flags {got:#04x}")]
    UnknownFlags { got: u8 },

    /// A code byte (the coding) with no defined meaning.
    #[error("unknown {field} code {got}")]
    UnknownField { field: &'static str, got: u8 },

    /// A reserved or unused header field is not zero.
    #[error("header field {field} must be zero")]
    NonZeroReserved { field: &'static str },

    /// A declared size beyond the receiver's [`crate::frame::Limits`] (checked before any
    /// allocation) or beyond what the format allows.
    #[error("{what} too large: {got} > limit {limit}")]
    TooLarge { what: &'static str, limit: u64, got: u64 },

    /// Uncompressed payload whose declared length differs from the raw length its shape and
    /// coding imply.
    #[error("uncompressed payload: raw length {expected} but {got} bytes stored")]
    LengthMismatch { expected: u64, got: u64 },

    /// CRC32 over header and payload does not match: corruption.
    #[error("checksum mismatch: header says {expected:#010x}, computed {got:#010x}")]
    Checksum { expected: u32, got: u32 },

    /// The tensor part of the header is invalid (coding, per-tensor parameters).
    #[error(transparent)]
    Codec(#[from] CodecError),

    /// The control payload is invalid.
    #[error(transparent)]
    Control(#[from] ControlError),
}
