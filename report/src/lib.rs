//! # tandem-report — reading plans and profiles as a person would
//!
//! Everything between the planner's numbers and a human: quantities typed on the command line,
//! the chosen plan next to the baselines the paper compares with, and a markdown report with
//! charts.
//!
//! # Layout
//! - [`units`]: `1Mbit`, `20ms`, `90%` → numbers (bare numbers refused), and back to text.
//! - [`inputs`]: which profile is the device's and which the edge's; `--slowdown` emulation.
//! - [`compare`]: [`Comparison`] — the 2-step plan and every [`tandem_planner::Baseline`] at one
//!   link and floor, the ratios against the unpruned best split, a text rendering (`tandem plan`).
//! - [`charts`]: chart data ([`charts::GroupedBars`], [`charts::StackedBars`],
//!   [`charts::LogLines`]) and their plotters drawings to PNG/SVG.
//! - [`document`]: [`write_report`] — `report.md` with the paper's main figure (elements per
//!   point), a latency breakdown, latency against bandwidth and the headline ratios.
//! - `font`: the TrueType file chart text is drawn with (fonts-dejavu-core, or `TANDEM_FONT`).
//! - [`error`]: [`ReportError`], [`UnitError`].

pub mod charts;
pub mod compare;
pub mod document;
pub mod error;
mod font;
pub mod inputs;
pub mod units;

pub use charts::ChartFormat;
pub use compare::{Comparison, Ratios};
pub use document::{ReportFiles, ReportOptions, write_report};
pub use error::{ReportError, Result, UnitError};
pub use font::{FONT_CANDIDATES, FONT_ENV, ensure_fonts};
pub use inputs::{ProfileSource, build_profiles, describe_sides, load_profiles, read_profile};
/// Re-exported for the CLI.
pub use tandem_planner as planner;
