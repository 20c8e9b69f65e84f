//! Estimator settings: serde + TOML, every field defaulted (so `[bandwidth]` may be empty), then
//! [`Config::validate`] for the cross-field rules.

use serde::{Deserialize, Serialize};

/// Default for [`Config::window_samples`].
pub const DEFAULT_WINDOW_SAMPLES: usize = 8;
/// Default for [`Config::max_sample_age_ms`].
pub const DEFAULT_MAX_SAMPLE_AGE_MS: u64 = 10_000;
/// Default for [`Config::min_sample_bytes`].
pub const DEFAULT_MIN_SAMPLE_BYTES: u64 = 16 * 1024;
/// Default for [`Config::shift_ratio`].
pub const DEFAULT_SHIFT_RATIO: f64 = 2.0;
/// Default for [`Config::drop_confirm_samples`].
pub const DEFAULT_DROP_CONFIRM_SAMPLES: usize = 2;
/// Default for [`Config::rise_confirm_samples`].
pub const DEFAULT_RISE_CONFIRM_SAMPLES: usize = 3;
/// Default for [`Config::srtt_gain`].
pub const DEFAULT_SRTT_GAIN: f64 = 0.25;
/// Default for [`Config::rtt_window_samples`].
pub const DEFAULT_RTT_WINDOW_SAMPLES: usize = 16;
/// Default for [`Config::assumed_rtt_ms`].
pub const DEFAULT_ASSUMED_RTT_MS: f64 = 5.0;
/// Default for [`Config::stale_after_ms`].
pub const DEFAULT_STALE_AFTER_MS: u64 = 2_000;
/// Default for [`Config::probe_target_ms`].
pub const DEFAULT_PROBE_TARGET_MS: f64 = 20.0;
/// Default for [`Config::inflation_ms`].
pub const DEFAULT_INFLATION_MS: f64 = 1.5;
/// Default for [`Config::inflation_ratio`].
pub const DEFAULT_INFLATION_RATIO: f64 = 0.25;
/// Default for [`Config::inflation_confirm_samples`].
pub const DEFAULT_INFLATION_CONFIRM_SAMPLES: usize = 3;
/// Default for [`Config::inflation_probe_gap_ms`].
pub const DEFAULT_INFLATION_PROBE_GAP_MS: u64 = 250;
/// Default for [`Config::probe_count`].
pub const DEFAULT_PROBE_COUNT: u32 = 3;
/// Default for [`Config::probe_initial_bytes`].
pub const DEFAULT_PROBE_INITIAL_BYTES: u64 = 64 * 1024;
/// Default for [`Config::probe_max_bytes`].
pub const DEFAULT_PROBE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// How the [`Estimator`](crate::Estimator) turns samples into an estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Throughput samples kept; the estimate is their harmonic mean. Default 8: enough to smooth
    /// per-frame jitter, few enough that a gradual change is absorbed within a second at 10 fps.
    pub window_samples: usize,
    /// Samples older than this (relative to the newest sample) are forgotten when a new one
    /// arrives, so a link that was idle is judged on fresh samples only. Default 10 000 ms.
    pub max_sample_age_ms: u64,
    /// Transfers smaller than this give no throughput sample: their duration is mostly RTT and
    /// per-message overhead. Default 16 KiB (13 ms at 10 Mbit/s).
    pub min_sample_bytes: u64,
    /// Durations include one round trip (first byte sent → receipt acknowledged), so the minimum
    /// recent RTT is subtracted before dividing — making the estimate the serialisation rate the
    /// planner's `bytes·8/bandwidth + RTT` model expects. Set `false` if durations are measured
    /// one way. Default true.
    pub subtract_rtt: bool,
    /// Transfers below `min_sample_bytes` count as RTT samples (their duration less the
    /// serialisation time at the current estimate). Default true.
    pub rtt_from_small_transfers: bool,
    /// A level shift: the newest samples all lie this factor below (or above) the harmonic mean of
    /// the older ones. The older ones are then dropped. Must be > 1. Default 2.0.
    pub shift_ratio: f64,
    /// Consecutive low samples that confirm a drop. Default 2: over-estimating bandwidth makes
    /// the planner offload onto a slow link, the costlier mistake, so drops are believed sooner.
    pub drop_confirm_samples: usize,
    /// Consecutive high samples that confirm a rise. Default 3.
    pub rise_confirm_samples: usize,
    /// Weight of a new RTT sample in the smoothed RTT (an EWMA, like TCP's SRTT). Default 0.25.
    pub srtt_gain: f64,
    /// RTT samples over which the minimum RTT (subtracted from durations) is taken. Default 16.
    pub rtt_window_samples: usize,
    /// RTT reported before any has been measured. Default 5 ms.
    pub assumed_rtt_ms: f64,
    /// With no throughput sample for this long the estimate is stale and a probe is due.
    /// Default 2 000 ms.
    pub stale_after_ms: u64,
    /// A probe burst should take about this long at the estimated bandwidth (and at least four
    /// RTTs). Default 20 ms: a burst delays the frames queued behind it by as much, so it is
    /// kept short; four RTTs keep the round trip a minor part of its duration.
    pub probe_target_ms: f64,
    /// **Delay trigger.** A transfer too small to be a bandwidth sample still reveals a slower
    /// link: its round trip grows by its serialisation time. An RTT sample more than
    /// `max(inflation_ms, inflation_ratio × min RTT)` above the minimum RTT is *inflated*;
    /// [`inflation_confirm_samples`](Config::inflation_confirm_samples) inflated samples in a row
    /// make [`Estimator::needs_probe`](crate::Estimator::needs_probe) true before the estimate
    /// is stale. Default 1.5 ms: 300 coded bytes take 2.4 ms at 1 Mbit/s, 0.24 ms at 10 Mbit/s.
    pub inflation_ms: f64,
    /// See [`inflation_ms`](Config::inflation_ms). Default 0.25.
    pub inflation_ratio: f64,
    /// Inflated RTT samples in a row that call for a probe; 0 disables the delay trigger.
    /// Default 3 (100 ms of frames at 30 FPS): one late frame is scheduling noise.
    pub inflation_confirm_samples: usize,
    /// The delay trigger asks for a probe only when the newest bandwidth sample is at least
    /// this old, so a jittery RTT cannot keep the link busy with probes. Default 250 ms.
    pub inflation_probe_gap_ms: u64,
    /// Bursts per probe, so one probe can confirm a level shift. Default 3.
    pub probe_count: u32,
    /// Burst size when there is no estimate yet. Default 64 KiB.
    pub probe_initial_bytes: u64,
    /// Upper bound on a burst. Default 4 MiB.
    pub probe_max_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_samples: DEFAULT_WINDOW_SAMPLES,
            max_sample_age_ms: DEFAULT_MAX_SAMPLE_AGE_MS,
            min_sample_bytes: DEFAULT_MIN_SAMPLE_BYTES,
            subtract_rtt: true,
            rtt_from_small_transfers: true,
            shift_ratio: DEFAULT_SHIFT_RATIO,
            drop_confirm_samples: DEFAULT_DROP_CONFIRM_SAMPLES,
            rise_confirm_samples: DEFAULT_RISE_CONFIRM_SAMPLES,
            srtt_gain: DEFAULT_SRTT_GAIN,
            rtt_window_samples: DEFAULT_RTT_WINDOW_SAMPLES,
            assumed_rtt_ms: DEFAULT_ASSUMED_RTT_MS,
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
            probe_target_ms: DEFAULT_PROBE_TARGET_MS,
            inflation_ms: DEFAULT_INFLATION_MS,
            inflation_ratio: DEFAULT_INFLATION_RATIO,
            inflation_confirm_samples: DEFAULT_INFLATION_CONFIRM_SAMPLES,
            inflation_probe_gap_ms: DEFAULT_INFLATION_PROBE_GAP_MS,
            probe_count: DEFAULT_PROBE_COUNT,
            probe_initial_bytes: DEFAULT_PROBE_INITIAL_BYTES,
            probe_max_bytes: DEFAULT_PROBE_MAX_BYTES,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid bandwidth estimator setting {field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, reason: String| Err(ConfigError { field, reason });
        if self.window_samples == 0 {
            return fail("window_samples", "must be at least 1".into());
        }
        if self.min_sample_bytes == 0 {
            return fail("min_sample_bytes", "must be at least 1".into());
        }
        if !(self.shift_ratio.is_finite() && self.shift_ratio > 1.0) {
            return fail("shift_ratio", format!("must be finite and > 1, got {}", self.shift_ratio));
        }
        for (field, k) in
            [("drop_confirm_samples", self.drop_confirm_samples), ("rise_confirm_samples", self.rise_confirm_samples)]
        {
            if k == 0 || k >= self.window_samples {
                return fail(field, format!("must be in 1..window_samples ({}), got {k}", self.window_samples));
            }
        }
        if !(self.srtt_gain > 0.0 && self.srtt_gain <= 1.0) {
            return fail("srtt_gain", format!("must be in (0, 1], got {}", self.srtt_gain));
        }
        if self.rtt_window_samples == 0 {
            return fail("rtt_window_samples", "must be at least 1".into());
        }
        if !(self.assumed_rtt_ms.is_finite() && self.assumed_rtt_ms >= 0.0) {
            return fail("assumed_rtt_ms", format!("must be finite and >= 0, got {}", self.assumed_rtt_ms));
        }
        if !(self.probe_target_ms.is_finite() && self.probe_target_ms > 0.0) {
            return fail("probe_target_ms", format!("must be finite and > 0, got {}", self.probe_target_ms));
        }
        for (field, v) in [("inflation_ms", self.inflation_ms), ("inflation_ratio", self.inflation_ratio)] {
            if !(v.is_finite() && v >= 0.0) {
                return fail(field, format!("must be finite and >= 0, got {v}"));
            }
        }
        if self.probe_count == 0 {
            return fail("probe_count", "must be at least 1".into());
        }
        if self.probe_max_bytes < self.min_sample_bytes {
            return fail(
                "probe_max_bytes",
                format!(
                    "must be >= min_sample_bytes ({}) or probes would be ignored, got {}",
                    self.min_sample_bytes, self.probe_max_bytes
                ),
            );
        }
        if !(self.min_sample_bytes..=self.probe_max_bytes).contains(&self.probe_initial_bytes) {
            return fail(
                "probe_initial_bytes",
                format!(
                    "must be within min_sample_bytes..=probe_max_bytes ({}..={}), got {}",
                    self.min_sample_bytes, self.probe_max_bytes, self.probe_initial_bytes
                ),
            );
        }
        Ok(())
    }
}
