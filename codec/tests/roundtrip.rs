//! encode → decode round trips: lossless for f32, within half a quantisation step otherwise,
//! exact zeros stay exact; and through the wire format.

use proptest::prelude::*;
use tandem_codec::frame::{self, Limits};
use tandem_codec::{Bits, Body, Codec, CodecError, Coding, EncodedTensor, Granularity};

use crate::common::{relu_like, tensor_frame};

/// Relative slack on the half-step bound for f32 rounding in scale, reciprocal and product.
const STEP_SLACK: f32 = 1e-3;

/// A value mix that looks like activations plus awkward extremes.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        5 => Just(0.0f32),
        3 => -8.0f32..8.0,
        1 => 0.0f32..1e-3,
        1 => -1e6f32..1e6,
        1 => -1e30f32..1e30,
        1 => prop::num::f32::SUBNORMAL,
        1 => Just(-0.0f32),
    ]
}

/// Shapes of rank 1..=4 with small dims (zero dims included).
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        prop::collection::vec(0usize..40, 1..=2),
        (0usize..7, 0usize..6, 0usize..6).prop_map(|(c, h, w)| vec![c, h, w]),
        (0usize..3, 0usize..7, 0usize..6, 0usize..6).prop_map(|(n, c, h, w)| vec![n, c, h, w]),
    ]
}

fn tensor() -> impl Strategy<Value = (Vec<usize>, Vec<f32>)> {
    shape().prop_flat_map(|s| {
        let n: usize = s.iter().product();
        (Just(s), prop::collection::vec(value(), n))
    })
}

/// Channel of flat index `i` (dim 1 of NCHW, dim 0 of CHW), or 0 for per-tensor.
fn group_of(i: usize, shape: &[usize], granularity: Granularity) -> usize {
    match (granularity, shape) {
        (Granularity::PerChannel, [_, c, h, w]) => (i / (h * w)) % c,
        (Granularity::PerChannel, [c, h, w]) => (i / (h * w)) % c,
        _ => 0,
    }
}

/// The step the encoder should choose for a group: (max(hi,0) - min(lo,0)) / qmax.
fn reference_steps(data: &[f32], shape: &[usize], coding: Coding) -> Vec<f32> {
    let qmax = f64::from(coding.bits().qmax().unwrap());
    let groups = match coding.granularity() {
        Granularity::PerTensor => 1,
        Granularity::PerChannel => shape[shape.len() - 3],
    };
    let mut lo = vec![0.0f64; groups];
    let mut hi = vec![0.0f64; groups];
    for (i, &x) in data.iter().enumerate() {
        let g = group_of(i, shape, coding.granularity());
        lo[g] = lo[g].min(f64::from(x));
        hi[g] = hi[g].max(f64::from(x));
    }
    lo.iter().zip(&hi).map(|(l, h)| (((h - l) / qmax) as f32).max(f32::MIN_POSITIVE)).collect()
}

fn assert_close(data: &[f32], shape: &[usize], coding: Coding, decoded: &[f32]) -> Result<(), TestCaseError> {
    prop_assert_eq!(decoded.len(), data.len());
    if coding.bits() == Bits::F32 {
        for (x, y) in data.iter().zip(decoded) {
            prop_assert_eq!(x.to_bits(), y.to_bits());
        }
        return Ok(());
    }
    let steps = reference_steps(data, shape, coding);
    for (i, (&x, &y)) in data.iter().zip(decoded).enumerate() {
        if x == 0.0 {
            prop_assert_eq!(y, 0.0, "zero at {} decoded to {}", i, y);
            continue;
        }
        let step = steps[group_of(i, shape, coding.granularity())];
        let tol = 0.5 * step * (1.0 + STEP_SLACK);
        prop_assert!((x - y).abs() <= tol, "{}: x {} y {} step {} (tol {})", coding, x, y, step, tol);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_coding_round_trips_within_half_a_step((shape, data) in tensor()) {
        let mut codec = Codec::new();
        let mut enc = EncodedTensor::default();
        let mut out = Vec::new();
        for coding in Coding::all() {
            let res = codec.encode_into(&data, &shape, coding, &mut enc);
            if coding.granularity() == Granularity::PerChannel && !(3..=4).contains(&shape.len()) {
                prop_assert!(matches!(res, Err(CodecError::PerChannelRank { .. })), "{res:?}");
                continue;
            }
            prop_assert!(res.is_ok(), "{coding}: {res:?}");
            codec.decode_into(&enc, &mut out).unwrap();
            assert_close(&data, &shape, coding, &out)?;
            // The free functions agree with the reusable codec.
            let fresh = tandem_codec::encode(&data, &shape, coding).unwrap();
            prop_assert_eq!(&fresh, &enc);
            prop_assert_eq!(tandem_codec::decode(&fresh).unwrap(), out.clone());
        }
    }

    #[test]
    fn frames_round_trip((shape, data) in tensor(), coding_index in 0usize..64) {
        let all = Coding::all();
        let coding = all[coding_index % all.len()];
        let Ok(enc) = tandem_codec::encode(&data, &shape, coding) else {
            return Ok(());
        };
        let buf = tensor_frame(enc.clone());
        prop_assert_eq!(buf.len(), enc.wire_len(&crate::common::meta()));
        prop_assert_eq!(frame::check(&buf, &Limits::default()).unwrap(), buf.len());
        let parsed = frame::parse(&buf, &Limits::default()).unwrap();
        prop_assert_eq!(parsed.meta, crate::common::meta());
        let Body::Tensor(t) = parsed.body else { panic!("not a tensor") };
        prop_assert_eq!(&t, &enc);
        assert_close(&data, &shape, coding, &tandem_codec::decode(&t).unwrap())?;
    }
}

#[test]
fn relu_features_shrink_and_keep_their_zeros() {
    let shape = [1, 32, 16, 16];
    let data = relu_like(&shape, 42);
    let zeros = data.iter().filter(|x| **x == 0.0).count();
    let raw = data.len() * 4;
    for (coding, max_ratio) in [(Coding::Q8_LZ4, 0.25), (Coding::Q8C_LZ4, 0.25), (Coding::Q4_LZ4, 0.125)] {
        let enc = tandem_codec::encode(&data, &shape, coding).unwrap();
        assert!((enc.payload().len() as f64) < raw as f64 * max_ratio, "{coding}: {} bytes", enc.payload().len());
        let out = tandem_codec::decode(&enc).unwrap();
        let kept = data.iter().zip(&out).filter(|(x, y)| **x == 0.0 && y.to_bits() == 0).count();
        assert_eq!(kept, zeros, "{coding}");
    }
}

#[test]
fn constant_and_empty_tensors() {
    for value in [0.0f32, 3.5, -2.25, 1e-30] {
        let data = vec![value; 2 * 3 * 4 * 4];
        for coding in Coding::all() {
            let enc = tandem_codec::encode(&data, &[2, 3, 4, 4], coding).unwrap();
            let out = tandem_codec::decode(&enc).unwrap();
            for y in out {
                let step = value.abs() / f32::from(coding.bits().qmax().unwrap_or(255));
                assert!((y - value).abs() <= 0.5 * step * (1.0 + STEP_SLACK), "{coding} {value} -> {y}");
            }
        }
    }
    for shape in [&[0usize][..], &[2, 0, 3, 3], &[2, 3, 0, 3], &[0, 3, 2, 2]] {
        for coding in Coding::all() {
            if coding.granularity() == Granularity::PerChannel && shape.len() < 3 {
                continue;
            }
            let enc = tandem_codec::encode(&[], shape, coding).unwrap();
            assert_eq!(tandem_codec::decode(&enc).unwrap(), Vec::<f32>::new(), "{coding} {shape:?}");
            let buf = tensor_frame(enc);
            assert!(frame::parse(&buf, &Limits::default()).is_ok());
        }
    }
}

#[test]
fn decode_into_reuses_the_buffer() {
    let shape = [1, 8, 8, 8];
    let data = relu_like(&shape, 3);
    let enc = tandem_codec::encode(&data, &shape, Coding::Q8_LZ4).unwrap();
    let mut out = Vec::with_capacity(data.len());
    out.push(1.0);
    let before = out.as_ptr();
    tandem_codec::decode_into(&enc, &mut out).unwrap();
    assert_eq!(out.len(), data.len());
    assert_eq!(out.as_ptr(), before, "no reallocation when capacity suffices");
}
