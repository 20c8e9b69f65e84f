//! Online selection: the argmin of predicted latency over (series member, point, coding) above an
//! accuracy floor, the latency/accuracy Pareto frontier, and the baselines it is compared with.
//!
//! Every search here is the same exhaustive scan (`search`) under a different filter, so the
//! baselines are priced by exactly the model the planner optimises. The scan is
//! O(models × points × codings) — a few thousand candidates for VGG-16's series — and allocates only
//! for the winner, so it is cheap enough to rerun on every bandwidth update.
//!
//! # Tie-breaking
//! Candidates are totally ordered by, in turn: lower predicted total latency; higher accuracy;
//! fewer bytes sent; lower `model_id`; lower point index; coding name (the all-local choice, which
//! has none, first). `model_id` is unique, points are unique per model and codings per point, so the
//! order is strict and the result deterministic.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::latency::{Breakdown, LinkState, PlanCost};
use crate::profile::{CodingCost, ModelKind, ModelProfile, PointProfile, Profiles};

/// Slack when comparing accuracies with a floor, so that `MaxLoss(0.018)` admits a member exactly
/// 0.018 below the original despite rounding in `original − 0.018`.
pub const ACCURACY_TOLERANCE: f64 = 1e-9;

/// The lowest accuracy a plan may have. Accuracies are fractions in `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccuracyFloor {
    /// At least this accuracy (e.g. `0.92`).
    Absolute(f64),
    /// At most this far below the original model's accuracy, in the same units: `0.018` is
    /// 1.8 percentage points, the paper's pruning budget.
    MaxLoss(f64),
}

impl AccuracyFloor {
    /// The floor as an absolute accuracy for these profiles.
    pub fn min_accuracy(&self, profiles: &Profiles) -> f64 {
        match *self {
            AccuracyFloor::Absolute(a) => a,
            AccuracyFloor::MaxLoss(loss) => profiles.original().accuracy - loss,
        }
    }
}

/// Whether `accuracy` meets `min_accuracy` (with [`ACCURACY_TOLERANCE`]).
pub fn meets_floor(accuracy: f64, min_accuracy: f64) -> bool {
    accuracy >= min_accuracy - ACCURACY_TOLERANCE
}

/// A chosen (model, point, coding) with its predicted latency at the link it was chosen for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub model_id: u32,
    pub model_name: String,
    /// Partition point index (see [`PointProfile::point`]).
    pub point: u16,
    pub point_name: String,
    /// `None` exactly for the all-local plan (point `end`): nothing is sent.
    pub coding: Option<String>,
    /// Expected accuracy (fraction): the coding's measured accuracy if any, else the model's.
    pub accuracy: f64,
    /// What the prediction is made of, so the plan can be re-priced at another link state.
    pub cost: PlanCost,
    /// Prediction at the link the plan was selected or last evaluated for.
    pub predicted: Breakdown,
}

impl Plan {
    /// Predicted latency of this plan at `link`.
    pub fn at(&self, link: &LinkState) -> Breakdown {
        self.cost.at(link)
    }

    /// The plan with its prediction refreshed for `link`.
    pub fn reevaluated(&self, link: &LinkState) -> Plan {
        Plan { predicted: self.at(link), ..self.clone() }
    }

    /// Whether both plans run the same model, split and coding (predictions aside).
    pub fn same_choice(&self, other: &Plan) -> bool {
        self.model_id == other.model_id && self.point == other.point && self.coding == other.coding
    }

    /// Whether the device runs everything.
    pub fn is_local(&self) -> bool {
        !self.cost.offloads
    }
}

/// One enumerated choice, borrowed from the profiles; a [`Plan`] is only built for the winner.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    model: &'a ModelProfile,
    point: &'a PointProfile,
    coding: Option<&'a CodingCost>,
    accuracy: f64,
    cost: PlanCost,
    predicted: Breakdown,
}

impl Candidate<'_> {
    fn into_plan(self) -> Plan {
        Plan {
            model_id: self.model.model_id,
            model_name: self.model.name.clone(),
            point: self.point.point,
            point_name: self.point.name.clone(),
            coding: self.coding.map(|c| c.coding.clone()),
            accuracy: self.accuracy,
            cost: self.cost,
            predicted: self.predicted,
        }
    }

    /// The documented total order: `Less` is better.
    fn rank(&self, other: &Self) -> Ordering {
        self.predicted
            .total_ms
            .total_cmp(&other.predicted.total_ms)
            .then_with(|| other.accuracy.total_cmp(&self.accuracy))
            .then_with(|| self.cost.bytes.total_cmp(&other.cost.bytes))
            .then_with(|| self.model.model_id.cmp(&other.model.model_id))
            .then_with(|| self.point.point.cmp(&other.point.point))
            .then_with(|| self.coding.map(|c| c.coding.as_str()).cmp(&other.coding.map(|c| c.coding.as_str())))
    }
}

/// Every choice the profiles allow: each point with each of its codings, and the `end` point alone.
fn candidates<'a>(profiles: &'a Profiles, link: &'a LinkState) -> impl Iterator<Item = Candidate<'a>> + 'a {
    profiles.models().iter().flat_map(move |model| {
        model.points.iter().flat_map(move |point| {
            let codings: Box<dyn Iterator<Item = Option<&'a CodingCost>>> =
                if point.is_end() { Box::new(std::iter::once(None)) } else { Box::new(point.codings.iter().map(Some)) };
            codings.map(move |coding| {
                let cost = profiles.calibration().apply(&PlanCost::new(point, coding));
                Candidate {
                    model,
                    point,
                    coding,
                    accuracy: model.accuracy_with(coding),
                    cost,
                    predicted: cost.at(link),
                }
            })
        })
    })
}

/// The best feasible candidate passing `keep`: accuracy meets `min_accuracy` and the predicted
/// total is finite (an infinite total means the link is down for it).
fn search<'a>(
    profiles: &'a Profiles,
    link: &'a LinkState,
    min_accuracy: f64,
    keep: impl Fn(&Candidate<'a>) -> bool,
) -> Option<Plan> {
    candidates(profiles, link)
        .filter(|c| meets_floor(c.accuracy, min_accuracy) && c.predicted.total_ms.is_finite())
        .filter(|c| keep(c))
        .min_by(|a, b| a.rank(b))
        .map(Candidate::into_plan)
}

/// The lowest-latency (model, point, coding) whose accuracy meets `floor`; `None` if none does.
pub fn select_plan(profiles: &Profiles, link: &LinkState, floor: AccuracyFloor) -> Option<Plan> {
    search(profiles, link, floor.min_accuracy(profiles), |_| true)
}

/// As [`select_plan`], among the plans that keep up with a camera delivering a frame every
/// `frame_interval_ms` (their [`Breakdown::bottleneck_ms`] is no longer); if none does, the
/// plain [`select_plan`] choice. A plan that cannot keep up drops frames however low its latency.
pub fn select_sustainable(
    profiles: &Profiles,
    link: &LinkState,
    floor: AccuracyFloor,
    frame_interval_ms: f64,
) -> Option<Plan> {
    search(profiles, link, floor.min_accuracy(profiles), |c| c.predicted.bottleneck_ms() <= frame_interval_ms)
        .or_else(|| select_plan(profiles, link, floor))
}

/// The `n` best feasible plans at `link` in the documented order (the first is
/// [`select_plan`]'s choice): what the planner weighed, for an operator asking why a plan is in
/// force. Sorting every candidate is O(c log c) for a few thousand candidates; the controller
/// calls it once per swap.
pub fn ranked_plans(profiles: &Profiles, link: &LinkState, floor: AccuracyFloor, n: usize) -> Vec<Plan> {
    let min_accuracy = floor.min_accuracy(profiles);
    let mut all: Vec<Candidate<'_>> = candidates(profiles, link)
        .filter(|c| meets_floor(c.accuracy, min_accuracy) && c.predicted.total_ms.is_finite())
        .collect();
    all.sort_by(|a, b| a.rank(b));
    all.into_iter().take(n).map(Candidate::into_plan).collect()
}

/// Every choice not dominated in (latency, accuracy) at `link`, by ascending latency; accuracy
/// strictly increases along it. Of equally fast, equally accurate choices the tie-break keeps one.
/// `select_plan` with any floor returns the first frontier plan that meets it.
pub fn pareto_frontier(profiles: &Profiles, link: &LinkState) -> Vec<Plan> {
    let mut all: Vec<Candidate<'_>> = candidates(profiles, link).filter(|c| c.predicted.total_ms.is_finite()).collect();
    all.sort_by(|a, b| a.rank(b));
    let mut frontier = Vec::new();
    let mut best_accuracy = f64::NEG_INFINITY;
    for c in all {
        if c.accuracy > best_accuracy {
            best_accuracy = c.accuracy;
            frontier.push(c.into_plan());
        }
    }
    frontier
}

/// Price one specific choice (e.g. a plan forced on the command line).
pub fn evaluate(
    profiles: &Profiles,
    model_id: u32,
    point: u16,
    coding: Option<&str>,
    link: &LinkState,
) -> Result<Plan, PlanError> {
    let unknown = || PlanError::UnknownChoice { model_id, point, coding: coding.map(str::to_owned) };
    let model = profiles.model(model_id).ok_or_else(unknown)?;
    let p = model.point(point).ok_or_else(unknown)?;
    let c = match (p.is_end(), coding) {
        (true, None) => None,
        (false, Some(name)) => Some(p.coding(name).ok_or_else(unknown)?),
        _ => return Err(unknown()),
    };
    let cost = profiles.calibration().apply(&PlanCost::new(p, c));
    Ok(Candidate { model, point: p, coding: c, accuracy: model.accuracy_with(c), cost, predicted: cost.at(link) }
        .into_plan())
}

/// The reference points the paper's claims are measured against, priced from the same profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The paper's baseline (Neurosurgeon-style): the unpruned model at its best point,
    /// `input` and `end` included, sending tensors uncoded ([`CodingClass::Raw`]).
    ///
    /// [`CodingClass::Raw`]: crate::CodingClass::Raw
    OriginalUncoded,
    /// As [`Baseline::OriginalUncoded`] but with the best of all codings, lossy ones included
    /// if they meet the floor: separates what pruning buys from what coding buys.
    OriginalCoded,
    /// Offload only the input image, losslessly coded (raw or lossless, whichever is faster);
    /// the edge runs the unpruned model.
    InputOffload,
    /// Offload only the input image with the best of every coding that meets the floor, lossy
    /// ones included — with image codings profiled, what a camera does: send a JPEG and let the
    /// edge run the unpruned model.
    InputOffloadLossy,
    /// Everything on the device with the unpruned model (point `end`).
    LocalOnly,
}

impl Baseline {
    pub const ALL: [Baseline; 5] = [
        Baseline::OriginalUncoded,
        Baseline::OriginalCoded,
        Baseline::InputOffload,
        Baseline::InputOffloadLossy,
        Baseline::LocalOnly,
    ];
}

/// The plan a baseline would run at `link`. Baselines obey the same accuracy floor as the planner
/// so comparisons are like for like; only `OriginalCoded` and `InputOffloadLossy` can lose
/// accuracy (by lossy coding),
/// the others have the original's accuracy. `None` when the baseline is infeasible (the floor is
/// above the original, or for `InputOffload` the profiles have no `input` point).
pub fn baseline(profiles: &Profiles, link: &LinkState, floor: AccuracyFloor, which: Baseline) -> Option<Plan> {
    let min_accuracy = floor.min_accuracy(profiles);
    search(profiles, link, min_accuracy, |c| {
        c.model.kind == ModelKind::Original
            && match which {
                Baseline::OriginalUncoded => c.coding.is_none_or(|coding| coding.class == crate::CodingClass::Raw),
                Baseline::OriginalCoded => true,
                Baseline::InputOffload => {
                    c.point.is_input() && c.coding.is_some_and(|coding| coding.class.is_lossless())
                }
                Baseline::InputOffloadLossy => c.point.is_input() && c.coding.is_some(),
                Baseline::LocalOnly => c.point.is_end(),
            }
    })
}
