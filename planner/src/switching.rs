//! When to change plans: hysteresis, and the small stateful [`Planner`] the controller calls.
//!
//! Switching is not free (the device and edge load another model, frames in flight are drained), and
//! bandwidth estimates are noisy, so near a crossover between two plans a bare argmin would flap.
//! The rule compares the candidate with the *current plan re-priced at the current link state* —
//! not with the prediction made when the current plan was chosen — and switches only for a gain
//! above both an absolute and a relative margin, or when the current plan no longer meets the
//! accuracy floor (or can no longer finish, e.g. the link went down).

use serde::{Deserialize, Serialize};

use crate::calibration::Calibration;
use crate::error::PlanError;
use crate::latency::LinkState;
use crate::profile::Profiles;
use crate::select::{AccuracyFloor, Plan, evaluate, meets_floor, select_plan, select_sustainable};

/// Default for [`Hysteresis::margin_frac`].
pub const DEFAULT_MARGIN_FRAC: f64 = 0.10;
/// Default for [`Hysteresis::min_gain_ms`].
pub const DEFAULT_MIN_GAIN_MS: f64 = 1.0;

/// Minimum predicted improvement for a switch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hysteresis {
    /// Relative margin: the gain must exceed this fraction of the current plan's re-priced latency.
    /// Default 0.10 — larger than the ±5 % jitter of a steady link's estimate.
    pub margin_frac: f64,
    /// Absolute margin in ms, so a 0.1 ms plan does not switch for 0.02 ms. Default 1.0.
    pub min_gain_ms: f64,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self { margin_frac: DEFAULT_MARGIN_FRAC, min_gain_ms: DEFAULT_MIN_GAIN_MS }
    }
}

impl Hysteresis {
    /// No hysteresis: switch on any strict improvement (the bare argmin).
    pub const NONE: Hysteresis = Hysteresis { margin_frac: 0.0, min_gain_ms: 0.0 };

    /// Both margins must be finite and non-negative (a negative margin would switch to worse plans).
    pub fn validate(&self) -> Result<(), PlanError> {
        for (field, value) in [("margin_frac", self.margin_frac), ("min_gain_ms", self.min_gain_ms)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(PlanError::InvalidSetting { field, value });
            }
        }
        Ok(())
    }

    /// Whether to replace `current` by `candidate` at `link`, given the floor as an absolute
    /// accuracy (see [`AccuracyFloor::min_accuracy`]).
    ///
    /// Never switches to a candidate that misses the floor or cannot finish. Otherwise switches
    /// if the current plan misses the floor or cannot finish, or if
    /// `current.at(link) − candidate.at(link) > max(min_gain_ms, margin_frac · current.at(link))`.
    pub fn should_switch(&self, current: &Plan, candidate: &Plan, link: &LinkState, min_accuracy: f64) -> bool {
        if current.same_choice(candidate) {
            return false;
        }
        let candidate_ms = candidate.at(link).total_ms;
        if !meets_floor(candidate.accuracy, min_accuracy) || !candidate_ms.is_finite() {
            return false;
        }
        let current_ms = current.at(link).total_ms;
        if !meets_floor(current.accuracy, min_accuracy) || !current_ms.is_finite() {
            return true;
        }
        let threshold = self.min_gain_ms.max(self.margin_frac * current_ms);
        current_ms - candidate_ms > threshold
    }
}

/// What the controller should do after [`Planner::decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Carry on with the current plan.
    Keep,
    /// Deploy this plan (already recorded as the planner's current plan).
    Switch(Plan),
    /// No plan meets the floor at this link state; the current plan, if any, is left in place.
    /// The controller should report it (and typically keep running the current plan).
    Infeasible,
}

/// The controller's planner: immutable profiles and hysteresis, and as its only state the plan
/// currently deployed.
#[derive(Debug, Clone)]
pub struct Planner {
    profiles: Profiles,
    hysteresis: Hysteresis,
    current: Option<Plan>,
    /// When set, plans that cannot keep up with a frame this often are avoided
    /// ([`select_sustainable`]).
    frame_interval_ms: Option<f64>,
}

impl Planner {
    /// Errors if `hysteresis` is invalid (see [`Hysteresis::validate`]).
    pub fn new(profiles: Profiles, hysteresis: Hysteresis) -> Result<Self, PlanError> {
        hysteresis.validate()?;
        Ok(Self { profiles, hysteresis, current: None, frame_interval_ms: None })
    }

    /// Prefer plans that keep up with a camera delivering a frame every `ms` (see
    /// [`select_sustainable`]); a current plan that falls behind by more than the hysteresis'
    /// relative margin is replaced by one that keeps up, whatever the latency margins say. `None` (the default) ignores the frame rate. Non-finite or
    /// non-positive values are taken as `None`.
    pub fn with_frame_interval(mut self, ms: Option<f64>) -> Self {
        self.frame_interval_ms = ms.filter(|v| v.is_finite() && *v > 0.0);
        self
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    pub fn hysteresis(&self) -> Hysteresis {
        self.hysteresis
    }

    /// The plan last returned by [`Decision::Switch`] (or set by [`Planner::set_current`]), with its
    /// prediction refreshed at the last link state passed to `decide`.
    pub fn current(&self) -> Option<&Plan> {
        self.current.as_ref()
    }

    /// Override the current plan, e.g. to roll back after a switch failed to deploy, or `None` to
    /// make the next `decide` switch unconditionally.
    pub fn set_current(&mut self, plan: Option<Plan>) {
        self.current = plan;
    }

    /// Price every plan with `calibration` from now on; the current plan is re-priced at `link`
    /// so that hysteresis compares like with like.
    pub fn set_calibration(&mut self, calibration: Calibration, link: &LinkState) {
        self.profiles.set_calibration(calibration);
        if let Some(cur) = &self.current
            && let Ok(p) = evaluate(&self.profiles, cur.model_id, cur.point, cur.coding.as_deref(), link)
        {
            self.current = Some(p);
        }
    }

    /// Re-plan for `link` and `floor`. The first call always switches (if anything is feasible).
    pub fn decide(&mut self, link: &LinkState, floor: AccuracyFloor) -> Decision {
        let best = match self.frame_interval_ms {
            Some(interval) => select_sustainable(&self.profiles, link, floor, interval),
            None => select_plan(&self.profiles, link, floor),
        };
        let Some(best) = best else {
            return Decision::Infeasible;
        };
        let min_accuracy = floor.min_accuracy(&self.profiles);
        // A current plan is rescued only once it falls behind by more than the hysteresis'
        // relative margin, so that a bottleneck sitting at the frame interval does not flap.
        let slack = 1.0 + self.hysteresis.margin_frac;
        let within =
            |p: &Plan, factor: f64| self.frame_interval_ms.is_none_or(|i| p.at(link).bottleneck_ms() <= i * factor);
        let rescue = |current: &Plan| !within(current, slack) && within(&best, 1.0);
        match &mut self.current {
            Some(current) if !rescue(current) && !self.hysteresis.should_switch(current, &best, link, min_accuracy) => {
                current.predicted = current.at(link);
                Decision::Keep
            }
            _ => {
                self.current = Some(best.clone());
                Decision::Switch(best)
            }
        }
    }
}
