//! Bandwidth and RTT estimation for tandem's controller — pure, with the clock injected.
//!
//! The link actor times every frame it sends and hands the numbers to an [`Estimator`]; the
//! controller asks it for an [`Estimate`] to feed the planner's `LinkState`, and for a
//! [`ProbePlan`] when [`Estimator::needs_probe`] says the passive samples are missing or stale.
//! Nothing here sleeps, reads a clock or touches a socket: every call takes the time as a
//! `Duration` since an origin of the caller's choosing (`Instant::now() - start` in the runtime, a
//! scripted value in tests), so behaviour over time is tested without waiting.
//!
//! # Layout
//!
//! - [`config`]: [`Config`] (serde, TOML, documented defaults) and its validation.
//! - [`estimator`]: [`Estimator`], [`Estimate`], [`ProbePlan`].
//!
//! # Method, and why
//!
//! - **Samples.** A transfer of `bytes` in `duration` (first byte sent → receipt acknowledged)
//!   gives `bytes·8 / (duration − min RTT)`: the serialisation rate, which is what the planner's
//!   `bytes·8/bandwidth + RTT` latency model needs. Transfers below a byte threshold give no
//!   throughput sample — their duration is mostly RTT — but still refine the RTT.
//! - **Harmonic mean over a sliding window** (last N samples, none older than a maximum age).
//!   The harmonic mean of rates is the rate at which equal-sized transfers would have gone: it
//!   is dominated by slow samples, so it is conservative on bursty links (FESTIVE and other
//!   adaptive-streaming estimators use it for the same reason) and a few fast bursts cannot
//!   talk the planner into offloading onto a link that mostly cannot carry it. An EWMA of rates
//!   was not chosen: one 10× burst pulls it up by 9·α of the rate, one 10× dip down by only 0.9·α.
//! - **Level shifts.** A window average lags a step change by ~N/2 samples. When the newest 2
//!   samples all lie more than 2× below the mean of the older ones (3 samples and 2× above, for a
//!   rise) the older samples are dropped, so a 10 → 1 Mbit/s drop shows within 2 samples. Drops are
//!   confirmed sooner than rises because over-estimating bandwidth is the costlier error.
//! - **RTT**: smoothed as an EWMA (like TCP's SRTT) for the estimate; the minimum over recent
//!   samples (the propagation floor) is what is subtracted from transfer durations.
//! - **Staleness.** With no throughput sample for a while (the link idle, or only small frames
//!   flowing — the common case once a heavily pruned split is chosen) the estimate is kept, with
//!   its age, and [`Estimator::needs_probe`] turns true; [`Estimator::probe_plan`] sizes a burst to
//!   last ~20 ms at the last estimate (a burst holds up the frames queued behind it).
//! - **Delay trigger.** Waiting for staleness makes a plan that sends small frames blind to a
//!   bandwidth drop for up to `stale_after_ms`. But a small frame's round trip grows by its own
//!   serialisation time when the link slows down (300 bytes: 0.24 ms at 10 Mbit/s, 2.4 ms at 1), so
//!   a run of RTT samples well above the minimum ([`Config::inflation_ms`]) asks for a probe at
//!   once — at most once per [`Config::inflation_probe_gap_ms`]. Probes can then be rare when
//!   nothing changes, which matters on a slow link where each one takes link time from frames.

pub mod config;
pub mod estimator;

pub use config::{Config, ConfigError};
pub use estimator::{Estimate, Estimator, MAX_RTT_SHARE, ProbePlan};
