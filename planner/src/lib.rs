//! Online selection of (pruned model, partition point, coding) for device–edge split inference.
//!
//! Given what every member of the 2-step-pruned series costs at every partition point on the device
//! and on the edge, and what the link currently offers, pick the choice with the lowest predicted
//! end-to-end latency whose accuracy meets a floor — and decide whether it is worth switching to.
//! Everything here is a pure, deterministic function of its arguments: no I/O, no clock, no async.
//! The controller owns the runtime and only calls in; `tandem profile` writes the profiles;
//! `tandem plan`/`tandem report` read them and call the same functions.
//!
//! # Layout
//!
//! - [`profile`]: the measured inputs. A [`Profile`] (one machine, TOML via serde) lists, per series
//!   member and per partition point, compute times, tensor size and the cost of each coding.
//!   [`combine`] joins a device and an edge profile into [`Profiles`] (device-side times from one,
//!   edge-side times from the other) after checking they describe the same series;
//!   [`Profile::slowed`] derives a labelled, emulated device profile from a faster machine.
//! - [`mod@latency`]: the latency model. A choice's bandwidth-independent [`PlanCost`] priced at a
//!   [`LinkState`] gives a stage-by-stage [`Breakdown`]. Keeping the two apart lets a plan be
//!   re-priced when the link changes without going back to the profiles.
//! - [`select`]: one exhaustive scan over every candidate, filtered — [`select_plan`] (argmin above
//!   an [`AccuracyFloor`]), [`pareto_frontier`], [`evaluate`] (one given choice) and the
//!   [`baseline`]s the paper compares with — so all of them are priced identically.
//! - [`switching`]: [`Hysteresis::should_switch`] and the [`Planner`] the controller holds, whose
//!   only state is the current plan; [`Planner::decide`] returns a [`Decision`].
//! - [`calibration`]: [`Calibrator`] learns, from finished frames, how far measured compute times
//!   sit from the profiles; the resulting [`Calibration`] is carried by [`Profiles`] and applied
//!   to every candidate's cost.
//! - [`testkit`]: small profile builders for tests of the planner and the crates above it.
//! - [`inputs`]: [`ProfileSource`] and [`build_profiles`] — one profile for both sides or a
//!   device and an edge profile, the device emulated `--slowdown` times slower.
//! - [`units`]: quantities typed on the command line (`1Mbit`, `20ms`, `60s`, `90%`) → numbers
//!   (bare numbers refused), and numbers back to text.
//! - [`stats`]: [`LatencyHistogram`] and the [`Percentiles`] it reports — the one percentile
//!   implementation (HDR histogram) the ledger, the profiler and `tandem bench` share.
//! - [`error`]: [`PlanError`], for invalid or mismatched profiles; [`UnitError`] for quantities. Selection itself cannot fail:
//!   "nothing meets the floor" is `None` / [`Decision::Infeasible`].
//!
//! # Units
//! Times in milliseconds, sizes in bytes, bandwidth in bits per second, and **accuracy as a fraction
//! in `0..=1`** (so [`AccuracyFloor::MaxLoss`]`(0.018)` is 1.8 percentage points).

pub mod calibration;
pub mod error;
pub mod inputs;
pub mod latency;
pub mod profile;
pub mod select;
pub mod stats;
pub mod switching;
pub mod testkit;
pub mod units;

pub use calibration::{Calibration, Calibrator, CalibratorConfig, FrameCost};
pub use error::{PlanError, UnitError};
pub use inputs::{ProfileSource, build_profiles};
pub use latency::{Breakdown, LinkState, PlanCost, RESULT_MESSAGE_BYTES, latency};
pub use profile::{
    CodingClass, CodingCost, END_POINT, INPUT_POINT, ModelKind, ModelProfile, PointProfile, Profile, Profiles,
    Provenance, Role, combine,
};
pub use select::{
    ACCURACY_TOLERANCE, AccuracyFloor, Baseline, Plan, baseline, evaluate, meets_floor, pareto_frontier, ranked_plans,
    select_plan, select_sustainable,
};
pub use stats::{LatencyHistogram, Percentiles};
pub use switching::{Decision, Hysteresis, Planner};
