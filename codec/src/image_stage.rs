//! The image stage of the `png` and `jpeg<q>` codings. Their raw payload is q8 per-channel's
//! (C × f32 scale, C × u8 zero point, then the C × H × W levels); on the wire the parameters stay
//! as they are and the levels travel as one grey (C = 1) or RGB (C = 3, channels interleaved)
//! image, encoded and decoded by the `image` crate's pure-Rust PNG and baseline JPEG codecs. A
//! decoder is given nothing but the frame's shape: the image's width, height and colour type are
//! read from its header and must match before any pixel is decoded.

use std::io::Cursor;

use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::{PngDecoder, PngEncoder};
use image::{ColorType, ImageDecoder, ImageEncoder, ImageError};

use crate::coding::Compression;
use crate::error::CodecError;
use crate::tensor::{CHANNEL_PARAM_BYTES, Shape};

/// (channels, height, width) of an image-coded tensor: `[C, H, W]` or `[1, C, H, W]`, C ∈ {1, 3}.
fn geometry(shape: &Shape) -> Result<(usize, usize, usize), CodecError> {
    match *shape.dims() {
        [c @ (1 | 3), h, w] | [1, c @ (1 | 3), h, w] => Ok((c, h, w)),
        _ => Err(CodecError::ImageShape { shape: shape.dims().to_vec() }),
    }
}

fn side(v: usize) -> Result<u32, CodecError> {
    u32::try_from(v).map_err(|_| CodecError::TooLarge { what: "image side", limit: u32::MAX.into(), got: v as u64 })
}

/// `[w, h, channels]` as the image header states them.
fn expected(c: usize, h: usize, w: usize) -> Result<[u32; 3], CodecError> {
    Ok([side(w)?, side(h)?, side(c)?])
}

fn compress_error(stage: Compression) -> impl Fn(ImageError) -> CodecError {
    move |e| CodecError::Compress { compression: stage, source: Box::new(e) }
}

fn decompress_error(stage: Compression) -> impl Fn(ImageError) -> CodecError {
    move |e| CodecError::Decompress { compression: stage, source: Box::new(e) }
}

/// Writes `raw` (q8 per-channel raw payload of `shape`) as parameters + image into `out`.
pub(crate) fn encode(
    raw: &[u8],
    shape: &Shape,
    stage: Compression,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let (c, h, w) = geometry(shape)?;
    let params = c * CHANNEL_PARAM_BYTES as usize;
    let n = c * h * w;
    let (head, levels) = raw
        .split_at_checked(params)
        .filter(|(_, l)| l.len() == n)
        .ok_or(CodecError::PayloadLength { expected: params + n, got: raw.len() })?;
    let [wu, hu, _] = expected(c, h, w)?;
    let pixels: &[u8] = if c == 1 {
        levels
    } else {
        // CHW → HWC.
        scratch.clear();
        scratch.resize(n, 0);
        let plane = h * w;
        for (i, px) in scratch.chunks_exact_mut(c).enumerate() {
            for (k, v) in px.iter_mut().enumerate() {
                *v = levels.get(k * plane + i).copied().unwrap_or(0);
            }
        }
        scratch
    };
    let color = if c == 1 { ColorType::L8 } else { ColorType::Rgb8 };
    out.clear();
    out.extend_from_slice(head);
    match stage {
        Compression::Png => {
            PngEncoder::new(&mut *out).write_image(pixels, wu, hu, color).map_err(compress_error(stage))
        }
        Compression::Jpeg { quality } => JpegEncoder::new_with_quality(&mut *out, quality)
            .encode(pixels, wu, hu, color)
            .map_err(compress_error(stage)),
        // Only called for the image stages.
        other => Err(CodecError::CompressionUnavailable { compression: other }),
    }
}

/// Reads parameters + image from `payload` back into the raw payload `raw` (replaced).
pub(crate) fn decode(
    payload: &[u8],
    shape: &Shape,
    stage: Compression,
    scratch: &mut Vec<u8>,
    raw: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let (c, h, w) = geometry(shape)?;
    let params = c * CHANNEL_PARAM_BYTES as usize;
    let n = c * h * w;
    let (head, image) =
        payload.split_at_checked(params).ok_or(CodecError::PayloadLength { expected: params, got: payload.len() })?;
    let want = expected(c, h, w)?;
    // Grey images decode straight into the raw payload; RGB ones into scratch, then HWC → CHW.
    raw.clear();
    raw.extend_from_slice(head);
    raw.resize(params + n, 0);
    let pixels: &mut [u8] = if c == 1 {
        raw.get_mut(params..).unwrap_or_default()
    } else {
        scratch.clear();
        scratch.resize(n, 0);
        scratch
    };
    match stage {
        Compression::Png => {
            let d = PngDecoder::new(Cursor::new(image)).map_err(decompress_error(stage))?;
            read(d, want, pixels, stage)?;
        }
        Compression::Jpeg { .. } => {
            let d = JpegDecoder::new(Cursor::new(image)).map_err(decompress_error(stage))?;
            read(d, want, pixels, stage)?;
        }
        other => return Err(CodecError::CompressionUnavailable { compression: other }),
    }
    if c > 1 {
        let plane = h * w;
        if let Some(levels) = raw.get_mut(params..) {
            for (i, px) in scratch.chunks_exact(c).enumerate() {
                for (k, &v) in px.iter().enumerate() {
                    if let Some(dst) = levels.get_mut(k * plane + i) {
                        *dst = v;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks the image header against the tensor, then decodes the pixels into `dst` (exactly
/// `w × h × channels` bytes).
fn read<'a, D: ImageDecoder<'a>>(d: D, want: [u32; 3], dst: &mut [u8], stage: Compression) -> Result<(), CodecError> {
    let (w, h) = d.dimensions();
    let channels = match d.color_type() {
        ColorType::L8 => 1,
        ColorType::Rgb8 => 3,
        _ => 0,
    };
    let got = [w, h, channels];
    if got != want || d.total_bytes() != dst.len() as u64 {
        return Err(CodecError::ImageMismatch { expected: want, got });
    }
    d.read_image(dst).map_err(decompress_error(stage))
}
