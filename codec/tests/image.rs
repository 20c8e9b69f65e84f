//! The image codings (`png`, `jpeg<q>`): shapes they take, PNG exact at the q8 level, frames.

use tandem_codec::frame::{self, Limits};
use tandem_codec::{Body, CodecError, Coding, Frame};

use crate::common::{Forge, coding_byte, meta};

/// A smooth, garment-like test image: a bright blob on a dark background, per channel shifted.
fn picture(c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(c * h * w);
    for k in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (dy, dx) = (y as f32 - h as f32 / 2.0, x as f32 - w as f32 / 2.0 - k as f32);
                let r2 = (dy * dy + dx * dx) / (h * w) as f32;
                out.push(2.0 * (-4.0 * r2).exp() - 0.8 + 0.05 * ((x * 7 + y * 3) % 5) as f32);
            }
        }
    }
    out
}

#[test]
fn names_and_constants() {
    let names: Vec<String> = Coding::IMAGE.iter().map(Coding::to_string).collect();
    assert_eq!(names, ["png", "jpeg50", "jpeg75", "jpeg90"]);
    for c in Coding::IMAGE {
        assert_eq!(c.to_string().parse::<Coding>().ok(), Some(c));
        assert!(!c.is_lossless());
    }
    for bad in ["jpeg0", "jpeg101", "jpeg075", "jpeg", "jpeg+5", "pngc"] {
        assert!(bad.parse::<Coding>().is_err(), "{bad}");
    }
    assert!(matches!(Coding::jpeg(0), Err(CodecError::JpegQuality { got: 0 })));
}

#[test]
fn image_codings_refuse_shapes_that_are_not_grey_or_rgb_images() {
    for shape in [&[1usize, 4, 8, 8][..], &[2, 1, 8, 8], &[2, 8, 8], &[64], &[8, 8]] {
        let n: usize = shape.iter().product();
        for c in Coding::IMAGE {
            assert!(!c.applies_to(shape));
            let res = tandem_codec::encode(&vec![0.5; n], shape, c);
            assert!(matches!(&res, Err(CodecError::ImageShape { shape: s }) if s == shape), "{c} {shape:?}: {res:?}");
        }
    }
    for shape in [&[1usize, 1, 8, 8][..], &[1, 3, 8, 8], &[1, 8, 8], &[3, 8, 8]] {
        assert!(Coding::IMAGE.iter().all(|c| c.applies_to(shape)));
    }
}

#[test]
fn png_is_exact_at_the_q8_level_grey_and_rgb() {
    let q8c_none: Coding = "q8c-none".parse().unwrap();
    for (c, shape) in [(1usize, vec![1usize, 1, 32, 32]), (3, vec![3, 20, 24])] {
        let x = picture(c, shape[shape.len() - 2], shape[shape.len() - 1]);
        let reference = tandem_codec::decode(&tandem_codec::encode(&x, &shape, q8c_none).unwrap()).unwrap();
        let png = tandem_codec::encode(&x, &shape, Coding::PNG).unwrap();
        let back = tandem_codec::decode(&png).unwrap();
        assert_eq!(back, reference, "{shape:?}");
    }
}

#[test]
fn jpeg_is_close_and_better_at_higher_quality() {
    let shape = [1usize, 3, 32, 32];
    let x = picture(3, 32, 32);
    let range = x.iter().fold(f32::MIN, |a, &b| a.max(b)) - x.iter().fold(f32::MAX, |a, &b| a.min(b));
    let mut last = f32::INFINITY;
    for q in [50u8, 75, 90] {
        let t = tandem_codec::encode(&x, &shape, Coding::jpeg(q).unwrap()).unwrap();
        let y = tandem_codec::decode(&t).unwrap();
        let mae = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).sum::<f32>() / x.len() as f32;
        // Mean error under 5 % of the range on this smooth RGB image at every quality (3.0 %
        // measured at q50, chroma subsampled), falling with q.
        eprintln!("jpeg{q}: mean |Δ| {mae} = {:.4} of the range", mae / range);
        assert!(mae < 0.05 * range && mae <= last, "jpeg{q}: mean |Δ| {mae} (range {range})");
        last = mae;
    }
}

#[test]
fn image_frames_round_trip_truncate_to_incomplete_and_catch_corruption() {
    for coding in Coding::IMAGE {
        let t = tandem_codec::encode(&picture(1, 16, 16), &[1, 1, 16, 16], coding).unwrap();
        let mut buf = Vec::new();
        frame::write_tensor(&meta(), &t, &mut buf);
        let back = frame::parse(&buf, &Limits::default()).unwrap();
        assert_eq!(back, Frame { meta: meta(), body: Body::Tensor(t.clone()) });
        for k in 0..buf.len() {
            assert!(frame::check(&buf[..k], &Limits::default()).is_err(), "{coding}: {k}");
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            bad.extend_from_slice(&buf);
            assert!(frame::parse(&bad, &Limits::default()).is_err(), "{coding}: byte {i}");
        }
        // A payload whose image is of another size than the header's shape: a typed error
        // from the image header, not a wrong tensor.
        let other = tandem_codec::encode(&picture(1, 8, 8), &[1, 1, 8, 8], coding).unwrap();
        let quality = match coding.compression() {
            tandem_codec::Compression::Jpeg { quality } => Some(quality),
            _ => None,
        };
        let f = Forge {
            coding: coding_byte(coding),
            quality,
            dims: vec![1, 1, 16, 16],
            params: None,
            payload: other.payload().to_vec(),
            ..Forge::tensor(Coding::Q8_LZ4)
        };
        let Body::Tensor(t) = frame::parse(&f.bytes(), &Limits::default()).unwrap().body else { panic!("tensor") };
        let res = tandem_codec::decode(&t);
        assert!(
            matches!(res, Err(CodecError::ImageMismatch { expected: [16, 16, 1], got: [8, 8, 1] })),
            "{coding}: {res:?}"
        );
    }
}
