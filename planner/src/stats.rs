//! Latency statistics: one percentile implementation for the whole workspace.
//!
//! [`LatencyHistogram`] records latencies into an HDR histogram ([`hdrhistogram`], 3 significant
//! figures, values in whole nanoseconds, auto-resizing), so memory stays bounded however long a
//! run is and every sample counts — not only a recent window. [`Percentiles`] is what it reports,
//! in milliseconds: `n`, the exact mean and maximum over all samples, and p50/p90/p99 within the
//! histogram's precision (a relative error of at most 0.1 %, or 1 ns, whichever is larger) — fine
//! enough for the profiler's medians of 10-µs segments as for the ledger's end-to-end latencies.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant figures the histogram keeps.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// Largest value the histogram tracks, ns (one day); larger samples are recorded as this (the
/// exact mean and max still see them). Bounds how far the histogram grows.
const MAX_TRACKED_NS: u64 = 86_400 * 1_000_000_000;

/// Mean and percentiles of a latency, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub n: u64,
    /// Mean over all samples (exact).
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample (exact).
    pub max: f64,
}

/// Latency samples, for percentiles. All-zero [`Percentiles`] when empty.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    /// Nanoseconds.
    hist: Histogram<u64>,
    n: u64,
    sum_ms: f64,
    max_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        // Only more than 5 significant figures is refused.
        let hist = Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures are supported");
        LatencyHistogram { hist, n: 0, sum_ms: 0.0, max_ms: 0.0 }
    }

    /// Record one latency.
    pub fn record(&mut self, d: Duration) {
        self.record_ms(d.as_secs_f64() * 1e3);
    }

    /// Record one latency in milliseconds; a negative or NaN value counts as 0.
    pub fn record_ms(&mut self, ms: f64) {
        let ms = if ms > 0.0 { ms } else { 0.0 };
        self.n += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
        // `as` saturates (NaN was mapped to 0 above, infinity to u64::MAX), then clamp.
        let ns = ((ms * 1e6).round() as u64).min(MAX_TRACKED_NS);
        // `record` grows the histogram to fit; it can only fail if growing does (not below
        // MAX_TRACKED_NS on a 64-bit target), and then the value is clamped into range.
        if self.hist.record(ns).is_err() {
            self.hist.saturating_record(ns);
        }
    }

    /// Add every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // `add` grows the histogram to fit (auto-resize, as `new` leaves it on); should it fail,
        // fall back to recording the other's values one by one, clamped.
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                if self.hist.record_n(v.value_iterated_to(), v.count_at_value()).is_err() {
                    self.hist.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
        self.n += other.n;
        self.sum_ms += other.sum_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Mean, p50/p90/p99 and max, ms (zeros when empty). A percentile never exceeds the max.
    pub fn percentiles(&self) -> Percentiles {
        if self.n == 0 {
            return Percentiles::default();
        }
        let at = |q: f64| (self.hist.value_at_quantile(q) as f64 / 1e6).min(self.max_ms);
        Percentiles {
            n: self.n,
            mean: self.sum_ms / self.n as f64,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: self.max_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The histogram's precision at `ms`: 0.1 % relative, and at least the 1 ns unit.
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= (want * 1e-3).max(1e-6)
    }

    #[test]
    fn ten_microsecond_segments_keep_three_figures_and_the_median_is_a_sample() {
        // The profiler's medians: short segments (an encode of ~16 µs) must not round to the µs.
        let mut h = LatencyHistogram::new();
        for ms in [0.0163, 0.0161, 0.0170, 0.0158, 0.0190] {
            h.record_ms(ms);
        }
        assert!(close(h.percentiles().p50, 0.0163), "p50 {}", h.percentiles().p50);
        // With an even count the median is the lower middle sample (no interpolation).
        let mut even = LatencyHistogram::new();
        for ms in [4.0, 1.0, 3.0, 2.0] {
            even.record_ms(ms);
        }
        assert!(close(even.percentiles().p50, 2.0), "p50 {}", even.percentiles().p50);
    }

    #[test]
    fn empty_is_all_zeros() {
        let h = LatencyHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.percentiles(), Percentiles::default());
    }

    #[test]
    fn a_uniform_distribution_gives_its_percentiles_within_precision() {
        let mut h = LatencyHistogram::new();
        // 1..=1000 ms, each once: p50 = 500, p90 = 900, p99 = 990.
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let p = h.percentiles();
        assert_eq!(p.n, 1000);
        assert!((p.mean - 500.5).abs() < 1e-9, "mean is exact: {}", p.mean);
        assert_eq!(p.max, 1000.0);
        assert!(close(p.p50, 500.0), "p50 {}", p.p50);
        assert!(close(p.p90, 900.0), "p90 {}", p.p90);
        assert!(close(p.p99, 990.0), "p99 {}", p.p99);
    }

    #[test]
    fn sub_millisecond_values_and_a_long_tail_keep_their_precision() {
        let mut h = LatencyHistogram::new();
        // 98 samples of 0.250 ms, then 1 of 40 ms and 1 of 5000 ms.
        for _ in 0..98 {
            h.record_ms(0.25);
        }
        h.record_ms(40.0);
        h.record_ms(5000.0);
        let p = h.percentiles();
        assert!(close(p.p50, 0.25), "p50 {}", p.p50);
        assert!(close(p.p90, 0.25), "p90 {}", p.p90);
        assert!(close(p.p99, 40.0), "p99 {}", p.p99);
        assert_eq!(p.max, 5000.0);
        assert!((p.mean - (98.0 * 0.25 + 5040.0) / 100.0).abs() < 1e-9);
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (LatencyHistogram::new(), LatencyHistogram::new(), LatencyHistogram::new());
        for i in 0..500u64 {
            let ms = (i * 7 % 101) as f64 + 0.5;
            if i % 3 == 0 {
                a.record_ms(ms)
            } else {
                b.record_ms(ms)
            }
            all.record_ms(ms);
        }
        a.merge(&b);
        let (m, w) = (a.percentiles(), all.percentiles());
        assert_eq!((m.n, m.p50, m.p90, m.p99, m.max), (w.n, w.p50, w.p90, w.p99, w.max));
        assert!((m.mean - w.mean).abs() < 1e-9);
    }

    #[test]
    fn negative_and_nan_count_as_zero_and_infinity_saturates() {
        let mut h = LatencyHistogram::new();
        h.record_ms(-3.0);
        h.record_ms(f64::NAN);
        assert_eq!(h.percentiles(), Percentiles { n: 2, ..Percentiles::default() });
        h.record_ms(f64::INFINITY);
        let p = h.percentiles();
        assert_eq!(p.n, 3);
        assert!(p.p99 > 0.0);
    }
}
