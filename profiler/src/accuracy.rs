//! The accuracy cost of lossy coding: run the head, code the tensor at a point, decode it, run
//! the tail on the decoded tensor and classify.
//!
//! Heads and tails run in batches (accuracy does not depend on the batch size, and batches are
//! far cheaper per image on a CPU), but every image is coded on its own, with its own
//! quantisation range, exactly as the device codes a batch-1 frame.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use tandem_codec::{Codec, Coding, EncodedTensor};
use tandem_models::data::{BatchIter, Dataset};
use tandem_models::train::argmax;
use tandem_models::zoo::Net;

use crate::error::{ProfileError, Result};
use crate::exec::to_vec;

/// Images per head/tail batch.
const BATCH: usize = 32;

/// Test accuracy with one coding at one point.
#[derive(Clone, Debug, PartialEq)]
pub struct CodingAccuracy {
    /// Partition point index.
    pub point: usize,
    /// Partition point name.
    pub point_name: String,
    /// The coding applied to the tensor at `point`.
    pub coding: Coding,
    /// Accuracy (fraction) with the tensor coded and decoded.
    pub accuracy: f64,
    /// Accuracy (fraction) of the same images without coding, for a paired comparison.
    pub lossless_accuracy: f64,
    /// Images evaluated.
    pub images: usize,
}

impl CodingAccuracy {
    /// Accuracy lost to the coding, in fraction units (positive = worse).
    pub fn loss(&self) -> f64 {
        self.lossless_accuracy - self.accuracy
    }
}

/// Accuracy of `net` over the first `images` test images with each of `codings` applied at each
/// of `points` (indices before `end`). Lossless codings are reported without running (they
/// reproduce the tensor exactly). Results are ordered by point, then coding, as given.
///
/// This answers "what does 8-bit / 4-bit coding cost at each pool point": pass the pool points
/// and `[Coding::Q8_LZ4, Coding::Q4_LZ4, …]`.
pub fn coding_accuracy(
    net: &Net,
    test: &Dataset,
    points: &[usize],
    codings: &[Coding],
    images: usize,
) -> Result<Vec<CodingAccuracy>> {
    let spec = &net.spec;
    let end = spec.end();
    let all_points = spec.points();
    if let Some(&p) = points.iter().find(|&&p| p >= end) {
        return Err(ProfileError::Options(format!("point {p} is not before `end` ({end}): nothing is coded there")));
    }
    if test.channels != spec.in_channels || test.size != spec.input_size || test.num_classes != spec.num_classes {
        return Err(ProfileError::DataMismatch(format!(
            "model takes {}x{}x{} images into {} classes, test set has {}x{}x{} into {}",
            spec.in_channels,
            spec.input_size,
            spec.input_size,
            spec.num_classes,
            test.channels,
            test.size,
            test.size,
            test.num_classes
        )));
    }
    let subset = test.take(images);
    let n_images = subset.len();
    if n_images == 0 {
        return Err(ProfileError::Options("accuracy needs at least one test image".into()));
    }
    let device: Device = net.devices().into_iter().next().unwrap_or_else(tandem_models::device::cpu);
    let mut sorted: Vec<usize> = points.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let lossy: Vec<Coding> = codings.iter().copied().filter(|c| !c.is_lossless()).collect();
    // correct[point slot][lossy coding]
    let mut correct = vec![vec![0usize; lossy.len()]; sorted.len()];
    let mut lossless_correct = 0usize;
    let mut codec = Codec::new();
    let mut encoded = EncodedTensor::default();
    let mut decoded = Vec::new();

    for batch in BatchIter::sequential(&subset, BATCH) {
        let n = batch.len;
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.images, [n, spec.in_channels, spec.input_size, spec.input_size]),
            &device,
        );
        // One walk through the network keeps the tensor at each requested point.
        let mut kept: Vec<Tensor<4>> = Vec::with_capacity(sorted.len());
        let mut t = x;
        let mut next = 0;
        for s in 0..end {
            while next < sorted.len() && sorted[next] == s {
                kept.push(t.clone());
                next += 1;
            }
            t = net.forward_range(t, s, s + 1);
        }
        lossless_correct += count_correct(&to_vec(t)?, &batch.labels, spec.num_classes);

        for (slot, (&p, act)) in sorted.iter().zip(kept).enumerate() {
            let dims = act.dims();
            let per_image = dims[1] * dims[2] * dims[3];
            let values = to_vec(act)?;
            for (k, &coding) in lossy.iter().enumerate() {
                // A coding this point's shape cannot take (an image coding past the input).
                if !coding.applies_to(&[1, dims[1], dims[2], dims[3]]) {
                    continue;
                }
                let mut coded = Vec::with_capacity(values.len());
                for img in values.chunks_exact(per_image) {
                    let ctx = |source| ProfileError::Codec {
                        model: format!("{} widths {:?}", spec.arch, spec.widths),
                        point: all_points[p].name.clone(),
                        coding: coding.to_string(),
                        source,
                    };
                    codec.encode_into(img, &[1, dims[1], dims[2], dims[3]], coding, &mut encoded).map_err(ctx)?;
                    codec.decode_into(&encoded, &mut decoded).map_err(ctx)?;
                    coded.extend_from_slice(&decoded);
                }
                let tail_in = Tensor::<4>::from_data(TensorData::new(coded, dims), &device);
                let logits = to_vec(net.forward_range(tail_in, p, end))?;
                correct[slot][k] += count_correct(&logits, &batch.labels, spec.num_classes);
            }
        }
    }

    let frac = |c: usize| c as f64 / n_images as f64;
    let lossless_accuracy = frac(lossless_correct);
    let mut out = Vec::with_capacity(sorted.len() * codings.len());
    for (slot, &p) in sorted.iter().enumerate() {
        let shape: Vec<usize> = [1].iter().chain(&all_points[p].shape).copied().collect();
        for &coding in codings.iter().filter(|c| c.applies_to(&shape)) {
            let accuracy = match lossy.iter().position(|&c| c == coding) {
                Some(k) => frac(correct[slot][k]),
                None => lossless_accuracy,
            };
            out.push(CodingAccuracy {
                point: p,
                point_name: all_points[p].name.clone(),
                coding,
                accuracy,
                lossless_accuracy,
                images: n_images,
            });
        }
    }
    Ok(out)
}

fn count_correct(logits: &[f32], labels: &[i64], classes: usize) -> usize {
    logits.chunks_exact(classes).zip(labels).filter(|&(row, &label)| argmax(row) as i64 == label).count()
}
