//! Device emulation: make this machine behave like a device R times slower.
//!
//! The paper measures split inference with a weak device emulated as a multiple of a fast one;
//! the planner prices that device with `Profile::slowed(R)`. For a measurement to be comparable
//! with such a prediction the runtime must be slow in the same places: the device-side work the
//! profile scales — front inference and encoding — is stretched to R times its measured
//! duration by holding the stage's thread for the difference. The thread is held, not spun, so
//! the stage's throughput drops as on a slower device while the edge process on the same box
//! keeps its cores.

use std::time::{Duration, Instant};

use crate::error::ActorError;

/// Largest factor accepted: a 1,000× slower device turns a 1 ms head into a second.
pub const MAX_SLOWDOWN: f64 = 1_000.0;

/// How much slower than this machine the emulated device is (1 = not emulated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slowdown(f64);

impl Default for Slowdown {
    fn default() -> Self {
        Slowdown::NONE
    }
}

impl Slowdown {
    /// This machine as it is.
    pub const NONE: Slowdown = Slowdown(1.0);

    /// A device `factor` times slower; `factor` must be in `[1, MAX_SLOWDOWN]` (a faster
    /// device cannot be emulated by waiting).
    pub fn new(factor: f64) -> Result<Self, ActorError> {
        if factor.is_finite() && (1.0..=MAX_SLOWDOWN).contains(&factor) {
            Ok(Slowdown(factor))
        } else {
            Err(ActorError::Config(format!("slowdown must be in [1, {MAX_SLOWDOWN}], got {factor}")))
        }
    }

    /// The factor.
    pub fn factor(self) -> f64 {
        self.0
    }

    /// The extra time a stage that took `took` here would have taken on the emulated device.
    pub fn extra(self, took: Duration) -> Duration {
        // `factor - 1` is in [0, MAX_SLOWDOWN - 1] and `took` is a stage time, so this is finite.
        took.mul_f64(self.0 - 1.0)
    }

    /// Hold the calling thread until a stage that started at `started` has taken R times as long
    /// as it has so far. Returns at once when not emulating.
    pub fn stretch(self, started: Instant) {
        if self.0 > 1.0 {
            std::thread::sleep(self.extra(started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_range_is_checked() {
        assert!(Slowdown::new(1.0).is_ok());
        assert!(Slowdown::new(10.0).is_ok());
        for bad in [0.5, 0.0, -3.0, f64::NAN, f64::INFINITY, MAX_SLOWDOWN * 2.0] {
            assert!(Slowdown::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn extra_time_makes_the_stage_r_times_longer() {
        let r = Slowdown::new(10.0).unwrap();
        assert_eq!(r.extra(Duration::from_millis(3)), Duration::from_millis(27));
        assert_eq!(Slowdown::NONE.extra(Duration::from_millis(3)), Duration::ZERO);
        assert_eq!(Slowdown::new(2.5).unwrap().extra(Duration::from_micros(400)), Duration::from_micros(600));
    }

    #[test]
    fn stretch_holds_at_least_the_extra_time() {
        // A lower bound only (sleep never returns early): not a timing assertion that can flake.
        let r = Slowdown::new(3.0).unwrap();
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        r.stretch(started);
        assert!(started.elapsed() >= Duration::from_millis(6));
    }
}
