//! The controller's decisions, as pure functions of their inputs.

use std::time::Duration;

use tandem_bandwidth_probe::{Estimator, ProbePlan};
use tandem_codec::Coding;
use tandem_planner::{AccuracyFloor, LinkState, Plan, PlanCost, Profiles};

use crate::ledger::FrameTiming;
use crate::types::{Origin, PlanChoice};

/// What the controller should do on a tick.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing now.
    Wait,
    /// Ask the link for an active probe.
    Probe(ProbePlan),
    /// Ask the planner about this link state.
    Plan(LinkState),
}

/// The next step at `now`: nothing while the link is down or a failed swap holds re-planning
/// off; a probe when the estimate is missing or stale and none is running; else re-plan at the
/// current estimate (a stale one still counts while its probe runs).
pub fn next_step(estimator: &Estimator, now: Duration, link_up: bool, probing: bool, held: bool) -> Step {
    if !link_up {
        return Step::Wait;
    }
    if estimator.needs_probe(now) && !probing {
        return Step::Probe(estimator.probe_plan());
    }
    if held {
        return Step::Wait;
    }
    match estimator.estimate(now) {
        Some(e) => Step::Plan(LinkState::new(e.bandwidth_bps, e.rtt_ms)),
        None => Step::Wait,
    }
}

/// Whether re-planning is held off at `now`: a failed swap holds it until `hold_until`, and a
/// swap is not followed by another within `min_dwell` (estimates on a bursty link swing across
/// a crossover faster than the planner's margins can absorb; a swap costs a model load on both
/// sides). A floor change by the operator bypasses both.
pub fn held(now: Duration, hold_until: Option<Duration>, last_swap: Option<Duration>, min_dwell: Duration) -> bool {
    hold_until.is_some_and(|h| now < h) || last_swap.is_some_and(|t| now < t + min_dwell)
}

/// The data plane's choice for a planner plan (`None` if the coding is unknown to this build).
pub fn choice_of(plan: &Plan) -> Option<PlanChoice> {
    let coding = match &plan.coding {
        Some(c) => c.parse::<Coding>().ok()?,
        None => Coding::F32,
    };
    Some(PlanChoice { model_id: plan.model_id, point: plan.point, coding })
}

/// What the profiles, uncalibrated, say a finished frame should have cost: its plan's model,
/// point and coding — or the model's `end` point when it ran locally (a local plan, or the
/// fallback while the link was down). `None` if the profiles do not know the choice.
pub fn profiled_cost(profiles: &Profiles, t: &FrameTiming) -> Option<PlanCost> {
    let model = profiles.model(t.plan.choice.model_id)?;
    match t.origin {
        Origin::Local => model.points.iter().find(|p| p.is_end()).map(|p| PlanCost::new(p, None)),
        Origin::Edge => {
            let point = model.point(t.plan.choice.point).filter(|p| !p.is_end())?;
            let coding = point.coding(&t.plan.choice.coding.to_string())?;
            Some(PlanCost::new(point, Some(coding)))
        }
        // Never sent to the controller (the ledger skips them): no profile matches a rerun.
        Origin::RerunLocal => None,
    }
}

/// Whether a finished frame of `epoch` is past the warm-up: `seen` is (newest epoch, frames of
/// it so far), updated here. Frames of an older epoch, still finishing after a swap, have
/// already been counted past their warm-up.
pub fn warmed_up(seen: &mut (u32, u32), epoch: u32, warmup: u32) -> bool {
    match epoch.cmp(&seen.0) {
        std::cmp::Ordering::Greater => {
            *seen = (epoch, 1);
            warmup == 0
        }
        std::cmp::Ordering::Equal => {
            seen.1 = seen.1.saturating_add(1);
            seen.1 > warmup
        }
        std::cmp::Ordering::Less => true,
    }
}

/// Parse a floor as typed at the control endpoint: `0.92` (absolute) or `loss=0.018`.
pub fn parse_floor(text: &str) -> Option<AccuracyFloor> {
    let t = text.trim();
    let (loss, v) = match t.strip_prefix("loss=") {
        Some(v) => (true, v),
        None => (false, t),
    };
    let v: f64 = v.trim().parse().ok()?;
    if !(0.0..=1.0).contains(&v) {
        return None;
    }
    Some(if loss { AccuracyFloor::MaxLoss(v) } else { AccuracyFloor::Absolute(v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_first_then_plans() {
        let mut e = Estimator::default();
        let t = Duration::from_secs(1);
        assert_eq!(next_step(&e, t, false, false, false), Step::Wait);
        assert!(matches!(next_step(&e, t, true, false, false), Step::Probe(_)));
        assert_eq!(next_step(&e, t, true, true, false), Step::Wait);
        e.observe(100_000, Duration::from_millis(80), t);
        assert!(matches!(next_step(&e, t, true, false, false), Step::Plan(_)));
        assert_eq!(next_step(&e, t, true, false, true), Step::Wait);
        assert!(matches!(next_step(&e, t + Duration::from_secs(60), true, false, false), Step::Probe(_)));
    }

    #[test]
    fn holds() {
        let s = Duration::from_secs;
        assert!(!held(s(10), None, None, s(2)));
        assert!(held(s(10), Some(s(11)), None, s(2)));
        assert!(held(s(10), None, Some(s(9)), s(2)));
        assert!(!held(s(11), Some(s(11)), Some(s(9)), s(2)));
    }

    #[test]
    fn the_first_frames_of_each_epoch_are_warm_up() {
        let mut seen = (0, 0);
        let got: Vec<bool> = [1, 1, 1, 1, 2, 1, 2, 2, 2].iter().map(|&e| warmed_up(&mut seen, e, 3)).collect();
        assert_eq!(got, [false, false, false, true, false, true, false, false, true]);
        let mut none = (0, 0);
        assert!(warmed_up(&mut none, 5, 0));
    }

    #[test]
    fn floors_parse() {
        assert_eq!(parse_floor("0.9"), Some(AccuracyFloor::Absolute(0.9)));
        assert_eq!(parse_floor(" loss=0.018\n"), Some(AccuracyFloor::MaxLoss(0.018)));
        assert_eq!(parse_floor("92"), None);
        assert_eq!(parse_floor("x"), None);
    }
}
