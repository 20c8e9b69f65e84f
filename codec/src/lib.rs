//! Tensor codec and wire format for tandem's device → edge split inference.
//!
//! The device runs the first layers of a CNN, then this crate turns the intermediate tensor into
//! bytes for the link; the edge turns them back into a tensor and runs the rest. It is
//! synchronous and pure — no I/O, no clocks, no global state — so the actors that move bytes
//! stay thin and everything here is tested without a runtime.
//!
//! # Layout
//!
//! - [`coding`] — the [`Coding`] descriptor (bits × granularity × compression) and its compact
//!   names (`"q8-lz4"`, `"q4c-none"`, `"f32"`), which is what the planner chooses among.
//! - `quant` — uniform affine 8/4-bit quantisation kernels ([`QParams`]): integer zero point so
//!   0.0 stays exactly 0.0, per-tensor or per-channel (dim 1 of NCHW, dim 0 of CHW), loops
//!   written for auto-vectorisation.
//! - [`tensor`] — [`Shape`], [`EncodedTensor`] and [`Codec`], the reusable scratch state that
//!   runs quantise → pack → lz4 (or zstd with feature `zstd`) and the reverse. The free functions
//!   [`encode`], [`decode`] and [`decode_into`] wrap a fresh [`Codec`].
//! - [`frame`] — the compact version-2 header (varints, ≤ 67 B, 24 B for a small q8 frame) and [`frame::check`] (header-only,
//!   allocation-free, limits enforced, `Incomplete` means "read more") → [`frame::parse`] (CRC,
//!   owned [`Frame`]) / [`frame::write`] ([`frame::write_tensor`] and [`frame::write_control`]
//!   write without building a [`Frame`]).
//! - [`control`] — the control protocol ([`Control`] messages, closed error/result codes) carried
//!   as postcard in control frames, with bounded strings and lists.
//! - [`error`] — [`CodecError`], [`FrameError`], [`ControlError`].
//!
//! Data flows `encode → frame::write → (TCP) → frame::check → frame::parse → decode`. Nothing
//! reachable from input bytes panics or allocates beyond [`frame::Limits`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod coding;
pub mod control;
pub mod error;
pub mod frame;
pub mod tensor;

#[cfg(feature = "zstd")]
mod compress;
mod image_stage;
mod quant;

pub use coding::{Bits, Coding, Compression, Granularity};
pub use control::{ClassProb, Control, ErrorCode, PlanResult, RejectCode, ResultSpec};
pub use error::{CodecError, ControlError, FrameError};
pub use frame::{Body, Frame, FrameKind, FrameMeta, Limits};
pub use quant::{MAX_QUANT_ABS, QParams};
pub use tensor::{ChannelLayout, Codec, EncodedTensor, MAX_RANK, Shape};

/// Encodes `data` (row-major with `shape`) with `coding`. Allocates fresh scratch; on the hot
/// path keep a [`Codec`] and call [`Codec::encode_into`].
pub fn encode(data: &[f32], shape: &[usize], coding: Coding) -> Result<EncodedTensor, CodecError> {
    let mut out = EncodedTensor::default();
    Codec::new().encode_into(data, shape, coding, &mut out)?;
    Ok(out)
}

/// Decodes `t` into a new vector.
pub fn decode(t: &EncodedTensor) -> Result<Vec<f32>, CodecError> {
    let mut out = Vec::new();
    decode_into(t, &mut out)?;
    Ok(out)
}

/// Decodes `t` into `out` (cleared first), reusing its capacity. Scratch for decompression is
/// allocated per call; use [`Codec::decode_into`] to reuse that too.
pub fn decode_into(t: &EncodedTensor, out: &mut Vec<f32>) -> Result<(), CodecError> {
    Codec::new().decode_into(t, out)
}
