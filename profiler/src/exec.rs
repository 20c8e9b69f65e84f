//! Running a model point by point: the activations at every point, and the time of a head
//! (`input → p`) or a tail (`p → end`) run the way the runtime runs it.
//!
//! A *segment* `s` runs from partition point `s` to `s + 1` (one conv block, one pool, or the
//! classifier for the last one). Walking the segments in order visits every point once, so one
//! pass yields the tensor at every point.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use tandem_engine::Segment;
use tandem_models::data::Dataset;
use tandem_models::zoo::Net;

use crate::error::{ProfileError, Result};

/// One example's tensor at a partition point, as the device would hand it to the codec.
#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    /// Partition point index.
    pub point: usize,
    /// `[1, C, H, W]` (batch 1, NCHW).
    pub shape: [usize; 4],
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A batch-1 input tensor for test image `i`.
pub(crate) fn image_tensor(test: &Dataset, i: usize, device: &Device) -> Tensor<4> {
    Tensor::<4>::from_data(TensorData::new(test.image_f32(i), [1, test.channels, test.size, test.size]), device)
}

pub(crate) fn to_vec(t: Tensor<4>) -> Result<Vec<f32>> {
    t.into_data().try_into_vec::<f32>().map_err(|e| ProfileError::Backend(format!("reading a tensor back: {e:?}")))
}

/// Milliseconds to run `segment` on one batch-1 input held in host memory, exactly as the
/// runtime runs a head (on the device) or a tail (on the edge): hand it the values, run the
/// prepared segment in one call, get the output back in host memory.
///
/// Whole ranges are timed, not summed from per-segment times: a range costs more than the sum
/// of its segments' medians (per-call dispatch, thread-pool hand-offs), and the sums priced a
/// whole half-width AlexNet at 0.78 ms where it runs in 1.34 ms (median, burn).
pub(crate) fn range_ms(segment: &Segment, input: &Activation) -> Result<f64> {
    let data = input.data.clone();
    let started = Instant::now();
    segment.run(data, input.shape).map_err(|e| ProfileError::Backend(format!("running a segment: {e}")))?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// The activation at every point before `end` for one batch-1 input, from one pass.
pub fn activations(net: &Net, x: Tensor<4>) -> Result<Vec<Activation>> {
    let end = net.spec.end();
    let mut t = x;
    let mut out = Vec::with_capacity(end);
    for s in 0..end {
        let [n, c, h, w] = t.dims();
        debug_assert_eq!(n, 1);
        out.push(Activation { point: s, shape: [n, c, h, w], data: to_vec(t.clone())? });
        if s + 1 < end {
            t = net.forward_range(t, s, s + 1);
        }
    }
    Ok(out)
}

/// Median of `v`, through the workspace's one percentile implementation
/// ([`tandem_planner::LatencyHistogram`]: the lower middle sample for an even count, within 0.1 %);
/// 0 for an empty slice.
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut h = tandem_planner::LatencyHistogram::new();
    v.iter().for_each(|&ms| h.record_ms(ms));
    h.percentiles().p50
}

/// Host and CPU model, for a profile's provenance.
pub fn machine_description() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{host} ({cpu}, {} logical CPUs)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// Threads the CPU backend computes with (rayon's global pool; `RAYON_NUM_THREADS` sets it).
pub fn compute_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even() {
        let close = |got: f64, want: f64| (got - want).abs() <= want * 1e-3;
        assert!(close(median(&[3.0, 1.0, 2.0]), 2.0));
        assert!(close(median(&[4.0, 1.0, 3.0, 2.0]), 2.0), "the lower middle sample");
        assert!(close(median(&[0.0163, 0.0161, 0.0170]), 0.0163), "10-µs segments keep 3 figures");
        assert_eq!(median(&[]), 0.0);
    }
}
