//! Where each regime wins: the planner's choice over device speed and bandwidth.
//!
//! A measured reproduction answers the question for one device. Whether a mid-network split
//! *can* win on a series — and on how weak a board — is a question for the planner: the same
//! profiles with the device made `k` times slower still ([`Profiles::device_slowed`]), priced
//! over a range of bandwidths. Each cell names the regime the planner picks (offload the input,
//! split mid-network, all local) and, for a split, how much faster it is than the unpruned
//! model's best plan there (its best split or JPEG input offload or local, any coding); where
//! another regime wins, how much slower the fastest mid-network split is — how far splits are
//! from winning.
//!
//! [`split_needs`] turns "how far" into the term to change: for each point, what the request
//! of its fastest plan would have to code to for that plan to win — or that its compute alone
//! (head, tail, coding, round trip) already takes longer than the planner's choice, so that no
//! coding can make it win.

use std::fmt::Write as _;

use tandem_planner::units::{format_bandwidth, format_ratio};
use tandem_planner::{
    AccuracyFloor, Baseline, INPUT_POINT, LinkState, Plan, PlanError, Profiles, baseline, ranked_plans,
};

use crate::compare::ratio;
use crate::table::Table;

/// What a plan does with the network.
#[derive(Clone, Debug, PartialEq)]
pub enum Regime {
    /// Sends the input, the edge runs the whole model.
    Input,
    /// Runs a head on the device and sends the tensor at this point.
    Split { point: String },
    /// Runs everything on the device.
    Local,
}

impl Regime {
    pub fn of(plan: &Plan) -> Regime {
        if plan.is_local() {
            Regime::Local
        } else if plan.point_name == INPUT_POINT {
            Regime::Input
        } else {
            Regime::Split { point: plan.point_name.clone() }
        }
    }
}

/// The planner's choice at one device speed and bandwidth.
#[derive(Clone, Debug, PartialEq)]
pub struct RegimeCell {
    pub link: LinkState,
    /// `None` when no plan meets the floor.
    pub chosen: Option<Plan>,
    /// The unpruned model's best plan at the same link (any point and coding).
    pub unpruned: Option<Plan>,
    /// The fastest plan above the floor that splits mid-network (any member, point and coding).
    pub best_split: Option<Plan>,
}

impl RegimeCell {
    pub fn regime(&self) -> Option<Regime> {
        self.chosen.as_ref().map(Regime::of)
    }

    /// Unpruned best ÷ chosen, end to end.
    pub fn speedup(&self) -> Option<f64> {
        Some(ratio(self.unpruned.as_ref()?.predicted.total_ms, self.chosen.as_ref()?.predicted.total_ms))
    }

    /// The fastest split ÷ chosen, end to end (1 when the split is the choice).
    pub fn split_slowdown(&self) -> Option<f64> {
        Some(ratio(self.best_split.as_ref()?.predicted.total_ms, self.chosen.as_ref()?.predicted.total_ms))
    }
}

/// One device speed over every bandwidth.
#[derive(Clone, Debug, PartialEq)]
pub struct RegimeRow {
    /// How much slower than the profiles' device.
    pub factor: f64,
    /// The device's cumulative emulated slowdown (its profile's, times `factor`).
    pub slowdown: f64,
    pub cells: Vec<RegimeCell>,
}

/// The planner's choices for the device `factors` times slower, at each of `bandwidths_bps`.
pub fn regime_map(
    profiles: &Profiles,
    floor: AccuracyFloor,
    rtt_ms: f64,
    factors: &[f64],
    bandwidths_bps: &[f64],
) -> Result<Vec<RegimeRow>, PlanError> {
    factors
        .iter()
        .map(|&factor| {
            let slowed = profiles.device_slowed(factor)?;
            let cells = bandwidths_bps
                .iter()
                .map(|&b| {
                    let link = LinkState::new(b, rtt_ms);
                    // Every feasible plan, fastest first: the first is the planner's choice.
                    let ranked = ranked_plans(&slowed, &link, floor, usize::MAX);
                    RegimeCell {
                        link,
                        chosen: ranked.first().cloned(),
                        unpruned: baseline(&slowed, &link, floor, Baseline::OriginalCoded),
                        best_split: ranked.into_iter().find(|p| matches!(Regime::of(p), Regime::Split { .. })),
                    }
                })
                .collect();
            Ok(RegimeRow { factor, slowdown: slowed.device().emulated_slowdown.unwrap_or(factor), cells })
        })
        .collect()
}

/// The map as a markdown table (rows: device speed, columns: bandwidth), with a line saying
/// where a mid-network split is chosen. A cell of another regime gives, in brackets, how much
/// slower the fastest split would be.
pub fn regime_table(rows: &[RegimeRow]) -> String {
    let Some(first) = rows.first() else { return String::new() };
    let mut t = Table::new(
        std::iter::once("device".to_string()).chain(first.cells.iter().map(|c| format_bandwidth(c.link.bandwidth_bps))),
    );
    for row in rows {
        let split_gap = |c: &RegimeCell| {
            c.split_slowdown().map(|s| format!(" (split {} slower)", format_ratio(s))).unwrap_or_default()
        };
        let cells = row.cells.iter().map(|c| match c.chosen.as_ref() {
            None => "infeasible".to_string(),
            Some(p) => match Regime::of(p) {
                Regime::Input => format!("input {}{}", p.coding.as_deref().unwrap_or(""), split_gap(c)),
                Regime::Local => format!("local{}", split_gap(c)),
                Regime::Split { point } => format!(
                    "**{point}** `{}` {}",
                    p.model_name,
                    c.speedup().map(|s| format!("({})", format_ratio(s))).unwrap_or_default()
                ),
            },
        });
        t.row(std::iter::once(format!("×{} (R = {})", row.factor, format_r(row.slowdown))).chain(cells));
    }
    let mut md = t.to_string();
    let splits: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let at: Vec<String> = r
                .cells
                .iter()
                .filter(|c| matches!(c.regime(), Some(Regime::Split { .. })))
                .map(|c| format_bandwidth(c.link.bandwidth_bps))
                .collect();
            (!at.is_empty()).then(|| format!("×{} at {}", r.factor, at.join(", ")))
        })
        .collect();
    let _ = writeln!(
        md,
        "\n{}",
        if splits.is_empty() {
            "No mid-network split is chosen anywhere on this map; in brackets, how much slower the fastest one is."
                .to_string()
        } else {
            format!("A mid-network split is chosen for a device {}.", splits.join("; "))
        }
    );
    // Where a split comes closest without winning: the split to look at.
    let closest = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(move |c| (r, c)))
        .filter(|(_, c)| !matches!(c.regime(), Some(Regime::Split { .. })))
        .filter_map(|(r, c)| Some((r, c, c.split_slowdown()?, c.best_split.as_ref()?)))
        .min_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((r, c, gap, p)) = closest {
        let _ = writeln!(
            md,
            "Closest: ×{} at {}, `{}` split at {} with {} ({:.2} ms, {} slower than the chosen {:.2} ms).",
            r.factor,
            format_bandwidth(c.link.bandwidth_bps),
            p.model_name,
            p.point_name,
            p.coding.as_deref().unwrap_or("-"),
            p.predicted.total_ms,
            format_ratio(gap),
            c.chosen.as_ref().map_or(f64::NAN, |p| p.predicted.total_ms)
        );
    }
    md
}

/// What the fastest plan that splits at one point would need to beat the planner's choice.
#[derive(Clone, Debug, PartialEq)]
pub enum BreakEven {
    /// It is the planner's choice.
    Wins,
    /// It would win if its request (frame header included) coded to fewer than `max_bytes`
    /// bytes; it codes to `bytes`.
    Bytes { bytes: f64, max_bytes: f64 },
    /// Everything but the request's transfer — device and edge compute, coding, the round trip
    /// and the result — already takes `fixed_ms`, no less than the chosen plan's `chosen_ms`:
    /// compute dominates, and no coding makes it win.
    Compute { fixed_ms: f64, chosen_ms: f64 },
}

impl BreakEven {
    /// `split` against `chosen`, both priced at `link`.
    pub fn between(split: &Plan, chosen: &Plan, link: &LinkState) -> BreakEven {
        if split.same_choice(chosen) {
            return BreakEven::Wins;
        }
        let b = split.at(link);
        let fixed_ms = b.total_ms - b.transfer_ms;
        let chosen_ms = chosen.at(link).total_ms;
        if fixed_ms >= chosen_ms {
            return BreakEven::Compute { fixed_ms, chosen_ms };
        }
        // transfer_ms = bytes · 8000 / bandwidth, so the slack buys this many bytes.
        BreakEven::Bytes { bytes: split.cost.bytes, max_bytes: (chosen_ms - fixed_ms) * link.bandwidth_bps / 8000.0 }
    }

    /// How many times smaller the request must code for the split to win: 1 when it wins, +∞
    /// when compute alone rules it out.
    pub fn shrink_needed(&self) -> f64 {
        match *self {
            BreakEven::Wins => 1.0,
            BreakEven::Bytes { bytes, max_bytes } => ratio(bytes, max_bytes),
            BreakEven::Compute { .. } => f64::INFINITY,
        }
    }
}

/// One point's break-even over bandwidth, on the profiles' device.
#[derive(Clone, Debug, PartialEq)]
pub struct PointNeeds {
    pub point: String,
    /// Per bandwidth: the fastest feasible plan splitting here and what it needs, or `None`
    /// when no plan at this point meets the floor (or nothing is chosen).
    pub cells: Vec<(LinkState, Option<(Plan, BreakEven)>)>,
}

/// For every mid-network point of the original model, in execution order: what its fastest
/// plan (any member above the floor, any coding) would need to win at each bandwidth.
pub fn split_needs(profiles: &Profiles, floor: AccuracyFloor, rtt_ms: f64, bandwidths_bps: &[f64]) -> Vec<PointNeeds> {
    let ranked: Vec<(LinkState, Vec<Plan>)> = bandwidths_bps
        .iter()
        .map(|&b| {
            let link = LinkState::new(b, rtt_ms);
            (link, ranked_plans(profiles, &link, floor, usize::MAX))
        })
        .collect();
    profiles
        .original()
        .points
        .iter()
        .filter(|p| p.name != INPUT_POINT && !p.is_end())
        .map(|p| PointNeeds {
            point: p.name.clone(),
            cells: ranked
                .iter()
                .map(|(link, plans)| {
                    let need = plans.first().and_then(|chosen| {
                        let split = plans.iter().find(|c| c.point_name == p.name && !c.is_local())?;
                        Some((split.clone(), BreakEven::between(split, chosen, link)))
                    });
                    (*link, need)
                })
                .collect(),
        })
        .collect()
}

/// The needs as a markdown table (rows: points, columns: bandwidth) and a line naming the
/// dominant term: at how many cells compute alone rules a split out, and the smallest shrink
/// that would make one win.
pub fn needs_table(needs: &[PointNeeds]) -> String {
    let Some(first) = needs.first() else { return String::new() };
    let mut t = Table::new(
        std::iter::once("point".to_string()).chain(first.cells.iter().map(|(l, _)| format_bandwidth(l.bandwidth_bps))),
    );
    for n in needs {
        let cells = n.cells.iter().map(|(_, need)| match need {
            None => "–".to_string(),
            Some((_, BreakEven::Wins)) => "**wins**".to_string(),
            Some((_, need @ BreakEven::Bytes { bytes, max_bytes })) => {
                format!("< {max_bytes:.0} B ({} less than {bytes:.0} B)", format_ratio(need.shrink_needed()))
            }
            Some((_, BreakEven::Compute { fixed_ms, chosen_ms })) => {
                format!("compute {fixed_ms:.2} ≥ {chosen_ms:.2} ms")
            }
        });
        t.row(std::iter::once(n.point.clone()).chain(cells));
    }
    let mut md = t.to_string();
    let all: Vec<(&str, &LinkState, &Plan, &BreakEven)> = needs
        .iter()
        .flat_map(|n| {
            n.cells.iter().filter_map(move |(l, need)| need.as_ref().map(|(p, b)| (n.point.as_str(), l, p, b)))
        })
        .collect();
    let compute = all.iter().filter(|c| matches!(c.3, BreakEven::Compute { .. })).count();
    let _ = write!(
        md,
        "\nCompute alone (no request at all) is slower than the chosen plan in {compute} of {} cells.",
        all.len()
    );
    let easiest = all
        .iter()
        .filter(|c| matches!(c.3, BreakEven::Bytes { .. }))
        .min_by(|a, b| a.3.shrink_needed().total_cmp(&b.3.shrink_needed()));
    if let Some((point, link, plan, need)) = easiest {
        let _ = write!(
            md,
            " The smallest change that makes a split win: `{}` at {point} coding to {} less ({}) at {}.",
            plan.model_name,
            format_ratio(need.shrink_needed()),
            plan.coding.as_deref().unwrap_or("-"),
            format_bandwidth(link.bandwidth_bps)
        );
    }
    let _ = writeln!(md);
    md
}

fn format_r(r: f64) -> String {
    if (r - r.round()).abs() < 1e-9 { format!("{r:.0}") } else { format!("{r:.1}") }
}
