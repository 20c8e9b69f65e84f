//! Running a model point by point: per-segment timings and the activations at every point.
//!
//! A *segment* `s` runs from partition point `s` to `s + 1` (one conv block, one pool, or the
//! classifier for the last one). Walking the segments in order visits every point once, so one
//! pass yields the time of every segment and the tensor at every point; the head up to `p` is
//! segments `0..p`, the tail after `p` segments `p..end`.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
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
    Tensor::<4>::from_data(
        TensorData::new(test.image_f32(i), [1, test.channels, test.size, test.size]),
        device,
    )
}

pub(crate) fn sync(device: &Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| ProfileError::Backend(format!("synchronising the device: {e:?}")))
}

pub(crate) fn to_vec(t: Tensor<4>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| ProfileError::Backend(format!("reading a tensor back: {e:?}")))
}

/// Milliseconds of every segment for one input (`end` entries). The device is synchronised after
/// each segment, so a segment's time includes finishing its output, as a real split must.
pub(crate) fn segment_times(net: &Net, x: Tensor<4>, device: &Device) -> Result<Vec<f64>> {
    let end = net.spec.end();
    let mut t = x;
    let mut out = Vec::with_capacity(end);
    sync(device)?;
    for s in 0..end {
        let started = Instant::now();
        t = net.forward_range(t, s, s + 1);
        sync(device)?;
        out.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

/// The activation at every point before `end` for one batch-1 input, from one pass.
pub fn activations(net: &Net, x: Tensor<4>) -> Result<Vec<Activation>> {
    let end = net.spec.end();
    let mut t = x;
    let mut out = Vec::with_capacity(end);
    for s in 0..end {
        let [n, c, h, w] = t.dims();
        debug_assert_eq!(n, 1);
        out.push(Activation {
            point: s,
            shape: [n, c, h, w],
            data: to_vec(t.clone())?,
        });
        if s + 1 < end {
            t = net.forward_range(t, s, s + 1);
        }
    }
    Ok(out)
}

/// Median of `v` (mean of the two middle values for an even length); 0 for an empty slice.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
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
    format!(
        "{host} ({cpu}, {} logical CPUs)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    )
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
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
