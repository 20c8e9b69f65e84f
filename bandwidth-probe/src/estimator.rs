//! The estimator: samples in, [`Estimate`] and probe advice out. Time is whatever `Duration` since
//! an origin the caller picks; nothing here reads a clock.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};

/// At most this share of a transfer's duration is attributed to RTT when `subtract_rtt` is on, so
/// a transfer that was almost all round trip (or met a stale, too-high minimum RTT) counts at most
/// 4× its naive rate instead of dividing by ~0.
pub const MAX_RTT_SHARE: f64 = 0.75;

/// What the link offers, as far as the samples tell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Harmonic mean of the throughput samples in the window, bits per second.
    pub bandwidth_bps: f64,
    /// Smoothed RTT in milliseconds; [`Config::assumed_rtt_ms`] until one is measured.
    pub rtt_ms: f64,
    /// Whether `rtt_ms` comes from measurements.
    pub rtt_measured: bool,
    /// Throughput samples behind `bandwidth_bps`.
    pub samples: usize,
    /// Time since the newest throughput sample.
    pub age: Duration,
}

/// A suggested active probe: send `count` bursts of `burst_bytes` (each timed like a frame and
/// fed back through [`Estimator::observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbePlan {
    pub burst_bytes: u64,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: Duration,
    value: f64,
}

/// Passive bandwidth and RTT estimator (see the crate docs for the method).
#[derive(Debug, Clone)]
pub struct Estimator {
    config: Config,
    /// Throughput samples (bit/s), oldest first; at most `window_samples`.
    throughput: VecDeque<Sample>,
    /// RTT samples (ms), oldest first; at most `rtt_window_samples`. Only their minimum is used.
    rtts: VecDeque<Sample>,
    srtt_ms: Option<f64>,
    /// Small transfers whose round trip waits for a rate to price it (see [`Suspect`]): late
    /// ones of the delay trigger, and any taken before the first bandwidth sample.
    suspects: Vec<Suspect>,
    /// Inflated small transfers in a row since the newest throughput sample: the trigger.
    inflated_run: usize,
}

/// A small transfer whose round trip is only known once the bandwidth is: one taken before any
/// bandwidth sample, or an inflated one (see [`Config::inflation_ms`]) — if the link slowed
/// down, most of its extra time was serialisation at the new rate, and charging it to the RTT
/// would inflate every later prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Suspect {
    bits: f64,
    duration_ms: f64,
    at: Duration,
}

/// Suspects held at most; older ones are taken as they are.
const MAX_SUSPECTS: usize = 64;

impl Default for Estimator {
    fn default() -> Self {
        // The default config is valid (checked by a unit test), so no validation is needed here.
        Self::with_valid_config(Config::default())
    }
}

impl Estimator {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    fn with_valid_config(config: Config) -> Self {
        Self {
            throughput: VecDeque::with_capacity(config.window_samples + 1),
            rtts: VecDeque::with_capacity(config.rtt_window_samples + 1),
            srtt_ms: None,
            suspects: Vec::new(),
            inflated_run: 0,
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Forget every sample (e.g. after reconnecting to another edge).
    pub fn reset(&mut self) {
        self.throughput.clear();
        self.rtts.clear();
        self.srtt_ms = None;
        self.suspects.clear();
        self.inflated_run = 0;
    }

    /// A transfer of `bytes` that took `duration` (first byte sent → receipt acknowledged),
    /// finishing at `at`.
    ///
    /// When the acknowledgement is the edge's inference result rather than a bare receipt, pass
    /// the round trip *less* the edge's reported decode and inference time (`InferResult` carries
    /// both), so that edge compute is not mistaken for a slow link. A probe's `ProbeReply` is a
    /// bare receipt and needs no correction.
    ///
    /// Transfers below [`Config::min_sample_bytes`] and zero-duration ones give no throughput
    /// sample; small ones with a duration become RTT samples instead
    /// (if [`Config::rtt_from_small_transfers`]).
    pub fn observe(&mut self, bytes: u64, duration: Duration, at: Duration) {
        if duration.is_zero() {
            return;
        }
        let duration_ms = duration.as_secs_f64() * 1e3;
        let bits = bytes as f64 * 8.0;
        if bytes < self.config.min_sample_bytes {
            if self.config.rtt_from_small_transfers {
                let rtt_ms = self.rtt_of(bits, duration_ms);
                let c = &self.config;
                if self.throughput.is_empty() {
                    // No rate yet, so no way to tell serialisation from round trip: a 2 kB
                    // frame on a 1 Mbit/s link would count as a 20 ms RTT. Held until one is
                    // known (the first probe).
                    self.hold(Suspect { bits, duration_ms, at });
                    return;
                }
                let inflated = c.inflation_confirm_samples > 0
                    && self.min_rtt_ms().is_some_and(|min| rtt_ms > min + c.inflation_ms.max(c.inflation_ratio * min));
                if inflated {
                    self.hold(Suspect { bits, duration_ms, at });
                    self.inflated_run += 1;
                } else {
                    // The run is broken: the late ones were noise (or were explained by a new
                    // estimate), and count as they are now — unless a probe's samples are still
                    // coming in and disagree (a drop not yet confirmed).
                    if self.window_agrees() {
                        self.settle_suspects(at);
                    }
                    self.inflated_run = 0;
                    self.push_rtt(rtt_ms, at);
                }
            }
            return;
        }
        self.throughput_sample(bits, duration_ms, self.min_rtt_ms(), at);
    }

    /// A probe burst of `bytes` that took `duration` and included the round trip `rtt`: its own
    /// ping's for a burst timed from its first byte, zero for one timed from the previous burst's
    /// receipt (its serialisation alone), `None` if unknown (the minimum RTT is used, as for
    /// frames). The minimum over recent samples would be wrong for a probe after the path got
    /// longer, and a rate computed with it too low. Bursts below [`Config::min_sample_bytes`]
    /// are ignored.
    pub fn observe_burst(&mut self, bytes: u64, duration: Duration, rtt: Option<Duration>, at: Duration) {
        if duration.is_zero() || bytes < self.config.min_sample_bytes {
            return;
        }
        let rtt_ms = rtt.map(|r| r.as_secs_f64() * 1e3).or_else(|| self.min_rtt_ms());
        self.throughput_sample(bytes as f64 * 8.0, duration.as_secs_f64() * 1e3, rtt_ms, at);
    }

    fn throughput_sample(&mut self, bits: f64, duration_ms: f64, rtt_ms: Option<f64>, at: Duration) {
        let transfer_ms = match rtt_ms {
            Some(rtt) if self.config.subtract_rtt => (duration_ms - rtt).max(duration_ms * (1.0 - MAX_RTT_SHARE)),
            _ => duration_ms,
        };
        self.push_throughput(bits * 1e3 / transfer_ms, at);
    }

    /// An explicit round-trip measurement (a ping, or a probe's echo).
    pub fn observe_rtt(&mut self, rtt: Duration, at: Duration) {
        self.push_rtt(rtt.as_secs_f64() * 1e3, at);
    }

    /// The current estimate, or `None` before the first throughput sample. An old estimate is
    /// still returned (see [`Estimate::age`]); [`Estimator::needs_probe`] says when to refresh it.
    pub fn estimate(&self, now: Duration) -> Option<Estimate> {
        let bandwidth_bps = self.bandwidth_bps()?;
        let newest = self.throughput.back()?;
        Some(Estimate {
            bandwidth_bps,
            rtt_ms: self.srtt_ms.unwrap_or(self.config.assumed_rtt_ms),
            rtt_measured: self.srtt_ms.is_some(),
            samples: self.throughput.len(),
            age: now.saturating_sub(newest.at),
        })
    }

    /// Whether the link should be probed: no throughput sample yet, none for
    /// [`Config::stale_after_ms`] (the link is idle, or only small frames flow), or the delay
    /// trigger fired ([`Config::inflation_ms`]: small transfers' round trips grew, as they do
    /// when the link slows down under them).
    pub fn needs_probe(&self, now: Duration) -> bool {
        let c = &self.config;
        match self.throughput.back() {
            None => true,
            Some(newest) => {
                let age = now.saturating_sub(newest.at);
                age >= Duration::from_millis(c.stale_after_ms)
                    || (c.inflation_confirm_samples > 0
                        && self.inflated_run >= c.inflation_confirm_samples
                        && age >= Duration::from_millis(c.inflation_probe_gap_ms))
            }
        }
    }

    /// Size of a probe: bursts lasting about [`Config::probe_target_ms`] (and at least four RTTs,
    /// so the RTT does not dominate) at the current estimate, never below
    /// [`Config::min_sample_bytes`] (it would be ignored) nor above [`Config::probe_max_bytes`].
    ///
    /// After the delay trigger the rate the late frames imply (their bits over their time beyond
    /// the minimum RTT) is used when it is lower: sized for the old rate, a burst on a link that
    /// just dropped tenfold would hold the frames behind it ten times longer than meant.
    pub fn probe_plan(&self) -> ProbePlan {
        let c = &self.config;
        let rtt_ms = self.srtt_ms.unwrap_or(c.assumed_rtt_ms);
        let target_ms = c.probe_target_ms.max(4.0 * rtt_ms);
        let rate = match (self.bandwidth_bps(), self.implied_by_suspects()) {
            (Some(est), Some(implied)) => Some(est.min(implied)),
            (est, implied) => est.or(implied),
        };
        let wanted = rate.map_or(c.probe_initial_bytes as f64, |bps| bps * target_ms / 8e3);
        // `as` saturates (and maps NaN to 0), and the clamp bounds are ordered by validation.
        let burst_bytes = (wanted as u64).clamp(c.min_sample_bytes, c.probe_max_bytes);
        ProbePlan { burst_bytes, count: c.probe_count }
    }

    /// The rate at which the late small transfers of a delay trigger would have gone, if all
    /// their time beyond the minimum RTT was serialisation (harmonic mean); `None` without them.
    fn implied_by_suspects(&self) -> Option<f64> {
        if self.inflated_run == 0 {
            return None;
        }
        let min = self.min_rtt_ms()?;
        let late = &self.suspects[self.suspects.len().saturating_sub(self.inflated_run)..];
        let rates: Vec<Sample> = late
            .iter()
            .filter(|s| s.duration_ms > min)
            .map(|s| Sample { at: s.at, value: s.bits * 1e3 / (s.duration_ms - min) })
            .collect();
        harmonic_mean(rates.iter())
    }

    fn bandwidth_bps(&self) -> Option<f64> {
        harmonic_mean(self.throughput.iter())
    }

    fn min_rtt_ms(&self) -> Option<f64> {
        self.rtts.iter().map(|s| s.value).min_by(f64::total_cmp)
    }

    fn push_rtt(&mut self, rtt_ms: f64, at: Duration) {
        let g = self.config.srtt_gain;
        self.srtt_ms = Some(match self.srtt_ms {
            None => rtt_ms,
            Some(srtt) => (1.0 - g) * srtt + g * rtt_ms,
        });
        push_bounded(&mut self.rtts, Sample { at, value: rtt_ms }, self.config.rtt_window_samples);
        forget_older(&mut self.rtts, at, self.config.max_sample_age_ms);
    }

    /// A small transfer's round trip: its duration less its serialisation at the estimate.
    fn rtt_of(&self, bits: f64, duration_ms: f64) -> f64 {
        let serialisation_ms = self.bandwidth_bps().map_or(0.0, |bps| bits * 1e3 / bps);
        (duration_ms - serialisation_ms).max(0.0)
    }

    /// Hold back a small transfer's RTT. When full, the oldest is charged as it is — or, before
    /// any rate is known (when it would be charged its whole duration), dropped.
    fn hold(&mut self, s: Suspect) {
        if self.suspects.len() == MAX_SUSPECTS {
            let oldest = self.suspects.remove(0);
            if !self.throughput.is_empty() {
                self.push_rtt(self.rtt_of(oldest.bits, oldest.duration_ms), s.at);
            }
        }
        self.suspects.push(s);
    }

    /// Charge the held suspects to the RTT at the current bandwidth estimate, as samples taken
    /// `at` (they are pushed now, after newer ones, so their own times would be out of order).
    fn settle_suspects(&mut self, at: Duration) {
        for s in std::mem::take(&mut self.suspects) {
            self.push_rtt(self.rtt_of(s.bits, s.duration_ms), at);
        }
    }

    /// Whether every throughput sample in the window lies within `shift_ratio` of the estimate:
    /// no level shift is half-way through being confirmed.
    fn window_agrees(&self) -> bool {
        let r = self.config.shift_ratio;
        self.bandwidth_bps().is_some_and(|est| self.throughput.iter().all(|s| s.value * r >= est && s.value <= est * r))
    }

    fn push_throughput(&mut self, bps: f64, at: Duration) {
        push_bounded(&mut self.throughput, Sample { at, value: bps }, self.config.window_samples);
        forget_older(&mut self.throughput, at, self.config.max_sample_age_ms);
        self.restart_on_level_shift();
        self.inflated_run = 0;
        // Once every sample in the window agrees with the estimate (a drop confirmed, or no
        // change), the suspects are re-priced at it: after a drop they are ordinary round trips.
        // While a shift is still unconfirmed they wait for the next sample.
        if self.window_agrees() {
            self.settle_suspects(at);
        }
    }

    /// If the newest few samples all sit beyond `shift_ratio` of the older ones, the link changed:
    /// keep only the new level instead of averaging across the change.
    fn restart_on_level_shift(&mut self) {
        let ratio = self.config.shift_ratio;
        let checks = [(self.config.drop_confirm_samples, true), (self.config.rise_confirm_samples, false)];
        for (k, drop) in checks {
            let n = self.throughput.len();
            if n <= k {
                continue;
            }
            let Some(reference) = harmonic_mean(self.throughput.range(..n - k)) else {
                continue;
            };
            let mut recent = self.throughput.range(n - k..);
            let shifted = if drop {
                recent.all(|s| s.value * ratio < reference)
            } else {
                recent.all(|s| s.value > reference * ratio)
            };
            if shifted {
                self.throughput.drain(..n - k);
                return;
            }
        }
    }
}

fn push_bounded(samples: &mut VecDeque<Sample>, sample: Sample, cap: usize) {
    samples.push_back(sample);
    while samples.len() > cap {
        samples.pop_front();
    }
}

/// Drop samples more than `max_age_ms` older than `now` (never the newest).
fn forget_older(samples: &mut VecDeque<Sample>, now: Duration, max_age_ms: u64) {
    let cutoff = now.saturating_sub(Duration::from_millis(max_age_ms));
    while samples.len() > 1 && samples.front().is_some_and(|s| s.at < cutoff) {
        samples.pop_front();
    }
}

/// n / Σ 1/xᵢ; `None` for no samples. Samples are positive and finite by construction.
fn harmonic_mean<'a>(samples: impl Iterator<Item = &'a Sample>) -> Option<f64> {
    let (n, inverse_sum) = samples.fold((0usize, 0.0f64), |(n, sum), s| (n + 1, sum + 1.0 / s.value));
    (n > 0).then(|| n as f64 / inverse_sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn harmonic_mean_is_dominated_by_the_slow_samples() {
        let s = |value| Sample { at: Duration::ZERO, value };
        let samples = [s(10.0), s(1.0)];
        let hm = harmonic_mean(samples.iter()).expect("non-empty");
        assert!((hm - 20.0 / 11.0).abs() < 1e-12);
        assert_eq!(harmonic_mean([].iter()), None);
    }
}
