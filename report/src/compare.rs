//! The chosen plan next to the baselines, and the paper's headline ratios.
//!
//! The paper compares 2-step pruning with "partitioning the original model without pruning (its
//! best split)": that is [`Baseline::OriginalUncoded`] here, priced by the same latency model.
//! Ratios are *reference ÷ chosen*, so `25.6` means 25.6× less.

use std::fmt::Write as _;

use tandem_planner::{AccuracyFloor, Baseline, LinkState, Plan, Profiles, baseline, select_plan};

use tandem_planner::units::{format_bandwidth, format_bytes, format_ratio};

use crate::table::{Align, Table};

/// The paper's reported reductions (abstract): transmission, computation, end-to-end latency.
pub const PAPER_TRANSMISSION: f64 = 25.6;
/// See [`PAPER_TRANSMISSION`].
pub const PAPER_COMPUTATION: f64 = 6.01;
/// See [`PAPER_TRANSMISSION`].
pub const PAPER_END_TO_END: f64 = 4.81;

/// How much better one plan is than a reference, each as reference ÷ plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratios {
    /// Bytes sent to the edge.
    pub transmission: f64,
    /// Device compute time (head up to the split).
    pub device_compute: f64,
    /// Predicted end-to-end latency.
    pub end_to_end: f64,
}

/// `reference / value`, with 0/0 = 1 and x/0 = ∞.
pub fn ratio(reference: f64, value: f64) -> f64 {
    if value == 0.0 { if reference == 0.0 { 1.0 } else { f64::INFINITY } } else { reference / value }
}

impl Ratios {
    /// `plan` compared with `reference`.
    pub fn between(plan: &Plan, reference: &Plan) -> Self {
        Self {
            transmission: ratio(reference.cost.bytes, plan.cost.bytes),
            device_compute: ratio(reference.predicted.device_ms, plan.predicted.device_ms),
            end_to_end: ratio(reference.predicted.total_ms, plan.predicted.total_ms),
        }
    }
}

/// A baseline's human name.
pub fn baseline_name(b: Baseline) -> &'static str {
    match b {
        Baseline::OriginalUncoded => "original, best split, uncoded",
        Baseline::OriginalCoded => "original, best split, coded",
        Baseline::InputOffload => "original, offload input",
        Baseline::InputOffloadLossy => "original, offload input, best lossy coding",
        Baseline::LocalOnly => "original, all on device",
    }
}

/// The planner's choice and every baseline at one link state and floor.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The link priced.
    pub link: LinkState,
    /// The floor applied to every plan.
    pub floor: AccuracyFloor,
    /// The floor as an absolute accuracy (fraction).
    pub min_accuracy: f64,
    /// Accuracy of the original model (fraction).
    pub original_accuracy: f64,
    /// 2-step: the best (model, point, coding) over the whole series; `None` if nothing meets
    /// the floor.
    pub chosen: Option<Plan>,
    /// Each of [`Baseline::ALL`], in that order.
    pub baselines: Vec<(Baseline, Option<Plan>)>,
}

impl Comparison {
    /// Select and price everything at `link` under `floor`.
    pub fn new(profiles: &Profiles, link: LinkState, floor: AccuracyFloor) -> Self {
        Self {
            link,
            floor,
            min_accuracy: floor.min_accuracy(profiles),
            original_accuracy: profiles.original().accuracy,
            chosen: select_plan(profiles, &link, floor),
            baselines: Baseline::ALL.iter().map(|&b| (b, baseline(profiles, &link, floor, b))).collect(),
        }
    }

    /// A baseline's plan, if feasible.
    pub fn baseline(&self, which: Baseline) -> Option<&Plan> {
        self.baselines.iter().find(|(b, _)| *b == which).and_then(|(_, p)| p.as_ref())
    }

    /// The paper's reference: the unpruned model at its best split, uncoded.
    pub fn reference(&self) -> Option<&Plan> {
        self.baseline(Baseline::OriginalUncoded)
    }

    /// The chosen plan against the paper's reference.
    pub fn ratios(&self) -> Option<Ratios> {
        Some(Ratios::between(self.chosen.as_ref()?, self.reference()?))
    }

    /// A plain-text table: the link and floor, the chosen plan and the baselines with their
    /// latency breakdowns, and the ratios against the unpruned best split.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ =
            writeln!(s, "link       {}, RTT {} ms", format_bandwidth(self.link.bandwidth_bps), trim(self.link.rtt_ms));
        let floor = match self.floor {
            AccuracyFloor::MaxLoss(l) => {
                format!("at most {:.2} points below the original's {:.2} %", l * 100.0, self.original_accuracy * 100.0)
            }
            AccuracyFloor::Absolute(_) => format!("absolute (original: {:.2} %)", self.original_accuracy * 100.0),
        };
        let _ = writeln!(s, "floor      accuracy >= {:.2} % ({floor})", self.min_accuracy * 100.0);
        let _ = writeln!(s);
        let mut table = Table::new([
            "plan", "model", "point", "coding", "acc %", "sent", "device", "encode", "transfer", "rtt", "decode",
            "edge", "result", "total ms",
        ]);
        for col in 4..14 {
            table = table.align(col, Align::Right);
        }
        let mut row = |label: &str, plan: Option<&Plan>| match plan {
            None => {
                table.row([label, "(nothing meets the floor)"]);
            }
            Some(p) => {
                let b = &p.predicted;
                let ms = |v: f64| format!("{v:.2}");
                table.row([
                    label.to_string(),
                    truncate(&format!("{} (#{})", p.model_name, p.model_id), 26),
                    p.point_name.clone(),
                    p.coding.as_deref().unwrap_or("-").to_string(),
                    format!("{:.2}", p.accuracy * 100.0),
                    format_bytes(p.cost.bytes),
                    ms(b.device_ms),
                    ms(b.encode_ms),
                    ms(b.transfer_ms),
                    ms(b.rtt_ms),
                    ms(b.decode_ms),
                    ms(b.edge_ms),
                    ms(b.result_ms),
                    ms(b.total_ms),
                ]);
            }
        };
        row("2-step (chosen)", self.chosen.as_ref());
        for (b, plan) in &self.baselines {
            row(baseline_name(*b), plan.as_ref());
        }
        s.push_str(&table.to_text());
        let _ = writeln!(s);
        match self.ratios() {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "vs the unpruned best split: transmission {} less, device computation {} less, end-to-end {} lower",
                    format_ratio(r.transmission),
                    format_ratio(r.device_compute),
                    format_ratio(r.end_to_end)
                );
                let _ = writeln!(
                    s,
                    "(paper, best case: {} / {} / {})",
                    format_ratio(PAPER_TRANSMISSION),
                    format_ratio(PAPER_COMPUTATION),
                    format_ratio(PAPER_END_TO_END)
                );
            }
            None => {
                let _ =
                    writeln!(s, "no ratios: the chosen plan or the unpruned reference is infeasible under this floor");
            }
        }
        s
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).collect::<String>() + "…" }
}

/// One line on where the times come from, naming an emulated device as such.
pub fn describe_sides(profiles: &Profiles) -> String {
    let side = |p: &tandem_planner::Provenance| match p.emulated_slowdown {
        Some(r) => format!("EMULATED as {r}× the times measured on {} ({} threads)", p.machine, p.threads),
        None => format!("measured on {} ({} threads)", p.machine, p.threads),
    };
    format!("device {}; edge {}", side(profiles.device()), side(profiles.edge()))
}
